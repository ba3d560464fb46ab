"""The course's commands, one module each (``python -m course <command>``, course/cli.py).

release, samples, collect, grade, feedback, scores, export, publish, mutations, review,
regrade, verify: each is what an instructor runs (``receipt`` only prints one: course/cli.py);
grading itself is the engine's (course/engine/), and what nbgrader runs inside its own
pipelines is in course/plugins/.
"""
