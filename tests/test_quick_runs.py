"""The quick-runs switch (utils/quick.py) shortens only what no graded cell reads.

Grading, the mutation suite and the hand-in check set COURSE_QUICK, which shortens the
demonstration runs of a notebook (the cells that call ``demo_size``). That is only honest if
the graded cells (solution and test cells, and the provided cells whose results they read)
see the same objects with quick runs and without. The landscape notebook is run here twice
in this process, as the mutation suite runs it (code cells in one namespace, hidden tests
included): once with its quick demonstration cells and once with them left out entirely.
Every graded cell must find the same values under the names it reads, and every test cell
must end the same way. If leaving the demonstrations out changes nothing a graded cell sees,
then their length cannot either: full and quick runs differ only inside those cells.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import symtable
import types
import warnings

import pytest
import torch

from course.commands import mutations
from utils import quick

ASSIGNMENT = "landscape"


def test_demo_size_is_full_unless_quick_runs_are_on(monkeypatch):
    monkeypatch.delenv(quick.QUICK_VARIABLE, raising=False)
    monkeypatch.delenv(quick.NBGRADER_VARIABLE, raising=False)
    assert quick.demo_size(25, 3) == 25 and not quick.quick_runs()
    monkeypatch.setenv(quick.QUICK_VARIABLE, "0")
    assert quick.demo_size(25, 3) == 25
    monkeypatch.setenv(quick.QUICK_VARIABLE, "1")
    assert quick.demo_size(25, 3) == 3 and quick.demo_size(0.5, 0.25) == 0.25
    monkeypatch.delenv(quick.QUICK_VARIABLE)
    monkeypatch.setenv(quick.NBGRADER_VARIABLE, "validate")  # nbgrader's Validate and autograde
    assert quick.demo_size(25, 3) == 3


@pytest.mark.parametrize("full, fast", [(3, 5), (0, 0), (5, -1), (True, 1), ("5", 1)])
def test_demo_size_refuses_sizes_that_make_no_sense(full, fast):
    with pytest.raises(ValueError, match="demo_size"):
        quick.demo_size(full, fast)


def _names_defined(source: str) -> set[str]:
    return {s.get_name() for s in symtable.symtable(source, "<cell>", "exec").get_symbols()
            if s.is_assigned() or s.is_imported()}


def demonstration_cells(cells) -> set[str]:
    """Grade ids of the demonstration cells, as the mutation suite finds them (it leaves them out)."""
    return {cells[index].grade_id for index in mutations.demonstration_cells(cells)}


def _names_read(source: str) -> set[str]:
    """The global names a cell reads: at its top level, or from inside its functions and classes."""
    names, tables = set(), [symtable.symtable(source, "<cell>", "exec")]
    while tables:
        table = tables.pop()
        top = table.get_type() == "module"
        names |= {s.get_name() for s in table.get_symbols() if s.is_referenced() and (top or s.is_global())}
        tables += table.get_children()
    return names


def _fingerprint(value, depth=0) -> str:
    """A description of a value that is equal for equal contents (tensors hashed, models by their
    state, loaders by their data and generator), independent of object identity."""
    if depth > 3:
        return type(value).__name__
    if isinstance(value, torch.Tensor):
        data = value.detach().cpu().contiguous()
        return f"tensor{tuple(data.shape)}:{hashlib.sha1(data.numpy().tobytes()).hexdigest()[:16]}"
    if isinstance(value, torch.Generator):
        return "generator:" + _fingerprint(value.get_state())
    if isinstance(value, torch.nn.Module):
        return "module:" + _fingerprint(dict(value.state_dict()), depth + 1)
    if isinstance(value, (types.FunctionType, type, types.ModuleType, types.BuiltinFunctionType)):
        return f"{type(value).__name__}:{getattr(value, '__qualname__', getattr(value, '__name__', ''))}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {_fingerprint(v, depth + 1)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return type(value).__name__ + "[" + ", ".join(_fingerprint(v, depth + 1) for v in value) + "]"
    if isinstance(value, (int, float, str, bool, type(None))):
        return repr(value)
    if hasattr(value, "images") and hasattr(value, "generator"):  # a TensorLoader
        return ("loader:" + _fingerprint([value.images, value.labels, value.batch_size, value.shuffle], depth + 1)
                + ":" + (_fingerprint(value.generator) if value.generator is not None else "global"))
    return type(value).__name__


def _run(cells, skip_demos: bool) -> dict:
    """What every graded cell read, and how every test cell ended, in one run of the notebook."""
    namespace: dict = {"__name__": "__main__"}
    seen, outcomes = {}, {}
    demos = demonstration_cells(cells)
    first_demo = min(c.index for c in cells if c.grade_id in demos)
    for cell in cells:
        if skip_demos and cell.grade_id in demos:
            continue
        graded = cell.is_solution or cell.is_test or (cell.index > first_demo and cell.grade_id not in demos)
        if graded and cell.index > first_demo:
            seen[cell.grade_id] = {name: _fingerprint(namespace[name]) for name in sorted(_names_read(cell.source))
                                   if name in namespace}
        try:
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                    contextlib.redirect_stderr(io.StringIO()):
                warnings.simplefilter("ignore")
                exec(compile(cell.source, f"<{cell.grade_id}>", "exec"), namespace)
            outcome = "passed"
        except Exception as exc:  # noqa: BLE001 - an outcome to compare, like nbgrader's
            outcome = f"{type(exc).__name__}: {exc}"
        if cell.is_test:
            outcomes[cell.grade_id] = outcome
    claim = [namespace.get(name) for name in ("best_optimizer", "best_settings", "best_test_accuracy")]
    return {"seen": seen, "outcomes": outcomes, "claim": claim}


@pytest.mark.xdist_group("nb-landscape")
def test_graded_cells_of_landscape_see_the_same_objects_with_and_without_the_demonstrations(
        tmp_path, monkeypatch):
    cells = mutations.notebook_cells(ASSIGNMENT)
    demos = demonstration_cells(cells)
    assert len(demos) >= 10, "the landscape notebook should size its demonstration runs with demo_size"
    assert not [c.grade_id for c in cells if (c.is_solution or c.is_test) and "demo_size(" in c.source], (
        "demo_size belongs in provided cells only")
    read_by_graded = {c.grade_id: _names_read(c.source) for c in cells if c.is_solution or c.is_test}
    defined_by_demos = set().union(*(_names_defined(c.source) for c in cells if c.grade_id in demos))
    leaks = {cell: sorted(names & defined_by_demos) for cell, names in read_by_graded.items() if names & defined_by_demos}
    assert not leaks, f"graded cells read names that demonstration cells define: {leaks}"
    monkeypatch.setenv(quick.QUICK_VARIABLE, "1")
    monkeypatch.setenv("COURSE_NO_PROGRESS", "1")
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.chdir(tmp_path)
    import plotly.basedatatypes

    monkeypatch.setattr(plotly.basedatatypes.BaseFigure, "show", lambda self, *a, **k: None)
    threads = torch.get_num_threads()
    try:
        with_demos, without = _run(cells, skip_demos=False), _run(cells, skip_demos=True)
    finally:
        torch.set_num_threads(threads)
    assert all(outcome == "passed" for outcome in with_demos["outcomes"].values()), with_demos["outcomes"]
    assert with_demos["outcomes"] == without["outcomes"]
    assert with_demos["claim"] == without["claim"] and with_demos["claim"][0] is not None
    differ = {cell: sorted(name for name in seen if seen[name] != without["seen"][cell].get(name))
              for cell, seen in with_demos["seen"].items()}
    assert not any(differ.values()), f"graded cells that see other objects when the demonstrations run: {differ}"
    assert with_demos["seen"].keys() == without["seen"].keys()


def test_only_the_landscape_notebook_has_demonstration_cells():
    """The mutation suite leaves every demonstration cell out of its cases; that is sound only where
    the test above proves the rule, so a notebook that gains them must be added to it."""
    with_demos = [name for name in mutations.assignments_with_cases()
                  if mutations.demonstration_cells(mutations.notebook_cells(name))]
    assert with_demos == [ASSIGNMENT], with_demos
