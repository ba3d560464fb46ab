"""The published student tree: what it holds, what it never holds, and that it works on Colab.

Canaries (unique strings) are planted in every kind of instructor-only material of a course
copy: a solution region, a hidden-test region, a written answer's model answer and a module
of hidden_tests/. None may reach the published tree.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
from conftest import COURSE_PARTS, copy_course, run_course

from course import cells as nbcells
from course import config
from utils import variant

CANARIES = {
    "solution": "canary_solution_7f3a = 1",
    "hidden": "canary_hidden_9c2b = 1",
    "answer": "Model answer: canary_answer_5d1e",
    "module": "CANARY_HIDDEN_MODULE_3e8f = 'hidden test code'",
}
CANARY = re.compile(r"(?:canary|CANARY)_\w+")
STUDENT_TOP = {"release", "utils", "plot_loss.py", "loss_landscape", "convert_net.py", "README.md", "Makefile", ".gitignore", "requirements.txt",
               "course.toml",
               ".published-files.json"}


def _plant(course: Path) -> None:
    path = course / "source" / "autodiff" / "autodiff.ipynb"
    nb = nbformat.read(path, as_version=4)
    planted = set()
    for cell in nb.cells:
        if "solution" not in planted and nbcells.is_solution(cell) and "### END SOLUTION" in cell.source:
            cell.source = cell.source.replace("### END SOLUTION", CANARIES["solution"] + "\n### END SOLUTION", 1)
            planted.add("solution")
        elif "hidden" not in planted and "### END HIDDEN TESTS" in cell.source:
            cell.source = cell.source.replace("### END HIDDEN TESTS", CANARIES["hidden"] + "\n### END HIDDEN TESTS", 1)
            planted.add("hidden")
        elif "answer" not in planted and nbcells.is_written_answer(cell):
            cell.source += "\n\n" + CANARIES["answer"]
            planted.add("answer")
    nbformat.write(nb, path)
    (course / "hidden_tests" / "canary.py").write_text(CANARIES["module"] + "\n")
    assert planted == {"solution", "hidden", "answer"}, f"could not plant all canaries: {planted}"


def _course(tmp_path: Path) -> Path:
    course = copy_course(tmp_path / "course", (*COURSE_PARTS, "requirements.txt"))
    _plant(course)
    run_course(course, "release", "autodiff")
    return course


def _published_text(tree: Path) -> dict[str, str]:
    return {str(p.relative_to(tree)): p.read_bytes().decode("utf-8", "replace")
            for p in tree.rglob("*") if p.is_file() and ".git" not in p.parts}


def test_published_tree_holds_what_students_need_and_nothing_secret(tmp_path):
    course = _course(tmp_path)
    dest = tmp_path / "student"
    run_course(course, "publish", str(dest))

    assert {p.name for p in dest.iterdir()} == STUDENT_TOP
    for name in ("autodiff", "optimizers", "rosenbrock"):
        assert (dest / "release" / name / f"{name}.ipynb").is_file()
    assert (dest / "release" / "autodiff" / "X.pt").is_file() and (dest / "release" / "autodiff" / "y.pt").is_file()
    assert (dest / "utils" / "handin.py").is_file() and (dest / "utils" / "colab_setup.py").is_file()
    assert not list(dest.rglob("make_*.py")), "data generator scripts are instructor material"
    # Students' notebooks compute their variants from the published salt, the instructor's.
    cfg = config.settings().variants
    assert variant.settings(dest / "course.toml") == (cfg.salt, cfg.off)

    texts = _published_text(dest)
    for path, text in texts.items():
        for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS", "hidden_tests"):
            assert marker not in text, f"{path} contains {marker!r}"
        assert not CANARY.findall(text), f"{path} holds canaries {CANARY.findall(text)}"
    # ... while the course copy itself really carries them (the test would prove nothing otherwise).
    source = (course / "source" / "autodiff" / "autodiff.ipynb").read_text()
    assert all(CANARIES[k] in source for k in ("solution", "hidden", "answer"))

    readme = texts["README.md"]
    for words in ("Runtime → Restart session and run all", "make lab A=autodiff", "make handin A=autodiff",
                  "Copy of autodiff.ipynb", "release/autodiff/autodiff.ipynb"):
        assert words in readme


def test_publish_refuses_a_helper_that_quotes_hidden_tests(tmp_path):
    course = _course(tmp_path)
    (course / "utils" / "leaky.py").write_text("# copied by mistake\n" + CANARIES["module"] + "\n")
    dest = tmp_path / "student"
    proc = run_course(course, "publish", str(dest), check=False)
    assert proc.returncode == 2
    assert "refusing to publish" in proc.stderr and "utils/leaky.py" in proc.stderr
    assert not dest.exists(), "nothing may be written when publishing refuses"


def test_publish_replaces_its_own_files_and_keeps_anything_else(tmp_path):
    course = copy_course(tmp_path / "course", (*COURSE_PARTS, "requirements.txt"))
    dest = tmp_path / "student"
    (dest / ".git").mkdir(parents=True)  # a clone of the student repository
    (dest / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    run_course(course, "publish", str(dest))
    (dest / "release" / "stale.txt").write_text("from an older publication")
    run_course(course, "publish", str(dest))
    assert not (dest / "release" / "stale.txt").exists()
    assert (dest / ".git" / "HEAD").read_text() == "ref: refs/heads/main\n"
    (dest / "notes.txt").write_text("my own file")
    proc = run_course(course, "publish", str(dest), check=False)
    assert proc.returncode == 2 and "notes.txt" in proc.stderr
    assert (dest / "notes.txt").read_text() == "my own file" and (dest / "release").is_dir()


# A stand-in for Colab's google.colab module: the notebook's content comes from the browser
# (here: a file), and files.download copies the file into downloads/.
FAKE_COLAB = '''
import json, os, shutil
class _message:
    @staticmethod
    def blocking_request(kind, request="", timeout_sec=5):
        assert kind == "get_ipynb"
        return {"ipynb": json.load(open(os.environ["FAKE_COLAB_NOTEBOOK"]))}
class files:
    @staticmethod
    def download(path):
        os.makedirs(os.environ["FAKE_COLAB_DOWNLOADS"], exist_ok=True)
        shutil.copy(path, os.environ["FAKE_COLAB_DOWNLOADS"])
'''


def test_notebook_from_published_tree_runs_on_simulated_colab_and_hands_in(tmp_path):
    """Colab, simulated: the student repository is a local git repository, the notebook runs in an
    empty folder with a fake google.colab; the setup cell must find helpers and data there, and
    the hand-in cell must check the notebook and download autodiff.ipynb."""
    from nbclient import NotebookClient

    from course import config

    course = copy_course(tmp_path / "course", (*COURSE_PARTS, "requirements.txt"))
    repo = tmp_path / "student"
    run_course(course, "publish", str(repo))
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(repo)]
    subprocess.run(["git", "init", "-q", "-b", config.settings().branch, str(repo)], check=True)
    subprocess.run(git + ["add", "-A"], check=True)
    subprocess.run(git + ["commit", "-q", "-m", "publish"], check=True)

    fake = tmp_path / "fake"
    (fake / "google" / "colab").mkdir(parents=True)
    (fake / "google" / "__init__.py").write_text("")
    (fake / "google" / "colab" / "__init__.py").write_text(FAKE_COLAB)
    content = tmp_path / "content"  # Colab's working folder: only the notebook, opened from GitHub
    content.mkdir()
    nb = nbformat.read(repo / "release" / "autodiff" / "autodiff.ipynb", as_version=4)
    setup, student_id = nb.cells[1], nb.cells[2]
    setup.source = setup.source.replace(json.dumps(config.settings().repository_url), json.dumps(repo.as_uri()))
    # The student types their id; the variant comes from the clone's course.toml (utils/variant.py).
    student_id.source = student_id.source.replace('STUDENT_ID = ""', 'STUDENT_ID = "alice"')
    saved = content / "Copy of autodiff.ipynb"
    nbformat.write(nb, saved)
    # Colab imports google.colab before any cell runs; then a probe after the imports cell.
    nb.cells.insert(0, nbformat.v4.new_code_cell("import google.colab"))
    at = 1 + next(i for i, c in enumerate(nb.cells) if nbcells.grade_id(c) == "provided_cell_01")
    nb.cells.insert(at, nbformat.v4.new_code_cell("import utils; print('UTILS', utils.__file__)"))

    env = {"PATH": "/usr/bin:/bin:" + str(Path(sys.executable).parent), "HOME": str(tmp_path),
           "PYTHONPATH": str(fake), "FAKE_COLAB_NOTEBOOK": str(saved),
           "FAKE_COLAB_DOWNLOADS": str(tmp_path / "downloads"), "COURSE_NO_PROGRESS": "1"}
    client = NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=True, shutdown_kernel="immediate",
                            resources={"metadata": {"path": str(content)}})
    with client.setup_kernel(env=env):  # the kernel process gets this environment only
        for index, cell in enumerate(nb.cells):
            client.execute_cell(cell, index)

    def errors(cell):
        return [f"{o.ename}: {o.evalue}" for o in cell.get("outputs", []) if o.output_type == "error"]

    def stdout(cell):
        return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.output_type == "stream")

    assert not errors(nb.cells[2]), errors(nb.cells[2])  # the setup cell
    assert "Setup done" in stdout(nb.cells[2])
    assert not errors(nb.cells[3]), errors(nb.cells[3])  # the id cell
    salt = config.settings().variants.salt
    assert stdout(nb.cells[3]).strip() == variant.compute("autodiff", "alice", salt).describe()
    imports, probe = nb.cells[at - 1], nb.cells[at]
    assert not errors(imports) and not errors(probe), errors(imports) + errors(probe)
    assert str(content / "course-pack" / "utils") in stdout(probe), "utils must come from the clone"
    data_cell = next(c for c in nb.cells if 'load_tensor("X.pt")' in c.source)
    assert not errors(data_cell), errors(data_cell)  # the data files were found

    handin = nb.cells[-1]
    assert not errors(handin), errors(handin)
    report = stdout(handin)
    assert re.search(r"Visible tests: 0 of \d+ pass\.", report), report  # the untouched student version
    assert "Test 1.1 fails" in report
    downloaded = tmp_path / "downloads" / "autodiff.ipynb"
    assert downloaded.is_file(), report
    assert [c.source for c in nbformat.read(downloaded, 4).cells] == [c.source for c in nbformat.read(saved, 4).cells]


def test_student_make_lab_copies_the_assignment_once_and_opens_jupyterlab_there(tmp_path):
    """The published Makefile's local route, with a stand-in for JupyterLab (no install needed)."""
    course = copy_course(tmp_path / "course", (*COURSE_PARTS, "requirements.txt"))
    tree = tmp_path / "student"
    run_course(course, "publish", str(tree))
    bin_dir = tree / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "jupyter").write_text('#!/bin/sh\necho "jupyter $* in $(pwd)"\n')
    (bin_dir / "jupyter").chmod(0o755)
    (tree / ".venv" / ".installed").touch()  # newer than requirements.txt: no install

    def make(*args):
        return subprocess.run(["make", "-s", "-C", str(tree), *args], capture_output=True, text=True, timeout=60)

    first = make("lab", "A=autodiff")
    assert first.returncode == 0, first.stderr
    assert "Copied release/autodiff to work/autodiff" in first.stdout
    assert f"jupyter lab in {tree / 'work'}" in first.stdout
    mine = tree / "work" / "autodiff" / "autodiff.ipynb"
    assert (tree / "work" / "autodiff" / "X.pt").is_file()
    mine.write_text("my work")
    again = make("lab", "A=autodiff")
    assert "Opening your work in work/autodiff" in again.stdout and mine.read_text() == "my work"
    wrong = make("lab", "A=nope")
    assert wrong.returncode != 0 and "There is no assignment 'nope'. There are: autodiff" in wrong.stdout
    assert "work/" in (tree / ".gitignore").read_text().splitlines()
