"""How often "Likely cause" names the right misconception, from the recorded signatures.

Reads the signatures ``python -m course causes`` recorded (``mutations/<assignment>.causes.json``:
each mistake's failures, as cell and normalised message, and its diagnosis); runs nothing.
For each assignment it prints, per failure of a mistake in a cell it declares:

  * **held out**: the signatures are derived from half of each cell's mistakes (a fixed
    split: in the order of their ids, alternately) and the other half is looked up. A failure
    gets its own diagnosis as the likely cause ("right"), its diagnosis among two possible
    causes ("possible"), only other diagnoses ("wrong"), or nothing ("none");
    Only a failure whose misconception some mistake of the derived half shares (in that cell)
    can be right; that share is printed too;
  * **all**: the same lookup with the whole table (what grading uses), on the mistakes the
    table was built from: the share a known mistake is told its own misconception;
  * the signatures students get (visible checks only) and the share of all that are ambiguous.

    python benchmarks/bench_causes.py [ASSIGNMENT ...]
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from course.commands import causes  # noqa: E402


def _share(counts: Counter, total: int) -> str:
    return " | ".join(f"{100 * counts[o] / total:.0f} %" if total else "-" for o in causes.OUTCOMES)


def in_sample(seen: list[causes.Seen]) -> Counter:
    """The outcomes of looking every recorded failure up in the table built from all of them."""
    signatures = causes.student_causes.table({"signatures": causes.lookup_table(seen)})
    outcomes = Counter({outcome: 0 for outcome in causes.OUTCOMES})
    for s in seen:
        found = signatures.get((s.cell, s.signature), [])
        key = "none" if not found else "wrong" if s.diagnosis not in found else \
            "right" if len(found) == 1 else "right among possible"
        outcomes[key] += 1
    return outcomes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("assignments", nargs="*", help="default: every assignment with recorded signatures")
    args = parser.parse_args(argv)
    names = args.assignments or [a for a in causes.assignments_with_diagnoses() if causes.grader_path(a).is_file()]
    print("| assignment | failures | held out: right / possible / wrong / none | held out: misconception also in "
          "the derived half | all: right / possible / wrong / none | signatures (ambiguous) | for students |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    total_held, total_all, n_held, n_all = Counter(), Counter(), 0, 0
    for name in names:
        seen = causes.recorded(name)
        held, every = causes.held_out(seen), in_sample(seen)
        derive, judge = causes.split(seen)
        judged, known = len(judge), {(s.cell, s.diagnosis) for s in derive}
        coverable = sum((s.cell, s.diagnosis) in known for s in judge)
        table = causes.lookup_table(seen)
        shipped = len(causes.lookup_table([s for s in seen if s.visible]))
        print(f"| `{name}` | {len(seen)} | {_share(held, judged)} | {100 * coverable / max(judged, 1):.0f} % | "
              f"{_share(every, len(seen))} | "
              f"{len(table)} ({sum(e['ambiguous'] for e in table)}) | {shipped} |")
        total_held.update(held)
        total_all.update(every)
        n_held, n_all = n_held + judged, n_all + len(seen)
    if len(names) > 1:
        print(f"| all | {n_all} | {_share(total_held, n_held)} | | {_share(total_all, n_all)} | | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
