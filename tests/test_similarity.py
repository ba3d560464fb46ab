"""The similarity report: what counts as a student's own work, how it is normalised, how pairs
rank (planted copies at the top, blank notebooks nowhere near it), the reference corpus, the
page's escaping, and that the command writes its two files and nothing else."""

from __future__ import annotations

import ast
import csv
import hashlib
import json
import random
from pathlib import Path

import numpy as np
import pytest
from conftest import copy_course, run_course

import similarity_corpus
from course.commands import fingerprints as fp
from course.commands import similarity
from course.commands.student_work import CODE, OUTPUT, TEXT, Piece, load_release, notebook_pieces, read_work

ASSIGNMENT = "autodiff"


def code_cell(source, gid=None, solution=False, outputs=()):
    meta = {"nbgrader": {"grade_id": gid, "solution": solution, "grade": False, "locked": not solution}} if gid else {}
    return {"cell_type": "code", "source": source, "metadata": meta, "outputs": list(outputs), "execution_count": 1}


def md_cell(source, gid=None, solution=False):
    meta = {"nbgrader": {"grade_id": gid, "solution": solution, "grade": solution, "locked": False}} if gid else {}
    return {"cell_type": "markdown", "source": source, "metadata": meta}


STARTER = "def train(model, data):\n    # YOUR CODE HERE\n    raise NotImplementedError()"
PROVIDED = "import torch\nlosses = train(model, data)\nprint(len(losses))"
TEST = "assert len(losses) == 3, 'three losses'"
OWN = ("def train(model, data):\n    history = []\n    for batch in data:\n        loss = model(batch).mean()\n"
       "        loss.backward()\n        history.append(loss.item())\n    return history")


def release_nb():
    return {"cells": [code_cell(PROVIDED, "provided"), code_cell(STARTER, "answer", solution=True),
                      code_cell(TEST, "test_answer"), md_cell("YOUR ANSWER HERE", "written", solution=True)],
            "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


@pytest.fixture
def release(tmp_path):
    folder = tmp_path / "release" / "mini"
    folder.mkdir(parents=True)
    (folder / "mini.ipynb").write_text(json.dumps(release_nb()))
    return load_release(folder)


def submission(answer=STARTER, written="YOUR ANSWER HERE", test=TEST, extra=(), outputs=()):
    nb = release_nb()
    nb["cells"][1]["source"], nb["cells"][1]["outputs"] = answer, list(outputs)
    nb["cells"][2]["source"] = test
    nb["cells"][3]["source"] = written
    nb["cells"] += list(extra)
    return nb


# ---------------------------------------------------------------- what a student wrote


def test_the_released_lines_are_not_the_students(release):
    pieces = notebook_pieces(submission(answer=OWN), "mini", release)
    (answer,) = [p for p in pieces if p.kind == CODE]
    lines = answer.text.splitlines()
    assert answer.key == "mini/answer"
    assert {lines[n] for n in answer.given} == {"def train(model, data):"}
    assert notebook_pieces(submission(), "mini", release) == [], "a blank notebook holds nothing of its own"


def test_test_cells_and_provided_cells_never_count_even_when_edited(release):
    nb = submission(test="assert True  # the student rewrote the test to pass it, at length")
    nb["cells"][0]["source"] = "import torch\nprint('a provided cell the student changed a great deal')"
    assert notebook_pieces(nb, "mini", release) == []


def test_added_cells_count_minus_any_released_line(release):
    added = code_cell("import torch\nlosses = train(model, data)\nbest = min(losses)\nprint(best, len(losses))")
    pieces = notebook_pieces(submission(extra=[added]), "mini", release)
    (piece,) = pieces
    assert piece.key == "mini/added 0"
    own = [line for n, line in enumerate(piece.text.splitlines()) if n not in piece.given]
    assert own == ["best = min(losses)", "print(best, len(losses))"]


def test_written_answers_are_text_and_outputs_only_where_the_student_wrote_code(release):
    figure = {"output_type": "display_data", "data": {"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"}}
    printed = {"output_type": "stream", "name": "stdout", "text": "loss 0.123456\n"}
    warning = {"output_type": "stream", "name": "stderr", "text": "UserWarning: slow\n"}
    nb = submission(answer=OWN, written="The loss falls because the step is small.", outputs=[printed, warning, figure])
    kinds = {p.kind: p for p in notebook_pieces(nb, "mini", release)}
    assert set(kinds) == {CODE, TEXT, OUTPUT}
    assert kinds[TEXT].text == "The loss falls because the step is small."
    output = kinds[OUTPUT].text.splitlines()
    assert output[0] == "loss 0.123456" and output[1].startswith("[figure image/png: ")
    assert "UserWarning" not in kinds[OUTPUT].text and "<Figure>" not in kinds[OUTPUT].text
    error = {"output_type": "error", "ename": "NotImplementedError", "evalue": "", "traceback": []}
    blank = notebook_pieces(submission(outputs=[error]), "mini", release)
    assert blank == [], "the starter code's own error is not the student's output"


def test_an_unreadable_notebook_is_reported_not_fatal(release, tmp_path):
    folder = tmp_path / "submitted" / "ann" / "mini"
    folder.mkdir(parents=True)
    (folder / "mini.ipynb").write_text('{"cells": [')
    work = read_work("ann", folder, release)
    assert work.pieces == () and len(work.problems) == 1 and "not a notebook" in work.problems[0]


# ---------------------------------------------------------------- normalisation and fingerprints


KNOWN = frozenset({"torch", "range", "len", "print", "def", "for", "in", "return", "self", "zeros", "float"})


def norm(source: str) -> tuple[str, ...]:
    return fp.code_tokens(Piece("k", CODE, source), KNOWN).norm


def test_renaming_reformatting_and_comments_change_nothing():
    original = ('def total(values):\n    """Add them up."""\n    acc = torch.zeros(1)  # start\n'
                "    for v in values:\n        acc = acc + v * 2.50\n    return float(acc)\n")
    disguised = ("def   summe( xs ) :\n    # my own\n    s=torch.zeros( 1 );\n\n    for item in xs : s = s + item*2.5\n"
                 "    return float( s )")
    assert norm(original) == norm(disguised)
    assert norm(ast.unparse(ast.parse(original))) == norm(original)
    assert "torch" in norm(original) and "zeros" in norm(original), "names the student did not invent stay"
    assert "acc" not in norm(original) and "total" not in norm(original)


def test_a_cell_that_does_not_parse_still_has_tokens():
    tokens = norm("for i in range(3:\n    print(i")
    assert tokens[:4] == ("for", "V", "in", "range")


def test_winnowing_finds_every_match_of_k_plus_w_minus_1_tokens():
    rng = np.random.default_rng(0)
    k, w = fp.K[CODE], fp.WINDOW[CODE]
    for _ in range(50):
        shared = [f"t{x}" for x in rng.integers(0, 40, k + w - 1)]
        a = [f"a{x}" for x in rng.integers(0, 40, 30)] + shared + [f"a{x}" for x in rng.integers(0, 40, 20)]
        b = [f"b{x}" for x in rng.integers(0, 40, 11)] + shared
        prints = [fp.fingerprints(fp.Tokens(tuple(s), ((0, 0),) * len(s)), CODE, {})[0] for s in (a, b)]
        assert len(np.intersect1d(*prints)), "a shared run of k + w - 1 tokens must share a fingerprint"


# ---------------------------------------------------------------- ranking


@pytest.fixture(scope="module")
def small_class(tmp_path_factory):
    """60 submissions of autodiff: 6 planted copies, 10 blank or nearly blank, the rest honest."""
    cls = similarity_corpus.build(ASSIGNMENT, students=60, copies=6, blanks=10, seed=1)
    submitted = tmp_path_factory.mktemp("class") / "submitted"
    cls.write(submitted, ASSIGNMENT)
    return cls, submitted


def test_planted_copies_rank_in_the_top_5_percent_and_blank_pairs_do_not(small_class, tmp_path):
    cls, submitted = small_class
    analysis = similarity.run(ASSIGNMENT, submitted=submitted, out=tmp_path).analysis
    names = [w.student for w in analysis.works]
    ranked = [frozenset((names[p.a], names[p.b])) for p in analysis.pairs]
    assert len(ranked) == 60 * 59 // 2
    top = set(ranked[: len(ranked) // 20])
    missed = {c: how for c, (o, how) in cls.copies.items() if frozenset((c, o)) not in top}
    assert not missed, f"planted copies outside the top 5 %: {missed}"
    assert not [pair for pair in top if pair & cls.blank], "a blank or nearly blank notebook reached the top 5 %"


def test_cell_order_changes_nothing(small_class, tmp_path):
    cls, submitted = small_class
    student = next(s for s in cls.notebooks if s.startswith("honest") and similarity_corpus._answered(
        cls.notebooks[s]) > 0.8)
    nb = json.loads(json.dumps(cls.notebooks[student]))
    nb["cells"].reverse()
    for who, notebook in (("original", cls.notebooks[student]), ("reversed", nb)):
        (tmp_path / "s" / who / ASSIGNMENT).mkdir(parents=True)
        (tmp_path / "s" / who / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").write_text(json.dumps(notebook))
    (pair,) = similarity.run(ASSIGNMENT, submitted=tmp_path / "s", out=tmp_path / "r").analysis.pairs
    assert pair.score == pytest.approx(1.0)


def test_a_reference_corpus_is_compared_with_this_year_only(small_class, tmp_path):
    cls, submitted = small_class
    honest = [s for s in cls.notebooks if s.startswith("honest")]
    reference = tmp_path / "2025"
    for student in honest[:5]:  # last year's class; this year's "late" copies one of them
        (reference / student / ASSIGNMENT).mkdir(parents=True)
        (reference / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").write_text(json.dumps(cls.notebooks[student]))
    this_year = tmp_path / "submitted"
    for student in honest[5:12]:
        (this_year / student / ASSIGNMENT).mkdir(parents=True)
        (this_year / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").write_text(json.dumps(cls.notebooks[student]))
    disguised = similarity_corpus.disguise(cls.notebooks[honest[2]], "reformat+reorder", set(), random.Random(3))
    (this_year / "late" / ASSIGNMENT).mkdir(parents=True)
    (this_year / "late" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").write_text(json.dumps(disguised))
    written = similarity.run(ASSIGNMENT, reference=reference, submitted=this_year, out=tmp_path / "r")
    analysis = written.analysis
    assert len(analysis.pairs) == 8 * 7 // 2 + 8 * 5, "this year's pairs and this year × reference, no more"
    assert all(not analysis.works[p.a].reference for p in analysis.pairs)
    best = analysis.pairs[0]
    assert (analysis.works[best.a].student, analysis.works[best.b].student) == ("late", f"2025/{honest[2]}")
    rows = list(csv.DictReader(written.csv.open()))
    assert len(rows) == len(analysis.pairs) and rows[0]["b_is_reference"] == "1"
    assert float(rows[0]["score"]) == pytest.approx(best.score, abs=1e-4)


# ---------------------------------------------------------------- the page and the command


def test_student_text_is_escaped_on_the_page(release, tmp_path):
    hostile = OWN + "\n    # </pre><script>alert('x')</script><img src=x onerror=alert(1)>\n    print('<b>&amp;</b>')"
    written = "<script>alert('answer')</script> The step size <i>matters</i> & the loss falls slowly here."
    for student in ("mallory", "trent"):
        folder = tmp_path / "submitted" / student / "mini"
        folder.mkdir(parents=True)
        (folder / "mini.ipynb").write_text(json.dumps(submission(answer=hostile, written=written)))
    out = similarity.run("mini", submitted=tmp_path / "submitted", release_dir=tmp_path / "release",
                         out=tmp_path / "reports")
    page = out.html.read_text()
    assert "<script" not in page and "<img" not in page and "<i>" not in page
    assert "&lt;/pre&gt;&lt;script&gt;" in page.replace("<mark class=\"rare\">", "").replace("</mark>", "")
    assert '<mark class="rare">' in page, "the shared code is highlighted"
    assert out.analysis.pairs[0].score == pytest.approx(1.0)


def test_the_command_writes_its_two_files_and_nothing_else(tmp_path):
    root = copy_course(tmp_path / "course")
    run_course(root, "samples", ASSIGNMENT)
    (root / "gradebook.db").write_bytes(b"recorded grades")

    def snapshot():
        return {p.relative_to(root): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts}

    before = snapshot()
    proc = run_course(root, "similarity", ASSIGNMENT, timeout=300)
    after = snapshot()
    assert "it changes no grade" in proc.stdout and "not read: broken_notebook" in proc.stdout
    assert {p for p in after if p not in before} == {Path("reports") / f"similarity-{ASSIGNMENT}.html",
                                                     Path("reports") / f"similarity-{ASSIGNMENT}.csv"}
    assert all(after[p] == h for p, h in before.items()), "nothing that was there changed"
    for args, message in (((ASSIGNMENT, "--reference", "nowhere"), "no such folder"),
                          ((ASSIGNMENT, "--reference", "submitted"), "name a folder of earlier years"),
                          (("nosuch",), "unknown assignment"),
                          (("rosenbrock",), "a similarity report needs at least 2")):
        proc = run_course(root, "similarity", *args, check=False, timeout=300)
        assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr
