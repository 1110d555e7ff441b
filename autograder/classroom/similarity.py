"""Pairs of submissions that look alike, and submissions that run code built at run time:
pointers for a human to look at, never a verdict.

Winnowing (Schleimer, Wilkerson and Aiken, SIGMOD 2003; the fingerprints behind MOSS):

1. each submission's Python files become one stream of normalised tokens (``normalised_tokens``):

   a. the file is parsed (``ast``) and its statements without effect are left out: an
      expression statement that only reads (a constant, a string or docstring, a name, an
      attribute, ``...``, a tuple, list or operation of those) and ``pass``; a body left with
      none of its statements reads ``pass``. Padding every line with ``0`` or ``"..."`` changes
      nothing;
   b. code run from a string literal is unfolded: where ``exec``, ``eval`` or ``compile`` is
      called on a literal (also one bound once to a name, ``+`` or ``"".join`` of literals,
      ``.decode()``, ``codecs.decode(..., "rot13")``, ``base64.b64decode``), the code in the
      string is normalised in turn (at most ``MAX_DEPTH`` strings deep, ``MAX_UNFOLDED``
      characters a file) and its tokens stand where the literal stood;
   c. comments, blank lines, indentation and ``;`` are dropped, every name that a renaming
      could change becomes ``V`` (keywords, builtins and attribute names after a dot are kept),
      every string ``S``.

   Line numbers are the file's own: a token keeps its line, and a token of unfolded code the
   line of the literal it came from (its n-th line, for a literal of several lines). A file
   that the parser refuses (a syntax error, a NUL byte, nesting too deep) skips a and b; one
   that does not tokenize either falls back to words and symbols. Only the first
   ``MAX_SOURCE`` bytes of a file are read;
2. every run of K consecutive tokens is hashed, and in every window of W consecutive hashes
   the smallest is kept: any shared run of K + W - 1 tokens or more leaves at least one
   common fingerprint, whatever surrounds it;
3. fingerprints the released skeleton has too are dropped (every student starts from it);
4. a pair's similarity is the share of the smaller submission's fingerprints that the
   other one has too (1.0: all of one is in the other).

Byte-identical submissions, and ones whose normalised token streams are identical, are
named as such. ``similar.csv`` says, for each flagged pair, how similar, on what grounds
and which lines.

Apart from the pairs, ``runtime_code.csv`` lists every call by which a submission runs code
built at run time or from a string (``RUNTIME_CODE``: ``exec``, ``eval``, ``compile``,
``marshal.loads``, ...), since such code is hidden from a reader and from the fingerprints
where it is not a literal. The list catches the cheap ways, not every way; the reference
solutions use none of them.
"""

from __future__ import annotations

import ast
import base64
import binascii
import builtins
import codecs
import csv
import hashlib
import io
import keyword
import re
import tokenize
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

K = 12            # tokens in a hashed run
W = 6             # hashes in a window
THRESHOLD = 0.6   # pairs at least this similar are listed

MAX_SOURCE = 2**20     # bytes read of one file (a solution is about 10 KB)
MAX_UNFOLDED = 2**20   # characters of code unfolded from string literals, per file
MAX_DEPTH = 3          # code in a string in a string in a string, no deeper
_MAX_LITERAL = 100     # nesting of a literal expression that is evaluated ("a" + "b" + ...)
_MAX_STEPS = 100_000   # nodes visited evaluating a file's literals, all together

_BUILTINS = set(dir(builtins))
_KEPT_NAMES = set(keyword.kwlist) | _BUILTINS
_SKIPPED = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
            tokenize.ENCODING, tokenize.ENDMARKER}
_FSTRING_TYPES = {getattr(tokenize, n) for n in ("FSTRING_START", "FSTRING_MIDDLE", "FSTRING_END") if hasattr(tokenize, n)}

# Calls that run code built at run time, by the dotted name they resolve to (imports followed,
# ``exec`` is ``builtins.exec``), and what runtime_code.csv says of each.
RUNTIME_CODE = {
    "builtins.exec": "runs Python code given as a string or code object",
    "builtins.eval": "runs a Python expression given as a string or code object",
    "builtins.compile": "turns a string into a code object",
    "builtins.__import__": "imports a module whose name is computed at run time",
    "importlib.import_module": "imports a module whose name is computed at run time",
    "marshal.loads": "makes code objects from bytes",
    "pickle.loads": "unpickling can call any function named in its bytes",
    "pickle.load": "unpickling can call any function named in its bytes",
    "types.CodeType": "builds a code object",
    "types.FunctionType": "builds a function from a code object",
    "runpy.run_path": "runs another file's code",
    "runpy.run_module": "runs another module's code",
    "builtins.getattr": "looks up a builtin by name (getattr on builtins)",
    "builtins.vars": "reads the builtins' namespace (vars(builtins))",
}
_RUNS_SOURCE = {"builtins.exec", "builtins.eval", "builtins.compile"}    # their first argument is code
_IMPORTS_BY_NAME = {"builtins.__import__", "importlib.import_module"}    # flagged only for a computed name
_ON_BUILTINS = {"builtins.getattr", "builtins.vars"}                      # flagged only on the builtins module

# Expressions that only read: a statement made of nothing else has no effect worth a fingerprint.
_READS_ONLY = (ast.Constant, ast.Name, ast.Attribute, ast.Subscript, ast.Slice, ast.Tuple, ast.List, ast.Set,
               ast.Dict, ast.UnaryOp, ast.BinOp, ast.BoolOp, ast.Compare, ast.JoinedStr, ast.FormattedValue,
               ast.expr_context, ast.operator, ast.unaryop, ast.boolop, ast.cmpop)


@dataclass
class Fingerprinted:
    """One submission: its normalised tokens, fingerprints (hash -> (file, line)) and the
    calls that run code built at run time ((file, line, what))."""
    name: str
    raw: bytes = b""
    tokens: list[str] = field(default_factory=list)
    prints: dict[int, tuple[str, int]] = field(default_factory=dict)
    runtime: list[tuple[str, int, str]] = field(default_factory=list)


# 1. normalised tokens ---------------------------------------------------------------------

def normalised_tokens(source: str) -> list[tuple[str, int]]:
    """(token, line) pairs of ``source``, normalised as the module's docstring says (step 1)."""
    return _analyse(source)[0]


def _plain_tokens(source: str) -> list[tuple[str, int, tuple[int, int]]]:
    """(token, line, start) of ``source`` with names, strings, comments and layout normalised
    (step 1c); source that does not tokenize falls back to words and symbols."""
    out: list[tuple[str, int, tuple[int, int]]] = []
    try:
        previous = ""
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type in _SKIPPED or tok.string == ";":
                continue
            text = tok.string
            if tok.type == tokenize.NAME and text not in _KEPT_NAMES and previous != ".":
                text = "V"
            elif tok.type == tokenize.STRING or tok.type in _FSTRING_TYPES:
                text = "S"
            out.append((text, tok.start[0], tok.start))
            previous = tok.string
        return out
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return [(m.group(), line, (line, m.start())) for line, text in enumerate(source.split("\n"), 1)
                for m in re.finditer(r"\w+|\S", text)]


def _parse(source: str) -> ast.Module | None:
    """The syntax tree of ``source``, or None where the parser refuses it: a syntax error, a
    NUL byte, nesting too deep (``-`` 100,000 times is a MemoryError, a long chain of ``+`` a
    RecursionError)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escape sequences and the like: not ours to report
            return ast.parse(source)
    except (SyntaxError, MemoryError, RecursionError, ValueError, OverflowError):
        return None


class _File:
    """A parsed file: what its names stand for, to resolve calls and literals.

    ``aliases``: local name -> dotted name, from the file's imports (``import marshal as m``,
    ``from builtins import exec as run``); ``bound``: names assigned exactly once in the file
    (``SRC = "..."``), with the value assigned."""

    def __init__(self, tree: ast.Module):
        self.aliases: dict[str, str] = {}
        stores: Counter[str] = Counter()
        values: dict[str, ast.expr] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    self.aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for a in node.names:
                    self.aliases[a.asname or a.name] = f"{node.module}.{a.name}"
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                stores[node.id] += 1
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                values[node.targets[0].id] = node.value
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
                values[node.target.id] = node.value
        self.bound = {name: value for name, value in values.items() if stores[name] == 1}
        self._values: dict[str, str | bytes | None] = {}  # a name's literal, evaluated once
        self._steps = 0

    def qualified(self, node: ast.AST) -> str:
        """The dotted name ``node`` (a name or attribute chain) stands for; '' for anything else."""
        parts = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if not isinstance(node, ast.Name):
            return ""
        head = (self.aliases.get(node.id) or ("builtins" if node.id == "__builtins__" else None)
                or (f"builtins.{node.id}" if node.id in _BUILTINS else node.id))
        return ".".join([head, *reversed(parts)])

    def literal(self, node: ast.AST | None, depth: int = 0) -> str | bytes | None:
        """The value of ``node`` where it is text known before the program runs: a string or
        bytes literal, a name bound once to one, ``+`` and ``sep.join([...])`` of those, and
        their decodings (``.decode()``, ``codecs.decode(_, "rot13")``, ``base64.b64decode``).
        None for anything else, nested deeper than ``_MAX_LITERAL``, longer than ``MAX_UNFOLDED``,
        or past the file's ``_MAX_STEPS``."""
        self._steps += 1
        if node is None or depth > _MAX_LITERAL or self._steps > _MAX_STEPS:
            return None
        value: str | bytes | None = None
        if isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes)):
            value = node.value
        elif isinstance(node, ast.Name) and node.id in self.bound:
            if node.id not in self._values:
                self._values[node.id] = None  # A = B, B = A: None
                self._values[node.id] = self.literal(self.bound[node.id], depth + 1)
            value = self._values[node.id]
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left = self.literal(node.left, depth + 1)
            right = self.literal(node.right, depth + 1) if left is not None else None
            if right is not None and type(left) is type(right) and len(left) + len(right) <= MAX_UNFOLDED:
                value = left + right
        elif isinstance(node, ast.Call) and not node.keywords:
            value = self._decoded(node, depth)
        return value if value is not None and len(value) <= MAX_UNFOLDED else None

    def _decoded(self, call: ast.Call, depth: int) -> str | bytes | None:
        """``sep.join([...])``, ``.decode()``, ``codecs.decode(_, "rot13")``, ``base64.b64decode(_)``
        of literals."""
        func = call.func
        if isinstance(func, ast.Attribute) and func.attr == "join" and len(call.args) == 1 \
                and isinstance(call.args[0], (ast.List, ast.Tuple)):
            owner = self.literal(func.value, depth + 1)
            parts = [self.literal(e, depth + 1) for e in call.args[0].elts]
            if owner is not None and all(type(p) is type(owner) for p in parts):
                return owner.join(parts)
            return None
        args = [self.literal(a, depth + 1) for a in call.args]
        if any(a is None for a in args):
            return None
        if isinstance(func, ast.Attribute) and func.attr == "decode" and len(args) <= 1:
            owner = self.literal(func.value, depth + 1)
            try:
                return owner.decode(*map(str, args)) if isinstance(owner, bytes) else None
            except (LookupError, UnicodeDecodeError):
                return None
        name = self.qualified(func)
        if name == "codecs.decode" and len(args) == 2 and isinstance(args[0], str) \
                and str(args[1]).replace("_", "").lower() == "rot13":
            return codecs.decode(args[0], "rot13")
        if name == "base64.b64decode" and len(args) == 1:
            try:
                return base64.b64decode(args[0])
            except (binascii.Error, ValueError):
                return None
        return None


def _without_effect(stmt: ast.stmt) -> bool:
    """``pass``, or an expression statement that only reads (``0``, ``x``, ``"..."``, ``a.b``, ``...``)."""
    if isinstance(stmt, ast.Pass):
        return True
    return isinstance(stmt, ast.Expr) and all(isinstance(n, _READS_ONLY) for n in ast.walk(stmt.value))


def _analyse(source: str, depth: int = 0, budget: list[int] | None = None
             ) -> tuple[list[tuple[str, int]], list[tuple[int, str]]]:
    """Step 1 for one file: its (token, line) pairs, and (line, what) for each call that runs
    code built at run time. Never raises: a file that defeats steps 1a and 1b (a bug here
    included) keeps its plain token stream."""
    source = source.replace("\r\n", "\n").replace("\r", "\n")  # the parser's line breaks, for tokenize too
    budget = [MAX_UNFOLDED] if budget is None else budget
    tree = _parse(source)
    if tree is not None:
        try:
            return _normalised(source, tree, depth, budget)
        except Exception:  # a limit met in 1a-1b (or a bug) costs this file its normalisation, never the batch
            pass
    return [(text, line) for text, line, _ in _plain_tokens(source)], []


def _normalised(source: str, tree: ast.Module, depth: int, budget: list[int]
                ) -> tuple[list[tuple[str, int]], list[tuple[int, str]]]:
    """Steps 1a-1c on a parsed file. Each statement left out and each literal unfolded is a
    span of the file whose tokens are replaced (by nothing, ``pass``, or the literal's code)."""
    lines = source.split("\n")

    def position(line: int, byte_column: int) -> tuple[int, int]:  # ast counts UTF-8 bytes, tokenize characters
        text = lines[line - 1] if 0 < line <= len(lines) else ""
        return (line, byte_column if text.isascii() else len(text.encode()[:byte_column].decode("utf-8", "ignore")))

    def span(node: ast.AST, tokens: list[tuple[str, int]]) -> tuple[tuple[int, int], tuple[int, int], list]:
        return position(node.lineno, node.col_offset), position(node.end_lineno, node.end_col_offset), tokens

    spans = []
    # a. statements without effect
    for node in ast.walk(tree):
        for body in (getattr(node, name, None) for name in ("body", "orelse", "finalbody")):
            if not isinstance(body, list) or not body or not isinstance(body[0], ast.stmt):
                continue
            idle = [s for s in body if _without_effect(s)]
            for stmt in idle:
                keep = [("pass", stmt.lineno)] if len(idle) == len(body) and stmt is body[0] else []
                spans.append(span(stmt, keep))
    # b. code in string literals; and the calls that run code built at run time
    here = _File(tree)
    runtime: list[tuple[int, str]] = []
    unfolded: set[int] = set()
    for call in ast.walk(tree):
        if not isinstance(call, ast.Call):
            continue
        name = here.qualified(call.func)
        if name not in RUNTIME_CODE:
            continue
        first = call.args[0] if call.args else None
        shown = name.removeprefix("builtins.")
        if name in _RUNS_SOURCE:
            code = _code_literal(here, first)
            if code is not None:
                how = "unfolded into the fingerprints" if depth < MAX_DEPTH else "too deep to unfold"
                runtime.append((call.lineno, f"{shown}: {RUNTIME_CODE[name]} (a string literal, {how})"))
                if id(code) not in unfolded and depth < MAX_DEPTH:
                    unfolded.add(id(code))
                    inner_tokens, inner_runtime = _unfold(here, code, depth, budget)
                    spans.append(span(code, inner_tokens))
                    runtime += inner_runtime
            else:
                runtime.append((call.lineno, f"{shown}: {RUNTIME_CODE[name]} (built at run time)"))
        elif name in _IMPORTS_BY_NAME:
            if not isinstance(here.literal(first), str):
                runtime.append((call.lineno, f"{shown}: {RUNTIME_CODE[name]}"))
        elif name in _ON_BUILTINS:
            if first is not None and here.qualified(first) == "builtins":
                runtime.append((call.lineno, f"{shown}: {RUNTIME_CODE[name]}"))
        else:
            runtime.append((call.lineno, f"{shown}: {RUNTIME_CODE[name]}"))
    for node in ast.walk(tree):  # __builtins__["exec"], builtins.__dict__["exec"]
        if isinstance(node, ast.Subscript) and here.qualified(node.value) in ("builtins", "builtins.__dict__"):
            runtime.append((node.lineno, "builtins looked up by name (a subscript of the builtins' namespace)"))
    # c. the file's tokens, each span's replacing the tokens inside it (an outer span wins)
    spans.sort(key=lambda s: (s[0], (-s[1][0], -s[1][1])))
    outer = []
    for s in spans:
        if not outer or s[0] >= outer[-1][1]:
            outer.append(s)
    out: list[tuple[str, int]] = []
    i, emitted = 0, -1
    for text, line, start in _plain_tokens(source):
        while i < len(outer) and outer[i][1] <= start:
            i += 1
        if i < len(outer) and outer[i][0] <= start:
            if emitted != i:
                out += outer[i][2]
                emitted = i
            continue
        out.append((text, line))
    return out, sorted(set(runtime))


def _code_literal(here: _File, node: ast.AST | None) -> ast.AST | None:
    """The node whose literal value is the code that ``exec``/``eval``/``compile`` of ``node``
    runs: ``node`` itself, the value a name is bound to, or the first argument of a ``compile``
    of a literal (``exec(compile(SRC, "<string>", "exec"))``); None where it is not a literal."""
    for _ in range(_MAX_LITERAL):
        if isinstance(node, ast.Call) and here.qualified(node.func) == "builtins.compile" and node.args:
            node = node.args[0]
        elif isinstance(node, ast.Name) and node.id in here.bound:
            node = here.bound[node.id]
        else:
            break
    return node if node is not None and here.literal(node) is not None else None


def _unfold(here: _File, node: ast.AST, depth: int, budget: list[int]
            ) -> tuple[list[tuple[str, int]], list[tuple[int, str]]]:
    """Step 1 on the code in the literal ``node``, with its lines moved onto the literal's."""
    code = here.literal(node)
    if isinstance(code, bytes):
        code = code.decode("utf-8", "replace")
    if code is None or len(code) > budget[0]:
        return [("S", node.lineno)], []
    budget[0] -= len(code)
    tokens, runtime = _analyse(code, depth + 1, budget)

    def moved(line: int) -> int:
        return min(node.lineno + line - 1, node.end_lineno)

    return [(t, moved(line)) for t, line in tokens], [(moved(line), what) for line, what in runtime]


# 2-4. fingerprints and pairs ---------------------------------------------------------------

def _hash(run: list[str]) -> int:
    return int.from_bytes(hashlib.blake2b(" ".join(run).encode(), digest_size=8).digest(), "big")


def fingerprint(name: str, files: dict[str, str], raw: bytes = b"") -> Fingerprinted:
    """Winnow ``files`` (file name -> source): the kept hashes with where each starts."""
    result = Fingerprinted(name, raw)
    for file, source in sorted(files.items()):
        tokens, runtime = _analyse(source)
        result.runtime += [(file, line, what) for line, what in runtime]
        result.tokens += [t for t, _ in tokens]
        hashes = [(_hash([t for t, _ in tokens[i:i + K]]), tokens[i][1]) for i in range(len(tokens) - K + 1)]
        for start in range(max(0, len(hashes) - W + 1)):
            smallest = min(hashes[start:start + W], key=lambda h: h[0])
            result.prints.setdefault(smallest[0], (file, smallest[1]))
        if 0 < len(hashes) < W:  # a file shorter than one window keeps its smallest hash
            smallest = min(hashes, key=lambda h: h[0])
            result.prints.setdefault(smallest[0], (file, smallest[1]))
    return result


def _read(path: Path, limit: int) -> bytes:
    """The first ``limit`` bytes of the regular file ``path``; b"" for a link, a folder, a
    missing file or one that cannot be read."""
    try:
        if path.is_symlink() or not path.is_file():
            return b""
        with open(path, "rb") as handle:
            return handle.read(limit)
    except OSError:
        return b""


def _from_notebook(path: Path) -> bytes:
    """A notebook handed in for the module: the module the grader built from it (its graded
    cells, autograder.grading.notebook), so that two notebooks are compared by their code."""
    from autograder.grading.notebook import extract
    from autograder.sandbox.submission import MAX_BYTES, SubmissionError

    data = _read(path, MAX_BYTES + 1) if path.suffix == ".ipynb" else b""
    if not data or len(data) > MAX_BYTES:
        return b""
    try:
        return extract(data, path.name).source.encode("utf-8")
    except (SubmissionError, ValueError, RecursionError, MemoryError):
        return b""


def read_submission(folder: Path, files: list[str]) -> Fingerprinted:
    """Fingerprint the assignment's ``files`` in ``folder`` (missing ones count as empty; of
    each, the first ``MAX_SOURCE`` bytes)."""
    sources, raw = {}, b""
    for file in files:
        path = Path(folder) / file
        data = _read(path, MAX_SOURCE) or _from_notebook(path.with_suffix(".ipynb"))[:MAX_SOURCE]
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
                grounds = "identical once comments, layout, names, strings and statements without effect are stripped"
                similarity = 1.0
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
    """similar.csv; students named as in grades.csv (escape.student_name: a name that is not
    UTF-8 shows its bytes as \\xNN)."""
    from autograder.escape import student_name
    from autograder.escape import spreadsheet_cell

    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["student_a", "student_b", "similarity", "grounds", "lines_a", "lines_b"])
        for p in pairs:
            writer.writerow([spreadsheet_cell(student_name(p.a)), spreadsheet_cell(student_name(p.b)),
                             f"{p.similarity:.3f}", p.grounds, p.lines_a, p.lines_b])


RUNTIME_NOTICE = ("runtime_code.csv lists submissions that run code built at run time or from a string (exec, eval, "
                  "compile, marshal, ...): such code hides from a reader; read it before trusting the grade.")


def write_runtime_csv(submissions: list[Fingerprinted], path: Path) -> int:
    """runtime_code.csv: one row (student, file, line, what) per call that runs code built at run
    time; the number of submissions with at least one."""
    from autograder.escape import student_name
    from autograder.escape import spreadsheet_cell

    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["student", "file", "line", "what"])
        for s in sorted(submissions, key=lambda s: s.name):
            for file, line, what in s.runtime:
                writer.writerow([spreadsheet_cell(student_name(s.name)), file, line, what])
    return sum(1 for s in submissions if s.runtime)
