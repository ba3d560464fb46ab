"""Build the student-facing tree: what the public repository holds.

``python -m course publish DEST`` writes into DEST:

* ``release/`` (the student versions and their data, same paths as here, so the
  Colab badges, which name ``release/<assignment>/<notebook>.ipynb``, resolve in it);
* the helper modules the notebooks import (course/config.py ``published_helpers()``:
  HELPERS minus ``hidden_tests``);
* ``course.toml`` with the ``[variants]`` table only (the salt and switches students' notebooks read),
  ``requirements.txt`` (the pins), a student ``README.md``, a ``Makefile`` whose
  ``make lab`` opens JupyterLab for students, and a ``.gitignore`` for their work.

The instructor repository stays private (it holds source/ with the solutions,
hidden_tests/, samples/); DEST is pushed as the public repository that course.toml's
``[colab] repository`` names.

Threat: a solution, hidden test or model answer reaching students. Only the paths
above are copied, and before anything is written the copy is scanned: no nbgrader
delimiter, no "Model answer", and no line of a solution region, hidden-test region,
written-answer cell of source/ or of hidden_tests/ may appear in any published file.
Publishing refuses on a hit and writes nothing.

DEST may be new, empty, a clone of the public repository (its ``.git`` is kept) or
an earlier publication: files of an earlier publication (listed in MANIFEST) are
replaced, any other file there makes publishing refuse, so nothing is lost.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import nbformat

from .. import cells
from ..config import RELEASE, ROOT, SOURCE, CourseError, assignments, published_helpers, settings
from ..plugins.colab import BADGE_IMAGE, colab_url

MANIFEST = ".published-files.json"
STUDENT_FILES = Path(__file__).resolve().parent / "student_tree"
KEEP = {".git"}  # never touched in DEST
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints")

# Text that only instructor material contains.
MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS", "Model answer")
# Lines of published helpers shorter than this are idioms, not test logic (see secret_lines).
MAX_IDIOM = 40


def secret_lines(source_dir: Path = SOURCE, hidden_dir: Path = ROOT / "hidden_tests",
                 public_code: list[Path] | None = None) -> dict[str, str]:
    """Stripped line -> where it comes from, for every line students must never see.

    A line of a solution or hidden region that is also public elsewhere (provided code or a
    visible test in an instructor notebook, a published helper such as utils/rosenbrock.py)
    is not secret. Every line of hidden_tests/ is, unless the notebooks or a published
    helper show it openly.
    """
    secret, public = {}, set()
    for path in sorted(source_dir.glob("*/*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            where = f"{path.relative_to(source_dir.parent)} ({cells.name(cell)})"
            hidden, shown = [], cell.source.splitlines()
            if cells.is_written_answer(cell):
                hidden, shown = shown, []
            elif cells.is_solution(cell):
                hidden, shown = cells.split_region(cell.source, cells.SOLUTION)
            elif cells.is_grade(cell):
                hidden, shown = cells.split_region(cell.source, cells.HIDDEN_TESTS)
            secret.update({line.strip(): where for line in hidden})
            public |= {line.strip() for line in shown}
    helpers = published_helpers() if public_code is None else public_code
    in_helpers = set()
    for path in [p for h in helpers for p in ([h] if h.is_file() else sorted(h.rglob("*.py")))]:
        in_helpers |= {line.strip() for line in path.read_text().splitlines()}
    secret = {line: where for line, where in secret.items() if line not in in_helpers}
    for path in sorted(hidden_dir.rglob("*.py")) if hidden_dir.is_dir() else []:
        where = str(path.relative_to(hidden_dir.parent))
        secret.update({line.strip(): where for line in path.read_text().splitlines()})
    # An import, a decorator or a short idiom ("legend = ax.get_legend()") that a published
    # helper holds too is no test logic; a longer line copied into a helper is a leak.
    idioms = {line for line in in_helpers if len(line) < MAX_IDIOM or line.startswith(("import ", "from ", "@"))}
    return {line: where for line, where in secret.items()
            if len(line) >= cells.MIN_SECRET_LINE and line not in public and line not in idioms}


def _text(path: Path) -> str | None:
    try:
        return path.read_text()
    except UnicodeDecodeError:  # data files (tensors): nothing a person wrote
        return None


def leaks(tree: Path, secrets: dict[str, str] | None = None) -> list[str]:
    """Every marker or secret line found in the files under ``tree`` (empty: clean)."""
    secrets = secret_lines() if secrets is None else secrets
    found = []
    for path in sorted(p for p in tree.rglob("*") if p.is_file() and ".git" not in p.relative_to(tree).parts):
        text = _text(path)
        if text is None:
            continue
        if path.suffix == ".ipynb":  # judge what a notebook shows (sources, outputs), not its JSON escaping
            nb = nbformat.reads(text, as_version=4)
            shown = [cell.source for cell in nb.cells]
            for output in (o for cell in nb.cells for o in cell.get("outputs", [])):
                shown += [output.get("text", ""), output.get("data", {}).get("text/plain", "")]
            text = "\n".join(t if isinstance(t, str) else "".join(t) for t in shown)
        name = path.relative_to(tree)
        found += [f"{name}: contains {marker!r}" for marker in MARKERS if marker in text]
        for line in text.splitlines():
            if line.strip() in secrets:
                found.append(f"{name}: contains a line of {secrets[line.strip()]}: {line.strip()[:60]!r}")
    return found


def student_readme() -> str:
    cfg = settings()
    rows = []
    for name in assignments():
        for nb in sorted((RELEASE / name).glob("*.ipynb")):
            rows.append(f"| `{name}` | [![Open In Colab]({BADGE_IMAGE})]({colab_url(name, nb.stem, cfg)}) "
                        f"| `release/{name}/{nb.name}` |")
    template = (STUDENT_FILES / "README.md").read_text()
    return template.format(course=cfg.course_id, repository=cfg.repository, branch=cfg.branch,
                           assignments="\n".join(rows))


def student_settings() -> str:
    """The students' course.toml: only what their notebooks read, the [variants] table
    (utils/variant.py computes each student's numbers from its salt)."""
    cfg = settings().variants
    off = ", ".join(json.dumps(a) for a in sorted(cfg.off))
    return ("# What the notebooks read from the course's settings (written by `python -m course publish`).\n"
            "# Some exercises use numbers of your own, computed from your student id and this salt.\n"
            f"[variants]\nsalt = {json.dumps(cfg.salt)}\noff = [{off}]\n")


def _build(tree: Path) -> list[str]:
    """Write the student tree into the empty folder ``tree``; return its top-level names."""
    names = ["release", "README.md", "Makefile", ".gitignore", "requirements.txt", "course.toml"]
    shutil.copytree(RELEASE, tree / "release", ignore=IGNORED)
    for helper in published_helpers():
        names.append(helper.name)
        if helper.is_dir():
            shutil.copytree(helper, tree / helper.name, ignore=IGNORED)
        else:
            shutil.copy2(helper, tree / helper.name)
    shutil.copy2(ROOT / "requirements.txt", tree / "requirements.txt")
    (tree / "course.toml").write_text(student_settings())
    shutil.copy2(STUDENT_FILES / "Makefile", tree / "Makefile")
    shutil.copy2(STUDENT_FILES / "gitignore", tree / ".gitignore")
    (tree / "README.md").write_text(student_readme())
    return sorted(names)


def _clear_previous(dest: Path) -> None:
    """Remove an earlier publication from DEST; refuse if DEST holds anything else."""
    if not dest.exists():
        return
    if not dest.is_dir():
        raise CourseError(f"{dest} is a file; give a folder to publish into")
    previous = set(json.loads((dest / MANIFEST).read_text())) if (dest / MANIFEST).exists() else set()
    foreign = sorted(p.name for p in dest.iterdir() if p.name not in KEEP | previous | {MANIFEST})
    if foreign:
        raise CourseError(
            f"{dest} holds {', '.join(foreign)}, which an earlier `course publish` did not write. "
            "Publish into a new folder, an empty one, or a clone of the student repository; "
            "move those files away first if they belong there."
        )
    for name in previous:
        path = dest / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()


def publish(dest: Path) -> list[str]:
    """Build the student tree into ``dest``; return its top-level names."""
    dest = Path(dest).resolve()
    if dest == ROOT or ROOT in dest.parents:
        raise CourseError(f"{dest} is inside the instructor repository; publish into a folder outside it")
    missing = [name for name in assignments() if not any((RELEASE / name).glob("*.ipynb"))]
    if missing:
        raise CourseError(f"release/ lacks {', '.join(missing)}: run `python -m course release` first")
    with tempfile.TemporaryDirectory(prefix="publish-") as scratch:
        tree = Path(scratch) / "tree"
        tree.mkdir()
        names = _build(tree)
        found = leaks(tree)
        if found:
            raise CourseError("refusing to publish; instructor material would reach students:\n  "
                              + "\n  ".join(found[:20]))
        _clear_previous(dest)
        dest.mkdir(parents=True, exist_ok=True)
        for name in names:
            shutil.move(str(tree / name), str(dest / name))
    (dest / MANIFEST).write_text(json.dumps(names, indent=1) + "\n")
    return names
