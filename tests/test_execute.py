"""course/engine/execute.py: a kernel that dies costs its cell, not the cells before it."""

from __future__ import annotations

import nbformat

from course.engine.execute import ExecuteKeepingScores, Executor
from course.engine.guards import GUARD_ID
from course.cells import DIED, STUCK


def notebook(*sources, setup=None):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    cells = [nbformat.v4.new_code_cell(s) for s in sources]
    if setup is not None:
        first = nbformat.v4.new_code_cell(setup, id=GUARD_ID + "0")
        first.metadata["course"] = {"rerun_after_restart": True}
        cells.insert(0, first)
    nb.cells = cells
    return nb


def run(nb, **settings):
    """The grader's executor (course/engine/run_notebook.py runs it in the sandbox)."""
    settings = {"timeout": 60, **settings}
    Executor(nb, startup_timeout=60, resources={"metadata": {"path": "."}}, **settings).execute()
    return nb.cells


def errors(cell):
    return [o.ename for o in cell.outputs if o.output_type == "error"]


def text(cell):
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


def test_cells_before_a_dying_cell_keep_their_results_and_later_ones_run_in_a_fresh_kernel():
    cells = run(notebook("a = 1\nprint('a', a)", "import os\nos._exit(1)", "print('a' in dir())",
                         "b = 2\nprint('b', b)", setup="guard = 'set up'"))
    assert text(cells[1]) == "a 1\n" and not errors(cells[1])
    assert errors(cells[2]) == [DIED]
    assert text(cells[3]) == "False\n"  # the dead kernel's state is gone ...
    assert text(cells[4]) == "b 2\n"  # ... and the cells after it still run
    # every cell but the dying one ran (whether that one got an execution count is a race with its death)
    assert all(c.execution_count is not None for i, c in enumerate(cells) if i != 2)


def test_set_up_cells_run_again_in_the_fresh_kernel(tmp_path):
    log = tmp_path / "set-up.log"
    cells = run(notebook("import os\nos._exit(1)", "print(guard)",
                         setup=f"guard = 'set up'\nopen({str(log)!r}, 'a').write('ran\\n')"))
    assert text(cells[2]) == "set up\n"
    assert log.read_text() == "ran\nran\n"  # once in each kernel


def test_only_the_graders_set_up_cells_run_again(tmp_path):
    """A submission cannot mark a cell of its own to run before everything in a fresh kernel."""
    log = tmp_path / "student.log"
    nb = notebook(f"open({str(log)!r}, 'a').write('ran\\n')", "import os\nos._exit(1)", "print('after')")
    nb.cells[0].metadata["course"] = {"rerun_after_restart": True}
    cells = run(nb)
    assert text(cells[2]) == "after\n" and log.read_text() == "ran\n"


def test_a_cell_that_ignores_the_interrupt_costs_its_cell_only():
    """nbclient gives up on the whole notebook when a timed-out cell's kernel does not stop."""
    stubborn = ("import time\nwhile True:\n    try:\n        time.sleep(100)\n"
                "    except KeyboardInterrupt:\n        pass")
    cells = run(notebook("print('before')", stubborn, "print('after')"), timeout=3)
    assert text(cells[0]) == "before\n" and not errors(cells[0])
    assert errors(cells[1])[-1] == STUCK and "did not stop when interrupted" in cells[1].outputs[-1].evalue
    assert text(cells[2]) == "after\n"


def test_after_max_restarts_the_remaining_cells_do_not_run():
    cells = run(notebook("import os\nos._exit(1)", "import os\nos._exit(1)", "print('never')"), max_restarts=1)
    assert errors(cells[0]) == [DIED] and errors(cells[1]) == [DIED]
    assert "after 1 restart:" in cells[1].outputs[-1].evalue
    assert cells[2].execution_count is None and not cells[2].outputs


def test_no_cell_runs_past_the_deadline_and_the_cells_before_it_keep_their_results():
    import time

    from course.cells import OUT_OF_TIME

    nb = notebook("print('in time')", "import time\ntime.sleep(60)", "print('too late')", "print('also late')")
    started = time.monotonic()
    cells = run(nb, deadline=time.time() + 10)
    assert time.monotonic() - started < 40  # the sleeping cell was interrupted at the deadline
    assert text(cells[0]) == "in time\n" and not errors(cells[0])
    assert errors(cells[1])  # interrupted: nbgrader's CellTimeoutError
    assert errors(cells[2]) == [OUT_OF_TIME] == errors(cells[3])
    assert cells[2].execution_count is None and "too late" not in text(cells[2])


def test_nbgraders_own_execute_step_keeps_the_scores_before_a_dying_cell_too():
    """For anyone who runs `nbgrader autograde` directly (nbgrader_config.py)."""
    nb = notebook("print('before')", "import os\nos._exit(1)", "print('after')")
    ExecuteKeepingScores(startup_timeout=60, timeout=60).preprocess(nb, {"metadata": {"path": "."}})
    before, dying, after = nb.cells
    assert text(before) == "before\n" and errors(dying) == [DIED] and text(after) == "after\n"
