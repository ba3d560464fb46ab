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
  * **hand-in, held out**: the same split on the failures students see (visible checks, and the
    cells run as the release has them), the lookup the hand-in check makes;
  * the signatures (how many are ambiguous) and those students get.

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
    return " / ".join(f"{100 * counts[o] / total:.0f} %" if total else "-" for o in causes.OUTCOMES)


def coverable(seen: list[causes.Seen]) -> float:
    """The share of the judged half whose misconception some mistake of the derived half shares
    in that cell: an upper bound of "right" held out."""
    derive, judge = causes.split(seen)
    known = {(s.cell, s.diagnosis) for s in derive}
    return sum((s.cell, s.diagnosis) in known for s in judge) / max(len(judge), 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("assignments", nargs="*", help="default: every assignment with recorded signatures")
    args = parser.parse_args(argv)
    names = args.assignments or [a for a in causes.assignments_with_diagnoses() if causes.grader_path(a).is_file()]
    print("| assignment | graded failures | held out: right / possible / wrong / none | held out: could be right "
          "| all: right / possible / wrong / none | hand-in, held out: right / possible / wrong / none "
          "| signatures (ambiguous) | for students |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    totals = {"held": Counter(), "all": Counter(), "handin": Counter()}
    sizes = Counter()
    for name in names:
        seen = causes.recorded(name)
        graded = [s for s in seen if not s.released]  # what grading looks up
        students = [s for s in seen if s.visible]  # what the hand-in check looks up
        held, every, handin = causes.held_out(graded), causes.outcomes(graded, graded), causes.held_out(students)
        n = {"held": len(causes.split(graded)[1]), "all": len(graded), "handin": len(causes.split(students)[1])}
        table = causes.lookup_table(graded)
        print(f"| `{name}` | {len(graded)} | {_share(held, n['held'])} | {100 * coverable(graded):.0f} % | "
              f"{_share(every, n['all'])} | {_share(handin, n['handin'])} | "
              f"{len(table)} ({sum(e['ambiguous'] for e in table)}) | {len(causes.lookup_table(students))} |")
        for key, counts in (("held", held), ("all", every), ("handin", handin)):
            totals[key].update(counts)
            sizes[key] += n[key]
    if len(names) > 1:
        print(f"| all | {sizes['all']} | {_share(totals['held'], sizes['held'])} | | "
              f"{_share(totals['all'], sizes['all'])} | {_share(totals['handin'], sizes['handin'])} | | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
