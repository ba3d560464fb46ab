"""The worker's first steps: check a submission, and prepare what its sandboxed run gets.

1. *check*: the submission folder and its notebooks must be real files (no symbolic links),
   readable, valid notebooks of a sane size; otherwise a clear error and nothing runs;
2. *prepare* each notebook, in memory: nbgrader cell metadata an editor stripped is put back
   by matching the release (course/engine/repair.py), copies of graded cells lose theirs,
   outputs are cleared, and every cell the course registered (tests, provided code) gets its
   source, type and points from ``source/`` back, so a submission can neither edit nor drop
   a check; then the tamper guards are added (course/engine/guards.py);

What it does not do: anything with the gradebook. The registered cells come from
``source/``, which the gradebook was generated from (course/engine/plan.py registers the
assignment again whenever source/ changes); the parent, the gradebook's single writer,
puts them back once more from the gradebook when it records the result.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from .. import cells, variants
from ..config import HELPERS, Layout, VariantSettings
from . import guards, repair
from .jobs import Job

def check_notebooks(folder: Path, expected: set[str] | None = None, shown: str | None = None) -> str | None:
    """Why the submission cannot be graded, or None if every notebook reads and validates.

    ``expected`` are the notebook file names of the assignment: a submission with none of
    them (a renamed "Copy of ..." say) is reported rather than silently scored 0. ``shown``
    is how messages name the folder.
    """
    shown = shown or str(folder)
    notebooks = sorted(folder.glob("*.ipynb"))
    if not notebooks:
        return f"{shown} holds no notebook"
    if expected and not expected & {p.name for p in notebooks}:
        return (f"{shown} has {', '.join(p.name for p in notebooks)} but not "
                f"{', '.join(sorted(expected))}: rename the notebook to grade it")
    for path in notebooks:
        try:
            nb = nbformat.read(path, as_version=4)
        except Exception as exc:  # nbformat raises JSON, Unicode and version errors
            return f"{shown}/{path.name} is not a valid notebook (not valid JSON, or not a notebook): {exc}"
        try:
            nbformat.validate(nb)
        except nbformat.ValidationError as exc:
            return f"{shown}/{path.name} is not a valid notebook: {exc.message}"
    return None


def check_submission(folder: Path, expected: set[str], max_mb: int) -> str | None:
    """Why the submission cannot be graded, or None. Nothing is followed through a link:
    a submission folder or notebook that is a symbolic link could point at another
    student's work or an instructor's file."""
    shown = f"submitted/{folder.parent.name}/{folder.name}"
    for path, name in ((folder.parent, f"submitted/{folder.parent.name}"), (folder, shown)):
        if path.is_symlink():
            return f"{name} is a symbolic link (to {_shown_target(path, folder.parent.parent.parent)}), not a " \
                   "folder: not graded"
    links = sorted(p.name for p in folder.iterdir() if p.is_symlink())
    if links:
        return f"{shown} holds symbolic links ({', '.join(links)}): submit the files themselves"
    for path in sorted(folder.glob("*.ipynb")):
        if not path.is_file():
            return f"{shown}/{path.name} is not a regular file"
        size = path.stat().st_size
        if max_mb and size > max_mb * 1024 * 1024:
            return (f"{shown}/{path.name} is {size / 2**20:.0f} MiB, over the {max_mb} MiB limit "
                    "(course.toml [grading] max_notebook_mb): clear its outputs and submit again")
    return check_notebooks(folder, expected, shown)


def _shown_target(link: Path, root: Path) -> str:
    """Where a link points, named from the course root when it points inside the course (no
    host path in a report)."""
    target = Path(os.path.normpath(link.parent / os.readlink(link)))
    try:
        return str(target.relative_to(root))
    except ValueError:
        return "outside the course"


@dataclass
class Prepared:
    """What the sandboxed run gets, and what preparing it found."""

    notebooks: dict[str, str] = field(default_factory=dict)  # name -> prepared notebook (JSON text)
    notes: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    token: str = field(default_factory=guards.new_token)


def prepare(job: Job, home: str) -> Prepared:
    """The notebooks of ``job``'s submission, prepared to run; ``home`` is where the helper
    modules appear to the kernel (the sandbox's /course, or the scratch folder)."""
    layout = Layout(Path(job.root))
    submission = layout.submission(job.student, job.assignment)
    prepared = Prepared()
    wanted = {f"{name}.ipynb" for name in job.notebooks}
    others = sorted(e.name + ("/" if e.is_dir() else "") for e in submission.iterdir()
                    if e.name not in wanted | {"timestamp.txt"} and not e.name.startswith("."))
    if others:
        # Only the notebooks are graded: any other file handed in would land next to the
        # notebook, first on the kernel's sys.path, where a package named like a helper
        # (utils/, hidden_tests/) would replace the checks.
        shown = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
        prepared.notes.append(f"only the notebook was graded; other files handed in were left out: {shown}")
    for name in job.notebooks:
        path = submission / f"{name}.ipynb"
        if path.is_file() and not path.is_symlink():
            nb = nbformat.read(path, as_version=4)
            # Read from the file as handed in, before anything runs (course/variants.py).
            prepared.flags += variants.check(nb, job.student, job.assignment,
                                             VariantSettings.from_kernel_environment(job.variants))
            _prepare_notebook(nb, name, layout, job.assignment, prepared)
            guards.inject(nb, prepared.token, home, tuple(Path(h).stem for h in HELPERS))
            prepared.notebooks[name] = json.dumps(nb)  # the runner reads it with nbformat
    return prepared


def _prepare_notebook(nb, name: str, layout: Layout, assignment: str, prepared: Prepared) -> None:
    release = layout.release / assignment / f"{name}.ipynb"
    provided, missing = set(), []
    if release.exists():
        released = nbformat.read(release, as_version=4)
        provided = {c.source.strip() for c in released.cells if c.cell_type == "code"}
        restored, missing = repair.restore_metadata(nb, released)
        if variants.put_back_id_cell(nb, released):
            prepared.notes.append(f"{name}.ipynb lacked its student-id cell: put back from the assignment (the "
                                  "grader uses the id of the student who handed it in)")
        if restored:
            prepared.notes.append(f"{name}.ipynb had lost nbgrader's cell metadata (Colab or another editor): "
                                  f"{len(restored)} cell(s) matched to the assignment by id, content or position")
    copies = repair.deduplicate(nb)
    if copies:
        prepared.notes.append(f"{name}.ipynb has copies of the cells {', '.join(copies)}: only the first of each "
                              "counts")
    source = layout.source / assignment / f"{name}.ipynb"
    if source.exists():
        source_nb = nbformat.read(source, as_version=4)
        back = repair.put_back(nb, source_nb)
        if back:
            prepared.notes.append(f"{name}.ipynb lacked the cells {', '.join(back)}: put back from the assignment "
                                  "at their place and run, so the answers are graded as usual")
        missing = [gid for gid in missing if gid not in back]
        repair.overwrite_registered(nb, source_nb)
        provided |= {c.source.strip() for c in source_nb.cells if cells.is_locked(c)}  # now the instructor's
    if missing:
        prepared.notes.append(f"{name}.ipynb lacks the cells {', '.join(missing)}: they score zero")
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    prepared.flags += guards.static_scan(nb, provided)
