"""Tamper evidence: catch a submission that makes failing tests pass by patching the checks.

Student code runs in the same kernel as the test cells, so it can rebind
``torch.allclose``, the ``utils.checks`` helpers or builtins, replace entries of
``sys.modules``, install IPython input transformers, or silence the reporting of
errors (``sys.excepthook``, ``showtraceback``, stderr). Three layers, each shown
to work by tests/test_sandbox.py and the hostile corpus:

* a static scan of the submission's cells for those patterns (a flag for review,
  never a change of score: a pattern can be innocent);
* a first cell, run before any student code, that captures references to what the
  tests rely on (the kernel's messaging included: a wrapped ``session.send`` can drop
  a test's error) and registers a check that IPython runs right after every test cell,
  in the same execution (no extra cell, no extra round trip: a check cell after each
  test cell used to cost a few tenths of a second each). The check compares the
  references, checks that the course's helper modules were loaded from the course (not
  from a package of the same name the submission wrote next to the notebook), and
  reports what was rebound or replaced as an output of the test cell, tagged with a
  secret token; a test cell that ran without that output had its checks or outputs
  hidden. A last cell runs the check once more and must *fail* with the token (a
  *canary*): an error that does not arrive means errors were hidden;
* test cells that never ran (kernel killed or exited) score zero (course/engine/recording.py);
  when a kernel dies, the capture cell runs again in the fresh one (course/engine/execute.py).

A submission caught by any layer is graded as usual and flagged with the reason.
The injected cells and outputs are removed again before the notebook is recorded.
"""

from __future__ import annotations

import hashlib
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

# The environment the variants are computed from (utils/variant.py), as the grader set it.
VARIANT_ENV = ("COURSE_STUDENT_ID", "COURSE_VARIANT_SALT", "COURSE_VARIANTS_OFF")

PATTERNS = {
    r"COURSE_STUDENT_ID|COURSE_VARIANT": "touches the grader's student id or variant settings",
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
# student code, and again by every check.
SNAPSHOT = '''\
        ip = get_ipython()
        snap = {{("builtins", n): getattr(builtins, n, None) for n in {builtins!r}}}
        snap[("sys", "stderr")] = sys.stderr
        snap[("ip", "showtraceback")] = ip.showtraceback
        snap[("ip", "_showtraceback")] = ip._showtraceback
        snap[("ip", "displayhook")] = ip.displayhook
        snap[("ip", "display_pub")] = ip.display_pub
        snap[("ip", "events")] = ip.events
        session = getattr(getattr(ip, "kernel", None), "session", None)
        snap[("kernel", "session")] = session
        snap[("session", "send")] = getattr(session, "send", None)
        snap[("displayhook", "session")] = getattr(ip.displayhook, "session", None)
        return snap
'''

# The capture cell: the references, the check, and the hook that runs the check after each
# test cell (recognised by a hash of its source) and publishes what it found.
CAPTURE = '''\
def _install_{token}():
    import builtins, hashlib, os, sys, types
    tests = set({tests!r})

    def snapshot():
''' + SNAPSHOT + '''\

    ip = get_ipython()
    refs = snapshot()
    # Which student's variant the tests compute (utils/variant.py): the grader's, never the notebook's.
    environment = {{name: os.environ.get(name) for name in {variant_env!r}}}
    judged = {{}}  # (module, attribute) -> the value already found to be the library's own
    methods = (("ip", "showtraceback"), ("ip", "_showtraceback"), ("session", "send"))  # a new bound method each time

    def check():
        snap = snapshot()
        bad = [".".join(k) for k, v in refs.items() if k not in methods and snap.get(k) is not v]
        bad += ["os.environ[%r]" % name for name, value in environment.items() if os.environ.get(name) != value]
        bad += [".".join(k) for k in methods if getattr(snap[k], "__func__", snap[k]) is not getattr(refs[k], "__func__", refs[k])]
        bad += [name for name, old in lists.items() if name != "meta_path" and [id(x) for x in (getattr(ip, name, None) if name != "post_run_cell" else ip.events.callbacks.get(name)) or []] != [id(x) for x in old]]
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
                if attr.startswith("_") or judged.get((name, attr)) is value:
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
                else:
                    judged[(name, attr)] = value
        return sorted(set(bad))

    def after(result):
        raw = getattr(getattr(result, "info", None), "raw_cell", None) or ""
        if hashlib.sha256(raw.encode()).hexdigest() in tests:
            ip.display_pub.publish({{{mime!r}: {{"token": {token!r}, "tampered": check()}}}}, metadata={{}})

    ip.events.register("post_run_cell", after)
    lists = {{name: list(getattr(ip, name)) for name in ("input_transformers_cleanup", "input_transformers_post", "ast_transformers")}}
    lists["meta_path"] = list(sys.meta_path)
    lists["post_run_cell"] = list(ip.events.callbacks.get("post_run_cell", []))
    return check
_check_{token} = _install_{token}()
del _install_{token}
'''

# The last cell: the check once more, as an error that must arrive (the canary).
CANARY = '''\
_bad_{token} = _check_{token}()
raise AssertionError("{token} " + ("tampered: " + ", ".join(_bad_{token}) if _bad_{token} else "ok"))
'''
MIME = "application/vnd.course.guard+json"


def new_token() -> str:
    return "guard" + secrets.token_hex(8)


def _guard_cell(source: str, n: int):
    return nbformat.v4.new_code_cell(source, id=f"{GUARD_ID}{n}")


def inject(nb, token: str, home: str = str(INSIDE), helpers: tuple[str, ...] = ()) -> None:
    """The capture cell first, the canary last; the capture cell's hook checks after every
    autograded test cell.

    ``home`` is the folder the helper modules ``helpers`` (top-level names) must load
    from. A cell of the submission cannot pose as a guard cell: its id is renamed if it
    starts like one, and its ``rerun_after_restart`` mark (course/engine/execute.py) is dropped.
    """
    tests = tuple(sorted({hashlib.sha256(c.source.encode()).hexdigest() for c in nb.cells if cells.is_test(c)}))
    fields = dict(token=token, variant_env=VARIANT_ENV, builtins=BUILTINS, modules=CHECKED_MODULES, home=str(home),
                  helpers=tuple(helpers), tests=tests, mime=MIME)
    capture = _guard_cell(CAPTURE.format(**fields), 0)
    capture.metadata["course"] = {"rerun_after_restart": True}  # course/engine/execute.py: a fresh kernel needs it too
    for cell in nb.cells:
        if str(cell.get("id", "")).startswith(GUARD_ID):
            cell["id"] = "student-" + str(cell["id"])[:50]
        cells.course_meta(cell).pop("rerun_after_restart", None)
    nb.cells = [capture, *nb.cells, _guard_cell(CANARY.format(token=token), len(nb.cells) + 1)]


def interpret(nb, token: str) -> list[str]:
    """Remove the guard cells and outputs; return why the run looks tampered with (empty if
    it does not)."""
    flags, kept = [], []
    for cell in nb.cells:
        if str(cell.get("id", "")).startswith(GUARD_ID):
            if "raise AssertionError" in cell.source:
                flags += _canary(cell, token)
            continue
        found = [o for o in cell.get("outputs", []) if MIME in o.get("data", {})]
        if found:
            cell.outputs = [o for o in cell.outputs if MIME not in o.get("data", {})]
        if cells.is_test(cell):
            flags += _after_test(cell, found, token)
        kept.append(cell)
    if len(kept) == len(nb.cells):
        flags.append("the grader's check cells are missing from the graded notebook")
    nb.cells = kept
    return list(dict.fromkeys(flags))


def _canary(cell, token: str) -> list[str]:
    if cell.get("execution_count") is None:
        return []  # never ran: the kernel had stopped (reported as such by the caller)
    errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    message = " ".join(str(o.get("evalue", "")) for o in errors)
    if not errors:
        return ["a check that must fail reported no error: errors were hidden or the cell was rewritten"]
    if token not in message:
        return [f"a check cell failed unexpectedly ({errors[0].get('ename', '?')}: {message[:200]})"]
    if "tampered: " in message:
        return ["changed what the tests rely on: " + message.split("tampered: ", 1)[1]]
    return []


def _after_test(cell, found: list, token: str) -> list[str]:
    """What the check after a test cell says (a test cell that ran must carry it)."""
    ran = cell.get("execution_count") is not None
    stopped = any(o.get("output_type") == "error" and o.get("ename") in cells.KERNEL_ERRORS for o in cell.outputs)
    mine = [o["data"][MIME] for o in found if isinstance(o["data"][MIME], dict) and o["data"][MIME].get("token") == token]
    if not mine:
        return [f"the grader's check after test cell '{cells.name(cell)}' reported nothing: its checks or outputs "
                "were hidden"] if ran and not stopped else []
    tampered = sorted({str(t) for report in mine for t in report.get("tampered", [])})
    return ["changed what the tests rely on: " + ", ".join(tampered)] if tampered else []
