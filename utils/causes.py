"""Likely causes of a failed test: a failure's message, normalised, looked up among the
failures of the course's known mistakes. This module imports nothing of its package: the
course loads it by its path, without torch (course/config.py ``helper_module``).

Used by the hand-in check (utils/handin.py, with ``utils/causes/<assignment>.json``) and by
the grader (course/engine/recording.py, with ``mutations/<assignment>.causes.json``). Both
files are written by ``python -m course causes ASSIGNMENT`` (course/commands/causes.py) from
the mutation suite: for every test cell, the normalised messages of the mistakes that fail
it, each with the misconceptions it names (none where too few mistakes agree on one: a
wrong cause misleads, a missing one does not). The file students get holds only the
messages raised by the visible lines of a test cell, which their own run shows them anyway.

A **signature** is a test cell's grade id and its failure's first line with everything that
depends on the submission replaced: numbers by ``<n>``, array and list contents by
``<array>``, quoted values by ``<q>``; the exception's type is kept without its module.
The same function normalises the suite's failures and a graded or checked notebook's, so
both sides agree by construction.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

FOLDER = Path(__file__).resolve().parent / "causes"  # the signatures students get
MAX_SIGNATURE = 300  # characters; longer messages are compared on their start
NUMBER, ARRAY, QUOTED = "<n>", "<array>", "<q>"

_TYPE = re.compile(r"^(?:[A-Za-z_][\w]*\.)+(?=[A-Za-z_]\w*(?::|$))")  # torch._C._LinAlgError: -> _LinAlgError:
_ARRAY_START = re.compile(r"(?:\b(?:tensor|array|Parameter containing:)\s*\(|\[)")
_QUOTED = re.compile(r"""(?<![\w'"])(?:'[^'\n]*'|"[^"\n]*")(?![\w'"])""")
_NUMBER = re.compile(r"(?<![\w.<])[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![\w>])|(?<![\w<])-?(?:nan|inf)\b")
_SPACES = re.compile(r"\s+")
# Failures that say an answer is missing, not what is wrong with it: a name the test needs was
# never defined (the exercise is not written yet, or its cell raised), or the placeholder raises.
_PLACEHOLDER = re.compile(r"^\s*raise NotImplementedError\b", re.M)  # what the release puts in an answer
_UNANSWERED = re.compile(r"\bNameError\b|\bNotImplementedError\b|\bis not defined\b")


def _arrays(text: str) -> str:
    """Replace each bracketed array (``[...]``, ``tensor(...)``, ``array(...)``), nested
    brackets included, by ``<array>``; an unclosed bracket keeps the rest as it is."""
    out, i = [], 0
    while (m := _ARRAY_START.search(text, i)) is not None:
        depth, j = 0, m.end() - 1
        while j < len(text):
            depth += text[j] in "([{"
            depth -= text[j] in ")]}"
            if depth == 0:
                break
            j += 1
        if depth:  # unclosed: nothing more to replace
            break
        out.append(text[i:m.start()] + ARRAY)
        i = j + 1
    return "".join(out) + text[i:]


def normalise(message: str) -> str:
    """The signature text of a failure message (its first line): see the module docstring."""
    first = (message or "").strip().split("\n", 1)[0].strip()
    first = _TYPE.sub("", first)
    first = _QUOTED.sub(QUOTED, first)
    first = _arrays(first)
    first = _NUMBER.sub(NUMBER, first)
    first = _SPACES.sub(" ", first).strip().rstrip(":").strip()
    return first[:MAX_SIGNATURE]


def informative(signature: str) -> bool:
    """Whether a failure can point at a misconception: one that only says a name is missing
    cannot (a blank exercise fails that way too), so it never gets a cause."""
    return not _UNANSWERED.search(signature)


def unanswered(cell) -> bool:
    """Whether an executed answer cell still holds or raises the placeholder's NotImplementedError
    (a function whose body is still the placeholder raises only when a later cell calls it)."""
    source = cell.get("source", "")
    source = "".join(source) if isinstance(source, list) else str(source)
    return _PLACEHOLDER.search(source) is not None or any(
        output.get("output_type") == "error" and output.get("ename") == "NotImplementedError"
        for output in cell.get("outputs", []) or [])


def message_of(ename: str, evalue: str) -> str:
    """The failure message of a notebook's error output, as the mutation suite writes one."""
    return f"{ename}: {evalue}" if str(evalue).strip() else str(ename)


def table(data: dict) -> dict[tuple[str, str], list[str]]:
    """(test cell, signature) -> causes, from a causes file's ``signatures`` list; anything
    malformed in it is skipped."""
    found = {}
    for entry in data.get("signatures", []) if isinstance(data, dict) else []:
        try:
            causes = [str(c) for c in entry["causes"] if str(c).strip()]
            key = (str(entry["cell"]), str(entry["signature"]))
        except (KeyError, TypeError):
            continue
        if causes:
            found[key] = causes
    return found


def load(path: Path) -> dict[tuple[str, str], list[str]]:
    """The table of a causes file; empty if it is missing or unreadable (no causes, no error)."""
    try:
        return table(json.loads(Path(path).read_text()))
    except (OSError, ValueError):
        return {}


def lookup(signatures: dict[tuple[str, str], list[str]], cell: str, message: str) -> list[str]:
    """The causes recorded for a failure of ``cell`` with ``message``: one (likely), two
    (possible, an ambiguous signature) or none."""
    signature = normalise(message)
    return list(signatures.get((cell, signature), [])) if informative(signature) else []


def describe(causes: list[str]) -> str:
    """The line a page or report shows for the causes ``lookup`` found ("" for none)."""
    if not causes:
        return ""
    if len(causes) == 1:
        return f"Likely cause: {causes[0]}"
    return "Possible causes: " + "; ".join(causes)


def for_assignment(assignment: str) -> dict[tuple[str, str], list[str]]:
    """The signatures students get for an assignment (visible checks only)."""
    return load(FOLDER / f"{assignment}.json")


def cell_message(cell) -> str | None:
    """The failure message of an executed notebook cell, as the mutation suite writes it: its
    first error, else the first line it wrote to stderr (nbgrader's other failure); None if
    neither."""
    outputs = cell.get("outputs", []) or []
    for output in outputs:
        if output.get("output_type") == "error":
            return message_of(output.get("ename", ""), output.get("evalue", ""))
    for output in outputs:
        if output.get("output_type") == "stream" and output.get("name") == "stderr":
            text = "".join(output.get("text", "")) if isinstance(output.get("text"), list) else str(output.get("text", ""))
            if text.strip():
                return f"wrote to stderr: {text.strip().splitlines()[0]}"
    return None
