"""The Pygments lexer: every shipped spec lexes cleanly, words get their kinds, and Pygments
finds the lexer through the entry point pyproject.toml declares."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from highlight_sample import SAMPLE
from pygments import lexers, plugin
from pygments.token import Comment, Error, Keyword, Name, Number, Operator

from archdsl.pygments_lexer import ArchLexer

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[2]
SPECS = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "specs").rglob("*.arch"))
# every occurrence of each word in SAMPLE and the token type it gets
EXPECTED = {
    "model": Keyword,
    "Tiny": Name.Class,
    "# a comment": Comment.Single,
    "input": Keyword,
    "text": Name.Variable,
    "tokens": Keyword.Pseudo,
    "of": Keyword.Pseudo,
    "32": Number.Integer,
    "init": Keyword,
    "conv": Name.Builtin,
    "weight": Name.Attribute,
    "he_normal": Name.Builtin,
    "mode": Name.Attribute,
    "fan_out": Name.Constant,
    "block": Keyword,
    "int": Keyword.Type,
    "bool": Keyword.Type,
    "false": Keyword.Constant,
    "out": Name.Variable,
    "kernel": Name.Attribute,
    "same": Keyword.Constant,
    "|>": Operator,
    "relu": Name.Builtin,
    "from": Keyword,
    "in": Name.Builtin.Pseudo,
    "if": Keyword,
    "and": Keyword,
    "index": Name.Builtin.Pseudo,
    "==": Operator,
    "towers": Keyword,
    "a": Name.Variable,
    "merge": Name.Builtin.Pseudo,
    "dense": Name.Builtin,
    "channels": Name.Attribute,
    "true": Keyword.Constant,
    "expect": Keyword,
    "wide": Name.Variable,
    "stride": Name.Attribute,  # a keyword argument at the start of a line
    "# a comment in the arguments": Comment.Single,
    "head": Name.Variable,
    "max": Name.Builtin,
    "gelu": Name.Builtin,
    "approximate": Name.Attribute,
    "tanh": Name.Builtin,  # an op first, though also a choice of he_normal's nonlinearity
    "x": Operator,
    "train": Keyword,
    "optimizer": Name.Attribute,
    "sgd": Name.Builtin,
    "1e-4": Number.Float,
    "rule": Name.Attribute,
    "torch": Name.Constant,
    "epochs": Name.Attribute,
    "90": Number.Integer,
    "optimiser": Name,  # no train setting of that name
    "adam": Name.Builtin,
}


def lexed(text: str) -> list[tuple[int, object, str]]:
    """The lexer's (offset, token type, text) for `text`."""
    return list(ArchLexer().get_tokens_unprocessed(text))


@pytest.mark.parametrize("spec", SPECS)
def test_every_shipped_spec_lexes_without_error(spec):
    text = (ROOT / spec).read_text(encoding="utf-8")
    tokens = lexed(text)
    assert [t for t in tokens if t[1] in Error] == []
    assert "".join(value for _, _, value in tokens) == text


def test_words_get_their_token_types():
    found: dict[str, set] = {}
    for _, token_type, value in lexed(SAMPLE):
        found.setdefault(value, set()).add(token_type)
    assert {word: found.get(word) for word in EXPECTED} == {
        word: {token_type} for word, token_type in EXPECTED.items()
    }
    assert found["unit"] == {Name.Function, Name}  # defined, then called
    assert found["planes"] == {Name.Variable, Name}  # a parameter, then read


def test_every_test_spec_lexes_back_to_its_text():
    for path in sorted((ROOT / "tests").rglob("*.arch")):  # broken specs included
        text = path.read_text(encoding="utf-8", errors="replace")
        assert "".join(value for _, _, value in lexed(text)) == text, path


def pyproject_entry_point() -> str:
    """What pyproject.toml registers as the `arch` lexer: 'module:Class'."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return config["project"]["entry-points"]["pygments.lexers"]["arch"]


@pytest.fixture
def entry_point_dir(tmp_path, monkeypatch):
    """A folder on sys.path holding a dist-info with pyproject's `pygments.lexers` entry point,
    which is what installing archdsl writes (the shared editable install may predate it)."""
    dist_info = tmp_path / "archdsl_lexer_probe-0.dist-info"
    dist_info.mkdir()
    metadata = "Metadata-Version: 2.1\nName: archdsl-lexer-probe\nVersion: 0\n"
    (dist_info / "METADATA").write_text(metadata, encoding="utf-8")
    entry_points = f"[pygments.lexers]\narch = {pyproject_entry_point()}\n"
    (dist_info / "entry_points.txt").write_text(entry_points, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    plugin.iter_entry_points.cache_clear()  # Pygments caches the entry points it found
    yield tmp_path
    plugin.iter_entry_points.cache_clear()


def test_pyproject_names_the_lexer():
    module, _, name = pyproject_entry_point().partition(":")
    assert getattr(__import__(module, fromlist=[name]), name) is ArchLexer


def test_pygments_finds_the_lexer_through_the_entry_point(entry_point_dir):
    assert type(lexers.get_lexer_by_name("arch")) is ArchLexer
    assert lexers.find_lexer_class_for_filename("specs/alexnet.arch") is ArchLexer
    assert type(lexers.guess_lexer_for_filename("x.arch", SAMPLE)) is ArchLexer


def test_readme_shows_pygmentize_output(entry_point_dir):
    section = (ROOT / "README.md").read_text(encoding="utf-8").split("## Highlighting", 1)[1]
    m = re.search(r"```\n\$ echo '(.*)' \| pygmentize -l arch -f html\n(.*?)```", section, re.S)
    assert m, "the Highlighting section shows no pygmentize run"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(entry_point_dir), str(ROOT)])}
    done = subprocess.run(
        [sys.executable, "-m", "pygments", "-l", "arch", "-f", "html"],
        input=m[1] + "\n",
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert '<span class="nb">conv</span>' in done.stdout  # an op: Name.Builtin
    assert done.stdout == m[2]
