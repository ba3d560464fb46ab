"""A hostile corpus, graded in ONE batch with honest submissions on the one-notebook mini course.

Each case is written so that its success would show: a read that works, a write that
lands, a patch that is not caught changes the score, leaves a file behind or a process
running. Every case has its expected outcome; honest students' grades must be the
same as in a batch of honest submissions only; no flagged grade reaches a total in
grades.csv or the LMS export before a person decides (course/review.py). The batch runs on
a real Dask LocalCluster with two worker processes (``--workers 2``).
"""

from __future__ import annotations

import os
import re
import socket
import threading
from pathlib import Path

import nbformat
import pytest
from conftest import copy_course, run_course
from test_grading_edge_cases import SOLUTIONS, mini_notebook

from course import cells as nbcells
from course.engine import sandbox
from course.files import digest

pytestmark = pytest.mark.xdist_group("grade-hostile")

SECRET = "course-test-secret-0xC0FFEE"
MARKER = "hostile-marker-7f3a"
HONEST = {"good": {}, "wrong": {"answer": "value = 41"}, "partial": {"helper": "def helper():\n    return 2"}}
HOME = Path.home()
HOME_PYTHON = sorted({p.relative_to(HOME).parts[0] for p in map(Path, sandbox.python_dirs()) if HOME in p.parents})
FULL = {"test_value": 2, "test_warns": 1, "test_helper": 1, "test_bonus": 2}


def leak_check(expr: str) -> str:
    """Answer cell: value stays right only if ``expr`` (an attempt to read or reach) fails."""
    return (f"try:\n    _got = {expr}\n    value = 1000 if _got else 42\n"
            f"except Exception:\n    value = 42\n")


def attempt(code: str) -> str:
    """Answer cell: try ``code``, then answer correctly whatever happened."""
    body = "\n".join("    " + line for line in code.splitlines())
    return f"try:\n{body}\nexcept BaseException:\n    pass\nvalue = 42\n"


def cases(root, port):
    r = str(root)
    reads = {
        "read_gradebook": leak_check(f"open({r + '/gradebook.db'!r}, 'rb').read(10)"),
        "read_source": leak_check(f"open({r + '/source/mini/mini.ipynb'!r}).read()"),
        "read_source_rel": leak_check("open('../../../source/mini/mini.ipynb').read()"),
        "read_other_student": leak_check(f"open({r + '/submitted/good/mini/mini.ipynb'!r}).read()"),
        "read_other_rel": leak_check("open('../../../submitted/good/mini/mini.ipynb').read()"),
        "read_samples": leak_check(f"__import__('os').listdir({r + '/samples'!r}) or [1]"),
        # The Python install may live under the home (pyenv); nothing else of it may show.
        "read_home": leak_check(f"[n for n in __import__('os').listdir({str(HOME)!r}) if n not in {HOME_PYTHON!r}]"),
        "read_shadow": leak_check("open('/etc/shadow').read()"),
        "read_env": leak_check(f"{SECRET!r} in str(__import__('os').environ)"),
        "read_proc_env": leak_check(f"any({SECRET!r} in open(f'/proc/{{p}}/environ', errors='replace').read() "
                                    "for p in __import__('os').listdir('/proc') if p.isdigit())"),
        "read_course_root": leak_check(f"__import__('os').listdir({r!r})"),
    }
    writes = {
        "write_other_student": attempt(f"open({r + '/submitted/good/mini/mini.ipynb'!r}, 'a').write(' ')"),
        "write_gradebook": attempt(f"open({r + '/gradebook.db'!r}, 'ab').write(b'x' * 100)"),
        "write_source": attempt(f"open({r + '/source/mini/mini.ipynb'!r}, 'a').write(' ')"),
        "write_utils": attempt(f"open({r + '/utils/evil.py'!r}, 'w').write('x = 1')\n"
                               "open('/course/utils/evil.py', 'w').write('x = 1')"),
        "write_feedback": attempt(f"import os\nos.makedirs({r + '/feedback/good/mini'!r}, exist_ok=True)\n"
                                  f"open({r + '/feedback/good/mini/' + MARKER!r}, 'w').write('x')"),
        "write_home": attempt(f"open('/root/{MARKER}', 'w').write('x')"),
        "write_tmp_host": attempt(f"open('/tmp/{MARKER}', 'w').write('x')"),
        "write_own_submission": attempt("open('../../../submitted/write_own_submission/mini/mini.ipynb', 'a').write(' ')"),
        # No gradebook is in the sandbox (an older grader had a scratch one there); the
        # parent computes every score itself.
        "extra_credit_scratch": "import sqlite3\n" + attempt(
            "db = sqlite3.connect('/course/gradebook.db')\n"
            "db.execute('update grade set extra_credit = 100')\ndb.commit()").replace("value = 42", "value = 41"),
    }
    persists = {
        "detached_process": attempt(
            "import subprocess, sys\n"
            f"subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)  # {MARKER}'], "
            "start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)"),
        "double_fork": attempt(
            "import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
            f"        os.execvp('sleep', ['sleep', '600', '{MARKER}'])\n    os._exit(0)\ntime.sleep(0.5)"),
        "atexit_hook": attempt(f"import atexit\natexit.register(lambda: open({r + '/' + MARKER!r}, 'w').write('x'))"),
        "fork_bomb": ("import threading, time\n"
                      "ts = [threading.Thread(target=time.sleep, args=(20,)) for _ in range(5000)]\n"
                      "for t in ts:\n    t.start()\nvalue = 42"),
        "memory_hog": "big = bytearray(3 * 1024 ** 3)\nvalue = 42",
        "big_file": "open('big.bin', 'wb').write(b'0' * (300 * 1024 ** 2))\nvalue = 42",
        "output_flood": "for i in range(200000):\n    print('flood', i)\nvalue = 42",
        "open_files": attempt("fs = [open('/dev/null') for _ in range(5000)]"),
        # A detached process that waits for a graded notebook and deletes the failures from it,
        # keeping the guard cells' errors (the results now leave the sandbox on a pipe).
        "forges_graded_notebook": "import subprocess, sys\n" + (
            "FORGER = " + repr(
                "import glob, json, os, time\n"
                "end = time.time() + 300\n"
                "while time.time() < end:\n"
                "    for path in glob.glob('/course/autograded/*/mini/mini.ipynb'):\n"
                "        try:\n            nb = json.load(open(path))\n        except Exception:\n            continue\n"
                "        cells = [c for c in nb['cells'] if c['cell_type'] == 'code']\n"
                "        if not any(c.get('outputs') for c in cells):\n            continue\n"
                "        for c in cells:\n"
                "            c['outputs'] = [o for o in c['outputs'] if o.get('output_type') != 'error'"
                " or 'guard' in str(o.get('evalue'))]\n"
                "        os.chmod(path, 0o644)\n        json.dump(nb, open(path + '.tmp', 'w'))\n"
                "        os.replace(path + '.tmp', path)\n"
                "    time.sleep(0.005)\n") + "\n"
            "subprocess.Popen([sys.executable, '-c', FORGER], start_new_session=True,\n"
            "                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
            "value = 41"),
        # Start-up code for the next kernel, which the helper cell forces by killing this one:
        # it would define what the fresh kernel lacks and earn test_helper and the bonus.
        "ipython_startup": "import os\nvalue = 41\n" + attempt(
            "for d in (get_ipython().profile_dir.startup_dir,\n"
            "          os.path.join(os.environ.get('IPYTHONDIR', '/nonexistent'), 'profile_default', 'startup')):\n"
            "    try:\n        os.makedirs(d, exist_ok=True)\n"
            "        open(os.path.join(d, '00-grade.py'), 'w').write('value = 42\\ndef helper():\\n    return 1\\n')\n"
            "    except OSError:\n        pass").replace("value = 42", "value = 41"),
    }
    tampers = {
        "input_transformer": "get_ipython().input_transformers_post.append(lambda lines: ['pass\\n'])\nvalue = 41",
        "ast_transformer": ("import ast\nclass NoAssert(ast.NodeTransformer):\n"
                            "    def visit_Assert(self, node):\n        return ast.Pass()\n"
                            "get_ipython().ast_transformers.append(NoAssert())\nvalue = 41"),
        "showtraceback": "get_ipython().showtraceback = lambda *a, **k: None\nvalue = 41",
        "stderr_swap": "import io, sys\nsys.stderr = io.StringIO()\nvalue = 41",
        "builtins_patch": "import builtins\nbuiltins.isinstance = lambda *a: True\nvalue = 41",
        "sys_modules": "import sys, types\nsys.modules['utils'] = types.ModuleType('utils')\nvalue = 41",
        "numpy_testing": "import numpy\nnumpy.testing.assert_allclose = lambda *a, **k: None\nvalue = 41",
        "torch_allclose": "import torch\ntorch.allclose = lambda *a, **k: True\nvalue = 41",
        "hidden_patch": ("import importlib\nm = importlib.import_module('num' + 'py')\n"
                         "m.allclose = (lambda *a, **k: True)\nvalue = 41"),
        "checks_helper": "import utils.checks as c\nc.check_close = lambda *a, **k: None\nvalue = 41",
        "import_hook": "import sys\nclass Finder:\n    def find_spec(self, *a):\n        return None\n"
                       "sys.meta_path.insert(0, Finder())\nvalue = 41",
        "exit_in_test": "import os\nvalue = 42",  # helper below exits the kernel inside test_helper
        # Poses as another student for the variant the tests compute (utils/variant.py), disguised
        # from the static scan: the check after each test cell compares the grader's id.
        "grader_id_at_runtime": ("_os = __import__('o' + 's')\n_os.environ['COURSE_' + 'STUDENT' + '_ID'] = 'someone'\n"
                                 "value = 41"),
        # The grader's references are importable while it grades: flagged, whatever it does with them.
        "imports_hidden_tests": attempt("import hidden_tests"),
        # A package named like a course helper, written next to the notebook and put first on sys.path.
        "shadow_helper_at_runtime": ("import os, sys\nos.makedirs('utils', exist_ok=True)\n"
                                     "open('utils/__init__.py', 'w').write('def check_close(*a, **k):\\n    pass\\n')\n"
                                     "sys.path.insert(0, os.getcwd())\nimport utils\nvalue = 41"),
        # A library written next to the notebook: that folder comes before site-packages.
        "shadow_library_at_runtime": ("import os\nos.makedirs('numpy', exist_ok=True)\n"
                                      "open('numpy/__init__.py', 'w').write('def allclose(*a, **k):\\n    return True\\n')\n"
                                      "import numpy\nvalue = 41"),
        # Stops the grader's runner (the kernel's parent, same uid) before it hands back results,
        # disguised from the static scan: nothing comes back, so nothing scores, and it is flagged.
        "kills_the_runner": ("_os = __import__('o' + 's')\ngetattr(_os, 'ki' + 'll')(_os.getppid(), 9)\n"
                             "value = 41"),
        # Writes a forged answer where the runner's results go: its stdout (the kernel gets
        # /dev/null) and its descriptors through /proc (the runner is not dumpable).
        "forges_the_result": "value = 41\n" + attempt(
            "import json, os\n"
            "fake = 'running\\n' + json.dumps({'notebooks': {}, 'error': ''})\n"
            "os.write(1, fake.encode())\n"
            "for fd in os.listdir(f'/proc/{os.getppid()}/fd'):\n"
            "    try:\n        os.write(os.open(f'/proc/{os.getppid()}/fd/{fd}', os.O_WRONLY), fake.encode())\n"
            "    except OSError:\n        pass").replace("value = 42", "value = 41"),
        # Drops the kernel's error messages, except the guard cells' (they hold "guard").
        "kernel_send_hook": ("_s = get_ipython().kernel.session\n_send = _s.send\n"
                             "def _quiet(stream, msg_or_type, content=None, *a, **k):\n"
                             "    kind = msg_or_type if isinstance(msg_or_type, str) else msg_or_type['header']['msg_type']\n"
                             "    if kind == 'error' and 'guard' not in str(content):\n        return None\n"
                             "    return _send(stream, msg_or_type, content, *a, **k)\n"
                             "_s.send = _quiet\nvalue = 41"),
    }
    network = {
        "net_loopback_host": leak_check(f"__import__('socket').create_connection(('127.0.0.1', {port}), 3)"),
        "net_dns": leak_check("__import__('socket').gethostbyname('pypi.org')"),
        "net_udp": leak_check(f"__import__('socket').socket(2, 2).sendto(b'x', ('127.0.0.1', {port})) and False"),
    }
    return {"reads": reads, "writes": writes, "persists": persists, "tampers": tampers, "network": network}


# Malformed submissions: student -> (how the file is written, expected status, phrase of the message).
MALFORMED = ["invalid_json", "binary_junk", "nbformat3", "changed_cell_type", "deleted_grade_cell",
             "duplicated_grade_cell", "colab_stripped", "symlink_notebook", "symlink_folder", "huge_notebook",
             "odd name ünï 'x'", "empty_folder", "renamed_notebook", "claims_points", "edited_locked_cell",
             "extra_files"]


# Written by someone who never read the grader: no answer at all, and a first cell that makes
# every test pass (the kernel skips each later cell, or swallows every error).
UNREAD = {
    "blank_transformer": "get_ipython().input_transformers_post.append(lambda lines: ['pass\\n'])",
    "blank_no_asserts": ("import ast\nclass Drop(ast.NodeTransformer):\n    def visit_Assert(self, node):\n"
                         "        return None\nget_ipython().ast_transformers.append(Drop())"),
}


def submission(released, answer=None, helper=None):
    nb = nbformat.from_dict(released)
    for cell in nb.cells:
        gid = nbcells.grade_id(cell)
        if gid == "answer":
            cell.source = answer if answer is not None else SOLUTIONS["answer"]
        elif gid == "helper":
            cell.source = helper if helper is not None else SOLUTIONS["helper"]
    return nb


def _make_course(path, students):
    root = copy_course(path, parts=("course", "utils", "course.toml", "nbgrader_config.py"))
    text = (root / "course.toml").read_text()
    text = re.sub(r"max_notebook_mb = \d+", "max_notebook_mb = 1", text)
    text = re.sub(r"cell_s = \d+", "cell_s = 30", text)  # room for `import torch` on a loaded machine
    (root / "course.toml").write_text(text)
    (root / "source" / "mini").mkdir(parents=True)
    nbformat.write(mini_notebook(), root / "source" / "mini" / "mini.ipynb")
    (root / "samples").mkdir()
    (root / "samples" / MARKER).write_text("x")
    run_course(root, "release", "mini")
    released = nbformat.read(root / "release" / "mini" / "mini.ipynb", as_version=4)
    for student, replaced in students.items():
        folder = root / "submitted" / student / "mini"
        folder.mkdir(parents=True)
        nbformat.write(submission(released, replaced.get("answer"), replaced.get("helper")), folder / "mini.ipynb")
    return root, released


def _malformed(root, released):
    sub = lambda s: root / "submitted" / s / "mini"  # noqa: E731
    good = submission(released)
    for s in MALFORMED:
        sub(s).mkdir(parents=True, exist_ok=s != "symlink_folder")
    sub("symlink_folder").rmdir()
    (sub("invalid_json") / "mini.ipynb").write_text('{"cells": [')
    (sub("binary_junk") / "mini.ipynb").write_bytes(os.urandom(2000))
    nbformat.write(nbformat.convert(good, 3), sub("nbformat3") / "mini.ipynb", version=3)
    for name, change in [("changed_cell_type", "type"), ("deleted_grade_cell", "delete"),
                         ("duplicated_grade_cell", "duplicate"), ("colab_stripped", "strip"),
                         ("claims_points", "points"), ("edited_locked_cell", "edit")]:
        nb = submission(released)
        test = next(c for c in nb.cells if nbcells.grade_id(c) == "test_value")
        if change == "type":
            test.cell_type = "markdown"
            test.pop("outputs", None)
            test.pop("execution_count", None)
        elif change == "delete":
            nb.cells.remove(test)
        elif change == "duplicate":
            nb.cells.insert(nb.cells.index(test), nbformat.from_dict(dict(test, id="dup")))
        elif change == "strip":
            for cell in nb.cells:
                cell.metadata = {}
        elif change == "points":
            test.metadata.nbgrader.points = 100
        elif change == "edit":
            test.source = "pass"
        if change == "edit":
            nb.cells[[nbcells.grade_id(c) for c in nb.cells].index("answer")].source = "value = 41"
        nbformat.write(nb, sub(name) / "mini.ipynb")
    (sub("symlink_notebook") / "mini.ipynb").symlink_to(root / "submitted" / "good" / "mini" / "mini.ipynb")
    sub("symlink_folder").symlink_to(root / "submitted" / "good" / "mini")
    huge = submission(released)
    huge.cells[0].outputs = [nbformat.v4.new_output("stream", name="stdout", text="x" * (2 * 1024 ** 2))]
    nbformat.write(huge, sub("huge_notebook") / "mini.ipynb")
    nbformat.write(good, sub("odd name ünï 'x'") / "mini.ipynb")
    nbformat.write(good, sub("renamed_notebook") / "Copy of mini.ipynb")
    # Files besides the notebook: a package named like a helper would shadow it in the kernel.
    nbformat.write(submission(released, leak_check("__import__('os').path.exists('utils/__init__.py')")),
                   sub("extra_files") / "mini.ipynb")
    (sub("extra_files") / "utils").mkdir()
    (sub("extra_files") / "utils" / "__init__.py").write_text("def check_close(*a, **k):\n    pass\n")
    (sub("extra_files") / "notes.txt").write_text("my notes")
    for student, first in UNREAD.items():
        sub(student).mkdir(parents=True)
        blank = nbformat.from_dict(released)
        blank.cells.insert(0, nbformat.v4.new_code_cell(first, id="first"))
        nbformat.write(blank, sub(student) / "mini.ipynb")


def _scores(root, student):
    from course import gradebook as course_scores

    return {k: v[0] for k, v in course_scores.cell_scores("mini", student, db=root / "gradebook.db").items()}


class Listener:
    """A TCP and UDP server on the host's loopback: a sandboxed submission must never reach it."""

    def __init__(self):
        self.tcp = socket.socket()
        self.tcp.bind(("127.0.0.1", 0))
        self.tcp.listen()
        self.port = self.tcp.getsockname()[1]
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", self.port))
        self.udp.settimeout(1)
        self.tcp.settimeout(1)
        self.contacts = 0
        self.stop = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self.stop:
            for sock, recv in ((self.tcp, lambda s: s.accept()), (self.udp, lambda s: s.recvfrom(10))):
                try:
                    recv(sock)
                    self.contacts += 1
                except OSError:
                    pass


@pytest.fixture(scope="module")
def batches(tmp_path_factory):
    honest_root, _ = _make_course(tmp_path_factory.mktemp("honest"), HONEST)
    run_course(honest_root, "grade", "mini", "--workers", "2", timeout=900)
    honest = {s: _scores(honest_root, s) for s in HONEST}

    listener = Listener()
    root = tmp_path_factory.mktemp("hostile")
    corpus = cases(root, listener.port)
    students = dict(HONEST)
    for group in corpus.values():
        students.update({name: {"answer": code} for name, code in group.items()})
    students["exit_in_test"]["helper"] = "def helper():\n    os._exit(0)"
    students["ipython_startup"]["helper"] = "import os\nos.kill(os.getpid(), 9)"
    root, released = _make_course(root, students)
    _malformed(root, released)
    hashes = {p.name: digest([p]) for p in (root / "submitted").iterdir() if not p.is_symlink()}
    source_hash = digest([root / "source"])
    env = {"COURSE_TEST_SECRET": SECRET}
    os.environ.update(env)
    try:
        proc = run_course(root, "grade", "mini", "--workers", "2", timeout=1500)
    finally:
        os.environ.pop("COURSE_TEST_SECRET")
    listener.stop = True
    return root, proc.stdout, honest, hashes, source_hash, corpus, listener.contacts


def _line(output, student):
    return next(l for l in output.splitlines() if l.startswith(f"  {student} "))


def test_corpus_has_at_least_40_cases(batches):
    corpus = batches[5]
    assert sum(len(g) for g in corpus.values()) + len(MALFORMED) >= 40


def test_honest_grades_are_identical_with_and_without_hostile_submissions(batches):
    root, output, honest = batches[:3]
    for student, expected in honest.items():
        assert re.search(rf"  {student}\s+graded", output), _line(output, student)
        assert _scores(root, student) == expected
    assert honest["good"] == FULL


@pytest.mark.parametrize("group", ["reads", "network"])
def test_reads_and_network_are_contained(batches, group):
    root, output, *_, corpus, contacts = batches
    for student in corpus[group]:
        # value = 1000 if the read or connection had worked: test_value would then fail.
        assert _scores(root, student)["test_value"] == 2, _line(output, student)
    assert contacts == 0


def test_writes_do_not_land(batches):
    root, output, honest, hashes, source_hash, corpus, _ = batches
    for student, before in hashes.items():
        assert digest([root / "submitted" / student]) == before, f"submitted/{student} changed"
    assert digest([root / "source"]) == source_hash
    assert not (root / "utils" / "evil.py").exists()
    assert not (root / "feedback" / "good" / "mini" / MARKER).exists()
    assert not os.path.exists(f"/root/{MARKER}") and not os.path.exists(f"/tmp/{MARKER}")
    for student in corpus["writes"]:
        if student != "extra_credit_scratch":
            assert _scores(root, student)["test_value"] == 2, _line(output, student)
    # Extra credit written into the scratch gradebook counts for nothing.
    assert _scores(root, "extra_credit_scratch") == {"test_value": 0, "test_warns": 1, "test_helper": 1, "test_bonus": 0}


def test_nothing_persists_after_grading(batches):
    root, output, *_ = batches
    assert not (root / MARKER).exists()  # the atexit hook's write
    alive = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace")
        except OSError:
            continue
        if MARKER in cmdline and "pytest" not in cmdline:
            alive.append(cmdline)
    assert not alive, alive


@pytest.mark.parametrize("student, phrase", [
    ("memory_hog", "memory limit 2 GiB exceeded in cell 'answer'"),
    ("big_file", "file size limit 256 MiB exceeded in cell 'answer'"),
    ("fork_bomb", "process limit (1024) reached in cell 'answer'"),
])
def test_limits_are_reported_with_the_cell_and_the_batch_goes_on(batches, student, phrase):
    root, output, *_ = batches
    line = _line(output, student)
    assert "limit hit" in line and phrase in line, line
    assert _scores(root, student)["test_value"] == 0  # the cell that hit the limit did not define value


def test_output_flood_and_open_files_are_graded(batches):
    root, output, *_ = batches
    assert _scores(root, "open_files")["test_value"] == 2, _line(output, "open_files")
    # The flood may outlast the cell timeout on a loaded machine; the cells after it still count.
    assert _scores(root, "output_flood")["test_helper"] == 1, _line(output, "output_flood")


@pytest.mark.parametrize("student", [s for s in cases("/x", 1)["tampers"] if s not in ("exit_in_test", "forges_the_result")])
def test_tampering_is_flagged_for_review(batches, student):
    root, output, *_ = batches
    line = _line(output, student)
    assert re.search(rf"  {re.escape(student)}\s+flagged", line), line
    from course.gradebook import open_gradebook

    with open_gradebook(root / "gradebook.db") as gb:
        assert gb.find_submission_notebook("mini", "mini", student).flagged


def test_changing_the_graders_student_id_is_caught_at_run_time(batches):
    root, output, *_ = batches
    line = _line(output, "grader_id_at_runtime")
    assert "os.environ['COURSE_STUDENT_ID']" in line and "student id or variant settings" not in line, line


def test_a_submission_that_stops_the_runner_scores_nothing_and_is_flagged(batches):
    root, output, *_ = batches
    line = _line(output, "kills_the_runner")
    assert "flagged" in line and "stopped before it handed back results" in line, line
    assert set(_scores(root, "kills_the_runner").values()) == {0}


def test_a_forged_result_never_reaches_the_grader(batches):
    root, output, *_ = batches
    line = _line(output, "forges_the_result")
    assert re.search(r"  forges_the_result\s+graded", line), line
    assert _scores(root, "forges_the_result") == {"test_value": 0, "test_warns": 1, "test_helper": 1, "test_bonus": 0}


def test_exiting_the_kernel_in_a_test_cell_earns_nothing_there(batches):
    root, output, *_ = batches
    line = _line(output, "exit_in_test")
    assert "flagged" in line and "exits or kills the kernel" in line and "Kernel died" in line, line
    assert _scores(root, "exit_in_test")["test_helper"] == 0, line


@pytest.mark.parametrize("student, phrase", [
    ("invalid_json", "not a valid notebook"),
    ("binary_junk", "not a valid notebook"),
    ("symlink_notebook", "symbolic link"),
    ("symlink_folder", "symbolic link"),
    ("huge_notebook", "over the 1 MiB limit"),
    ("empty_folder", "holds no notebook"),
    ("renamed_notebook", "rename the notebook"),
])
def test_unreadable_or_unsafe_submissions_are_errors_with_a_reason(batches, student, phrase):
    root, output, *_ = batches
    line = _line(output, student)
    assert re.search(rf"  {re.escape(student)}\s+error", line) and phrase in line, line
    from course import gradebook as course_scores

    assert course_scores.read("mini", student, db=root / "gradebook.db") is None


@pytest.mark.parametrize("student, expected", [
    ("nbformat3", FULL),
    ("odd name ünï 'x'", FULL),
    ("colab_stripped", FULL),  # metadata put back by matching the release
    ("claims_points", FULL),  # points come from the gradebook, not the submission
    ("duplicated_grade_cell", FULL),
    ("edited_locked_cell", {"test_value": 0, "test_warns": 1, "test_helper": 1, "test_bonus": 0}),
])
def test_edited_or_converted_notebooks_are_scored_honestly(batches, student, expected):
    root, output, *_ = batches
    assert _scores(root, student) == expected, _line(output, student)


def test_only_the_notebook_of_a_submission_reaches_the_kernel(batches):
    root, output, *_ = batches
    line = _line(output, "extra_files")
    assert "other files handed in were left out: notes.txt, utils/" in line, line
    assert _scores(root, "extra_files") == FULL, line  # value = 1000 had the kernel seen utils/
    assert not (root / "autograded" / "extra_files" / "mini" / "utils").exists()


def test_a_leftover_process_cannot_rewrite_the_graded_notebook(batches):
    root, output, *_ = batches
    # value = 41 fails test_value and the bonus; a forged notebook would show no failure.
    assert _scores(root, "forges_graded_notebook") == {"test_value": 0, "test_warns": 1, "test_helper": 1,
                                                       "test_bonus": 0}, _line(output, "forges_graded_notebook")


def test_start_up_files_written_by_a_submission_never_run_in_the_next_kernel(batches):
    root, output, *_ = batches
    line = _line(output, "ipython_startup")
    assert "Kernel died in cell 'helper'" in line, line
    # Had the fresh kernel run the start-up file, helper() and value == 42 would pass.
    assert _scores(root, "ipython_startup") == {"test_value": 0, "test_warns": 1, "test_helper": 0, "test_bonus": 0}


def test_changed_type_or_deleted_test_cells_are_put_back_and_the_answers_graded(batches):
    root, output, *_ = batches
    for student in ("changed_cell_type", "deleted_grade_cell"):
        assert _scores(root, student) == FULL, _line(output, student)
    assert "lacked the cells test_value: put back from the assignment" in _line(output, "deleted_grade_cell")
    assert "copies of the cells test_value" in _line(output, "duplicated_grade_cell")


@pytest.fixture(scope="module")
def exported(batches):
    """The LMS export of the batch (it also writes grades.csv again)."""
    import csv

    root = batches[0]
    run_course(root, "export-lms", "--out", str(root / "lms.csv"))
    with open(root / "grades.csv", newline="") as handle:
        rows = {r["student"]: r for r in csv.DictReader(handle)}
    return rows, {r[0]: r[2] for r in csv.reader(open(root / "lms.csv"))}


def test_no_flagged_grade_reaches_a_total_or_the_export_before_a_person_decides(batches, exported):
    root, output = batches[:2]
    rows, lms = exported
    flagged = re.findall(r"^  (.+?)\s+flagged(?::| \[)", output, flags=re.M)
    assert set(cases("/x", 1)["tampers"]) - {"exit_in_test", "forges_the_result"} | set(UNREAD) <= set(flagged)
    for student in flagged:
        assert rows[student]["total"] == "" and rows[student]["review"].startswith("held for review"), rows[student]
        assert lms[student] == "", student
    for student in UNREAD:  # what the hold keeps out: a blank notebook that scored
        assert sum(_scores(root, student).values()) > 0, _line(output, student)
    assert rows["good"]["total"] == lms["good"] == "6" and rows["good"]["review"] == ""
    assert rows["wrong"]["total"] == lms["wrong"] == "2"
