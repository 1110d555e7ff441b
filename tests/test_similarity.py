"""Similarity that survives cheap disguises, and submissions that run code built from strings.

A copy of the reference ``vae.py`` is disguised in the ways a review tried (``DISGUISES``);
each must stay at least ``THRESHOLD`` similar to the original, the released skeleton
excluded as in ``grade-batch``. Before the statements without effect were left out and
string literals passed to ``exec`` unfolded, three of them scored 0.31, 0.0 and 0.0. Two
independently written correct solutions must stay apart, and no honest solution may be
listed as running code built at run time. ``python -m tests.test_similarity [OLD_MODULE.py]``
prints the table of scores.
"""

from __future__ import annotations

import ast
import base64
import codecs
import csv
import itertools
import os
import re
import sys
import time
from pathlib import Path

import pytest

from autograder import config as config_module
from autograder.classroom import similarity
from autograder.classroom.similarity import THRESHOLD

KIT = Path(__file__).resolve().parents[1]
CFG = config_module.load(KIT / "grading.yml")
INDEPENDENT = KIT / "tests" / "fixtures" / "independent"
VAE = CFG.get("vae")
ORIGINAL = (CFG.solution_dir(VAE) / "vae.py").read_text()


# the disguises -----------------------------------------------------------------------------

RENAMES = {"VAE": "MyAutoencoder", "mu": "mean", "logvar": "log_var", "x": "inputs", "z": "code", "model": "net",
           "hidden": "width", "reparameterize": "sample_latent", "elbo": "lower_bound", "losses": "history",
           "optimiser": "opt", "eps": "noise", "logits": "out", "weight": "param", "index": "rows",
           "recon": "rec", "kl": "divergence"}


def renamed(source: str) -> str:
    """Every name of the student's own choosing renamed (not attributes after a dot)."""
    return re.sub(r"(?<![.\w])(\w+)\b", lambda m: RENAMES.get(m.group(1), m.group(1)), source)


def _top_level(source: str) -> list[str]:
    lines = source.split("\n")
    tree = ast.parse(source)
    return ["\n".join(lines[min([s.lineno] + [d.lineno for d in getattr(s, "decorator_list", [])]) - 1:s.end_lineno])
            for s in tree.body]


def reordered(source: str) -> str:
    """Functions and classes in the opposite order (imports stay first)."""
    parts = _top_level(source)
    heads = [p for p in parts if not p.lstrip("@").startswith(("def ", "class ", "torch"))]
    defs = [p for p in parts if p not in heads]
    return "\n\n\n".join(heads + defs[::-1]) + "\n"


def comments_changed(source: str) -> str:
    """Every docstring and comment rewritten."""
    source = re.sub(r'"""(.*?)"""', lambda m: '"""My own notes, %d characters long."""' % len(m.group(1)), source,
                    flags=re.S)
    return re.sub(r"#[^\n]*", "# step", source).replace("\ndef ", "\n# a function of mine\ndef ")


def relaid(source: str) -> str:
    """Indented by two spaces, a blank line after every line, spaces at the end of lines."""
    out = []
    for line in source.split("\n"):
        body = line.lstrip(" ")
        out += [" " * ((len(line) - len(body)) // 2) + body + "   ", ""]
    return "\n".join(out)


class _Idle(ast.NodeTransformer):
    """A statement without effect after every statement: 0, math, None, ..., a string, pass, math.pi."""
    IDLE = ["0", "math", "None", "...", "'padding'", "pass", "math.pi", "(1, 2)", "-1"]

    def __init__(self):
        self.next = itertools.cycle(self.IDLE)

    def generic_visit(self, node):
        super().generic_visit(node)
        for name in ("body", "orelse", "finalbody"):
            body = getattr(node, name, None)
            if isinstance(body, list) and body and isinstance(body[0], ast.stmt):
                padded = []
                for stmt, after in zip(body, body[1:] + [None]):
                    future = isinstance(after, ast.ImportFrom) and after.module == "__future__"  # must come first
                    padded += [stmt] if future else [stmt, ast.parse(next(self.next)).body[0]]
                setattr(node, name, padded)
        return node


def idle_statements(source: str) -> str:
    return ast.unparse(_Idle().visit(ast.parse(source)))


def executed_from_string(source: str) -> str:
    """The whole module run from one string literal, lines where they were."""
    assert "'''" not in source and "\\" not in source
    return "exec(r'''" + source + "''')\n"


def compiled_from_name(source: str) -> str:
    """``SRC = '...'`` then ``exec(compile(SRC, ...))``."""
    return f"SRC = {source!r}\n\nexec(compile(SRC, 'vae.py', 'exec'))\n"


def idle_and_executed(source: str) -> str:
    return compiled_from_name(idle_statements(source))


def joined_pieces(source: str) -> str:
    """The module cut into pieces of 200 characters, joined, then run."""
    pieces = [source[i:i + 200] for i in range(0, len(source), 200)]
    return "CODE = ''.join([\n" + "".join(f"    {p!r},\n" for p in pieces) + "])\nexec(CODE)\n"


def rot13_encoded(source: str) -> str:
    return f"import codecs\nexec(codecs.decode({codecs.encode(source, 'rot13')!r}, 'rot13'))\n"


def base64_encoded(source: str) -> str:
    return f"import base64\nexec(base64.b64decode({base64.b64encode(source.encode()).decode()!r}).decode())\n"


DEAD = '''

def _unused_helper(values):
    """Running mean of a list."""
    total, out = 0.0, []
    for i, v in enumerate(values):
        total += v
        out.append(total / (i + 1))
    return out


def _another(a, b=3):
    while a > b:
        a -= b
    return {"rest": a, "steps": b}

'''


def dead_functions(source: str) -> str:
    """Functions that nothing calls, between every two functions."""
    return source.replace("\n\n\ndef ", "\n" + DEAD + "\n\ndef ")


def loops_rewritten(source: str) -> str:
    """``for _ in range(steps)`` as a ``while`` loop, and the dictionary ``elbo`` returns built in a loop."""
    loop = "    step = 0\n    while step < steps:\n        step += 1\n"
    source = source.replace("    for _ in range(steps):\n", loop)
    return source.replace('    return {"elbo": -(recon + kl), "recon": recon, "kl": kl}',
                          '    out = {}\n'
                          '    for key, value in (("elbo", -(recon + kl)), ("recon", recon), ("kl", kl)):\n'
                          '        out[key] = value\n'
                          '    return out')


DISGUISES = {
    "renamed identifiers": renamed,
    "functions reordered": reordered,
    "comments and docstrings changed": comments_changed,
    "whitespace and layout": relaid,
    "statement without effect after every statement": idle_statements,
    "module executed from a string literal": executed_from_string,
    "exec(compile(SRC)) of a name bound to a literal": compiled_from_name,
    "statements without effect, executed from a string": idle_and_executed,
    "dead functions added": dead_functions,
    "loops rewritten trivially": loops_rewritten,
    "module in pieces joined, then executed": joined_pieces,
    "module rot13-encoded, then executed": rot13_encoded,
    "module base64-encoded, then executed": base64_encoded,
}
ALL_AT_ONCE = {"renamed, reordered, relaid, padded, executed from a string":
               lambda s: compiled_from_name(idle_statements(relaid(reordered(renamed(s)))))}


def score(module, a: str, b: str) -> float:
    """The similarity of two vae.py sources as grade-batch computes it (the skeleton excluded)."""
    skeleton = (KIT / "assignments" / VAE.folder / "vae.py").read_text()
    base = module.fingerprint("skeleton", {"vae.py": skeleton})
    pairs = module.similar_pairs([module.fingerprint("a", {"vae.py": a}, a.encode()),
                                  module.fingerprint("b", {"vae.py": b}, b.encode())], base, threshold=0.0)
    return pairs[0].similarity if pairs else 0.0


# 1. every disguise is still a copy ---------------------------------------------------------

@pytest.mark.parametrize("name", [*DISGUISES, *ALL_AT_ONCE])
def test_a_disguised_copy_stays_similar(name):
    disguised = {**DISGUISES, **ALL_AT_ONCE}[name](ORIGINAL)
    compile(disguised, "vae.py", "exec")  # still a module that runs
    assert disguised != ORIGINAL
    assert score(similarity, ORIGINAL, disguised) >= THRESHOLD


def test_padding_and_strings_are_normalised_away():
    """Padded with statements without effect, the copy's token stream is the original's; run from
    a string, it is the original's with the few tokens of ``exec(...)`` around it."""
    original = similarity.normalised_tokens(ORIGINAL)
    unparsed = similarity.normalised_tokens(ast.unparse(ast.parse(ORIGINAL)))  # the padding's layout, parentheses
    assert [t for t, _ in similarity.normalised_tokens(idle_statements(ORIGINAL))] == [t for t, _ in unparsed]
    executed = similarity.normalised_tokens(executed_from_string(ORIGINAL))
    assert [t for t, _ in executed] == ["exec", "("] + [t for t, _ in original] + [")"]


def test_lines_of_unfolded_code_are_the_literals_lines():
    """Code run from a triple-quoted literal keeps its lines: similar.csv points at the same lines
    in both files; a padded file's lines are its own."""
    original = similarity.normalised_tokens(ORIGINAL)
    executed = similarity.normalised_tokens(executed_from_string(ORIGINAL))
    assert [line for _, line in executed[2:-1]] == [line for _, line in original]
    padded = idle_statements(ORIGINAL).split("\n")
    for token, line in similarity.normalised_tokens("\n".join(padded)):
        assert token in ("V", "S") or token in padded[line - 1], (token, line)


def test_a_body_of_nothing_reads_pass():
    source = 'def f():\n    """Doc."""\n\n\ndef g(): ...\nx = 1; 0; (\n  a.b)\n'
    tokens = [t for t, _ in similarity.normalised_tokens(source)]
    assert tokens == ["def", "V", "(", ")", ":", "pass", "def", "V", "(", ")", ":", "pass", "V", "=", "1"]
    assert similarity.normalised_tokens("x = f(1)\n") == [("V", 1), ("=", 1), ("V", 1), ("(", 1), ("1", 1), (")", 1)]
    # a call, an assignment, an await or a yield has an effect: it stays
    for kept in ("f()\n", "x.y = 1\n", "async def f():\n    await g\n", "def f():\n    yield\n"):
        assert len(similarity.normalised_tokens(kept)) > 1, kept


# 2. independent solutions stay apart -------------------------------------------------------

def _independent():
    for assignment in CFG.assignments:
        folder = INDEPENDENT / assignment.folder
        if folder.is_dir() and CFG.solution_dir(assignment).is_dir():
            yield assignment, sorted(p for p in folder.iterdir() if p.is_dir())


@pytest.mark.parametrize("assignment", [a for a, _ in _independent()], ids=lambda a: a.id)
def test_independent_solutions_are_not_paired(assignment):
    """The reference and every independently written correct solution (tests/fixtures/independent),
    against the released skeleton as in grade-batch: no pair reaches THRESHOLD."""
    folders = {a.id: folders for a, folders in _independent()}[assignment.id]
    skeleton = KIT / "assignments" / assignment.folder
    base = similarity.read_submission(skeleton, assignment.files) if skeleton.is_dir() else None
    submissions = [similarity.read_submission(CFG.solution_dir(assignment), assignment.files)]
    submissions += [similarity.read_submission(f, assignment.files) for f in folders]
    assert similarity.similar_pairs(submissions, base) == []


# 3. code built at run time -----------------------------------------------------------------

def _honest():
    for assignment in CFG.assignments:
        for folder in [CFG.solution_dir(assignment), KIT / "assignments" / assignment.folder,
                       *sorted((INDEPENDENT / assignment.folder).glob("*/"))]:
            if folder.is_dir():
                yield f"{folder.relative_to(KIT)}", folder, assignment.files


@pytest.mark.parametrize("where", [w for w, _, _ in _honest()])
def test_honest_solutions_run_no_code_from_strings(where):
    folder, files = {w: (f, fs) for w, f, fs in _honest()}[where]
    assert all((folder / f).is_file() for f in files) or "assignments" in where
    assert similarity.read_submission(folder, files).runtime == []


FLAGGED = {
    "exec(source)": "exec",
    "eval(text)": "eval",
    "exec('x = 1')": "string literal",
    "import builtins\nbuiltins.exec(code)": "exec",
    "__builtins__.eval(code)": "eval",
    "from builtins import exec as run\nrun(code)": "exec",
    "code = compile(text, 'f', 'exec')": "compile",
    "import importlib\nm = importlib.import_module(name)": "import_module",
    "from importlib import import_module\nm = import_module('to' + name)": "import_module",
    "m = __import__(name)": "__import__",
    "import marshal\nf = marshal.loads(blob)": "marshal.loads",
    "import pickle as p\nf = p.loads(blob)": "pickle.loads",
    "import types\nf = types.FunctionType(code, {})": "types.FunctionType",
    "from types import CodeType\nc = CodeType(*args)": "types.CodeType",
    "import builtins\nrun = getattr(builtins, 'ex' + 'ec')": "getattr",
    "run = __builtins__['exec']": "builtins looked up",
    "import builtins\nrun = vars(builtins)['exec']": "vars",
    "import runpy\nrunpy.run_path(path)": "runpy.run_path",
    "def f():\n    exec(\"exec('x = 1')\")": "string literal",
}
NOT_FLAGGED = ["model.eval()", "f = torch.compile(model)", "import re\np = re.compile('a+')",
               "import importlib\nm = importlib.import_module('torch')", "m = __import__('math')",
               "x = getattr(model, 'weight')", "d = vars(args)", "y = table['exec']", "evaluate(x)"]


@pytest.mark.parametrize("source", FLAGGED)
def test_code_built_at_run_time_is_flagged(source):
    runtime = similarity.fingerprint("s", {"m.py": source}).runtime
    assert runtime and all(file == "m.py" and line >= 1 for file, line, _ in runtime), runtime
    assert any(FLAGGED[source] in what for _, _, what in runtime), runtime


@pytest.mark.parametrize("source", NOT_FLAGGED)
def test_ordinary_calls_are_not_flagged(source):
    assert similarity.fingerprint("s", {"m.py": source}).runtime == []


def test_runtime_code_csv(tmp_path):
    """One row per call, with the student, file and line; the count is of submissions."""
    subs = [similarity.fingerprint("alice", {"vae.py": ORIGINAL}),
            similarity.fingerprint("=bob", {"vae.py": compiled_from_name(ORIGINAL)}),
            similarity.fingerprint("carol", {"vae.py": "import marshal\n\nf = marshal.loads(b'')\n"}),
            similarity.fingerprint(os.fsdecode(b"latin\xe9"), {"vae.py": "eval(input())\n"})]
    assert similarity.write_runtime_csv(subs, tmp_path / "runtime_code.csv") == 3
    rows = list(csv.DictReader((tmp_path / "runtime_code.csv").open(encoding="utf-8")))
    assert [(r["student"], r["file"], r["line"]) for r in rows] == [
        ("'=bob", "vae.py", "3"), ("'=bob", "vae.py", "3"), ("carol", "vae.py", "3"), ("latin\\xe9", "vae.py", "1")]
    assert "string literal" in rows[0]["what"] and "marshal" in rows[2]["what"] and "run time" in rows[3]["what"]


def test_similar_csv_names_students_as_grades_csv_does(tmp_path):
    """A folder name that is not UTF-8 once ended the similarity step (UnicodeEncodeError)."""
    subs = [similarity.fingerprint(name, {"vae.py": ORIGINAL}, ORIGINAL.encode())
            for name in ("--help", os.fsdecode(b"latin\xe9"))]
    similarity.write_csv(similarity.similar_pairs(subs), tmp_path / "similar.csv")
    rows = list(csv.DictReader((tmp_path / "similar.csv").open(encoding="utf-8")))
    assert [(r["student_a"], r["student_b"], r["grounds"]) for r in rows] == [
        ("'--help", "latin\\xe9", "identical files")]


def test_unfolding_is_bounded():
    """Strings in strings are unfolded MAX_DEPTH deep, then only flagged; a chain of ``+`` too
    long to evaluate is flagged, not unfolded."""
    code = "y = 2 * x + 1\n"
    for _ in range(similarity.MAX_DEPTH + 3):
        code = f"exec({code!r})\n"
    tokens = [t for t, _ in similarity.normalised_tokens(code)]
    assert tokens.count("exec") == similarity.MAX_DEPTH + 1 and "S" in tokens
    runtime = [w for _, _, w in similarity.fingerprint("s", {"m.py": code}).runtime]
    assert any("unfolded" in w for w in runtime) and any("too deep to unfold" in w for w in runtime), runtime
    chain = "exec(" + " + ".join(["'x = 1\\n'"] * 500) + ")\n"
    assert [w for _, _, w in similarity.fingerprint("s", {"m.py": chain}).runtime] == [
        "exec: " + similarity.RUNTIME_CODE["builtins.exec"] + " (built at run time)"]


# 4. inputs built to break the parser -------------------------------------------------------

PATHOLOGICAL = {
    "long_line.py": ("x = " + "a+" * 500_000 + "a\n").encode(),
    "parens.py": ("x = " + "(" * 100_000 + "1" + ")" * 100_000 + "\n").encode(),
    "unary.py": ("x = " + "-" * 100_000 + "1\n").encode(),
    "nul.py": b"x = 1\0\nexec('y = 2')\n",
    "utf8.py": b"x = '\xff\xfe'\nexec(b'\\xff = 1')\n",
    "strings.py": ("exec(" + "+".join(["'a'"] * 100_000) + ")\n").encode(),
    "unterminated.py": b'"""' + b"word " * 200_000,
    "huge.py": b"# " + b"z" * (3 * similarity.MAX_SOURCE),
}


def test_pathological_files_never_raise(tmp_path):
    """Each file above in one submission (and a copy of it), beside an honest one: no exception
    out of read_submission, similar_pairs or the CSV writers, and a bounded time."""
    start = time.monotonic()
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        for file, data in PATHOLOGICAL.items():
            (tmp_path / name / file).write_bytes(data if name == "one" else data[:100_000])
    subs = [similarity.read_submission(tmp_path / name, list(PATHOLOGICAL)) for name in ("one", "two")]
    subs.append(similarity.read_submission(CFG.solution_dir(VAE), ["vae.py"]))
    pairs = similarity.similar_pairs(subs)
    similarity.write_csv(pairs, tmp_path / "similar.csv")
    assert similarity.write_runtime_csv(subs, tmp_path / "runtime_code.csv") == 2
    assert [(f, w.split(":")[0]) for f, _, w in subs[0].runtime] == [("utf8.py", "exec")]  # the one that parses
    assert all(len(s.tokens) <= 2 * similarity.MAX_SOURCE for s in subs)
    assert time.monotonic() - start < 120


def main(argv: list[str]) -> None:
    """Print each disguise's similarity to the original under this module and, given the path of
    an older similarity.py, under that one."""
    import importlib.util

    modules = {"now": similarity}
    if argv:
        spec = importlib.util.spec_from_file_location("old_similarity", argv[0])
        modules = {"before": importlib.util.module_from_spec(spec), **modules}
        sys.modules["old_similarity"] = modules["before"]  # for its dataclasses
        spec.loader.exec_module(modules["before"])
    print("| disguise | " + " | ".join(modules) + " |\n|---|" + "---|" * len(modules))
    for name, disguise in {**DISGUISES, **ALL_AT_ONCE}.items():
        scores = [f"{score(m, ORIGINAL, disguise(ORIGINAL)):.2f}" for m in modules.values()]
        print(f"| {name} | " + " | ".join(scores) + " |")
    for assignment, folders in _independent():
        ref = (CFG.solution_dir(assignment) / assignment.files[0]).read_text()
        for folder in folders:
            other = (folder / assignment.files[0]).read_text()
            scores = []
            for m in modules.values():
                skeleton = (KIT / "assignments" / assignment.folder / assignment.files[0]).read_text()
                base = m.fingerprint("skeleton", {"f.py": skeleton})
                pairs = m.similar_pairs([m.fingerprint("a", {"f.py": ref}), m.fingerprint("b", {"f.py": other})], base,
                                        threshold=0.0)
                scores.append(f"{pairs[0].similarity if pairs else 0.0:.2f}")
            print(f"| independent: {assignment.id} reference vs {folder.name} | " + " | ".join(scores) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
