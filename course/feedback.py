"""Keep hidden tests out of the feedback students receive.

nbgrader restores the full test cells, hidden regions included, before it
grades, so the autograded notebook (and the HTML made from it) would show
them. This preprocessor runs in GenerateFeedback's pipeline (see
nbgrader_config.py):

* it removes the hidden regions from the source of the test cells;
* because IPython tracebacks quote the lines around the failing one, the
  traceback of any error in such a cell becomes its one-line message;
* student code can print executed code (``print(In)``, ``inspect.getsource``),
  so every output line, in any cell, that quotes a hidden line is withheld too.
"""

from __future__ import annotations

from nbgrader import utils
from nbgrader.preprocessors import ClearHiddenTests

WITHHELD = "(a hidden test failed here; its code is not shown)"
WITHHELD_LINE = "[hidden test code withheld]"
# Hidden lines shorter than this ("else:", ")") are too common to withhold on sight.
MIN_QUOTE = 12
TEXT_KINDS = ("text/plain", "text/html", "text/markdown", "text/latex")


def hidden_lines(cell, begin: str, end: str) -> set[str]:
    lines, inside = set(), False
    for line in cell.source.splitlines():
        if begin in line or end in line:
            inside = begin in line
        elif inside and len(line.strip()) >= MIN_QUOTE:
            lines.add(line.strip())
    return lines


def _scrub(text: str, secrets: set[str]) -> str:
    kept = [WITHHELD_LINE if any(secret in line for secret in secrets) else line
            for line in text.split("\n")]
    return "\n".join(kept)


def _scrub_output(output, secrets: set[str]) -> None:
    if output.output_type == "stream":
        output.text = _scrub(output.text, secrets)
    elif output.output_type == "error":
        output.evalue = _scrub(output.evalue, secrets)
        output.traceback = [_scrub(line, secrets) for line in output.traceback]
    elif "data" in output:
        for kind in TEXT_KINDS:
            if kind in output.data:
                value = output.data[kind]
                text = "".join(value) if isinstance(value, list) else value
                output.data[kind] = _scrub(text, secrets)


class WithholdHiddenTests(ClearHiddenTests):
    def preprocess(self, nb, resources):
        secrets = set()
        for cell in nb.cells:
            if cell.cell_type == "code" and utils.is_grade(cell):
                secrets |= hidden_lines(cell, self.begin_test_delimeter, self.end_test_delimeter)
        nb, resources = super().preprocess(nb, resources)
        if secrets:
            for cell in nb.cells:
                for output in cell.get("outputs", []):
                    _scrub_output(output, secrets)
        return nb, resources

    def preprocess_cell(self, cell, resources, cell_index):
        if cell.cell_type == "code" and utils.is_grade(cell) and self._remove_hidden_test_region(cell):
            for output in cell.get("outputs", []):
                if output.output_type == "error":
                    output.traceback = [f"{output.ename}: {output.evalue}", WITHHELD]
        return cell, resources
