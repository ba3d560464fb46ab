"""nbgrader settings for the course pack.

`python -m course ...` (and `make`) run nbgrader with this file; the course's
own settings (name, Colab repository) are in course.toml.
"""

import os
import sys

ROOT = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, ROOT)  # the course package, also without `pip install -e .`

from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor  # noqa: E402
from nbgrader.converters import Autograde, GenerateAssignment  # noqa: E402
from nbgrader.preprocessors import Execute, GetGrades  # noqa: E402

from course.config import settings  # noqa: E402
from course.engine.execute import ExecuteKeepingScores  # noqa: E402
from course.plugins.bonus import AwardBonusPoints  # noqa: E402
from course.plugins.colab import AddColabCells  # noqa: E402
from course.plugins.feedback import BuildFeedbackPage  # noqa: E402
from course.plugins.feedback_page import FeedbackExporter  # noqa: E402
from course.plugins.late import LatePenaltyPerDay  # noqa: E402
from course.plugins.rubric import InsertRubrics, StripRubrics  # noqa: E402

c = get_config()  # noqa: F821 (provided by nbgrader when it loads this file)

c.CourseDirectory.root = ROOT
c.CourseDirectory.course_id = settings().course_id
# Generator scripts and caches in source/<assignment>/ are not handed out.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "make_*.py"]

# Student versions: nbgrader's pipeline, then the Colab badge and setup cell.
# Rubric cells (model answer and marking criteria, course/plugins/rubric.py) are for graders only.
c.GenerateAssignment.preprocessors = [*GenerateAssignment.class_traits()["preprocessors"].default(), StripRubrics,
                                      AddColabCells]
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Execution during autograding: the cell timeout is a grading limit of course.toml
# ([grading] cell_s), which the course's own grader reads too (course/engine/worker.py).
c.Execute.timeout = settings().grading.limits.cell_s
c.Execute.startup_timeout = 120
# Warnings on stderr (a UserWarning from torch, a DeprecationWarning from a
# library) must not zero a test cell: nbgrader scores any stderr output as an
# error, so stderr text that starts with a Python warning is dropped before
# scoring. Real errors are 'error' outputs, not stderr text, and still score 0.
c.IgnorePattern.enabled = True
c.IgnorePattern.pattern = r"\A[^\n]*\w+Warning: "

# nbgrader's own autograde pipeline, for anyone who runs `nbgrader autograde` directly; the
# course's grader runs these steps itself, executing in the sandbox and recording in the
# parent (course/engine/recording.py), with the settings of this file. Bonus cells
# (course/plugins/bonus.py) earn extra credit once nbgrader has saved the grades; the
# autograded notebook (what the formgrader shows) gets each written answer's rubric; a kernel
# that dies in one cell costs that cell, not the scores before it (course/engine/execute.py).
c.Autograde.autograde_preprocessors = [
    *(ExecuteKeepingScores if p is Execute else p for p in Autograde.class_traits()["autograde_preprocessors"].default()),
    AwardBonusPoints, InsertRubrics]

# Feedback: the student's submitted cells and outputs with scores and one-line verdicts
# (course/plugins/feedback.py); nothing the graded kernel printed; no CDN
# (course/plugins/feedback_page.py). The course's grader writes the same pages itself.
c.GenerateFeedback.preprocessors = [GetGrades, BuildFeedbackPage, CSSHTMLHeaderPreprocessor]
c.GenerateFeedback.exporter_class = FeedbackExporter

# Late work: due dates are in course.toml [due]; submission times come from `course collect`
# (timestamp.txt). The penalty takes this percentage of the autograded score per started
# day late; 0 reports late work without penalising it.
c.AssignLatePenalties.plugin_class = LatePenaltyPerDay
c.LatePenaltyPerDay.percent_per_day = 0.0
