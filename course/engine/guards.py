"""Tamper evidence: catch a submission that makes failing tests pass by patching the checks.

Student code runs in the same kernel as the test cells, so it can rebind
``torch.allclose``, the ``utils.checks`` helpers or builtins, replace entries of
``sys.modules``, install IPython input transformers, or silence the reporting of
errors (``sys.excepthook``, ``showtraceback``, stderr). Three layers, each shown
to work by tests/test_guards.py and the hostile corpus:

* a static scan of the submission's cells for those patterns (a flag for review,
  never a change of score: a pattern can be innocent);
* a first cell, run before any student code, that captures references to what the
  tests rely on (the kernel's messaging included: a wrapped ``session.send`` can drop
  a test's error); after every test cell, a check cell compares them, checks that the
  course's helper modules were loaded from the course (not from a package of the same
  name the submission wrote next to the notebook) and raises an error that names
  anything rebound or replaced; these *canaries* must fail with a secret token: a
  check cell whose error is missing means errors were hidden;
* test cells that never ran (kernel killed or exited) score zero (course/gradebook.py);
  when a kernel dies, the capture cell runs again in the fresh one (course/execute.py).

A submission caught by any layer is graded as usual and flagged with the reason.
The injected cells are removed again before the notebook is recorded.
"""

from __future__ import annotations

import re
import secrets

import nbformat

from .. import cells
from .sandbox import INSIDE

GUARD_ID = "course-guard-"
# Functions the tests rely on: (module, attribute). Modules not yet imported when the
# first cell runs are checked by where their functions were defined instead.
BUILTINS = ("print", "open", "isinstance", "len", "sum", "abs", "all", "any", "float", "int", "round",
            "AssertionError", "Exception", "__import__", "exec", "eval", "compile", "getattr", "hasattr")
CHECKED_MODULES = ("torch", "torch.testing", "numpy", "numpy.testing", "math", "utils", "utils.checks",
                   "hidden_tests", "unittest")

PATTERNS = {
    r"\bsys\.modules\b": "changes sys.modules",
    r"__builtins__|\bimport builtins\b|\bbuiltins\.\w+\s*=": "touches builtins",
    r"input_transformers|ast_transformers|register_magic|\.events\.register": "hooks into IPython",
    # The kernel's messaging: a wrapped ``session.send`` can drop a failing test's error.
    r"\.kernel\b|\.session\b|\bdisplay_pub\b|\bdisplayhook\b|\biopub": "hooks into IPython",
    r"showtraceback|excepthook|_showtraceback|set_custom_exc": "changes how errors are reported",
    r"\bsys\.(stderr|stdout|__stderr__)\s*=|redirect_stderr": "redirects stderr/stdout",
    r"\b(torch|np|numpy|math|utils|checks|hidden_tests)(\.\w+)+\s*=(?!=)": "rebinds a library function",
    r"\bsetattr\s*\(\s*(torch|np|numpy|math|utils|builtins|sys)\b": "rebinds a library function",
    r"\bos\._exit\b|\bos\.kill\b|\bsignal\.|\bsys\.exit\b|\bexit\(\)|\bquit\(\)": "exits or kills the kernel",
    r"\bsys\.meta_path\b|\bsys\.path_hooks\b|\bimportlib\.machinery\b": "installs an import hook",
    r"\bgc\.get_objects\b|\bctypes\b|\binspect\.getsource\b|_ih\b|\bIn\[": "reads the grader's code",
    r"\batexit\b|\bsetsid\b|\bnohup\b|\bdaemon\b|os\.fork\b": "leaves a process or hook behind",
    r"\bsocket\b|\burllib\b|\brequests\.|\bhttp\.client\b": "uses the network",
    # The grader's references are importable in the kernel while it grades (the test cells
    # import them): student code has no business there.
    r"hidden_tests|hidden['\"]\s*\+?\s*['\"]_?tests": "touches the grader's hidden tests",
}


def static_scan(nb, provided: set[str] = frozenset()) -> list[str]:
    """Reasons to review: patterns of tampering in the cells the student wrote or changed
    (``provided``: sources of the course's own cells: released code, and the locked cells
    put back from source/, whose hidden tests import ``hidden_tests``)."""
    found = []
    for cell in nb.cells:
        if cell.cell_type != "code" or cell.source.strip() in provided:
            continue
        for pattern, reason in PATTERNS.items():
            match = re.search(pattern, cell.source)
            if match:
                found.append(f"{reason} in cell '{cells.name(cell)}' ({match.group(0).strip()})")
    return found


# What the tests rely on, as (owner, name) -> object: taken by the capture cell before any
# student code, and again by every check cell (the body of both functions below).
SNAPSHOT = '''\
    ip = get_ipython()
    snap = {{("builtins", n): getattr(builtins, n, None) for n in {builtins!r}}}
    snap[("sys", "stderr")] = sys.stderr
    snap[("ip", "showtraceback")] = ip.showtraceback
    snap[("ip", "_showtraceback")] = ip._showtraceback
    snap[("ip", "displayhook")] = ip.displayhook
    snap[("ip", "display_pub")] = ip.display_pub
    session = getattr(getattr(ip, "kernel", None), "session", None)
    snap[("kernel", "session")] = session
    snap[("session", "send")] = getattr(session, "send", None)
    snap[("displayhook", "session")] = getattr(ip.displayhook, "session", None)
'''

CAPTURE = '''\
def _capture_{token}():
    import builtins, sys
''' + SNAPSHOT + '''\
    lists = {{name: list(getattr(ip, name)) for name in ("input_transformers_cleanup", "input_transformers_post", "ast_transformers")}}
    lists["meta_path"] = list(sys.meta_path)
    return snap, lists
_refs_{token} = _capture_{token}()
del _capture_{token}
'''

CHECK = '''\
def _check_{token}():
    import builtins, os, sys, types
    refs, lists = _refs_{token}
''' + SNAPSHOT + '''\
    methods = (("ip", "showtraceback"), ("ip", "_showtraceback"), ("session", "send"))  # a new bound method each time
    bad = [".".join(k) for k, v in refs.items() if k not in methods and snap.get(k) is not v]
    bad += [".".join(k) for k in methods if getattr(snap[k], "__func__", snap[k]) is not getattr(refs[k], "__func__", refs[k])]
    bad += [name for name, old in lists.items() if name != "meta_path" and [id(x) for x in getattr(ip, name, None) or []] != [id(x) for x in old]]
    # Libraries add import finders of their own (torch does); a finder defined in the notebook is not theirs.
    bad += ["sys.meta_path" for f in sys.meta_path if f not in lists["meta_path"] and getattr(f if isinstance(f, type) else type(f), "__module__", "") == "__main__"]
    # The course's helpers load from the course, libraries from the Python environment: the
    # notebook's folder comes before site-packages on a kernel's sys.path, so a numpy/ or a
    # utils/ written there (and put first) would replace the checks with its own.
    prefixes = tuple(sorted({{os.path.join(p, "") for base in (sys.prefix, sys.base_prefix)
                             for p in (base, os.path.realpath(base))}}))
    for name in sorted(set({helpers!r}) | set({modules!r})):
        module = sys.modules.get(name)
        if module is None:
            continue
        if not getattr(module, "__file__", None) or not isinstance(module, types.ModuleType):
            bad.append("sys.modules[%r]" % name)
            continue
        where, top = os.path.abspath(module.__file__), name.split(".")[0]
        if top in {helpers!r}:
            loaded_right = where.startswith(os.path.join({home!r}, top) + os.sep) or where == os.path.join({home!r}, top + ".py")
        else:
            loaded_right = where.startswith(prefixes)
        if not loaded_right:
            bad.append("%s (loaded from %s)" % (name, where))
            continue
        if name not in {modules!r}:
            continue
        top_module = sys.modules.get(top)
        root = os.path.dirname(getattr(top_module, "__file__", None) or where) + os.sep
        for attr, value in list(vars(module).items()):
            if attr.startswith("_"):
                continue
            try:  # some objects (torch.classes, torch.ops) raise on any attribute
                if isinstance(value, types.ModuleType):
                    continue
                code = getattr(getattr(value, "__func__", value), "__code__", None)
                filename = code.co_filename if isinstance(code, types.CodeType) else None
            except Exception:
                continue
            if filename is not None and not filename.startswith((root, sys.prefix, sys.base_prefix)):
                bad.append("%s.%s" % (name, attr))
    raise AssertionError("{token} " + ("tampered: " + ", ".join(sorted(set(bad))) if bad else "ok"))
_check_{token}()
'''


def new_token() -> str:
    return "guard" + secrets.token_hex(8)


def _guard_cell(source: str, n: int):
    return nbformat.v4.new_code_cell(source, id=f"{GUARD_ID}{n}")


def inject(nb, token: str, home: str = str(INSIDE), helpers: tuple[str, ...] = ()) -> None:
    """A capture cell first, a check cell after every autograded test cell and at the end.

    ``home`` is the folder the helper modules ``helpers`` (top-level names) must load
    from. A cell of the submission cannot pose as a guard cell: its id is renamed if it
    starts like one, and its ``rerun_after_restart`` mark (course/execute.py) is dropped.
    """
    fields = dict(token=token, builtins=BUILTINS, modules=CHECKED_MODULES, home=str(home), helpers=tuple(helpers))
    capture = _guard_cell(CAPTURE.format(**fields), 0)
    capture.metadata["course"] = {"rerun_after_restart": True}  # course/execute.py: a fresh kernel needs it too
    out = [capture]
    for cell in nb.cells:
        if str(cell.get("id", "")).startswith(GUARD_ID):
            cell["id"] = "student-" + str(cell["id"])[:50]
        cells.course_meta(cell).pop("rerun_after_restart", None)
        out.append(cell)
        if cells.is_test(cell):
            out.append(_guard_cell(CHECK.format(**fields), len(out)))
    out.append(_guard_cell(CHECK.format(**fields), len(out)))
    nb.cells = out


def interpret(nb, token: str) -> list[str]:
    """Remove the guard cells; return why the run looks tampered with (empty if it does not)."""
    flags, kept, seen_check = [], [], False
    for cell in nb.cells:
        if not str(cell.get("id", "")).startswith(GUARD_ID):
            kept.append(cell)
            continue
        if "_check_" not in cell.source:
            continue
        seen_check = True
        if cell.get("execution_count") is None:
            continue  # never ran: the kernel had stopped (reported as such by the caller)
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        message = " ".join(str(o.get("evalue", "")) for o in errors)
        if not errors:
            flags.append("a check that must fail reported no error: errors were hidden or the cell was rewritten")
        elif token not in message:
            flags.append(f"a check cell failed unexpectedly ({errors[0].get('ename', '?')}: {message[:200]})")
        elif "tampered: " in message:
            flags.append("changed what the tests rely on: " + message.split("tampered: ", 1)[1])
    if not seen_check:
        flags.append("the grader's check cells are missing from the graded notebook")
    nb.cells = kept
    return list(dict.fromkeys(flags))
