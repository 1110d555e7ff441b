"""Pairs of submissions that look alike: a pointer for a human to look at, never a verdict.

Winnowing (Schleimer, Wilkerson and Aiken, SIGMOD 2003; the fingerprints behind MOSS):

1. each submission's Python files become one stream of normalised tokens: comments,
   blank lines and indentation are dropped, every name that a renaming could change becomes
   ``V`` (keywords, builtins and attribute names after a dot are kept), every string ``S``;
2. every run of K consecutive tokens is hashed, and in every window of W consecutive hashes
   the smallest is kept: any shared run of K + W - 1 tokens or more leaves at least one
   common fingerprint, whatever surrounds it;
3. fingerprints the released skeleton has too are dropped (every student starts from it);
4. a pair's similarity is the share of the smaller submission's fingerprints that the
   other one has too (1.0: all of one is in the other).

Byte-identical submissions, and ones whose normalised token streams are identical, are
named as such. ``similar.csv`` says, for each flagged pair, how similar, on what grounds
and which lines.
"""

from __future__ import annotations

import builtins
import csv
import hashlib
import io
import keyword
import re
import tokenize
from dataclasses import dataclass, field
from pathlib import Path

K = 12            # tokens in a hashed run
W = 6             # hashes in a window
THRESHOLD = 0.6   # pairs at least this similar are listed

_KEPT_NAMES = set(keyword.kwlist) | set(dir(builtins))
_SKIPPED = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
            tokenize.ENCODING, tokenize.ENDMARKER}
_FSTRING_TYPES = {getattr(tokenize, n) for n in ("FSTRING_START", "FSTRING_MIDDLE", "FSTRING_END") if hasattr(tokenize, n)}


@dataclass
class Fingerprinted:
    """One submission: its normalised tokens and fingerprints (hash -> (file, line))."""
    name: str
    raw: bytes = b""
    tokens: list[str] = field(default_factory=list)
    prints: dict[int, tuple[str, int]] = field(default_factory=dict)


def normalised_tokens(source: str) -> list[tuple[str, int]]:
    """(token, line) pairs of ``source`` with names, strings, comments and layout normalised.
    Source that does not tokenize (a syntax error) falls back to words and symbols."""
    out: list[tuple[str, int]] = []
    try:
        previous = ""
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type in _SKIPPED:
                continue
            text = tok.string
            if tok.type == tokenize.NAME and text not in _KEPT_NAMES and previous != ".":
                text = "V"
            elif tok.type == tokenize.STRING or tok.type in _FSTRING_TYPES:
                text = "S"
            out.append((text, tok.start[0]))
            previous = tok.string
        return out
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return [(m.group(), source.count("\n", 0, m.start()) + 1) for m in re.finditer(r"\w+|\S", source)]



def _hash(run: list[str]) -> int:
    return int.from_bytes(hashlib.blake2b(" ".join(run).encode(), digest_size=8).digest(), "big")


def fingerprint(name: str, files: dict[str, str], raw: bytes = b"") -> Fingerprinted:
    """Winnow ``files`` (file name -> source): the kept hashes with where each starts."""
    result = Fingerprinted(name, raw)
    for file, source in sorted(files.items()):
        tokens = normalised_tokens(source)
        result.tokens += [t for t, _ in tokens]
        hashes = [(_hash([t for t, _ in tokens[i:i + K]]), tokens[i][1]) for i in range(len(tokens) - K + 1)]
        for start in range(max(0, len(hashes) - W + 1)):
            smallest = min(hashes[start:start + W], key=lambda h: h[0])
            result.prints.setdefault(smallest[0], (file, smallest[1]))
        if 0 < len(hashes) < W:  # a file shorter than one window keeps its smallest hash
            smallest = min(hashes, key=lambda h: h[0])
            result.prints.setdefault(smallest[0], (file, smallest[1]))
    return result


def _from_notebook(path: Path) -> bytes:
    """A notebook handed in for the module: the module the grader built from it (its graded
    cells, autograder.notebook), so that two notebooks are compared by their code."""
    from autograder.notebook import extract
    from autograder.submission import SubmissionError

    if path.suffix != ".ipynb" or not path.is_file() or path.is_symlink():
        return b""
    try:
        return extract(path.read_bytes(), path.name).source.encode("utf-8")
    except SubmissionError:
        return b""


def read_submission(folder: Path, files: list[str]) -> Fingerprinted:
    """Fingerprint the assignment's ``files`` in ``folder`` (missing ones count as empty)."""
    sources, raw = {}, b""
    for file in files:
        path = Path(folder) / file
        data = path.read_bytes() if path.is_file() and not path.is_symlink() else b""
        if not data:
            data = _from_notebook(path.with_suffix(".ipynb"))
        raw += file.encode() + b"\0" + data + b"\0"
        sources[file] = data.decode("utf-8", "replace")
    return fingerprint(Path(folder).name, sources, raw)


@dataclass
class Pair:
    a: str
    b: str
    similarity: float
    grounds: str
    lines_a: str
    lines_b: str


def _spans(places: list[tuple[str, int]]) -> str:
    """Lines grouped per file into ranges: 'vae.py 40-52, 80'."""
    by_file: dict[str, list[int]] = {}
    for file, line in places:
        by_file.setdefault(file, []).append(line)
    parts = []
    for file, lines in sorted(by_file.items()):
        lines, ranges = sorted(set(lines)), []
        for line in lines:
            if ranges and line - ranges[-1][1] <= K // 2:  # a fingerprint stands for a run of lines
                ranges[-1][1] = line
            else:
                ranges.append([line, line])
        parts.append(f"{file} " + ", ".join(f"{a}-{b}" if a != b else f"{a}" for a, b in ranges))
    return "; ".join(parts)


def similar_pairs(submissions: list[Fingerprinted], base: Fingerprinted | None = None,
                  threshold: float = THRESHOLD) -> list[Pair]:
    """Every pair at least ``threshold`` similar, most similar first. A submission that is
    the released skeleton itself (nothing of its own) is never paired for that alone."""
    base_prints = set(base.prints) if base else set()
    own = {s.name: set(s.prints) - base_prints for s in submissions}
    pairs = []
    for i, a in enumerate(submissions):
        for b in submissions[i + 1:]:
            untouched = base is not None and (a.tokens == base.tokens or b.tokens == base.tokens)
            shared = own[a.name] & own[b.name]
            if a.raw and a.raw == b.raw and not untouched:
                grounds, similarity = "identical files", 1.0
            elif a.tokens and a.tokens == b.tokens and not untouched:
                grounds, similarity = "identical once comments, layout, names and strings are stripped", 1.0
            else:
                smaller = min(len(own[a.name]), len(own[b.name]))
                similarity = len(shared) / smaller if smaller else 0.0
                grounds = f"{len(shared)} shared fingerprints of runs of {K} tokens"
            if similarity >= threshold:
                pairs.append(Pair(a.name, b.name, round(similarity, 3), grounds,
                                  _spans([a.prints[h] for h in shared]), _spans([b.prints[h] for h in shared])))
    return sorted(pairs, key=lambda p: (-p.similarity, p.a, p.b))


NOTICE = ("similar.csv lists pairs of submissions that look alike (winnowing fingerprints, the skeleton "
          "excluded): a pointer for a human to read both, not a verdict of copying.")


def write_csv(pairs: list[Pair], path: Path) -> None:
    from autograder.reports import spreadsheet_cell

    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["student_a", "student_b", "similarity", "grounds", "lines_a", "lines_b"])
        for p in pairs:
            writer.writerow([spreadsheet_cell(p.a), spreadsheet_cell(p.b), f"{p.similarity:.3f}", p.grounds,
                             p.lines_a, p.lines_b])
