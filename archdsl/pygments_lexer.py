"""A Pygments lexer for .arch specs, built from the compiler's own word lists and patterns.

Registered under the `pygments.lexers` entry point (pyproject.toml), so that `pygmentize -l
arch`, Sphinx and MkDocs find it once archdsl is installed. Only that entry point imports this
module: Pygments is not a dependency of the compiler.
"""

from __future__ import annotations

import re

from pygments.lexer import RegexLexer, bygroups, default, include, words
from pygments.token import (
    Comment,
    Keyword,
    Name,
    Number,
    Operator,
    Punctuation,
    Whitespace,
)

from archdsl import vocabulary as vocab

TOKEN_TYPES = {
    "keyword": Keyword,
    "constant": Keyword.Constant,
    "op": Name.Builtin,
    "function": Name.Builtin,
    "recipe": Name.Builtin,
    "builtin": Name.Builtin.Pseudo,
    "choice": Name.Constant,
}
KINDS = vocab.word_kinds()
NAME = vocab.NAME
MODEL, INPUT, INIT, BLOCK, TRAIN = (
    vocab.PATTERNS[t] for t in ("MODEL", "INPUT", "INIT", "BLOCK", "TRAIN")
)
DIMS_PARTS = re.compile(r"[0-9]+|[xX]|-|\s+")  # what a DIMS match is made of
DIMS_PART_TYPES = {"x": Operator, "X": Operator, "-": Operator}
ASSIGNED = rf"({NAME})(\s*)(=)(?!=)"  # a name being given a value: `NAME =`, not `NAME ==`


def _typed(token_type, known: tuple[str, ...]):
    """A callback giving a word `token_type` when it is in `known`, a plain Name otherwise."""

    def callback(lexer, match, ctx=None):
        word = match.group()
        yield match.start(), token_type if word in known else Name, word

    return callback


def word(lexer, match):
    """A name: its kind in the language's vocabulary, or a plain name."""
    text = match.group()
    yield match.start(), TOKEN_TYPES[KINDS[text]] if text in KINDS else Name, text


def number(lexer, match):
    """A whole number or a float."""
    text = match.group()
    whole = text.isdigit()
    yield match.start(), Number.Integer if whole else Number.Float, text


def dims(lexer, match):
    """`3 x 224 x 224`: its sizes, the `x`s between them and the spaces."""
    for part in DIMS_PARTS.finditer(match.group()):
        text = part.group()
        kind = Whitespace if text.isspace() else DIMS_PART_TYPES.get(text, Number.Integer)
        yield match.start() + part.start(), kind, text


class ArchLexer(RegexLexer):
    """The .arch language of archdsl: neural-network architecture specs."""

    name = "Arch"
    aliases = ["arch", "archdsl"]
    filenames = ["*.arch"]
    mimetypes = ["text/x-arch"]

    tokens = {
        "root": [
            (rf"({MODEL})(\s+)({NAME})", bygroups(Keyword, Whitespace, Name.Class)),
            (
                rf"({INPUT})(\s+)({NAME})(\s*)(:)",
                bygroups(Keyword, Whitespace, Name.Variable, Whitespace, Punctuation),
                "input",
            ),
            (rf"{INIT}\b", Keyword, "init"),
            (
                rf"({BLOCK})(\s+)({NAME})(\s*)(\()",
                bygroups(Keyword, Whitespace, Name.Function, Whitespace, Punctuation),
                "params",
            ),
            (rf"({TRAIN})(\s*)(\{{)", bygroups(Keyword, Whitespace, Punctuation), "train"),
            (r"\{", Punctuation, "body"),
            include("statements"),
        ],
        "body": [(r"\}", Punctuation, "#pop"), include("statements")],
        "statements": [
            include("space"),
            (ASSIGNED, bygroups(Name.Variable, Whitespace, Operator)),
            include("expression"),
        ],
        "train": [
            (r"\}", Punctuation, "#pop"),
            include("space"),
            (ASSIGNED, bygroups(_typed(Name.Attribute, vocab.SETTINGS), Whitespace, Operator)),
            include("expression"),
        ],
        "args": [
            (r"[)\]]", Punctuation, "#pop"),
            include("space"),
            (ASSIGNED, bygroups(Name.Attribute, Whitespace, Operator)),
            include("expression"),
        ],
        "params": [
            include("space"),
            (r"\)", Punctuation, "#pop"),
            (r",", Punctuation),
            (
                rf"({NAME})(\s*)(:)(\s*)({NAME})",
                bygroups(
                    Name.Variable,
                    Whitespace,
                    Punctuation,
                    Whitespace,
                    _typed(Keyword.Type, vocab.PARAM_TYPES),
                ),
            ),
            (NAME, Name.Variable),
            (r"=", Operator, "param_default"),
        ],
        "param_default": [
            (r",", Punctuation, "#pop"),
            (r"\)", Punctuation, "#pop:2"),
            include("space"),
            include("expression"),
        ],
        "init": [
            include("space"),
            (words(vocab.INIT_TARGETS, suffix=r"\b"), Name.Attribute),
            (NAME, word),
            (r"\.", Punctuation),
            (r"=", Operator, "#pop"),
            default("#pop"),
        ],
        "input": [
            include("space"),
            (
                rf"({vocab.INPUT_WORDS[0]})(\s+)([0-9]+)(\s+)({vocab.INPUT_WORDS[1]})\b",
                bygroups(Keyword.Pseudo, Whitespace, Number.Integer, Whitespace, Keyword.Pseudo),
            ),
            (vocab.DIMS, dims, "#pop"),
            (vocab.NUMBER, number, "#pop"),
            default("#pop"),
        ],
        "space": [(r"\s+", Whitespace), (vocab.COMMENT, Comment.Single)],
        "expression": [
            (r"[(\[]", Punctuation, "args"),
            (vocab.DIMS, dims),
            (vocab.NUMBER, number),
            (rf"(\.)(\s*)({NAME})", bygroups(Punctuation, Whitespace, Name.Attribute)),
            (NAME, word),
            (vocab.OPERATOR, Operator),
            (r"[,:.]", Punctuation),
        ],
    }
