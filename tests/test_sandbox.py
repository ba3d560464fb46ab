"""The grading building blocks in-process: sandbox, result validation, guards, metadata repair.

The sandbox tests start bubblewrap for a plain Python process (no nbgrader): a second each.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from course import cells as nbcells
from course.config import ROOT, CourseError, GradingSettings, Limits
from course.engine import guards, pool, repair, sandbox
from course.engine.jobs import Job, Outcome, Result, Status

needs_bwrap = pytest.mark.skipif(sandbox.problem() is not None, reason=f"no sandbox here: {sandbox.problem()}")


def start_inside(scratch: Path, uid: int | None, code: str, limits=Limits(), readonly=None):
    scratch.mkdir(exist_ok=True)
    if uid is not None:
        os.chown(scratch, uid, uid)
    cmd = sandbox.command([sys.executable, "-c", code], scratch, readonly or {}, limits, {"PATH": "/usr/bin:/bin"}, uid)
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run_inside(tmp_path: Path, code: str, limits=Limits(), readonly=None) -> subprocess.CompletedProcess:
    with sandbox.sandbox_uid() as uid:
        proc = start_inside(tmp_path / "scratch", uid, code, limits, readonly)
        out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@needs_bwrap
def test_sandbox_hides_the_course_and_allows_only_its_scratch(tmp_path):
    secret = tmp_path / "gradebook.db"
    secret.write_text("grades")
    shared = tmp_path / "helpers"
    shared.mkdir()
    (shared / "h.py").write_text("x = 1")
    code = (f"import os\nprint(os.path.exists({str(secret)!r}), os.path.exists('/root'), os.listdir('/root'))\n"
            "open('/course/out.txt', 'w').write('ok')\n"
            "print(open('/course/helpers/h.py').read())\n"
            "try:\n    open('/course/helpers/h.py', 'a')\nexcept OSError as e:\n    print('readonly', e.errno)\n"
            "print(os.getuid(), ' '.join(sorted(os.environ)))")
    proc = run_inside(tmp_path, code, readonly={"helpers": shared})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("False True")  # the gradebook is not there; /root holds only the Python install
    assert "x = 1" in lines[1] and lines[2].startswith("readonly")
    assert (tmp_path / "scratch" / "out.txt").read_text() == "ok"
    uid, *variables = lines[3].split()
    if os.geteuid() == 0:
        assert int(uid) in sandbox.uid_block() and not sandbox._has_account(int(uid))
    assert set(variables) <= {"PATH", "PWD", "LC_CTYPE"}, variables  # the grader's environment is gone


@needs_bwrap
def test_sandbox_has_no_network(tmp_path):
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    code = ("import socket\ntry:\n"
            f"    socket.create_connection(('127.0.0.1', {port}), 2)\n    print('connected')\n"
            "except OSError as e:\n    print('refused', e.errno)")
    proc = run_inside(tmp_path, code)
    server.close()
    assert proc.stdout.startswith("refused"), proc.stdout + proc.stderr


@needs_bwrap
def test_sandbox_memory_limit_raises_memory_error(tmp_path):
    code = "try:\n    b = bytearray(600 * 1024 ** 2)\n    print('allocated')\nexcept MemoryError:\n    print('MemoryError')"
    proc = run_inside(tmp_path, code, limits=Limits(memory_mb=300))
    assert proc.stdout.strip() == "MemoryError", proc.stdout + proc.stderr


@needs_bwrap
def test_sandbox_kills_everything_it_started(tmp_path):
    marker = f"sandbox-orphan-{os.getpid()}"
    code = ("import subprocess\n"
            f"subprocess.Popen(['sleep', '300', '{marker}'], start_new_session=True)\nprint('started')")
    proc = run_inside(tmp_path, code)
    assert "started" in proc.stdout
    alive = [p for p in os.listdir("/proc") if p.isdigit()
             and marker in open(f"/proc/{p}/cmdline", "rb").read().decode(errors="replace")]
    assert not alive


@needs_bwrap
def test_a_fork_bomb_does_not_starve_the_sandbox_next_to_it(tmp_path):
    # The kernel counts the process limit per uid: sandboxes sharing one uid would share it,
    # and one submission that used it up would make its neighbours' kernels fail to start.
    bomb = ("import threading, time\nthreading.stack_size(65536)\nn = 0\ntry:\n"
            "    for _ in range(1000):\n        threading.Thread(target=time.sleep, args=(30,), daemon=True).start()\n"
            "        n += 1\nexcept RuntimeError:\n    pass\nprint(n, flush=True)\ntime.sleep(30)")
    neighbour = ("import threading\nts = [threading.Thread(target=len, args=((),)) for _ in range(20)]\n"
                 "[t.start() for t in ts]\n[t.join() for t in ts]\nprint('started 20 threads')")
    limits = Limits(pids=64)
    with sandbox.sandbox_uid() as uid_a, sandbox.sandbox_uid() as uid_b:
        assert uid_a is None or uid_a != uid_b
        first = start_inside(tmp_path / "a", uid_a, bomb, limits)
        try:
            assert int(first.stdout.readline()) < 64  # it used its process limit up ...
            second = start_inside(tmp_path / "b", uid_b, neighbour, limits)
            out, err = second.communicate(timeout=120)
        finally:
            first.kill()
            first.communicate()
    assert out.strip() == "started 20 threads", err  # ... and the neighbour still runs


@pytest.mark.skipif(os.geteuid() != 0, reason="uids are leased only when the grader runs as root")
def test_sandbox_uids_are_leased_one_per_sandbox_and_freed_when_the_holder_dies(tmp_path):
    locks = tmp_path / "locks"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom pathlib import Path\nfrom course.engine import sandbox\n"
         "with sandbox.sandbox_uid(Path(sys.argv[1])) as uid:\n    print(uid, flush=True)\n    time.sleep(60)",
         str(locks)], stdout=subprocess.PIPE, text=True)
    try:
        held = int(holder.stdout.readline())
        with sandbox.sandbox_uid(locks) as mine, sandbox.sandbox_uid(locks) as other:
            assert len({held, mine, other}) == 3
            assert all(u in sandbox.uid_block() and not sandbox._has_account(u) for u in (held, mine, other))
    finally:
        holder.kill()
        holder.wait()
    with sandbox.sandbox_uid(locks) as again:
        assert again == held  # the kernel dropped the dead holder's lease: the first uid is free again


def test_sandbox_uids_fit_the_uids_the_system_maps():
    assert sandbox.uid_block("0 0 4294967295") == range(sandbox.FIRST_UID, sandbox.FIRST_UID + sandbox.UID_BLOCK)
    # a container's user namespace mapping 65536 uids: the block ends just below nobody
    narrow = sandbox.uid_block("         0     100000      65536\n")
    assert narrow.stop == sandbox.NOBODY and len(narrow) == sandbox.UID_BLOCK


def test_limits_become_prlimit_options():
    args = sandbox.prlimit(Limits(memory_mb=2048, pids=1024, cpu_s=60, open_files=256, file_size_mb=10))
    assert args[0] == "prlimit" and args[-1] == "--"
    assert {"--as=2147483648", "--nproc=1024", "--cpu=60", "--nofile=256", f"--fsize={10 * 2**20}"} <= set(args)


def test_command_isolates_network_processes_and_environment(tmp_path):
    cmd = sandbox.command(["true"], tmp_path, {}, Limits(), {"A": "1"}, sandbox.FIRST_UID)
    for option in ("--unshare-net", "--unshare-pid", "--die-with-parent", "--clearenv", "--new-session"):
        assert option in cmd
    from course.config import ROOT

    sources = {cmd[i + 1] for i, arg in enumerate(cmd) if arg in ("--bind", "--ro-bind")}
    assert str(Path.home()) not in sources and str(ROOT) not in sources and "/" not in sources
    assert str(tmp_path) in sources  # the scratch folder, and nothing of the course besides what is asked


def test_result_json_round_trip_and_validation():
    result = Result("s", "a", Status.FLAGGED, "m", ["why"], {"nb": "{}"}, "f", None, 1.5)
    back = Result.from_json(result.to_json())
    assert back == result and back.outcome().status is Status.FLAGGED
    bad = result.to_json().replace('"flagged"', '"perfect"')
    with pytest.raises(ValueError):
        Result.from_json(bad)
    with pytest.raises(ValueError, match="fields"):
        Result.from_json('{"student": "s"}')
    with pytest.raises(ValueError, match="wrong type"):
        Result.from_json(result.to_json().replace('"seconds": 1.5', '"seconds": "fast"'))


def test_only_error_is_not_recorded():
    assert [s for s in Status if not s.recorded] == [Status.ERROR]


def test_summary_counts_each_status():
    outcomes = [Outcome("a", "x", Status.GRADED), Outcome("b", "x", Status.GRADED), Outcome("c", "x", Status.ERROR),
                Outcome("d", "x", Status.FLAGGED, flags=("r",)), Outcome("e", "x", Status.LIMIT)]
    header, values = pool.summary(outcomes).splitlines()
    counts = dict(zip([h for h in header.split("  ") if h.strip()], values.split()))
    assert {k.strip(): int(v) for k, v in counts.items()} == {
        "graded": 2, "up to date": 0, "errors": 1, "limits hit": 1, "flagged": 1}


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("terminal", [False, True])
def test_progress_prints_one_line_per_submission(terminal):
    """One line each, with a tqdm bar (rate, ETA) on stderr when that is a terminal."""
    out, err = io.StringIO(), Terminal() if terminal else io.StringIO()
    bar = pool.Progress(2, out, err)
    bar(Outcome("ann", "x", Status.GRADED))
    bar(Outcome("bob", "x", Status.FLAGGED, "m", ("patched torch",)))
    bar.close()
    assert out.getvalue().splitlines() == [f"  {'ann':<24} graded", f"  {'bob':<24} flagged: m [review: patched torch]"]
    assert ("/2 [" in err.getvalue()) is terminal


@pytest.mark.parametrize("table, message", [
    ({"workers": -1}, "whole numbers"),
    ({"memory": 1}, "unknown settings memory"),
    ({"wall_s": "10"}, "whole numbers"),
])
def test_bad_grading_settings_are_explained(table, message):
    with pytest.raises(CourseError, match=message):
        GradingSettings.from_table(table)


@pytest.mark.parametrize("source, reason", [
    ("import torch\ntorch.allclose = lambda *a, **k: True", "rebinds a library function"),
    ("import sys\nsys.modules['utils'] = None", "changes sys.modules"),
    ("get_ipython().input_transformers_post.append(f)", "hooks into IPython"),
    ("ip.showtraceback = lambda *a: None", "changes how errors are reported"),
    ("import os\nos._exit(0)", "exits or kills the kernel"),
    ("import builtins\nbuiltins.len = lambda x: 0", "touches builtins"),
    ("s = get_ipython().kernel.session\ns.send = drop_errors", "hooks into IPython"),
    ("from hidden_tests.autodiff import reference_train\nw = reference_train(X, y)", "touches the grader's hidden tests"),
    ("import importlib\nref = importlib.import_module('hidden' + '_tests.autodiff')", "touches the grader's hidden tests"),
])
def test_static_scan_names_the_pattern_and_the_cell(source, reason):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source, id="answer")])
    found = guards.static_scan(nb)
    assert any(reason in f and "'answer'" in f for f in found), found


def test_static_scan_ignores_honest_code_and_provided_cells():
    honest = nbformat.v4.new_code_cell("import torch\nx = torch.ones(3)\nassert torch.allclose(x, x)", id="a")
    provided = nbformat.v4.new_code_cell("import sys\nsys.modules.pop('x', None)", id="setup")
    nb = nbformat.v4.new_notebook(cells=[honest, provided])
    assert guards.static_scan(nb, {provided.source}) == []


def test_the_grader_s_own_locked_cells_may_import_hidden_tests(tmp_path):
    """Test cells put back from source/ import hidden_tests; only student code is flagged for it."""
    from course.engine.jobs import Job
    from course.engine.prepare import prepare

    test = _labelled("assert value == 42\n### BEGIN HIDDEN TESTS\nfrom hidden_tests.a import t\nt(value)\n"
                     "### END HIDDEN TESTS", "test")
    answer = _labelled("value = 42", "answer", solution=True, locked=False)
    for folder, cells in ((tmp_path / "source" / "a", [answer, test]),
                          (tmp_path / "submitted" / "s" / "a", [answer, _labelled("assert value == 42", "test")])):
        folder.mkdir(parents=True)
        nbformat.write(nbformat.v4.new_notebook(cells=cells), folder / "a.ipynb")
    job = Job(str(tmp_path), "a", "s", "f", True, Limits(), 100, ("a",))
    assert prepare(job, str(tmp_path)).flags == []
    sneaky = nbformat.v4.new_notebook(cells=[_labelled("import hidden_tests.a as h\nvalue = 42", "answer", True, False),
                                             _labelled("assert value == 42", "test")])
    nbformat.write(sneaky, tmp_path / "submitted" / "s" / "a" / "a.ipynb")
    assert any("touches the grader's hidden tests in cell 'answer'" in f for f in prepare(job, str(tmp_path)).flags)


def test_a_deleted_locked_cell_is_put_back_at_its_place():
    source = nbformat.v4.new_notebook(cells=[
        _labelled("import torch", "setup"), _labelled("value = 42", "answer", solution=True, locked=False),
        _labelled("assert value == 42", "test"), _labelled("def helper(): ...", "helper", solution=True, locked=False),
        _labelled("assert helper() == 1", "t2")])
    handed_in = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("my notes", id="test"),  # a cell of the student's that took the id
        _labelled("value = 41", "answer", solution=True, locked=False),
        _labelled("def helper(): return 1", "helper", solution=True, locked=False)])
    assert repair.put_back(handed_in, source) == ["setup", "test", "t2"]
    assert [nbcells.grade_id(c) for c in handed_in.cells] == \
        [None, "setup", "answer", "test", "helper", "t2"]  # each next to its registered neighbour
    assert len({c.id for c in handed_in.cells}) == len(handed_in.cells)  # ids stay unique
    assert handed_in.cells[3].source == "assert value == 42" and handed_in.cells[3].outputs == []
    nbformat.validate(handed_in)


def test_a_symbolic_link_is_named_where_it_is_and_where_it_points_in_the_course(tmp_path):
    from course.engine.prepare import check_submission

    good = tmp_path / "submitted" / "good" / "a"
    good.mkdir(parents=True)
    (tmp_path / "submitted" / "linked").symlink_to(good.parent)
    (tmp_path / "submitted" / "inner").mkdir()
    (tmp_path / "submitted" / "inner" / "a").symlink_to("/etc")
    said = check_submission(tmp_path / "submitted" / "linked" / "a", {"a.ipynb"}, 100)
    assert said == "submitted/linked is a symbolic link (to submitted/good), not a folder: not graded"
    said = check_submission(tmp_path / "submitted" / "inner" / "a", {"a.ipynb"}, 100)
    assert said == "submitted/inner/a is a symbolic link (to outside the course), not a folder: not graded"


def test_every_kernel_runs_on_the_cpu_with_one_thread_and_a_fixed_hash_seed(tmp_path):
    from course.engine import worker

    env = worker._environment(tmp_path, tmp_path, Job(str(tmp_path), "a", "s", "f", True, Limits(), 100, ("a",)))
    assert (env["COURSE_DEVICE"], env["CUDA_VISIBLE_DEVICES"], env["OMP_NUM_THREADS"], env["PYTHONHASHSEED"]) == \
        ("cpu", "", "1", "0")
    facts = worker.ran_on()
    assert (facts["device"], facts["threads"], facts["hash_seed"]) == ("cpu", "1", "0") and facts["python"]
    result = Result("s", "a", Status.GRADED, ran_on=facts)
    assert Result.from_json(result.to_json()).ran_on == facts
    with pytest.raises(ValueError, match="ran_on"):
        Result.from_json(result.to_json().replace('"threads": "1"', '"threads": 1'))


def _test_cell(source="assert True", gid="t"):
    test = nbformat.v4.new_code_cell(source, id=gid)
    test.metadata["nbgrader"] = {"grade": True, "solution": False, "grade_id": gid, "points": 1, "locked": True}
    return test


def _as_if_run(nb, token="guardabc", canary="ok", tampered=()):
    """Outputs as a run leaves them: the check's report on each test cell, the canary's error."""
    for cell in nb.cells:
        cell.execution_count = 1
        if cell.id.startswith(guards.GUARD_ID) and "raise AssertionError" in cell.source:
            cell.outputs = [nbformat.v4.new_output("error", ename="AssertionError", evalue=f"{token} {canary}",
                                                   traceback=[])]
        elif nbcells.is_grade(cell):
            cell.outputs = [nbformat.v4.new_output("display_data", data={
                guards.MIME: {"token": token, "tampered": list(tampered)}})]
    return nb


def test_guard_cells_and_outputs_are_injected_and_removed_again():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1", id="a"), _test_cell()])
    guards.inject(nb, "guardabc")
    ids = [c.id for c in nb.cells]
    assert ids[0].startswith(guards.GUARD_ID) and ids[1:3] == ["a", "t"] and ids[3].startswith(guards.GUARD_ID)
    assert guards.interpret(_as_if_run(nb), "guardabc") == [] and [c.id for c in nb.cells] == ["a", "t"]
    assert nb.cells[1].outputs == []  # the check's report is not the student's


def test_a_submitted_cell_cannot_pose_as_a_guard_cell():
    posing = nbformat.v4.new_code_cell("value = 42", id=guards.GUARD_ID + "7")
    posing.metadata["course"] = {"rerun_after_restart": True}
    nb = nbformat.v4.new_notebook(cells=[posing])
    guards.inject(nb, "guardabc")
    assert posing.id == "student-" + guards.GUARD_ID + "7" and posing.metadata["course"] == {}
    guards.interpret(_as_if_run(nb), "guardabc")
    assert [c.id for c in nb.cells] == [posing.id]  # kept, not removed with the guard cells


def test_uid_leases_refuse_a_lock_folder_others_can_write(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("uids are leased only when grading as root")
    locks = tmp_path / "locks"
    locks.mkdir(mode=0o777)
    os.chmod(locks, 0o777)  # as if another user had made it first in a shared folder
    with pytest.raises(RuntimeError, match="owned by root that no one else may write to"):
        with sandbox.sandbox_uid(locks):
            pass


def test_guards_flag_hidden_errors_missing_reports_and_reported_tampering():
    def guarded():
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1", id="a"), _test_cell()])
        guards.inject(nb, "guardabc")
        return nb

    hidden = _as_if_run(guarded())
    hidden.cells[-1].outputs = []
    assert any("errors were hidden" in f for f in guards.interpret(hidden, "guardabc"))
    silent = _as_if_run(guarded())
    silent.cells[2].outputs = []
    assert guards.interpret(silent, "guardabc") == [
        "the grader's check after test cell 't' reported nothing: its checks or outputs were hidden"]
    forged = _as_if_run(guarded(), token="guard000")  # a report without the secret token counts for nothing
    assert any("reported nothing" in f for f in guards.interpret(forged, "guardabc"))
    assert guards.interpret(_as_if_run(guarded(), canary="tampered: torch.allclose"), "guardabc") == [
        "changed what the tests rely on: torch.allclose"]
    assert guards.interpret(_as_if_run(guarded(), tampered=["math.sqrt"]), "guardabc") == [
        "changed what the tests rely on: math.sqrt"]


def test_the_check_runs_in_the_kernel_after_each_test_cell_and_sees_a_patch():
    """In a real kernel: an honest run reports nothing; a library function rebound by the
    student is reported by the check after the next test cell, though the test passes."""
    from course.engine.execute import Executor

    def run(student):
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(student, id="a"), _test_cell("import math\nassert math.sqrt(4) == 2")])
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        guards.inject(nb, "guardabc", str(ROOT), ("utils",))
        Executor(nb, timeout=60, startup_timeout=60, resources={"metadata": {"path": str(ROOT)}}).execute()
        return guards.interpret(nb, "guardabc"), nb

    flags, nb = run("import math\nx = math.sqrt(9)")
    assert flags == [] and not any(o.output_type == "error" for c in nb.cells for o in c.outputs)
    flags, nb = run("import math\n_real = math.sqrt\nmath.sqrt = lambda x: _real(x)")
    assert "changed what the tests rely on: math.sqrt" in flags
    assert not any(o.output_type == "error" for o in nb.cells[1].outputs)  # the test itself passed


def _labelled(source, gid, solution=False, locked=True):
    cell = nbformat.v4.new_code_cell(source, id=gid)
    cell.metadata["nbgrader"] = {"grade": not solution, "solution": solution, "locked": locked, "grade_id": gid,
                                 "schema_version": 3, "points": 1}
    return cell


def test_stripped_metadata_is_put_back_by_content_and_position():
    release = nbformat.v4.new_notebook(cells=[
        _labelled("# YOUR CODE HERE", "answer", solution=True, locked=False), _labelled("assert value == 42", "test"),
        _labelled("# YOUR CODE HERE", "helper", solution=True, locked=False), _labelled("assert helper() == 1", "t2")])
    colab = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s, id=f"c{i}") for i, s in enumerate(
        ["value = 42", "assert value == 42", "def helper():\n    return 1", "assert helper() == 1"])])
    restored, missing = repair.restore_metadata(colab, release)
    assert missing == [] and sorted(restored) == ["answer", "helper", "t2", "test"]
    assert [nbcells.grade_id(c) for c in colab.cells] == ["answer", "test", "helper", "t2"]


def test_ambiguous_stripped_cells_are_reported_not_guessed():
    release = nbformat.v4.new_notebook(cells=[
        _labelled("# YOUR CODE HERE", "answer", solution=True, locked=False), _labelled("assert value == 42", "test")])
    colab = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s, id=f"c{i}") for i, s in enumerate(
        ["value = 40", "value += 2", "assert value == 42"])])
    restored, missing = repair.restore_metadata(colab, release)
    assert restored == ["test"] and missing == ["answer"]


def test_grading_refuses_without_a_sandbox_unless_unsafe(monkeypatch):
    from course.commands import grade

    monkeypatch.setattr(sandbox.shutil, "which", lambda tool: None)
    why = sandbox.problem()
    assert "bwrap" in why and "apt-get install bubblewrap" in why
    monkeypatch.setattr(sandbox, "problem", lambda: why)
    with pytest.raises(CourseError, match="pass --unsafe to grade without one"):
        grade.refuse_without_sandbox(unsafe=False)
    grade.refuse_without_sandbox(unsafe=True)  # the instructor's explicit choice


@pytest.mark.skipif(sys.platform != "linux", reason="a thread's own nice value is Linux's")
def test_getting_ready_to_record_lowers_only_its_own_threads_priority():
    # The thread that loads nbgrader while the first submission runs must give way to the
    # sandbox's kernel, and must not slow down the grader's other threads (course grade).
    import threading

    from course.commands import grade

    before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    seen = {}

    def getting_ready():
        grade._lower_priority()
        seen["thread"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    thread = threading.Thread(target=getting_ready)
    thread.start()
    thread.join()
    assert seen["thread"] == 19
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == before
    assert os.getpriority(os.PRIO_PROCESS, 0) == before  # the process, as a child would inherit it


@needs_bwrap
def test_sandbox_tmp_is_private_and_writable(tmp_path):
    # Python's tempfile falls back to the working folder when /tmp is not writable, and
    # ipykernel names cells after that folder: it must be /tmp (course/engine/guards.py relies on it).
    proc = run_inside(tmp_path, "import tempfile; print(tempfile.gettempdir())")
    assert proc.stdout.strip() == "/tmp", proc.stdout + proc.stderr
