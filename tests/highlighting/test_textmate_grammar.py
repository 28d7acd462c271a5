"""The TextMate grammar of editors/vscode: what the generator writes from the compiler's lists,
and, run by a small TextMate tokenizer, the same reading of every shipped spec as Pygments'."""

from __future__ import annotations

import json
import re
from pathlib import Path

import oniguruma
import pytest
from highlight_sample import SAMPLE
from pygments.token import Comment, Keyword, Name, Number, Operator, Punctuation, Whitespace
from textmate_reader import tokenize

from archdsl import textmate, vocabulary
from archdsl.ops import REGISTRY
from archdsl.pygments_lexer import ArchLexer

ROOT = Path(__file__).resolve().parents[2]
VSCODE = ROOT / "editors" / "vscode"
COMMITTED = VSCODE / "syntaxes" / "arch.tmLanguage.json"
SPECS = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "specs").rglob("*.arch"))
# the TextMate scopes a character may have where Pygments gives its token a type
SCOPES_OF = {
    Keyword: {"keyword.control.arch"},
    Keyword.Constant: {"constant.language.arch"},
    Keyword.Type: {"storage.type.arch"},
    Keyword.Pseudo: {"keyword.other.tokens.arch"},
    Name: {None},
    Name.Builtin.Pseudo: {"variable.language.arch"},
    Name.Constant: {"constant.other.choice.arch"},
    Name.Class: {"entity.name.type.model.arch"},
    Name.Function: {"entity.name.function.block.arch"},
    Name.Variable: {"variable.other.definition.arch", "variable.parameter.arch"},
    Name.Attribute: {
        "variable.parameter.arch",
        "variable.other.property.arch",
        "support.type.property-name.arch",
    },
    Comment.Single: {"comment.line.number-sign.arch"},
    Number.Integer: {"constant.numeric.arch", "constant.numeric.dims.arch"},
    Number.Float: {"constant.numeric.arch"},
    Operator: {
        "keyword.operator.arch",
        "keyword.operator.assignment.arch",
        "constant.numeric.dims.arch",
    },
    Punctuation: {"punctuation.separator.arch", None},
}


def op_pattern(grammar: dict) -> str:
    """The regex of the grammar's pattern for op names."""
    patterns = grammar["repository"]["expression"]["patterns"]
    (op,) = [p["match"] for p in patterns if p.get("name") == "support.function.op.arch"]
    return op


def stale(committed: str) -> bool:
    """Whether the committed grammar differs from what the generator writes now."""
    return committed != textmate.render()


def test_committed_grammar_is_generated():
    if stale(COMMITTED.read_text(encoding="utf-8")):
        pytest.fail("regenerate: python -m archdsl.textmate > " + str(COMMITTED.relative_to(ROOT)))


def test_every_op_is_in_the_op_pattern():
    pattern = op_pattern(json.loads(COMMITTED.read_text(encoding="utf-8")))
    assert [name for name in REGISTRY if not re.fullmatch(pattern, name)] == []
    assert not re.fullmatch(pattern, "conv1") and not re.fullmatch(pattern, "sgd")


def test_an_op_added_to_the_compiler_fails_the_check(monkeypatch):
    monkeypatch.setitem(REGISTRY, "frobnicate", REGISTRY["relu"])
    assert stale(COMMITTED.read_text(encoding="utf-8"))
    assert re.fullmatch(op_pattern(textmate.grammar()), "frobnicate")


def kind_scopes(token_type, text: str) -> set:
    """The scopes TextMate may give a token Pygments typed `token_type`."""
    if token_type is Name.Builtin:  # an op, a function or a recipe: its own scope each
        return {textmate.WORD_SCOPES[vocabulary.word_kinds()[text]]}
    return SCOPES_OF[token_type]


@pytest.mark.parametrize("spec", [*SPECS, "SAMPLE"])
def test_textmate_reads_each_spec_as_pygments_does(spec):
    text = SAMPLE if spec == "SAMPLE" else (ROOT / spec).read_text(encoding="utf-8")
    scopes = tokenize(textmate.grammar(), text)
    disagreements = []
    for start, token_type, value in ArchLexer().get_tokens_unprocessed(text):
        if token_type is Whitespace:
            continue
        found = set(scopes[start : start + len(value)])
        if not found <= kind_scopes(token_type, value):
            line = text.count("\n", 0, start) + 1
            disagreements.append((line, value, str(token_type), sorted(map(str, found))))
    assert disagreements == []


def test_vscode_extension_contributes_the_language_and_grammar():
    package = json.loads((VSCODE / "package.json").read_text(encoding="utf-8"))
    (language,) = package["contributes"]["languages"]
    (grammar,) = package["contributes"]["grammars"]
    assert language["id"] == grammar["language"] == "arch"
    assert language["extensions"] == [".arch"]
    assert (VSCODE / grammar["path"]).resolve() == COMMITTED
    assert grammar["scopeName"] == textmate.grammar()["scopeName"]
    config = json.loads((VSCODE / language["configuration"]).read_text(encoding="utf-8"))
    assert re.fullmatch(vocabulary.COMMENT, config["comments"]["lineComment"] + " a comment")
    brackets = [
        vocabulary.PATTERNS[t] for t in ("LPAR", "RPAR", "LSQB", "RSQB", "LBRACE", "RBRACE")
    ]
    pairs = [[re.sub(r"\\", "", b) for b in brackets[i : i + 2]] for i in (0, 2, 4)]
    assert config["brackets"] == pairs
    assert [[p["open"], p["close"]] for p in config["autoClosingPairs"]] == pairs


def grammar_regexes(node) -> list[str]:
    """Every `match`, `begin` and `end` regex of a grammar (or part of one)."""
    if isinstance(node, list):
        return [r for item in node for r in grammar_regexes(item)]
    if not isinstance(node, dict):
        return []
    own = [node[key] for key in ("match", "begin", "end") if isinstance(node.get(key), str)]
    return own + [r for value in node.values() for r in grammar_regexes(value)]


def re_spans(pattern: str, line: str) -> list[tuple[tuple[int, int], ...]]:
    """Each successive match of `pattern` in `line` by Python's re: its and its groups' spans."""
    regex, out, pos = re.compile(pattern), [], 0
    while pos <= len(line) and (m := regex.search(line, pos)):
        out.append(tuple(m.span(i) for i in range(regex.groups + 1)))
        pos = m.end() + (m.end() == m.start())
    return out


def test_oniguruma_reads_every_regex_as_python_does():
    lib = oniguruma.load()
    if lib is None:
        pytest.skip("libonig (Oniguruma) is not installed")
    lines = [line for spec in SPECS for line in (ROOT / spec).read_text().splitlines()]
    lines += SAMPLE.splitlines()
    for pattern in dict.fromkeys(grammar_regexes(textmate.grammar())):
        regex = oniguruma.Regex(lib, pattern)
        differing = [line for line in lines if regex.spans(line) != re_spans(pattern, line)]
        assert differing == [], pattern
