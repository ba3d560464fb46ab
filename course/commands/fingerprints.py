"""Fingerprints of student work and the similarity of two submissions.

Code is tokenized with Python's own tokenizer and normalised, so that what a copier changes
cheaply changes nothing here: comments, docstrings, blank lines and spacing are dropped; every
name the student invented becomes ``V`` (names the release or Python provides, like ``torch``
or ``range``, and attributes, like ``.backward``, stay); every string becomes ``S``; numbers are
compared by value; line ends and ``;`` are one token. Written answers are lower-cased words;
outputs are lines with numbers rounded to 4 significant digits.

Fingerprints are hashes of k consecutive tokens within one piece (a cell's code, a written
answer, a cell's output), selected by winnowing (Schleimer, Wilkerson and Aiken, SIGMOD 2003:
the rightmost minimum of every window of w hashes), so that any match of k + w - 1 tokens is
found. A submission is the *set* of its fingerprints: the order of its cells does not matter.
Fingerprints of the released notebooks are removed from every submission (boilerplate).

A fingerprint found in many submissions is weak evidence (the obvious way to write a loop):
each counts log((N + 1) / df), N submissions, df those that have it. The score of a pair is the
weight of what the two share divided by the weight of the smaller of the two, but by no less
than a fixed share of a typical submission's weight, so that two nearly blank notebooks that
share a line do not outrank two complete ones that share whole cells.
"""

from __future__ import annotations

import ast
import builtins
import io
import keyword
import math
import re
import tokenize
import zlib
from dataclasses import dataclass

import numpy as np

from .student_work import CODE, OUTPUT, TEXT, Piece, Release, Work

K = {CODE: 8, TEXT: 5, OUTPUT: 1}  # tokens per fingerprint; an output line is one token
WINDOW = {CODE: 4, TEXT: 2, OUTPUT: 1}  # winnowing window: any match of K + WINDOW - 1 is found
MIN_TOKENS = {CODE: 5, TEXT: 4, OUTPUT: 1}  # a shorter piece is no evidence at all
SALT = {CODE: 0x9E3779B97F4A7C15, TEXT: 0xC2B2AE3D27D4EB4F, OUTPUT: 0x165667B19E3779F9}
FLOOR_SHARE = 0.5  # the smallest denominator of a score, as a share of the median submission
MASK = (1 << 64) - 1
STRING_LIKE = {tokenize.STRING} | {getattr(tokenize, n) for n in ("FSTRING_START",) if hasattr(tokenize, n)}
SKIPPED = {tokenize.COMMENT, tokenize.NL, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER,
           tokenize.ENCODING} | {getattr(tokenize, n) for n in ("FSTRING_MIDDLE", "FSTRING_END") if hasattr(tokenize, n)}
FALLBACK = re.compile(r"""(?P<comment>\#[^\n]*)|(?P<string>[rbfuRBFU]{0,2}(?:'''[\s\S]*?'''|\"\"\"[\s\S]*?\"\"\"
    |'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*"))|(?P<name>[^\W\d]\w*)|(?P<number>\d[\d_]*\.?\d*(?:[eE][+-]?\d+)?j?)
    |(?P<newline>\n)|(?P<op>[^\s\w])""", re.VERBOSE)
NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
WORD = re.compile(r"[^\W_]+")


@dataclass(frozen=True)
class Tokens:
    """A piece as tokens: each normalised token and where it stands in the piece's text."""

    norm: tuple[str, ...]
    spans: tuple[tuple[int, int], ...]  # character offsets into Piece.text


def known_names(release: Release) -> frozenset[str]:
    """Names a student did not invent: Python's and those the released code uses."""
    names = set(keyword.kwlist) | set(dir(builtins)) | {"self", "cls"}
    for source in release.code:
        names |= set(re.findall(r"[^\W\d]\w*", source))
    return frozenset(names)


def _line_starts(text: str) -> list[int]:
    starts = [0]
    for line in text.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    return starts


def _number(text: str) -> str:
    try:
        return repr(ast.literal_eval(text.replace("_", "")))
    except (ValueError, SyntaxError):
        return text


def _python_tokens(text: str):
    """(type, string, start offset, end offset) by Python's tokenizer; None where it gives up
    (a syntax error such as an unclosed bracket, or IPython syntax it cannot read)."""
    starts = _line_starts(text)
    found = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            (r0, c0), (r1, c1) = tok.start, tok.end
            found.append((tok.type, tok.string, starts[r0 - 1] + c0, starts[min(r1, len(starts)) - 1] + c1, r0 - 1))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return None
    return found


def _fallback_tokens(text: str):
    kinds = {"comment": tokenize.COMMENT, "string": tokenize.STRING, "name": tokenize.NAME,
             "number": tokenize.NUMBER, "newline": tokenize.NEWLINE, "op": tokenize.OP}
    return [(kinds[m.lastgroup], m.group(), m.start(), m.end(), text.count("\n", 0, m.start()))
            for m in FALLBACK.finditer(text)]


def code_tokens(piece: Piece, known: frozenset[str]) -> Tokens:
    raw = _python_tokens(piece.text)
    if raw is None:
        raw = _fallback_tokens(piece.text)
    norm, spans = [], []
    previous, assigned = "", _assigned_attributes(raw)
    for index, (kind, string, start, end, line) in enumerate(raw):
        if line in piece.given or kind in SKIPPED or (kind == tokenize.ERRORTOKEN and not string.strip()):
            continue
        if kind in STRING_LIKE:
            if _is_docstring(raw, index):
                continue
            token = "S"
        elif kind == tokenize.NAME:
            invented = string not in known if previous != "." else string in assigned
            token = "V" if invented else string
        elif kind == tokenize.NUMBER:
            token = _number(string)
        elif kind == tokenize.NEWLINE or string == ";":
            token = ";"
        else:
            token = string
        if token == ";" and (not norm or norm[-1] in (";", ":")):  # `if x: y` on one line or two
            previous = token
            continue
        norm.append(token)
        spans.append((start, end))
        previous = token
    return Tokens(tuple(norm), tuple(spans))


def _assigned_attributes(raw) -> set[str]:
    """Attribute names the code assigns (``self.velocity = ...``): the student's own."""
    names = set()
    for i in range(1, len(raw) - 1):
        if raw[i][0] == tokenize.NAME and raw[i - 1][1] == "." and raw[i + 1][1] in (
                "=", "+=", "-=", "*=", "/=", "@=", "//=", "**=", ":"):
            names.add(raw[i][1])
    return names


def _is_docstring(raw, index: int) -> bool:
    """A string that is a statement of its own (nothing but a line end or comment after it)."""
    before = next((t for t in reversed(raw[:index]) if t[0] not in (tokenize.NL, tokenize.COMMENT)), None)
    after = next((t for t in raw[index + 1:] if t[0] not in (tokenize.NL, tokenize.COMMENT)), None)
    starts = before is None or before[0] in (tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT)
    ends = after is None or after[0] in (tokenize.NEWLINE, tokenize.ENDMARKER, tokenize.DEDENT)
    return starts and ends


def text_tokens(piece: Piece) -> Tokens:
    norm, spans, offset = [], [], 0
    for number, line in enumerate(piece.text.splitlines(keepends=True)):
        if number not in piece.given:
            for m in WORD.finditer(line):
                norm.append(m.group().lower())
                spans.append((offset + m.start(), offset + m.end()))
        offset += len(line)
    return Tokens(tuple(norm), tuple(spans))


def _rounded(match: re.Match) -> str:
    value = float(match.group())
    return f"{value:.4g}" if math.isfinite(value) else match.group()


def output_tokens(piece: Piece) -> Tokens:
    norm, spans, offset = [], [], 0
    for line in piece.text.splitlines(keepends=True):
        normal = " ".join(NUMBER.sub(_rounded, line).split())
        if normal:
            norm.append(normal)
            spans.append((offset, offset + len(line.rstrip("\n"))))
        offset += len(line)
    return Tokens(tuple(norm), tuple(spans))


def tokens_of(piece: Piece, known: frozenset[str]) -> Tokens:
    if piece.kind == CODE:
        return code_tokens(piece, known)
    return text_tokens(piece) if piece.kind == TEXT else output_tokens(piece)


def _token_hash(token: str, cache: dict[str, int]) -> int:
    value = cache.get(token)
    if value is None:
        value = cache[token] = zlib.crc32(token.encode("utf-8", "surrogatepass")) * 0x9E3779B1 + len(token)
    return value


def winnow(hashes: np.ndarray, window: int) -> np.ndarray:
    """Positions chosen by robust winnowing: the rightmost minimum of each window of hashes."""
    if window <= 1 or len(hashes) <= window:
        if window > 1 and len(hashes):
            return np.array([len(hashes) - 1 - int(np.argmin(hashes[::-1]))])
        return np.arange(len(hashes))
    windows = np.lib.stride_tricks.sliding_window_view(hashes, window)
    chosen = np.arange(len(windows)) + window - 1 - np.argmin(windows[:, ::-1], axis=1)
    return chosen[np.r_[True, chosen[1:] != chosen[:-1]]]  # never decreasing: drop the repeats


def fingerprints(tokens: Tokens, kind: str, cache: dict[str, int], window: int | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(hashes, index of the first token of each) of a piece; none for a piece too short to tell.
    ``window`` 1 keeps every k-gram (the boilerplate, which must hold whatever a submission picks)."""
    n, k = len(tokens.norm), K[kind]
    if n < MIN_TOKENS[kind]:
        return np.zeros(0, np.uint64), np.zeros(0, np.int64)
    k = min(k, n)
    ids = np.array([_token_hash(t, cache) for t in tokens.norm], dtype=np.uint64)
    grams = np.full(n - k + 1, SALT[kind], dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(k):
            grams = grams * np.uint64(0x100000001B3) + ids[j:n - k + 1 + j]
        grams ^= grams >> np.uint64(29)
    chosen = winnow(grams, WINDOW[kind] if window is None else window)
    return grams[chosen], chosen.astype(np.int64)


@dataclass(frozen=True)
class Located:
    """The fingerprints of one piece and the tokens each covers."""

    hashes: np.ndarray
    starts: np.ndarray  # index of each fingerprint's first token
    k: int  # tokens per fingerprint in this piece
    tokens: Tokens


@dataclass(frozen=True)
class Print:
    """The fingerprints of one submission: a set for the scores, and where each stands."""

    hashes: np.ndarray  # sorted, unique
    kinds: np.ndarray  # the channel of each (index into CHANNELS)
    pieces: tuple[Located, ...]  # one per Work.pieces entry, in the same order


CHANNELS = (CODE, TEXT, OUTPUT)


def fingerprint(work: Work, known: frozenset[str], boilerplate: np.ndarray, cache: dict[str, int]) -> Print:
    pieces, hashes, kinds = [], [], []
    for piece in work.pieces:
        tokens = tokens_of(piece, known)
        found, starts = fingerprints(tokens, piece.kind, cache)
        keep = ~contains(boilerplate, found)
        pieces.append(Located(found[keep], starts[keep], min(K[piece.kind], len(tokens.norm)), tokens))
        hashes.append(found[keep])
        kinds.append(np.full(int(keep.sum()), CHANNELS.index(piece.kind), np.int8))
    if not hashes:
        return Print(np.zeros(0, np.uint64), np.zeros(0, np.int8), ())
    unique, first = np.unique(np.concatenate(hashes), return_index=True)
    return Print(unique, np.concatenate(kinds)[first], tuple(pieces))


def contains(sorted_hashes: np.ndarray, hashes: np.ndarray) -> np.ndarray:
    """Which of ``hashes`` are in ``sorted_hashes`` (sorted, unique); faster than np.isin here."""
    if not len(sorted_hashes):
        return np.zeros(len(hashes), bool)
    at = np.minimum(np.searchsorted(sorted_hashes, hashes), len(sorted_hashes) - 1)
    return sorted_hashes[at] == hashes


def matched_spans(located: Located, shared: np.ndarray) -> list[tuple[int, int, int]]:
    """(start, end, fingerprint index) of the text that a set of shared fingerprints covers."""
    spans = []
    hit = contains(shared, located.hashes)
    for index in np.flatnonzero(hit):
        first = int(located.starts[index])
        last = min(first + located.k, len(located.tokens.spans)) - 1
        spans.append((located.tokens.spans[first][0], located.tokens.spans[last][1], int(index)))
    return spans


def boilerplate(release: Release, known: frozenset[str], cache: dict[str, int]) -> np.ndarray:
    """Fingerprints of everything released: the same text in a submission is not the student's."""
    pieces = [Piece("release", CODE, source) for source in release.code]
    pieces += [Piece("release", TEXT, source) for source in release.text]
    found = [fingerprints(tokens_of(p, known), p.kind, cache, window=1)[0] for p in pieces]
    return np.unique(np.concatenate(found)) if found else np.zeros(0, np.uint64)
