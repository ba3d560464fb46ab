"""How often "Likely cause" names the right misconception, from the recorded signatures.

Reads the signatures ``python -m course causes`` recorded (``mutations/<assignment>.causes.json``:
each mistake's failures, as cell and normalised message, and its diagnosis); runs nothing.
The table is built by the rule of ``course.commands.causes.causes_of`` (a signature names a
diagnosis only where at least two mistakes with it, and no lone other one, produced it). For
each assignment it prints, per failure of a mistake in a cell it declares, the share that gets
its own diagnosis as the likely cause ("right"), its diagnosis among two possible causes
("possible"), only other diagnoses ("wrong"), or nothing ("none"):

  * **held out**: the table is derived from half of each cell's mistakes (a fixed split: in
    the order of their ids, alternately) and the other half is looked up. Only a failure
    whose misconception has the rule's support among the derived half's mistakes in that
    cell can be right; that share is printed too ("could be right");
  * **one left out**: each mistake looked up in the table of all the others (the table
    grading uses, less that mistake): what a mistake the suite does not hold would get;
  * **all**: the whole table (what grading uses) on the mistakes it was built from: the share
    a known mistake is told its own misconception (in sample);
  * **hand-in, held out**: the split on the failures students see (visible checks, and the
    cells run as the release has them), the lookup the hand-in check makes;
  * the signatures, those that name a cause, and those students get.

    python benchmarks/bench_causes.py [ASSIGNMENT ...]
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from course.commands import causes  # noqa: E402


def _share(counts: Counter) -> str:
    total = sum(counts.values())
    return " / ".join(f"{100 * counts[o] / total:.0f} %" if total else "-" for o in causes.OUTCOMES)


def coverable(seen: list[causes.Seen]) -> float:
    """The share of the judged half whose misconception at least ``causes.SUPPORT`` mistakes of
    the derived half share in that cell: an upper bound of "right" held out."""
    derive, judge = causes.split(seen)
    known = Counter((s.cell, s.diagnosis) for s in {(s.mistake, s.cell, s.diagnosis): s for s in derive}.values())
    return sum(known[s.cell, s.diagnosis] >= causes.SUPPORT for s in judge) / max(len(judge), 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("assignments", nargs="*", help="default: every assignment with recorded signatures")
    args = parser.parse_args(argv)
    names = args.assignments or [a for a in causes.assignments_with_diagnoses() if causes.grader_path(a).is_file()]
    columns = ("held", "left", "all", "handin")
    print("| assignment | graded failures | held out: right / possible / wrong / none | held out: could be right "
          "| one left out: right / possible / wrong / none | all: right / possible / wrong / none "
          "| hand-in, held out: right / possible / wrong / none | signatures (naming a cause) | for students |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    totals = {key: Counter() for key in columns}
    for name in names:
        seen = causes.recorded(name)
        graded = [s for s in seen if not s.released]  # what grading looks up
        students = [s for s in seen if s.visible]  # what the hand-in check looks up
        found = {"held": causes.held_out(graded), "left": causes.left_out(graded),
                 "all": causes.outcomes(graded, graded), "handin": causes.held_out(students)}
        table = causes.lookup_table(graded)
        print(f"| `{name}` | {len(graded)} | {_share(found['held'])} | {100 * coverable(graded):.0f} % | "
              f"{_share(found['left'])} | {_share(found['all'])} | {_share(found['handin'])} | "
              f"{len(table)} ({sum(bool(e['causes']) for e in table)}) | "
              f"{sum(bool(e['causes']) for e in causes.lookup_table(students))} |")
        for key in columns:
            totals[key].update(found[key])
    if len(names) > 1:
        print(f"| all | {sum(totals['all'].values())} | {_share(totals['held'])} | | {_share(totals['left'])} | "
              f"{_share(totals['all'])} | {_share(totals['handin'])} | | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
