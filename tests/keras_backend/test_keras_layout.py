"""The layout of generated Python: valid, and left unchanged by `ruff format`."""

import ast
import random
import shutil
import subprocess

import pytest
from archdsl.backends.keras.layout import statement
from archdsl.backends.pysource import Call, Pair, Seq, literal, num, string
from kerasgen import ROOT

RUFF = shutil.which("ruff") or str(ROOT / ".venv" / "bin" / "ruff")
AWKWARD = ["alexnet.arch", "a'b", 'a"b', "a'b\"c", 'a\'b""c', "back\\slash", "new\nline", "ünï🙂"]


def ruff_format_diff(path):
    """ruff format's diff of a file under default settings ('' when already formatted)."""
    run = subprocess.run(
        [RUFF, "format", "--isolated", "--no-cache", "--diff", str(path)],
        capture_output=True,
        text=True,
    )
    assert run.returncode in (0, 1), run.stderr
    return run.stdout


def tree(rng, depth=0):
    """A random expression: names, numbers, calls (some chained), tuples, lists, dicts."""
    kind = rng.choice(["atom", "atom", "call", "seq", "dict"] if depth < 3 else ["atom"])
    if kind == "atom":
        return rng.choice([num(rng.random() * 10 ** rng.randint(-9, 9)), "x" * rng.randint(1, 40)])
    items = tuple(tree(rng, depth + 1) for _ in range(rng.randint(0, 5)))
    if kind == "dict":
        return Seq("{}", tuple(Pair(string("k" * rng.randint(1, 9)), i, ": ") for i in items))
    if kind == "seq":
        return Seq(rng.choice(["()", "[]"]), items)
    keywords = rng.randint(0, len(items))
    args = items[keywords:] + tuple(Pair("k" * (n + 1), i) for n, i in enumerate(items[:keywords]))
    call = Call("f" * rng.randint(1, 30), args)
    return Call(call, (tree(rng, 3),)) if rng.random() < 0.5 else call


@pytest.mark.parametrize("text", AWKWARD)
def test_string_literals_round_trip(text):
    assert ast.literal_eval(string(text)) == text


def test_layout_is_already_ruff_formatted(tmp_path):
    rng = random.Random(0)
    lines = ["def f():", '    """Random trees."""']
    for i in range(300):
        comment = "shape " * rng.randint(0, 4)
        lines.append(statement(tree(rng), 4, f"v{i} = ", comment.strip()))
    data = [{"spec": text, "n": [1, 2.5e-7, None, True, float("inf")]} for text in AWKWARD]
    lines += [statement(literal(d), 4, "data = ") for d in data]
    path = tmp_path / "layout.py"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    compile(path.read_text(encoding="utf-8"), str(path), "exec")
    assert ruff_format_diff(path) == ""
