"""The scores of the similarity report: every pair of submissions, from their fingerprints.

Submissions × fingerprints is a sparse 0/1 matrix; a fingerprint weighs log((N + 1) / df) (N
submissions, this year's and the reference corpus together; df those that hold it), so code that
many students write alike counts little and code that two alone share counts most. What a pair
shares is one sparse product per channel (code, written answers, output); its score is that
weight over the weight of the smaller submission, or over a floor (fingerprints.FLOOR_SHARE of
the median submission of this year), whichever is larger.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from . import fingerprints as fp
from .student_work import Release, Work


@dataclass(frozen=True)
class Pair:
    a: int  # index into Analysis.works (always a submission of this year)
    b: int
    score: float  # code + text + output: the share of the smaller submission the two share
    code: float
    text: float
    output: float
    shared: int  # fingerprints in common


@dataclass
class Analysis:
    works: list[Work]  # this year's first, then the reference corpus
    prints: list[fp.Print]
    pairs: list[Pair]  # best first
    hashes: np.ndarray  # every fingerprint, sorted
    df: np.ndarray  # in how many submissions each of them is
    floor: float  # the smallest denominator of a score

    def df_of(self, hashes: np.ndarray) -> np.ndarray:
        return self.df[np.searchsorted(self.hashes, hashes)]


def _matrix(prints: list[fp.Print]):
    """Submissions × fingerprints (sparse), the fingerprints, their document frequency and channel."""
    rows = np.concatenate([np.full(len(p.hashes), i) for i, p in enumerate(prints)] + [np.zeros(0, int)])
    every = np.concatenate([p.hashes for p in prints] + [np.zeros(0, np.uint64)])
    kinds = np.concatenate([p.kinds for p in prints] + [np.zeros(0, np.int8)])
    hashes, first, cols = np.unique(every, return_index=True, return_inverse=True)
    x = sparse.csr_matrix((np.ones(len(cols)), (rows, cols.ravel())), shape=(len(prints), len(hashes)))
    return x, hashes, np.bincount(cols.ravel(), minlength=len(hashes)), kinds[first]


def score(works: list[Work], prints: list[fp.Print], by_rarity: bool = True) -> Analysis:
    """Every pair of a submission of this year with another one (of this year or the reference).
    ``by_rarity`` False counts every fingerprint alike (the benchmark's comparison)."""
    x, hashes, df, kinds = _matrix(prints)
    # log((N + 1) / df): a fingerprint that every submission has still counts a little (two submissions)
    weight = np.log((len(prints) + 1) / np.maximum(df, 1)) if by_rarity else np.ones(len(hashes))
    current = [i for i, w in enumerate(works) if not w.reference]
    totals = x @ weight
    positive = totals[current][totals[current] > 0]
    floor = fp.FLOOR_SHARE * float(np.median(positive)) if len(positive) else 1.0
    xc = x[current]
    shared = [(xc.multiply(np.where(kinds == c, weight, 0.0)) @ x.T).toarray() for c in range(len(fp.CHANNELS))]
    counts = (xc @ x.T).toarray()
    pairs = []
    for row, a in enumerate(current):
        for b in range(len(works)):
            if b == a or (not works[b].reference and b < a):
                continue
            denominator = max(min(totals[a], totals[b]), floor)
            parts = [s[row, b] / denominator for s in shared]
            pairs.append(Pair(a, b, sum(parts), *parts, int(counts[row, b])))
    pairs.sort(key=lambda p: (-p.score, works[p.a].student, works[p.b].student))
    return Analysis(works, prints, pairs, hashes, df, floor)


def analyse(current: list[Work], reference: list[Work], release: Release) -> Analysis:
    works = current + reference
    known, cache = fp.known_names(release), {}
    boilerplate = fp.boilerplate(release, known, cache)
    return score(works, [fp.fingerprint(w, known, boilerplate, cache) for w in works])
