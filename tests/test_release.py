"""release/ is what students get: generated from source/, no answers, ready for Colab."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest
from conftest import ROOT, run_course

from course import config
from course.plugins import colab
from utils import variant

RELEASED = [
    pytest.param(nb, id=nb.stem)
    for name in config.assignments()
    for nb in sorted((ROOT / "release" / name).glob("*.ipynb"))
]


def test_release_equals_a_fresh_generation_from_source():
    proc = run_course(ROOT, "check-release", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_assignment_is_released():
    for name in config.assignments():
        sources = {p.name for p in (ROOT / "source" / name).glob("*.ipynb")}
        assert sources == {p.name for p in (ROOT / "release" / name).glob("*.ipynb")}


def test_check_release_reports_drift(course_copy):
    # Edit a released notebook by hand: the check must notice and name the file.
    name = config.assignments()[0]
    released = next((course_copy / "release" / name).glob("*.ipynb"))
    released.write_text(released.read_text().replace("YOUR CODE HERE", "YOUR CODE THERE", 1))
    (course_copy / "release" / name / "stray.txt").write_text("not from source/")
    proc = run_course(course_copy, "check-release", name, check=False)
    assert proc.returncode == 1
    assert f"differs from a fresh generation: {name}/{released.name}" in proc.stdout
    assert f"not generated from source/: {name}/stray.txt" in proc.stdout


@pytest.mark.parametrize("notebook", RELEASED)
def test_release_holds_no_solutions_or_hidden_tests(notebook):
    text = notebook.read_text()
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS", "Model answer"):
        assert marker not in text, f"{notebook.name} contains {marker!r}"


@pytest.mark.parametrize("notebook", RELEASED)
def test_release_opens_with_colab_badge_then_setup_cell(notebook):
    nb = nbformat.read(notebook, as_version=4)
    badge, setup = nb.cells[0], nb.cells[1]
    cfg = config.settings()
    rel = notebook.relative_to(ROOT).as_posix()
    assert badge.cell_type == "markdown"
    assert f"https://colab.research.google.com/github/{cfg.repository}/blob/{cfg.branch}/{rel})" in badge.source
    assert setup.cell_type == "code" and "google.colab" in setup.source
    assert json.dumps(cfg.repository_url) in setup.source
    assert setup.source == colab.setup_source(notebook.parent.name)
    # Collapsed: Colab shows the form title only, JupyterLab hides the source.
    assert setup.metadata["cellView"] == "form" and setup.metadata["jupyter"]["source_hidden"] is True
    assert setup.source.startswith("# @title Setup")
    assert len(setup.source.splitlines()) <= 15, "the setup cell should stay short"
    assert "Restart session and run all" in setup.source  # Colab's own menu words
    # Badge, setup, hand-in text and cell; and the student-id cell where the assignment has variants.
    with_id = notebook.parent.name in variant.DEFAULTS
    assert sum(1 for c in nb.cells if colab.MARKER in c.metadata) == 4 + with_id
    if with_id:
        assert nb.cells[2].source == colab.student_id_cell(notebook.parent.name).source
    text, handin = nb.cells[-2], nb.cells[-1]
    assert text.cell_type == "markdown" and "Hand in" in text.source and f"{notebook.name}" in text.source
    assert "Runtime → Restart session and run all" in text.source
    assert handin.source.endswith(f'hand_in("{notebook.stem}")\n')
    from utils import handin as handin_module  # the cell skips itself under the check's own variable

    assert f'os.environ.get("{handin_module.SKIP_ENV}")' in handin.source
    assert nb.metadata["course"] == {"assignment": notebook.parent.name, "notebook": notebook.stem}


def _local_course_repo(tmp_path: Path, branch: str) -> Path:
    """A git repository standing in for the course's GitHub repository."""
    repo = tmp_path / "origin"
    for part in ("release", "utils"):  # what the published student repository holds
        shutil.copytree(ROOT / part, repo / part, ignore=shutil.ignore_patterns("__pycache__"))
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(repo)]
    subprocess.run(["git", "init", "-q", "-b", branch, str(repo)], check=True)
    subprocess.run(git + ["add", "-A"], check=True)
    subprocess.run(git + ["commit", "-q", "-m", "course"], check=True)
    return repo


def _run_setup(source: str, workdir: Path, on_colab: bool, probe: str = "") -> subprocess.CompletedProcess:
    # Run the cell in a fresh interpreter, as a notebook kernel would, with or without
    # a fake google.colab module, followed by the probe.
    fake = "import sys, types; sys.modules['google.colab'] = types.ModuleType('google.colab')\n"
    program = (fake if on_colab else "") + source + "\n" + probe
    env = {"PATH": "/usr/bin:/bin", "HOME": str(workdir)}
    return subprocess.run([sys.executable, "-I", "-c", program], cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=120)


WHERE_UTILS = "import utils, json; print(json.dumps(utils.__file__))"


@pytest.mark.parametrize("assignment", config.assignments())
def test_setup_cell_on_simulated_colab_fetches_helpers_and_data(assignment, tmp_path):
    cfg = config.settings()
    repo = _local_course_repo(tmp_path, cfg.branch)
    source = colab.setup_source(assignment).replace(json.dumps(cfg.repository_url), json.dumps(repo.as_uri()))
    content = tmp_path / "content"
    content.mkdir()

    first = _run_setup(source, content, on_colab=True, probe=WHERE_UTILS)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("Setup done")
    assert Path(json.loads(first.stdout.splitlines()[-1])).is_relative_to(content / "course-pack")
    data = {p.name for p in (ROOT / "release" / assignment).iterdir() if p.suffix != ".ipynb"}
    assert data <= {p.name for p in content.iterdir()}, "the assignment's data files were not copied"

    again = _run_setup(source, content, on_colab=True)  # running the cell twice is harmless
    assert again.returncode == 0, again.stderr


def test_setup_cell_does_nothing_outside_colab(tmp_path):
    source = colab.setup_source(config.assignments()[0])
    proc = _run_setup(source, tmp_path, on_colab=False, probe="print(any('course-pack' in p for p in sys.path))")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"
    assert list(tmp_path.iterdir()) == [], "nothing may be fetched or copied outside Colab"


def test_colab_url_and_setup_follow_course_settings(tmp_path):
    settings_file = tmp_path / "course.toml"
    settings_file.write_text(textwrap.dedent("""
        [course]
        id = "demo"
        [colab]
        repository = "someone/fork"
        branch = "spring"
    """))
    cfg = config.settings(settings_file)
    assert colab.colab_url("a1", "nb", cfg) == (
        "https://colab.research.google.com/github/someone/fork/blob/spring/release/a1/nb.ipynb")
    source = colab.setup_source("a1", cfg)
    assert '"--branch", "spring"' in source and '"https://github.com/someone/fork.git"' in source
    compile(source, "setup", "exec")  # valid Python


def test_failed_clone_says_what_to_do(tmp_path):
    # A repository that does not exist: the student reads one sentence, not a CalledProcessError.
    cfg = config.settings()
    source = colab.setup_source("autodiff").replace(json.dumps(cfg.repository_url),
                                                      json.dumps((tmp_path / "nowhere").as_uri()))
    (tmp_path / "content").mkdir()
    proc = _run_setup(source, tmp_path / "content", on_colab=True)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("RuntimeError: Could not download the course files")
    assert last.endswith("Runtime → Restart session and run all.")
    assert "CalledProcessError" not in proc.stderr


def test_failed_install_says_what_to_do(monkeypatch):
    from utils import colab_setup

    monkeypatch.setattr(colab_setup.subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(
        a, 1, "", "ERROR: No matching distribution found for nosuchpkg"))
    with pytest.raises(colab_setup.SetupError) as info:
        colab_setup.install_missing({"no_such_module_here": "nosuchpkg"})
    message = str(info.value)
    assert "could not install nosuchpkg" in message and "No matching distribution" in message
    assert colab_setup.RESTART in message
    assert info.value._render_traceback_() == [f"Setup failed: {message}"]
