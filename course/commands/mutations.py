"""The mutation suite: correct variants must get full marks, plausible mistakes must lose
points in the cell they belong to, judged by the notebook's real test cells.

``mutations/<assignment>.toml`` lists cases in the cell-replacement schema of the sample
submissions (``samples/<assignment>/samples.toml``): each case replaces solution cells, by
grade id, with other code, and declares the test cells that must fail (none for a correct
variant). Where the sample submissions prove the pipeline end to end with nbgrader, this
suite proves the *tests* both ways, many cases per exercise, in seconds:

* a forked *recorder* runs the instructor notebook once with the reference solutions (code
  cells as they are; solution delimiters dropped) and reports, after every cell, the
  process-wide state (random generators, gradient mode, default dtype, working directory)
  and a digest of the contents of every global, and at the end the libraries it imported;
  this process imports those libraries once, so that no case pays for a lazy import
  (``torch.optim`` pulls in ``torch._dynamo``: over a second) again;
* then the notebook runs in this process; at the first cell a case replaces, the process
  forks: the child runs the case's cells and **every later cell of the notebook** that can
  compute something other than the reference (below), and records every test cell that
  raised or wrote to stderr (nbgrader's rule for a failed test cell). A verdict is right only
  if exactly the declared cells fail: a mistake that also fails a later exercise's cell is a
  cascade (one slip must cost one exercise), and a correct variant must pass everything;
* the parent reads the child's verdict as JSON from a pipe, kills it after a time limit, and
  goes on with the reference cell. A child shares nothing with other cases: fork copies the
  whole interpreter, so a case that mutates a model or a global cannot leak. Cases that
  replace the same cells with the same code are one run (what the child sees is the code
  only), judged against each case's own declaration.

Cost. The child knows from the source which globals every cell reads and binds (``_scan``,
through the notebook's functions a cell calls) and tracks the globals whose values differ from
the reference's: after every cell it ran, those the cell read or bound are compared with the
recorder's digest of their contents after that cell (``_contents``: tensors by a checksum of
their bytes, so ``p.data -= ...`` shows; the notebook's functions and classes by their code).
A cell that reads no differing global, while the process-wide state equals the reference's,
computes what the reference computed, and the reference passes every test: it is skipped if
no later cell reads what it binds and it leaves the process-wide state alone, and the child
stops as soon as no later cell reads a differing global. After every cell it ran, the globals
that differed are compared again: hidden tests put the course's reference versions of earlier
exercises back through ``globals()``, which the scan cannot see, and a global back to the
reference's value makes no later cell run (this halves the landscape suite's cost). The test
cells of the case's own solution cells always run. The *demonstration cells* (``demonstration_cells``:
those that size a run with ``demo_size``, utils/quick.py, and those that read what they define)
are left out: by the course's rule no graded cell reads what they make (tests/test_quick_runs.py
proves it on the reference), so they cannot change a verdict; the child sets the random generators
to where the recorder's run of the cell left them, so the cells after it stay in step. What this cannot see: files a case writes, and changes made
through objects the case reached without naming them (a library's module attributes); the
cases are written so that neither matters, and ``run(..., skip=False)`` runs every later cell
to check that.

Variants. Where an assignment has per-student variants (utils/variant.py), every case runs under
one of two student ids whose variants differ (``suite_ids``), picked by a stable hash of its id
(``id_of``), with the id set as the grader sets it (``COURSE_STUDENT_ID``): the reference notebook
runs once per id, every case once, so every hidden test is judged under two variants at the
cost of one more reference run, and no test can lean on one student's numbers. ``run(...,
variants_off=True)`` (``course mutations --variants-off``) runs them with the assignment's variants
off, everyone on the default numbers: a mistake that runs with the default numbers instead of the
student's own is right then, and says so with ``fails_with_variants_off = []``.

Trust: the cases are instructor code, run with the instructor's privileges. They are never
student submissions; those are graded by nbgrader (course/grading.py).
"""

from __future__ import annotations

import ast
import contextlib
import functools
import hashlib
import importlib
import io
import json
import os
import select
import shutil
import signal
import sys
import tempfile
import time
import traceback
import types
import warnings
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path

import nbformat
from nbgrader import utils as nbutils

from utils import variant as numbers

from ..config import MUTATIONS, ROOT, SOURCE, CourseError, TOMLDecodeError, check_assignment, load_toml, settings
from .. import cells as nbcells
from .. import variants
from ..cells import HIDDEN_TESTS, region_lines, strip_delimiters as strip_solution_delimiters, without_region


class Kind(str, Enum):
    """What a case is: a correct variant (full marks) or a mistake (fails its ``fails``)."""

    CORRECT = "correct"
    MISTAKE = "mistake"

    def __str__(self) -> str:  # as the cases file spells it
        return self.value


KEYS = frozenset({"kind", "about", "cells", "fails", "weakness", "diagnosis", "fails_with_variants_off"})
WEAKNESSES = ("figure", "rule", "data", "cascade", "values", "advice")
CASE_TIMEOUT = 120.0  # seconds; the slowest case runs every later cell, training loops included
# Set while the suite runs (the reference and every case), as grading sets them for a
# submission's kernel; a course-wide switch that shortens demonstration runs under grading
# belongs here too.
ENVIRONMENT = {"COURSE_NO_PROGRESS": "1",  # utils.progress: no progress bars
               "COURSE_QUICK": "1"}  # utils.quick: shorter demonstration runs, as while nbgrader grades
SUITE_ID = "mutation-suite"  # the stem of the student ids the suite runs under (``suite_ids``)


@dataclass(frozen=True)
class _Names:
    """What a cell's code does with the notebook's global names, read from its source.

    ``reads``: globals it may read before binding them itself, nested scopes included;
    ``writes``: globals it binds, deletes or changes in place (``x = ...``, ``x.a = ...``,
    ``x[i] = ...``, ``def x``, ``import x``); ``bodies``: the functions and classes it
    defines -> (the globals they read when called, those they bind with ``global``);
    ``dynamic``: it reaches the namespace in ways no name shows (exec, eval, vars, locals, a
    star import, a write through ``globals()``). A ``globals()`` handed to a function is not
    dynamic: the hidden tests only put reference versions back through it."""

    reads: frozenset[str] = frozenset()
    writes: frozenset[str] = frozenset()
    bodies: tuple[tuple[str, frozenset[str], frozenset[str]], ...] = ()
    dynamic: bool = False
    reseeds: bool = False  # its first statement calls ``seed_everything``: it starts from the course-wide seed

    def merged(self, other: _Names) -> _Names:
        bodies = {name: (reads, writes) for name, reads, writes in self.bodies}
        for name, reads, writes in other.bodies:
            old = bodies.get(name, (frozenset(), frozenset()))
            bodies[name] = (old[0] | reads, old[1] | writes)
        return _Names(self.reads | other.reads, self.writes | other.writes,
                      tuple((n, r, w) for n, (r, w) in bodies.items()), self.dynamic or other.dynamic,
                      self.reseeds and other.reseeds)


@dataclass(frozen=True)
class Cell:
    index: int
    grade_id: str
    source: str
    is_solution: bool
    is_test: bool


@dataclass(frozen=True)
class Case:
    id: str
    kind: Kind
    about: str
    cells: dict[str, str]
    fails: tuple[str, ...] = ()
    weakness: str | None = None
    diagnosis: str = ""  # a mistake's misconception, in the student's terms (course/commands/causes.py)
    # The cells it fails where the assignment's variants are off (utils/variant.py), where that differs:
    # a run with the default numbers is a mistake only while everyone has numbers of their own.
    fails_with_variants_off: tuple[str, ...] | None = None

    def declared(self, variants_off: bool = False) -> tuple[str, ...]:
        """The test cells it must fail, with the assignment's variants on or off."""
        return self.fails_with_variants_off if variants_off and self.fails_with_variants_off is not None \
            else self.fails


@dataclass(frozen=True)
class Verdict:
    case: Case
    ran: tuple[str, ...] = ()  # the test cells the case ran (the others compute what the reference does)
    failed: dict[str, str] = field(default_factory=dict)  # test cell -> first line of its error
    visible: tuple[str, ...] = ()  # the failed test cells whose failing line is visible (Failure)
    # run(released=True): test cell that failed in a hidden test -> its failure without its hidden regions
    released: dict[str, str] = field(default_factory=dict)
    error: str = ""  # why the case could not be judged (timeout, crash)
    cells_run: int = 0  # cells executed after the fork
    cpu: float = 0.0  # seconds of processor time the case took
    student: str = ""  # the student id it ran under (``suite_ids``): which variant it was judged on
    variants_off: bool = False  # judged with the assignment's variants off (``run(variants_off=True)``)

    @property
    def fails(self) -> tuple[str, ...]:
        """The cells it must fail in this run."""
        return self.case.declared(self.variants_off)

    @property
    def ok(self) -> bool:
        return not self.error and set(self.failed) == set(self.fails) and not self.unhelpful

    @property
    def unhelpful(self) -> dict[str, str]:
        """For cases about advice: failures that are not an AssertionError with a message."""
        if self.case.weakness != "advice":
            return {}
        return {k: v for k, v in self.failed.items() if not v.startswith("AssertionError: ")}

    def explain(self) -> str:
        if self.error:
            return f"{self.case.id}: {self.error}"
        if self.case.kind is Kind.CORRECT:
            return f"{self.case.id} (correct) lost points in: " + "; ".join(f"{k}: {v}" for k, v in self.failed.items())
        missed = sorted(set(self.fails) - set(self.failed))
        extra = {k: v for k, v in self.failed.items() if k not in self.fails}
        parts = [f"not caught by {', '.join(missed)}"] if missed else []
        parts += [f"also failed {k}: {v}" for k, v in extra.items()]
        parts += [f"{k} fails without advice (a test should raise AssertionError with a message): {v}"
                  for k, v in self.unhelpful.items()]
        return f"{self.case.id} (mistake): " + "; ".join(parts)


def spec_path(assignment: str) -> Path:
    return MUTATIONS / f"{assignment}.toml"


def assignments_with_cases() -> list[str]:
    return sorted(p.stem for p in MUTATIONS.glob("*.toml")) if MUTATIONS.is_dir() else []


def load(assignment: str) -> list[Case]:
    path = spec_path(assignment)
    try:
        entries = load_toml(path)["cases"]
    except FileNotFoundError:
        raise CourseError(f"{path} does not exist: write the assignment's mutation cases there") from None
    except (TOMLDecodeError, KeyError) as exc:
        raise CourseError(f"{path}: expected [cases.<id>] tables ({exc})") from None
    cases = []
    for case_id, entry in entries.items():
        if "through" in entry:
            raise CourseError(f"{path}: cases.{case_id}.through is no longer needed: every case runs through all "
                              "later cells of the notebook; delete the line")
        unknown = sorted(set(entry) - KEYS)
        if unknown:
            raise CourseError(f"{path}: cases.{case_id} has unknown keys {', '.join(unknown)} "
                              f"(a case has {', '.join(sorted(KEYS))})")
        try:
            kind = Kind(entry.get("kind", ""))
        except ValueError:
            raise CourseError(f"{path}: cases.{case_id}.kind must be one of {', '.join(k.value for k in Kind)}") \
                from None
        case = Case(
            id=case_id,
            kind=kind,
            about=entry.get("about", ""),
            cells=dict(entry.get("cells", {})),
            fails=tuple(entry.get("fails", ())),
            weakness=entry.get("weakness"),
            diagnosis=" ".join(str(entry.get("diagnosis", "")).split()),
            fails_with_variants_off=tuple(entry["fails_with_variants_off"])
            if "fails_with_variants_off" in entry else None,
        )
        if (case.kind is Kind.CORRECT) == bool(case.fails):
            raise CourseError(f"{path}: cases.{case_id}: a correct variant fails no cell, a mistake fails at least one")
        if case.weakness is not None and case.weakness not in WEAKNESSES:
            raise CourseError(f"{path}: cases.{case_id}.weakness must be one of {', '.join(WEAKNESSES)}")
        if not case.cells:
            raise CourseError(f"{path}: cases.{case_id} replaces no cell")
        if case.diagnosis and case.kind is not Kind.MISTAKE:
            raise CourseError(f"{path}: cases.{case_id}: only a mistake has a diagnosis")
        cases.append(case)
    return cases


SAMPLE = "sample "  # the id of a sample submission judged as a case: "sample <student>"


def sample_cases(assignment: str) -> list[Case]:
    """The sample submissions (samples/<assignment>/samples.toml) this suite can judge, as cases: those
    built from the solutions with code solution cells of their own (written answers do not count
    for the autograded cells). Not those that are no notebook, start from the blank release, type
    another student's id or must be flagged: grading judges those end to end (tests/test_grading.py)."""
    from . import samples

    cells = notebook_cells(assignment)
    code, provided = {c.grade_id for c in cells if c.is_solution}, {c.grade_id for c in cells if not c.is_solution}
    cases = []
    for sample in samples.load(assignment):
        mine = {k: v for k, v in sample.cells.items() if k in code}  # written answers (markdown) are not run
        own_id = numbers.normalise(sample.student_id or sample.student) == numbers.normalise(sample.student)
        if sample.raw is not None or sample.solutions != "all" or not own_id or sample.flags \
                or not mine or set(sample.cells) & provided:
            continue
        cases.append(Case(f"{SAMPLE}{sample.student}", Kind.MISTAKE if sample.fails else Kind.CORRECT, sample.about,
                          mine, tuple(sample.fails)))
    return cases


def notebook_cells(assignment: str) -> list[Cell]:
    """The code cells of the assignment's one source notebook, solutions as the reference."""
    notebooks = sorted((SOURCE / assignment).glob("*.ipynb"))
    if len(notebooks) != 1:
        raise CourseError(f"source/{assignment} should hold one notebook for the mutation suite, not {len(notebooks)}")
    nb = nbformat.read(notebooks[0], as_version=4)
    cells = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        grade_id = nbcells.grade_id(cell) or cell.get("id", f"cell-{len(cells)}")
        solution = nbutils.is_solution(cell)
        source = strip_solution_delimiters(cell.source) if solution else cell.source
        cells.append(Cell(len(cells), grade_id, source, solution, nbutils.is_grade(cell) and not solution))
    return cells


def tests_of(cells: list[Cell], index: int) -> list[Cell]:
    """The test cells that check the solution cell at ``index``: those before the next solution cell."""
    tests = []
    for cell in cells[index + 1:]:
        if cell.is_solution:
            break
        if cell.is_test:
            tests.append(cell)
    return tests


def _check(case: Case, cells: list[Cell], path: Path) -> int:
    """The first cell a case replaces, after checking the case against the notebook."""
    by_id = {c.grade_id: c for c in cells}
    for grade_id in case.cells:
        cell = by_id.get(grade_id)
        if cell is None or not cell.is_solution:
            raise CourseError(f"{path}: cases.{case.id} replaces {grade_id!r}, which is not a solution cell of the notebook")
    for grade_id in (*case.fails, *(case.fails_with_variants_off or ())):
        if grade_id not in by_id or not by_id[grade_id].is_test:
            raise CourseError(f"{path}: cases.{case.id} names {grade_id!r}, which is not a test cell of the notebook")
    first = min(by_id[g].index for g in case.cells)
    if not any(c.is_test for c in cells[first:]):
        raise CourseError(f"{path}: cases.{case.id}: no test cell follows the replaced cells")
    return first


# ---- which names a cell reads and writes ------------------------------------------------------

_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef,
           ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
_DYNAMIC_CALLS = frozenset({"exec", "eval", "vars", "locals"})


def _outer_parts(node: ast.AST) -> list[ast.AST]:
    """The parts of a nested scope evaluated where it is written: decorators, defaults, bases,
    a comprehension's first iterable."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        decorators = getattr(node, "decorator_list", [])
        return [*decorators, *node.args.defaults, *(d for d in node.args.kw_defaults if d is not None)]
    if isinstance(node, ast.ClassDef):
        return [*node.decorator_list, *node.bases, *(k.value for k in node.keywords)]
    return [node.generators[0].iter]


def _inner_parts(node: ast.AST) -> list[ast.AST]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return list(node.body)
    if isinstance(node, ast.Lambda):
        return [node.body]
    parts = [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
    for i, generator in enumerate(node.generators):
        parts += [generator.target, *generator.ifs] + ([generator.iter] if i else [])
    return parts


def _own_nodes(roots: list[ast.AST]):
    """The nodes of one scope: nested scopes are yielded, but only their outer parts entered."""
    stack = list(roots)
    while stack:
        node = stack.pop()
        yield node
        stack.extend(_outer_parts(node) if isinstance(node, _SCOPES) else ast.iter_child_nodes(node))


def _root(node: ast.AST) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Starred)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _names_of(nodes, scan) -> tuple[set[str], set[str]]:
    """(names loaded, names bound or changed in place) by the nodes of one scope; ``scan``
    gets every nested scope and every call."""
    loads, binds = set(), set()
    for node in _own_nodes(nodes):
        if isinstance(node, ast.Name):
            (loads if isinstance(node.ctx, ast.Load) else binds).add(node.id)
        elif isinstance(node, (ast.Attribute, ast.Subscript)) and not isinstance(node.ctx, ast.Load):
            binds.add(_root(node) or "")
        elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
            loads.add(node.target.id)
        elif isinstance(node, ast.alias):
            binds.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.ExceptHandler) and node.name:
            binds.add(node.name)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            loads.update(node.names)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            binds.add(node.name)
        if isinstance(node, (ast.Call, ast.Subscript)) and _read_by_name(node):
            loads.add(_read_by_name(node))
        if isinstance(node, (*_SCOPES, ast.Call, ast.alias, ast.Subscript)):
            scan(node)
    binds.discard("")
    return loads, binds


def _free(node: ast.AST) -> tuple[frozenset[str], frozenset[str], bool]:
    """(globals a nested scope reads when it runs, globals it binds with ``global``, dynamic)."""
    inner_reads, inner_writes, declared, dynamic = set(), set(), set(), [False]

    def scan(child):
        if isinstance(child, _SCOPES):
            reads, writes, child_dynamic = _free(child)
            inner_reads.update(reads)
            inner_writes.update(writes)
            dynamic[0] |= child_dynamic
        else:
            dynamic[0] |= _is_dynamic(child)

    for child in _own_nodes(_inner_parts(node)):
        if isinstance(child, ast.Global):
            declared.update(child.names)
    loads, binds = _names_of(_inner_parts(node), scan)
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        a = node.args
        binds |= {x.arg for x in [*a.posonlyargs, *a.args, *a.kwonlyargs, *(v for v in (a.vararg, a.kwarg) if v)]}
    local = binds - declared
    if isinstance(node, ast.ClassDef):  # a class body's names are no scope for its methods
        reads = (loads - local) | inner_reads
    else:
        reads = (loads | inner_reads) - local
    return frozenset(reads), frozenset((declared & binds) | inner_writes), dynamic[0]


_NAMESPACE_WRITES = frozenset({"update", "setdefault", "pop", "popitem", "clear", "__setitem__", "__delitem__"})


def _globals_call(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and getattr(node.func, "id", None) == "globals"


def _is_dynamic(node: ast.AST) -> bool:
    """exec, eval, vars, locals, a star import, or a write through globals() (``globals()[k] = v``,
    ``globals().update(...)``)."""
    if isinstance(node, ast.Call):
        if isinstance(node.func, ast.Attribute):
            return _globals_call(node.func.value) and node.func.attr in _NAMESPACE_WRITES
        return isinstance(node.func, ast.Name) and node.func.id in _DYNAMIC_CALLS
    if isinstance(node, ast.alias):
        return node.name == "*"
    return isinstance(node, ast.Subscript) and not isinstance(node.ctx, ast.Load) and _globals_call(node.value)


def _read_by_name(node: ast.AST) -> str | None:
    """The global a cell reads by its name as a string: ``globals().get("x")``, ``globals()["x"]``."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get":
        target, key = node.func.value, node.args[0] if node.args else None
    elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
        target, key = node.value, node.slice
    else:
        return None
    if _globals_call(target) and isinstance(key, ast.Constant) and isinstance(key.value, str):
        return key.value
    return None


def _scan(source: str) -> _Names | None:
    """The names a cell's source reads and writes (None if it does not parse).

    Statements are read in order: a name bound by an earlier statement of the cell (or by the
    target of the loop or ``with`` around it) is not read from outside by a later one. Names
    bound inside a branch, a loop or a ``try`` count as bound inside it only, so names are
    over-counted, never missed."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    reads, writes, bodies, dynamic = set(), set(), {}, [False]

    def names(nodes, bound) -> set[str]:
        at_definition = set()

        def scan(node):
            if isinstance(node, _SCOPES):
                free, global_writes, scope_dynamic = _free(node)
                dynamic[0] |= scope_dynamic
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    bodies[node.name] = (free, global_writes)
                if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    at_definition.update(free)  # run now: a class body, a lambda or comprehension here
                    writes.update(global_writes)
            else:
                dynamic[0] |= _is_dynamic(node)

        loads, binds = _names_of([n for n in nodes if n is not None], scan)
        reads.update((loads | at_definition) - bound)
        writes.update(binds)
        return binds

    def block(statements, bound: set[str]) -> set[str]:
        for statement in statements:
            if isinstance(statement, (ast.For, ast.AsyncFor)):
                names([statement.iter], bound)
                inside = bound | names([statement.target], bound)
                block(statement.body, inside)
                block(statement.orelse, inside)
            elif isinstance(statement, (ast.With, ast.AsyncWith)):
                items = [part for item in statement.items for part in (item.context_expr, item.optional_vars)]
                bound = block(statement.body, bound | names(items, bound))
            elif isinstance(statement, (ast.If, ast.While)):
                names([statement.test], bound)
                block(statement.body, set(bound))
                block(statement.orelse, set(bound))
            elif isinstance(statement, (ast.Try, getattr(ast, "TryStar", ast.Try))):
                for part in (statement.body, statement.orelse, statement.finalbody):
                    block(part, set(bound))
                for handler in statement.handlers:
                    names([handler.type], bound)
                    block(handler.body, bound | ({handler.name} if handler.name else set()))
                    writes.update({handler.name} if handler.name else set())
            else:
                bound = bound | names([statement], bound)
        return bound

    block(tree.body, set())
    return _Names(frozenset(reads), frozenset(writes), tuple((n, r, w) for n, (r, w) in bodies.items()), dynamic[0],
                  _reseeds(tree.body[0]) if tree.body else False)


def _reseeds(statement: ast.stmt) -> bool:
    """``seed_everything(...)`` (utils/seed.py), alone or assigned: every random generator the
    notebooks use starts again from the course-wide seed, whatever state the cells before left."""
    call = getattr(statement, "value", None) if isinstance(statement, (ast.Expr, ast.Assign)) else None
    if not isinstance(call, ast.Call):
        return False
    func = call.func
    return (func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)) == "seed_everything"


def _through_calls(names: _Names, bodies: dict) -> tuple[set[str], set[str]]:
    """A cell's reads and writes, with those of the notebook's functions and classes it uses."""
    reads, writes, todo = set(names.reads), set(names.writes), list(names.reads)
    while todo:
        body = bodies.get(todo.pop())
        if body is None:
            continue
        writes |= body[1]
        for name in body[0] - reads:
            reads.add(name)
            todo.append(name)
    return reads, writes


class _Unknown(Exception):
    """A value whose contents ``_contents`` cannot read (a figure, an iterator): counted as changed."""


_OWN_MODULE = "__main__"  # functions and classes the notebook defines; any other module counts as a library


def _code(code: types.CodeType) -> tuple:
    consts = tuple(_code(c) if isinstance(c, types.CodeType) else repr(c) for c in code.co_consts)
    return (code.co_code, consts, code.co_names, code.co_varnames)


# id -> the function or class: those the notebook's own cells defined when they ran with the course's
# code (``_Session.run`` without a case's source). Kept alive here, so that no id is reused.
_COURSE_OBJECTS: dict[int, object] = {}


def _is_course_code(value) -> bool:
    """A function or class of the course's code: defined by a cell that ran the course's solution, or
    one of the course's reference versions in ``hidden_tests`` (what a hidden test puts back)."""
    return id(value) in _COURSE_OBJECTS or str(getattr(value, "__module__", "")).startswith("hidden_tests.")


def _course_contents(value, path: tuple):
    """A function or class of the course's code, by its name and what it was made with (a class's
    bases and plain attributes; a function's defaults and closure), not by its code: the solution's
    ``SimpleMLP`` and the ``Reference.SimpleMLP`` a hidden test puts in its place compare equal.
    That they compute the same is proven on the whole notebook by the recorder (``_record``)."""
    if isinstance(value, type):
        plain = sorted((k, _contents(v, path)) for k, v in vars(value).items()
                       if not k.startswith("__") and not callable(v) and not isinstance(v, (staticmethod, classmethod,
                                                                                           property)))
        return ("course", value.__name__, tuple(_contents(b, path) for b in value.__bases__), plain)
    cells = tuple(_contents(c.cell_contents, path) for c in value.__closure__ or ())
    return ("course", value.__name__, _contents(value.__defaults__, path), _contents(value.__kwdefaults__, path), cells)


def _contents(value, path: tuple = ()):
    """The contents of a value as a structure of plain Python values, comparable across processes:
    tensors and arrays by a checksum of their bytes (so ``p.data -= ...`` shows too), the course's
    functions and classes by their names (``_course_contents``), a case's by their code, libraries'
    by their names, other objects by their attributes."""
    import zlib

    if isinstance(value, (int, float, complex, str, bytes, type(None), range, slice)):
        return repr(value)
    if isinstance(value, types.ModuleType):
        return ("module", value.__name__)
    if id(value) in path:  # a cycle (a method's __class__ cell, a parent's child that points back)
        return ("cycle", path.index(id(value)))
    if len(path) > 40:  # deeper than any model or loader: not read
        raise _Unknown
    path = (*path, id(value))
    if isinstance(value, (types.FunctionType, type)) and _is_course_code(value):
        return _course_contents(value, path)
    if isinstance(value, (types.FunctionType, type)) and getattr(value, "__module__", None) == _OWN_MODULE:
        if isinstance(value, type):
            members = sorted((k, _contents(getattr(v, "__func__", v), path)) for k, v in vars(value).items()
                             if k not in ("__dict__", "__weakref__", "__doc__", "__module__"))
            return ("class", value.__qualname__, tuple(_contents(b, path) for b in value.__bases__), members)
        cells = tuple(_contents(c.cell_contents, path) for c in value.__closure__ or ())
        return ("function", _code(value.__code__), _contents(value.__defaults__, path),
                _contents(value.__kwdefaults__, path), cells)
    if isinstance(value, (types.FunctionType, types.BuiltinFunctionType, type)):
        return ("library", getattr(value, "__module__", None), getattr(value, "__qualname__", repr(value)))
    if isinstance(value, types.MethodType):
        return ("method", _contents(value.__self__, path), _contents(value.__func__, path))
    torch, numpy = sys.modules.get("torch"), sys.modules.get("numpy")
    if torch is not None and isinstance(value, torch.Tensor):
        data = value.detach().cpu().contiguous().reshape(-1)
        raw = data.view(torch.uint8) if data.dtype != torch.bool else data.to(torch.uint8)
        grad = _contents(value.grad, path) if value.is_leaf and value.grad is not None else None
        return ("tensor", type(value).__name__, str(value.dtype), tuple(value.shape), str(value.device.type),
                value.requires_grad, zlib.crc32(raw.numpy().data), grad)
    if torch is not None and isinstance(value, (torch.device, torch.dtype)):
        return repr(value)
    if torch is not None and isinstance(value, torch.Generator):
        return ("generator", zlib.crc32(value.get_state().numpy().data))
    if numpy is not None and isinstance(value, numpy.ndarray):
        if value.dtype == object:
            return ("array", [_contents(v, path) for v in value.ravel()])
        data = numpy.ascontiguousarray(value)
        return ("array", str(value.dtype), value.shape, zlib.crc32(data.view(numpy.uint8).ravel().data))
    if numpy is not None and isinstance(value, numpy.generic):
        return repr(value)
    return _contents_of_object(value, path)


def _contents_of_object(value, path: tuple):
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, [_contents(v, path) for v in value])
    if isinstance(value, (set, frozenset)):
        return (type(value).__name__, sorted(repr(_contents(v, path)) for v in value))
    if isinstance(value, dict):
        return (type(value).__name__, [(_contents(k, path), _contents(v, path)) for k, v in value.items()])
    kind = type(value)
    if kind.__module__.startswith("matplotlib") or not hasattr(value, "__dict__"):
        raise _Unknown  # figures are not read in detail; nor are objects without attributes
    return ("object", _contents(kind, path), _contents(vars(value), path))


def _digests(names, namespace: dict) -> dict[str, str | None]:
    """name -> a digest of the contents of its value ("-" if unbound, None if unreadable)."""
    digests, memo = {}, {}
    for name in names:
        if name not in namespace:
            digests[name] = "-"
            continue
        value = namespace[name]
        if id(value) not in memo:
            try:
                memo[id(value)] = hashlib.blake2b(repr(_contents(value)).encode(), digest_size=16).hexdigest()
            except _Unknown:
                memo[id(value)] = None
            except Exception:  # noqa: BLE001 - an object that breaks when read counts as changed
                memo[id(value)] = None
        digests[name] = memo[id(value)]
    return digests


# ---- the process-wide state, the recorder and the imports ----------------------------------------


def _state() -> str:
    """A digest of the process-wide state a later cell may depend on without naming it:
    ``<the rest>.<the random generators>`` (``_same_but_generators`` compares the first part)."""
    import random

    generators = hashlib.blake2b(repr(random.getstate()).encode(), digest_size=16)
    rest = hashlib.blake2b(os.getcwd().encode(), digest_size=16)
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        kind, keys, position, *_ = numpy.random.get_state()
        generators.update(keys.tobytes() + repr(position).encode())
    torch = sys.modules.get("torch")
    if torch is not None:
        rest.update(repr((torch.is_grad_enabled(), torch.is_inference_mode_enabled(), torch.get_default_dtype(),
                          torch.are_deterministic_algorithms_enabled())).encode())
        generators.update(torch.random.get_rng_state().numpy().tobytes())
    return f"{rest.hexdigest()}.{generators.hexdigest()}"


def _same_but_generators(state: str | None, other: str | None) -> bool:
    return state is not None and other is not None and state.split(".")[0] == other.split(".")[0]


@dataclass(frozen=True)
class _Reference:
    """What the recorder saw the reference notebook do (None where it knows nothing)."""

    states: tuple[str | None, ...]  # states[k]: the process-wide state before cell k; states[k + 1]: after it
    contents: tuple[dict, ...] = ()  # contents[k]: name -> digest of its value after cell k (``_digests``)
    modules: tuple[str, ...] = ()  # the modules the notebook imported, in import order
    generators: dict[int, list] = field(default_factory=dict)  # demonstration cell k -> the generators after it

    def contents_after(self, k: int) -> dict:
        return self.contents[k] if k < len(self.contents) else {}


def course_references(assignment: str) -> dict[str, object]:
    """The course's reference versions that hidden tests put in place of a student's failed function
    or class (``hidden_tests/<assignment>.py``, class ``Reference``), by the notebook's names."""
    try:
        module = importlib.import_module(f"hidden_tests.{assignment}")
    except ImportError:
        return {}
    holder = getattr(module, "Reference", None)
    if not isinstance(holder, type):
        return {}
    found = {name: getattr(holder, name) for name in vars(holder) if not name.startswith("_")}
    return {name: value for name, value in found.items() if isinstance(value, (types.FunctionType, type))}


def _put_references(namespace: dict, references: dict[str, object]) -> None:
    """Put each reference version where a cell of the course's code bound the solution's."""
    for name, reference in references.items():
        if name in namespace and id(namespace[name]) in _COURSE_OBJECTS:
            namespace[name] = reference


def _record(session: _Session, cells: list[Cell], timeout: float, demos: frozenset[int] = frozenset(),
            references: dict[str, object] | None = None) -> _Reference:
    """Run the reference notebook in a child: the process-wide state and the contents of every global
    after every cell, the random generators after each demonstration cell (``demos``), and the
    modules it imports. If the run fails, nothing is known (no cell is skipped) and the parent's own
    run reports why.

    The child runs with the course's ``references`` in place of the solutions' functions and classes
    from the cell that defines each on, as a graded notebook has them once a hidden test put them
    back: a case whose hidden test puts one back then compares equal and stops there
    (``_course_contents``). So this run proves what that rests on: every test cell passes with the
    references in place; if one fails, the suite stops with a CourseError that names it."""
    references = references or {}

    def work():
        states, contents, generators, failures = [_state()], [], {}, {}
        for cell in cells:
            failure = session.run(cell)
            if failure and references:
                failures[cell.grade_id] = failure
            _put_references(session.namespace, references)
            states.append(_state())
            contents.append(_digests([n for n in session.namespace if not n.startswith("__")], session.namespace))
            if cell.index in demos:
                generators[cell.index] = _generators()
        return {"states": states, "contents": contents, "modules": list(sys.modules), "generators": generators,
                "failures": failures}

    result = _in_child(work, timeout)
    if result.get("failures"):
        named = "; ".join(f"{cell}: {failure}" for cell, failure in result["failures"].items())
        raise CourseError(f"with the course's reference versions ({', '.join(sorted(references))}: class Reference "
                          f"of hidden_tests) in place of the solutions, the notebook fails in {named}. A hidden test "
                          "puts them in place of a student's failed code, so they must pass every cell as the "
                          "solutions do.")
    if "error" in result:
        return _Reference((None,) * (len(cells) + 1))
    return _Reference(tuple(result["states"]), tuple(result["contents"]), tuple(result["modules"]),
                      {int(k): v for k, v in result["generators"].items()})


def _generators() -> list:
    """The random generators' states (Python's, numpy's global one, torch's CPU one), as JSON."""
    import random

    import numpy
    import torch

    version, python, gauss = random.getstate()
    kind, keys, position, has_gauss, cached = numpy.random.get_state()
    return [[version, list(python), gauss], [kind, keys.tolist(), position, has_gauss, cached],
            torch.random.get_rng_state().tolist()]


def _set_generators(saved: list) -> None:
    """Put the random generators where ``_generators`` found them."""
    import random

    import numpy
    import torch

    (version, python, gauss), (kind, keys, position, has_gauss, cached), state = saved
    random.setstate((version, tuple(python), gauss))
    numpy.random.set_state((kind, numpy.array(keys, dtype=numpy.uint32), position, has_gauss, cached))
    torch.random.set_rng_state(torch.tensor(state, dtype=torch.uint8))


def demonstration_cells(cells: list[Cell], names: list[_Names | None] | None = None) -> frozenset[int]:
    """The demonstration cells (utils/quick.py): provided cells that size a run with ``demo_size``, or
    that read a name a demonstration cell defines (the run sizes, the helpers that show a run). By the
    course's rule no graded cell reads what they make (tests/test_quick_runs.py proves it)."""
    names = [_scan(c.source) for c in cells] if names is None else names
    demos, defined = set(), set()
    for cell, cell_names in zip(cells, names):
        if cell.is_solution or cell.is_test or cell_names is None:
            continue
        reads = set(cell_names.reads).union(*(r for _, r, _ in cell_names.bodies))
        if "demo_size" in reads or reads & defined:
            demos.add(cell.index)
            defined |= cell_names.writes
    return frozenset(demos)


def _warm(modules: tuple[str, ...]) -> None:
    """Import here the libraries the reference imports (not the course's own modules), so that
    the forked cases find them loaded."""
    import random

    libraries = tuple({str(Path(p).resolve()) for p in (sys.prefix, sys.base_prefix)})
    generators = [(random.setstate, random.getstate())]  # some libraries draw random numbers on import
    for library, get, put in (("numpy", "random.get_state", "random.set_state"),
                              ("torch", "random.get_rng_state", "random.set_rng_state")):
        if library in sys.modules:
            module = sys.modules[library]
            getter, setter = (functools.reduce(getattr, path.split("."), module) for path in (get, put))
            generators.append((setter, getter()))
    for name in modules:
        if name in sys.modules or name == "__main__":
            continue
        try:
            spec = importlib.util.find_spec(name)
            if spec is not None and spec.origin and str(Path(spec.origin).resolve()).startswith(libraries):
                importlib.import_module(name)
        except Exception:  # noqa: BLE001 - a module that will not import here is simply not warmed
            continue
    for setter, state in generators:
        setter(state)


# ---- running cells ------------------------------------------------------------------------------


class _Session:
    """Runs cell sources in one namespace the way a kernel would, with nbgrader's failure rule."""

    def __init__(self, workdir: Path):
        self.namespace: dict = {"__name__": "__main__"}
        self.workdir = workdir
        try:
            from IPython.core.inputtransformer2 import TransformerManager

            self._transform = TransformerManager().transform_cell
        except ImportError:  # pragma: no cover - IPython ships with ipykernel
            self._transform = lambda source: source

    def names(self, source: str) -> _Names | None:
        return _scan(self._transform(source))

    def run(self, cell: Cell, source: str | None = None) -> Failure | None:
        """Execute a cell; the first line of its failure, or None if it passed.

        Text on stderr fails a test cell only: nbgrader scores only test cells."""
        course_code = source is None
        source = self._transform(cell.source if source is None else source)
        stderr = io.StringIO()
        before = {name: id(value) for name, value in self.namespace.items()} if course_code else {}
        try:
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                    contextlib.redirect_stderr(stderr):
                warnings.simplefilter("ignore")  # nbgrader_config.py drops warnings on stderr too
                exec(compile(source, f"<{cell.grade_id}>", "exec"), self.namespace)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # a test cell fails on anything it raises, SystemExit included
            lines = traceback.format_exception_only(type(exc), exc)
            message = (lines[-1].strip() if lines else type(exc).__name__)[:500]
            return Failure(message, visible=_raised_by_visible_line(cell, exc))
        finally:
            if course_code:
                self._note_course_objects(source, before)
        if cell.is_test and stderr.getvalue().strip():
            return Failure(f"wrote to stderr: {stderr.getvalue().strip().splitlines()[0][:300]}")
        return None

    def _note_course_objects(self, source: str, before: dict[str, int]) -> None:
        """Remember the functions and classes a cell of the course's code defined (``def``/``class``
        under that name, a new object), for ``_course_contents``."""
        defined = {name for name, _, _ in (_scan(source) or _Names()).bodies}
        for name in defined:
            value = self.namespace.get(name)
            if isinstance(value, (types.FunctionType, type)) and getattr(value, "__module__", None) == _OWN_MODULE \
                    and getattr(value, "__name__", None) == name and before.get(name) != id(value):
                _COURSE_OBJECTS[id(value)] = value


class Failure(str):
    """The first line of a cell's failure; ``visible``: a line of the test cell outside its
    hidden regions raised it (the line a student's own run of the release reaches too)."""

    visible: bool

    def __new__(cls, message: str, visible: bool = False):
        failure = super().__new__(cls, message)
        failure.visible = visible
        return failure


def _raised_by_visible_line(cell: Cell, exc: BaseException) -> bool:
    """Whether the outermost line of ``cell`` in the traceback is a visible line of a test cell."""
    if not cell.is_test:
        return False
    own = [frame for frame in traceback.extract_tb(exc.__traceback__) if frame.filename == f"<{cell.grade_id}>"]
    if not own or own[0].lineno is None:
        return False
    try:
        return own[0].lineno not in region_lines(cell.source, HIDDEN_TESTS)
    except ValueError:  # a malformed hidden region: count it as hidden, never publish it
        return False


def _quiet() -> None:
    """No windows, no browser, no progress bars: figures are built, never shown."""
    import matplotlib

    matplotlib.use("Agg")
    try:
        import plotly.basedatatypes

        plotly.basedatatypes.BaseFigure.show = lambda self, *args, **kwargs: None
    except ImportError:  # pragma: no cover
        pass
    try:
        import torch

        # One thread: faster on shared 2-core machines, and a forked child never inherits
        # a half-used OpenMP thread pool.
        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass


@contextlib.contextmanager
def _environment(variables: dict[str, str]):
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class _Tracker:
    """Which later cells of a case can compute something other than the reference (see "Cost" in
    the module docstring).

    ``names[k]``: what cell k reads and writes, the case's version merged with the reference's
    for a replaced cell (None: it does not parse, so it binds nothing the reference binds)."""

    def __init__(self, case: Case, cells: list[Cell], first: int, names: list[_Names], reference: _Reference,
                 demos: frozenset[int] = frozenset()):
        self.case, self.cells, self.first, self.names, self.reference = case, cells, first, names, reference
        self.demos = demos  # left out after the fork: no graded cell reads what they make
        self.bodies: dict[str, tuple[frozenset[str], frozenset[str]]] = {}
        for cell_names in names[:first]:
            self._define(cell_names)
        everything = dict(self.bodies)
        for cell_names in names[first:]:
            everything.update({n: (r, w) for n, r, w in cell_names.bodies})
        # later_reads[k]: every global a cell after k may read (to skip only cells nobody needs)
        self.later_reads = [set() for _ in cells]
        for k in range(len(cells) - 2, -1, -1):
            later = set() if k + 1 in demos else _through_calls(names[k + 1], everything)[0]
            self.later_reads[k] = self.later_reads[k + 1] | later
        # The test cells of the case's own solution cells always run, even where the case computes
        # what the reference computes: the suite proves those tests on every case.
        self.own_tests = {t.index for g in case.cells for c in cells if c.grade_id == g for t in tests_of(cells, c.index)}
        self.changed: set[str] = set()
        self.everything_changed = False
        self.in_step = True  # the process-wide state equals the reference's
        self.in_step_but_generators = True  # ... apart from the random generators

    def _define(self, cell_names: _Names) -> None:
        self.bodies.update({n: (r, w) for n, r, w in cell_names.bodies})

    def replaced(self, k: int) -> bool:
        return self.cells[k].grade_id in self.case.cells

    def affected(self, k: int) -> bool:
        if self.replaced(k) or k in self.own_tests or self.everything_changed or not self._starts_in_step(k):
            return True
        bodies = {**self.bodies, **{n: (r, w) for n, r, w in self.names[k].bodies}}
        return bool(_through_calls(self.names[k], bodies)[0] & self.changed)

    def settled(self, k: int) -> bool:
        """From cell k on, every cell computes what the reference computes."""
        if not self._starts_in_step(k) or self.everything_changed:
            return False
        bodies = dict(self.bodies)
        for j in range(k, len(self.cells)):
            bodies.update({n: (r, w) for n, r, w in self.names[j].bodies})
            if j in self.demos:
                continue
            if self.replaced(j) or j in self.own_tests or _through_calls(self.names[j], bodies)[0] & self.changed:
                return False
        return True

    def _starts_in_step(self, k: int) -> bool:
        """Cell k runs from the reference's process-wide state: it is in step, or only the random
        generators differ and the cell first sets them from the course-wide seed."""
        return self.in_step or (self.in_step_but_generators and self.names[k].reseeds)

    def skippable(self, k: int) -> bool:
        """An unaffected cell nobody later reads from, which leaves the process-wide state alone."""
        states = self.reference.states
        neutral = states[k] is not None and states[k] == states[k + 1]
        return neutral and not (_through_calls(self.names[k], self.bodies)[1] & self.later_reads[k])

    def after(self, k: int, affected: bool, namespace: dict, ran: bool = True) -> None:
        """Update what may differ from the reference once cell k has run (or been skipped): the names an
        affected cell reads or binds whose values now differ from the reference's after that cell.

        After any cell that ran, every name that differed is compared again: a hidden test puts the
        course's reference versions of earlier exercises into the namespace through ``globals()``,
        which no scan of its source can see; a name back to the reference's value no longer makes
        later cells run."""
        cell_names = self.names[k]
        bodies = {**self.bodies, **{n: (r, w) for n, r, w in cell_names.bodies}}
        reads, writes = _through_calls(cell_names, bodies)
        self._define(cell_names)
        compared = set(self.changed) if ran else set()
        if affected:
            self.everything_changed |= cell_names.dynamic
            compared |= reads | writes
        if compared:
            reference = self.reference.contents_after(k)
            for name, digest in _digests(compared, namespace).items():
                if digest is not None and digest == reference.get(name, "-"):
                    self.changed.discard(name)  # back to the reference's value (a test put a reference back)
                elif affected and name in reads | writes:
                    self.changed.add(name)
        now, then = _state(), self.reference.states[k + 1]
        self.in_step = then is not None and now == then
        self.in_step_but_generators = _same_but_generators(now, then)


def _case_names(session: _Session, case: Case, cells: list[Cell], reference_names: list[_Names | None]) -> list[_Names]:
    names = []
    for cell, own in zip(cells, reference_names):
        own = own or _Names()
        if cell.grade_id in case.cells:
            theirs = session.names(case.cells[cell.grade_id])
            # A case cell that does not parse binds nothing the reference binds: those names differ.
            own = own.merged(theirs) if theirs is not None else _Names(writes=own.writes)
        names.append(own)
    return names


RELEASED_TIMEOUT = 30.0  # seconds for a test cell's visible checks alone (``released``)


def _as_released(session: _Session, cell: Cell) -> str | None:
    """How the test cell fails as students have it, its hidden regions removed (their own run of
    the release reaches its visible checks even where a hidden test fails first): run in a
    forked child before the graded run, so neither sees the other's changes. None if it passes."""
    try:
        if not region_lines(cell.source, HIDDEN_TESTS):
            return None
        source = without_region(cell.source, HIDDEN_TESTS)
    except ValueError:
        return None
    result = _in_child(lambda: {"failure": session.run(cell, source)}, RELEASED_TIMEOUT)
    return result.get("failure")


def _child(session: _Session, case: Case, cells: list[Cell], first: int, names: list[_Names],
           reference: _Reference, skip: bool, released: bool = False) -> dict:
    # The demonstration cells are left out (skip=False runs them): no graded cell reads what they make.
    tracker = _Tracker(case, cells, first, names, reference, frozenset(reference.generators) if skip else frozenset())
    ran, failed, visible, seen_released, executed = [], {}, [], {}, 0
    for k in range(first, len(cells)):
        cell = cells[k]
        if k in tracker.demos:
            _set_generators(reference.generators[k])  # where the reference's run of it left them
            tracker.after(k, False, session.namespace, ran=False)
            continue
        affected = tracker.affected(k)
        if skip and not affected:
            if tracker.settled(k):
                break
            if tracker.skippable(k):
                tracker.after(k, False, session.namespace, ran=False)
                continue
        # As students have it, run before the graded run: a failing hidden test puts the course's
        # reference in the namespace, and the visible checks would then pass.
        as_released = _as_released(session, cell) if released and cell.is_test else None
        failure = session.run(cell, case.cells.get(cell.grade_id))
        executed += 1
        tracker.after(k, affected, session.namespace)
        if cell.is_test:
            ran.append(cell.grade_id)
            if failure:
                failed[cell.grade_id] = failure
                if failure.visible:
                    visible.append(cell.grade_id)
                elif as_released:
                    seen_released[cell.grade_id] = as_released
    return {"ran": ran, "failed": failed, "visible": visible, "released": seen_released, "cells_run": executed}


def _in_child(work, timeout: float) -> dict:
    """``work()`` in a forked child; its JSON result, or {"error": why} (timeout, crash)."""
    import random

    read_end, write_end = os.pipe()
    generator = random.getstate()
    pid = os.fork()
    if pid == 0:  # the child: run, write the result, never return into the parent's code
        os.close(read_end)
        random.setstate(generator)  # Python reseeds `random` in a forked child; the reference did not
        try:
            payload = json.dumps(work())
        except BaseException as exc:  # noqa: BLE001 - anything at all becomes the case's error
            payload = json.dumps({"error": f"the runner failed: {exc!r}"})
        with os.fdopen(write_end, "w") as out:
            out.write(payload)
        os._exit(0)
    os.close(write_end)
    chunks, deadline = [], time.monotonic() + timeout
    with os.fdopen(read_end, "rb") as pipe:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return {"error": f"did not finish within {timeout:.0f} s"}
            ready, _, _ = select.select([pipe], [], [], left)
            if ready:
                chunk = os.read(pipe.fileno(), 1 << 16)
                if not chunk:
                    break
                chunks.append(chunk)
    _, status, usage = os.wait4(pid, 0)
    try:
        result = json.loads(b"".join(chunks))
    except ValueError:
        return {"error": f"the case ended the process (wait status {status}) before it was judged"}
    result["cpu"] = usage.ru_utime + usage.ru_stime
    return result


def _fork(session: _Session, case: Case, cells: list[Cell], first: int, reference_names: list[_Names | None],
          reference: _Reference, timeout: float, skip: bool, released: bool = False) -> Verdict:
    def work():
        names = _case_names(session, case, cells, reference_names)
        return _child(session, case, cells, first, names, reference, skip, released)

    result = _in_child(work, timeout)
    if "error" in result:
        return Verdict(case, error=result["error"])
    return Verdict(case, ran=tuple(result["ran"]), failed=dict(result["failed"]), visible=tuple(result["visible"]),
                   released=dict(result["released"]), cells_run=result["cells_run"], cpu=result["cpu"])


def suite_ids(assignment: str) -> tuple[str, ...]:
    """The student ids the suite runs under: two whose variants differ (utils/variant.py) where
    the assignment has variants and they are on, else one. Chosen from a fixed list with the
    course's salt, so a new salt still gives two different variants."""
    first, cfg = f"{SUITE_ID}-1", settings().variants
    if not variants.applies(assignment, cfg):
        return (first,)
    mine = numbers.compute(assignment, first, cfg.salt, cfg.off).numbers
    second = next(f"{SUITE_ID}-{n}" for n in range(2, 200)
                  if numbers.compute(assignment, f"{SUITE_ID}-{n}", cfg.salt, cfg.off).numbers != mine)
    return first, second


def id_of(case_id: str, ids: tuple[str, ...]) -> str:
    """The id a case runs under: a stable hash of the case's id picks one of ``ids``."""
    return ids[int(hashlib.sha256(case_id.encode()).hexdigest()[:8], 16) % len(ids)]


def run(assignment: str, only: list[str] | None = None, timeout: float = CASE_TIMEOUT,
        skip: bool = True, released: bool = False, variants_off: bool = False,
        cases: list[Case] | None = None) -> list[Verdict]:
    """Judge every case of ``assignment`` (or those whose ids are in ``only``), each through every
    later cell of the notebook; ``skip=False`` runs every later cell even where it cannot differ;
    ``released``: a test cell that fails in a hidden test also runs as students have it (``Verdict.released``).

    Each case runs under one of ``suite_ids`` (``id_of``), as the grader runs a submission under
    its student's id: the reference notebook runs once per id, every case once. ``variants_off``:
    with the assignment's variants off instead (everyone has the default numbers), under one id;
    each case is then judged against ``Case.declared(variants_off=True)``. ``cases``: these instead of
    those of mutations/<assignment>.toml (``sample_cases``, say)."""
    check_assignment(assignment)
    path = spec_path(assignment)
    cases = [c for c in (load(assignment) if cases is None else cases) if not only or c.id in only]
    cells = notebook_cells(assignment)
    firsts = {case.id: _check(case, cells, path) for case in cases}
    cfg = settings().variants
    if variants_off:
        cfg = replace(cfg, off=cfg.off | {assignment})
    ids = (f"{SUITE_ID}-1",) if variants_off else suite_ids(assignment)
    verdicts: dict[str, Verdict] = {}
    for student in ids:
        mine = [c for c in cases if id_of(c.id, ids) == student]
        if mine:
            environment = {**ENVIRONMENT, **cfg.kernel_environment(), numbers.GRADER_ID: student}
            with _environment(environment):
                judged = _run_pass(assignment, mine, cells, firsts, timeout, skip, released, student)
            verdicts.update({k: replace(v, variants_off=variants_off) for k, v in judged.items()})
    return [verdicts[c.id] for c in cases]


def reading_variants(assignment: str, cases: list[Case] | None = None) -> list[Case]:
    """The cases a variant can change: those that replace a cell whose code, or whose test cells,
    read the student's numbers (``VARIANT``) or id (``STUDENT_ID``, which the hidden tests hand
    to utils.variant). The cells after them read what those cells made, and the suite shows that
    every verdict there holds under two variants."""
    cells = notebook_cells(assignment)
    names = {numbers.ID_NAME, "VARIANT"}

    def reads(cell: Cell) -> bool:
        scanned = _scan(cell.source)
        return scanned is None or bool(scanned.reads & names)

    touched = {c.grade_id for c in cells if c.is_solution and (reads(c) or any(reads(t) for t in tests_of(cells, c.index)))}
    return [c for c in (load(assignment) if cases is None else cases) if set(c.cells) & touched]


def _run_pass(assignment: str, cases: list[Case], cells: list[Cell], firsts: dict[str, int], timeout: float,
              skip: bool, released: bool, student: str) -> dict[str, Verdict]:
    """The reference notebook once, forking each of ``cases`` at its first replaced cell."""
    verdicts: dict[str, Verdict] = {}
    with tempfile.TemporaryDirectory(prefix=f"mutations-{assignment}-") as tmp:
        _quiet()
        workdir = Path(tmp) / assignment
        shutil.copytree(SOURCE / assignment, workdir)  # the notebook's data files, in a scratch copy
        previous = Path.cwd()
        os.chdir(workdir)
        try:
            session = _Session(workdir)
            reference_names = [session.names(cell.source) for cell in cells]
            _state()  # numpy seeds its global generator on first use: once here, so every child starts alike
            reference = _record(session, cells, timeout * 2, demonstration_cells(cells, reference_names),
                                course_references(assignment))
            _warm(reference.modules)
            runs: dict[tuple, Verdict] = {}  # cases with the same code are one run, judged once per case
            for cell in cells:
                for case in (c for c in cases if firsts[c.id] == cell.index):
                    code = tuple(sorted(case.cells.items()))
                    if code in runs:
                        verdicts[case.id] = replace(runs[code], case=case, cpu=0.0)
                        continue
                    verdict = _fork(session, case, cells, cell.index, reference_names, reference, timeout, skip,
                                    released)
                    verdicts[case.id] = runs[code] = replace(verdict, student=student)
                failure = session.run(cell)
                if failure:
                    raise CourseError(f"the instructor notebook of {assignment} fails in {cell.grade_id}: {failure} "
                                      f"(run as student id {student!r})")
        finally:
            os.chdir(previous)
    return verdicts


def summary(assignment: str, verdicts: list[Verdict]) -> str:
    correct = [v for v in verdicts if v.case.kind is Kind.CORRECT]
    mistakes = [v for v in verdicts if v.case.kind is Kind.MISTAKE]
    ids = sorted({v.student for v in verdicts if v.student})
    return (f"{assignment:<12} [{len(ids)} student id{'s' if len(ids) != 1 else ''}: {', '.join(ids)}] "
            f"correct variants full marks {sum(v.ok for v in correct)}/{len(correct)}, "
            f"mistakes caught {sum(v.ok for v in mistakes)}/{len(mistakes)}")


def coverage(assignment: str, cases: list[Case] | None = None) -> dict[str, tuple[int, int]]:
    """test cell -> (correct variants that reach it through their own solution cell, mistakes it must catch)."""
    cases = load(assignment) if cases is None else cases
    cells = notebook_cells(assignment)
    by_id = {c.grade_id: c for c in cells}
    counts = {c.grade_id: [0, 0] for c in cells if c.is_test}
    for case in cases:
        if case.kind is Kind.CORRECT:
            targets = {t.grade_id for g in case.cells if g in by_id for t in tests_of(cells, by_id[g].index)}
        else:
            targets = set(case.fails)
        for target in targets & counts.keys():
            counts[target][0 if case.kind is Kind.CORRECT else 1] += 1
    return {k: (v[0], v[1]) for k, v in counts.items()}
