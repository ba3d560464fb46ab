"""How well and how fast the similarity report finds planted copies, in one run.

Builds a class (tests/similarity_corpus.py): honest submissions assembled from the course's own
differently written answers, planted copies disguised by renaming, reformatting, reordering
and a few changed lines, and blank or nearly blank notebooks. Then runs the report
(`python -m course similarity`, in-process, on files on disk) and prints:

  * the share of planted copies whose pair with the original ranks in the top 5 % of all
    pairs (goal: at least 95 %), by disguise;
  * the best rank a pair with a blank or nearly blank notebook reaches (goal: outside the top 5 %);
  * the time of the whole report for the class (goal: 300 submissions in at most 60 s on the
    2-core machine), and the machine's load while it ran.

The same class is also ranked by two alternatives, for comparison: every fingerprint counted
alike (no rarity weighting), and copydetect 0.5.0 on the same extracted student code (its own
pygments tokenizer, winnowing and boilerplate removal; score: the larger of its two
similarities), when copydetect is installed.

    python benchmarks/bench_similarity.py [--assignment A] [--students 300] [--copies 30] [--blanks 30]
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
import similarity_corpus  # noqa: E402

from course.commands import similarity  # noqa: E402
from course.commands import similarity_scores as scores  # noqa: E402
from course.commands.student_work import load_release  # noqa: E402


def ranking(names: list[str], pairs: list[tuple[str, str, float]]) -> dict[frozenset, int]:
    """Rank of every pair (1 = most similar); ties share the worst rank among them."""
    ordered = sorted(pairs, key=lambda p: -p[2])
    values = np.array([-p[2] for p in ordered])
    worst = np.searchsorted(values, values, side="right")  # ties: everyone gets the last place of the tie
    return {frozenset((a, b)): int(r) for (a, b, _), r in zip(ordered, worst)}


def evaluate(name: str, ranks: dict[frozenset, int], cls: similarity_corpus.Class) -> bool:
    total = len(ranks)
    cut = int(0.05 * total)
    found, by_how = [], {}
    for copy, (original, how) in cls.copies.items():
        rank = ranks[frozenset((copy, original))]
        found.append(rank <= cut)
        by_how.setdefault(how, []).append(rank)
    blank_ranks = [r for pair, r in ranks.items() if pair & cls.blank]
    planted = {frozenset((c, o)) for c, (o, _) in cls.copies.items()}
    others = min(r for pair, r in ranks.items() if pair not in planted)
    share = sum(found) / len(found)
    best_blank = min(blank_ranks)
    print(f"\n{name}: {total} pairs, top 5 % = the first {cut}")
    print(f"  planted copies in the top 5 %: {sum(found)}/{len(found)} = {share:.1%} (goal >= 95 %)")
    for how, rs in by_how.items():
        print(f"    {how:32s} ranks {sorted(rs)}")
    print(f"  best rank of a pair that is not a planted copy: {others}")
    print(f"  pairs with a blank or nearly blank notebook: {len(blank_ranks)}; best rank {best_blank} "
          f"({best_blank / total:.1%} from the top; goal: outside the top 5 %)")
    return share >= 0.95 and best_blank > cut


def ours(analysis) -> list[tuple[str, str, float]]:
    w = analysis.works
    return [(w[p.a].student, w[p.b].student, p.score) for p in analysis.pairs]


def copydetect_pairs(analysis, release) -> tuple[list[tuple[str, str, float]], float]:
    """copydetect 0.5.0 on each submission's own code (the lines the report counts), release as boilerplate."""
    from copydetect import CodeFingerprint, compare_files

    start = time.perf_counter()
    boiler = [CodeFingerprint("release.py", 25, 6, fp=io.StringIO(code)) for code in release.code]
    boilerplate = np.unique(np.concatenate([list(b.hashes) for b in boiler] + [np.zeros(0, int)]))
    prints = []
    for work in analysis.works:
        own = "\n".join("\n".join(line for n, line in enumerate(p.text.splitlines()) if n not in p.given)
                        for p in work.pieces if p.kind == "code")
        prints.append(CodeFingerprint(f"{work.student}.py", 25, 6, boilerplate=boilerplate, fp=io.StringIO(own)))
    pairs = []
    for i in range(len(prints)):
        for j in range(i + 1, len(prints)):
            _, (s1, s2), _ = compare_files(prints[i], prints[j])
            pairs.append((analysis.works[i].student, analysis.works[j].student, float(max(s1, s2))))
    return pairs, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--assignment", default="autodiff")
    parser.add_argument("--students", type=int, default=300)
    parser.add_argument("--copies", type=int, default=30)
    parser.add_argument("--blanks", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-copydetect", action="store_true", help="skip the copydetect comparison")
    args = parser.parse_args()

    cls = similarity_corpus.build(args.assignment, args.students, args.copies, args.blanks, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        submitted = Path(tmp) / "submitted"
        cls.write(submitted, args.assignment)
        load = os.getloadavg()[0]
        start = time.perf_counter()
        written = similarity.run(args.assignment, submitted=submitted, out=Path(tmp) / "reports")
        seconds = time.perf_counter() - start
        page_mb = written.html.stat().st_size / 2**20
    print(f"{args.students} submissions of {args.assignment} ({args.copies} planted copies, {args.blanks} blank or "
          f"nearly blank): the report took {seconds:.1f} s (goal <= 60 s on 2 cores); load average "
          f"{load:.1f} before, {os.getloadavg()[0]:.1f} after, on {os.cpu_count()} CPUs; page {page_mb:.1f} MB")
    ok = evaluate("this report", ranking(list(cls.notebooks), ours(written.analysis)), cls)
    flat = scores.score(written.analysis.works, written.analysis.prints, by_rarity=False)
    evaluate("every fingerprint counted alike (no rarity weighting)", ranking(list(cls.notebooks), ours(flat)), cls)
    if not args.no_copydetect:
        try:
            release = load_release(similarity.RELEASE / args.assignment)
            pairs, cd_seconds = copydetect_pairs(written.analysis, release)
            evaluate(f"copydetect 0.5.0 ({cd_seconds:.1f} s for fingerprints and pairs)",
                     ranking(list(cls.notebooks), pairs), cls)
        except ImportError:
            print("\ncopydetect is not installed: `pip install -r requirements.txt` for the comparison")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
