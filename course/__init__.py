"""Course tooling: generate student versions, build sample submissions, grade (wraps nbgrader)."""
