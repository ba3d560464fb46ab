"""Keep hidden tests out of the feedback students receive.

nbgrader restores the full test cells, hidden regions included, before it
grades, so the autograded notebook (and the HTML made from it) would show
them. This preprocessor runs in GenerateFeedback's pipeline (see
nbgrader_config.py): it removes the hidden regions from the source and,
because IPython tracebacks quote the lines around the failing one, replaces
the traceback of any error in such a cell by its one-line message.
"""

from __future__ import annotations

from nbgrader import utils
from nbgrader.preprocessors import ClearHiddenTests

WITHHELD = "(a hidden test failed here; its code is not shown)"


class WithholdHiddenTests(ClearHiddenTests):
    def preprocess_cell(self, cell, resources, cell_index):
        if cell.cell_type == "code" and utils.is_grade(cell) and self._remove_hidden_test_region(cell):
            for output in cell.get("outputs", []):
                if output.output_type == "error":
                    output.traceback = [f"{output.ename}: {output.evalue}", WITHHELD]
        return cell, resources
