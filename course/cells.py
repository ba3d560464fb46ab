"""What a notebook cell is to the course: the one place that reads cell metadata and delimiters.

nbgrader marks its cells in ``metadata.nbgrader`` (``grade_id``, ``solution``, ``grade``,
``locked``, ``points``); the course adds ``metadata.course`` (``bonus``: extra credit of a
bonus test cell; ``rubric``: the answer a rubric cell marks; ``rerun_after_restart``: the
grader's own set-up cells; ``evidence``: the review evidence on top of a graded notebook;
``likely_causes``: on a failed test cell of a graded notebook, the misconceptions its failure
matched, written by the recording, course/engine/recording.py).
Inside cells, nbgrader's delimiters fence the solution and the hidden tests. Every module of the course, and the tests, read these through the functions
here, so that a reader finds each rule once (as nbgrader's own ``nbgrader/utils.py`` does for
its predicates, which ``is_grade``/``is_solution``/``is_locked`` follow).

Regions are parsed strictly, as nbgrader does when it releases: a nested or unterminated
region is an error, never a guess (a lenient parser here would withhold or publish the wrong
lines).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Delimiters:
    begin: str
    end: str

    def marks(self, line: str) -> bool:
        """Whether the line is one of the two delimiter lines."""
        return self.begin in line or self.end in line


SOLUTION = Delimiters("### BEGIN SOLUTION", "### END SOLUTION")
HIDDEN_TESTS = Delimiters("### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")
# Errors the grader's executor writes into a cell (course/engine/execute.py), not the cell's code.
DIED = "DeadKernelError"  # the kernel died in this cell
STUCK = "CellTimeoutError"  # the cell ran past the timeout and ignored the interrupt
OUT_OF_TIME = "GradingTimeLimit"  # the submission's time ran out before or in this cell
KERNEL_ERRORS = (DIED, STUCK, OUT_OF_TIME)
# Lines of a solution or hidden region shorter than this ("else:", "return x") are too common
# to recognise as secret: feedback withholds, and publishing refuses, only longer ones.
MIN_SECRET_LINE = 12


def nbgrader_meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def course_meta(cell) -> dict:
    value = cell.get("metadata", {}).get("course", {})
    return value if isinstance(value, dict) else {}


def grade_id(cell) -> str | None:
    return nbgrader_meta(cell).get("grade_id")


def name(cell) -> str:
    """How reports name a cell: its grade id, else its cell id."""
    return grade_id(cell) or str(cell.get("id", "?"))


def is_grade(cell) -> bool:
    return bool(nbgrader_meta(cell).get("grade"))


def is_solution(cell) -> bool:
    return bool(nbgrader_meta(cell).get("solution"))


def is_locked(cell) -> bool:
    return bool(nbgrader_meta(cell).get("locked"))


def is_test(cell) -> bool:
    """An autograded test cell: graded, not an answer (bonus cells included)."""
    return cell.get("cell_type") == "code" and is_grade(cell) and not is_solution(cell)


def is_answer(cell) -> bool:
    """A cell a person grades: graded and an answer (the written answers are markdown)."""
    return is_grade(cell) and is_solution(cell)


def is_written_answer(cell) -> bool:
    return cell.get("cell_type") == "markdown" and is_solution(cell)


def passed(cell) -> bool:
    """nbgrader's rule for a test cell: no error output and nothing on stderr."""
    return not any(out.get("output_type") == "error" or (out.get("output_type") == "stream" and out.get("name") == "stderr")
                   for out in cell.get("outputs", []))


def points(cell) -> float:
    return float(nbgrader_meta(cell).get("points") or 0)


def bonus(cell) -> float | None:
    """Extra credit of a bonus test cell (only ever read from source/), else None."""
    value = course_meta(cell).get("bonus")
    return None if value is None or not is_grade(cell) else float(value)


def rubric_of(cell) -> str | None:
    """The grade id of the answer a rubric cell belongs to, or None for any other cell."""
    value = course_meta(cell).get("rubric") if cell.get("cell_type") == "markdown" else None
    return str(value) if value else None


LIKELY_CAUSES = "likely_causes"


def likely_causes(cell) -> list[str]:
    """The likely causes recorded on a graded test cell (one, two possible ones, or none);
    anything malformed there counts as none."""
    value = course_meta(cell).get(LIKELY_CAUSES)
    return [c for c in value if isinstance(c, str) and c.strip()] if isinstance(value, list) else []


def is_evidence(cell) -> bool:
    """The review evidence the recording puts on top of a flagged autograded notebook
    (course/review.py); never a cell a submission brings."""
    return cell.get("cell_type") == "markdown" and bool(course_meta(cell).get("evidence"))


def region_lines(source: str, delimiters: Delimiters) -> set[int]:
    """1-based numbers of the lines inside a region, delimiter lines included.

    Raises ValueError for a region opened twice, closed without being opened, or left open.
    """
    numbers, inside = set(), False
    for number, line in enumerate(source.splitlines(), start=1):
        if delimiters.begin in line:
            if inside:
                raise ValueError(f"nested '{delimiters.begin}' on line {number}")
            inside = True
        if inside:
            numbers.add(number)
        if delimiters.end in line:
            if not inside:
                raise ValueError(f"'{delimiters.end}' without a '{delimiters.begin}' on line {number}")
            inside = False
    if inside:
        raise ValueError(f"no '{delimiters.end}' after '{delimiters.begin}'")
    return numbers


def split_region(source: str, delimiters: Delimiters) -> tuple[list[str], list[str]]:
    """(lines inside the regions, lines outside them), delimiter lines in neither."""
    inside_numbers = region_lines(source, delimiters)
    inside, outside = [], []
    for number, line in enumerate(source.splitlines(), start=1):
        if delimiters.marks(line):
            continue
        (inside if number in inside_numbers else outside).append(line)
    return inside, outside


def without_region(source: str, delimiters: Delimiters) -> str:
    """The source with its regions removed: a test cell as the release shows it."""
    hidden = region_lines(source, delimiters)
    return "\n".join(line for number, line in enumerate(source.splitlines(), start=1)
                     if number not in hidden).strip("\n")


def strip_delimiters(source: str, delimiters: Delimiters = SOLUTION) -> str:
    """The source with the delimiter lines dropped and the region's content kept (an answer
    cell of source/ as the instructor's solution)."""
    return "\n".join(line for line in source.split("\n") if line.strip() not in (delimiters.begin, delimiters.end))
