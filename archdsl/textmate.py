"""The TextMate grammar of .arch, generated from the compiler's word lists and patterns.

editors/vscode/syntaxes/arch.tmLanguage.json is this module's output, committed; regenerate it
after adding an op, a recipe or a keyword (the tests fail until it is):

    python -m archdsl.textmate > editors/vscode/syntaxes/arch.tmLanguage.json

Its regexes keep to what Python's `re` and Oniguruma (the engine of VS Code and TextMate)
read alike, so that the tests can run it on the shipped specs.
"""

from __future__ import annotations

import json
import sys

from archdsl import vocabulary as vocab

NAME = vocab.NAME
ASSIGNED = rf"\b({NAME})\s*(=)(?!=)"  # a name being given a value: `NAME =`, not `NAME ==`
WORD_SCOPES = {
    "keyword": "keyword.control.arch",
    "constant": "constant.language.arch",
    "op": "support.function.op.arch",
    "function": "support.function.builtin.arch",
    "recipe": "support.function.recipe.arch",
    "builtin": "variable.language.arch",
    "choice": "constant.other.choice.arch",
}
KEYWORD = "keyword.control.arch"
ASSIGNMENT = "keyword.operator.assignment.arch"
PUNCTUATION = "punctuation.separator.arch"
BRACKETS = (("\\(", "\\)", "parens"), ("\\[", "\\]", "brackets"))


def alternation(words: tuple[str, ...]) -> str:
    """A regex matching any of `words` as a whole word."""
    return rf"\b(?:{'|'.join(words)})\b"


def captures(*scopes: str | None) -> dict:
    """TextMate captures naming groups 1, 2, ... (None leaves a group unnamed)."""
    return {str(i): {"name": s} for i, s in enumerate(scopes, 1) if s}


def word_patterns() -> list[dict]:
    """The vocabulary's words, one pattern per kind, then any other name (unscoped)."""
    kinds = [(kind, vocab.words_of_kind(kind)) for kind in WORD_SCOPES]
    patterns = [{"match": alternation(w), "name": WORD_SCOPES[k]} for k, w in kinds if w]
    return [*patterns, {"match": NAME}]


def declarations() -> dict:
    """`model NAME`, `input NAME: ...` (with `tokens L of V`) and `init [op.]weight`."""
    model, init = vocab.PATTERNS["MODEL"], vocab.PATTERNS["INIT"]
    tokens, of = vocab.INPUT_WORDS
    targets = "|".join(vocab.INIT_TARGETS)
    return {
        "model": {
            "match": rf"\b({model})\s+({NAME})",
            "captures": captures(KEYWORD, "entity.name.type.model.arch"),
        },
        "input": {
            "match": rf"\b({vocab.PATTERNS['INPUT']})\s+({NAME})\s*(:)"
            rf"(?:\s*({tokens})\s+([0-9]+)\s+({of})\b)?",
            "captures": captures(
                KEYWORD,
                "variable.other.definition.arch",
                PUNCTUATION,
                "keyword.other.tokens.arch",
                "constant.numeric.arch",
                "keyword.other.tokens.arch",
            ),
        },
        "init": {
            "match": rf"\b({init})\s+(?:({NAME})\s*(\.)\s*)?({targets})\b",
            "captures": captures(
                KEYWORD, WORD_SCOPES["op"], PUNCTUATION, "variable.other.property.arch"
            ),
        },
    }


def regions() -> dict:
    """`block NAME(params) { }`, `train { }`, other braces, parentheses and brackets."""
    types = "|".join(vocab.PARAM_TYPES)
    out = {
        "block": {
            "begin": rf"\b({vocab.PATTERNS['BLOCK']})\s+({NAME})\s*(\()",
            "beginCaptures": captures(KEYWORD, "entity.name.function.block.arch", PUNCTUATION),
            "end": r"\)",
            "patterns": [
                {"include": "#comment"},
                {
                    "match": rf"\b({NAME})\s*(:)\s*(?:({types})\b)?",
                    "captures": captures(
                        "variable.parameter.arch", PUNCTUATION, "storage.type.arch"
                    ),
                },
                {
                    "begin": "(=)",
                    "beginCaptures": captures(ASSIGNMENT),
                    "end": "(?=[,)])",
                    "patterns": [{"include": "#expression"}],
                },
                {"match": NAME, "name": "variable.parameter.arch"},
            ],
        },
        "train": {
            "begin": rf"\b({vocab.PATTERNS['TRAIN']})\s*(\{{)",
            "beginCaptures": captures(KEYWORD, PUNCTUATION),
            "end": r"\}",
            "patterns": [
                {"include": "#comment"},
                {
                    "match": rf"\b({'|'.join(vocab.SETTINGS)})\s*(=)(?!=)",
                    "captures": captures("support.type.property-name.arch", ASSIGNMENT),
                },
                {"match": ASSIGNED, "captures": captures(None, ASSIGNMENT)},
                {"include": "#expression"},
            ],
        },
        "body": {"begin": r"\{", "end": r"\}", "patterns": [{"include": "#statements"}]},
    }
    for begin, end, name in BRACKETS:
        out[name] = {
            "begin": begin,
            "end": end,
            "patterns": [
                {"include": "#comment"},
                {"match": ASSIGNED, "captures": captures("variable.parameter.arch", ASSIGNMENT)},
                {"include": "#expression"},
            ],
        }
    return out


def grammar() -> dict:
    """The whole TextMate grammar."""
    repository = {
        "comment": {"match": vocab.COMMENT, "name": "comment.line.number-sign.arch"},
        **declarations(),
        **regions(),
        "statements": {
            "patterns": [
                {"include": "#comment"},
                {
                    "match": ASSIGNED,
                    "captures": captures("variable.other.definition.arch", ASSIGNMENT),
                },
                {"include": "#expression"},
            ]
        },
        "expression": {
            "patterns": [
                {"include": "#comment"},
                {"include": "#parens"},
                {"include": "#brackets"},
                {"match": vocab.DIMS, "name": "constant.numeric.dims.arch"},
                {"match": vocab.NUMBER, "name": "constant.numeric.arch"},
                {
                    "match": rf"(\.)\s*({NAME})",
                    "captures": captures(PUNCTUATION, "variable.other.property.arch"),
                },
                *word_patterns(),
                {"match": vocab.OPERATOR, "name": "keyword.operator.arch"},
                {"match": "[,:.]", "name": PUNCTUATION},
            ]
        },
    }
    top = ("comment", "model", "input", "init", "block", "train", "body", "statements")
    return {
        "name": "Arch",
        "scopeName": "source.arch",
        "fileTypes": ["arch"],
        "comment": "Generated by `python -m archdsl.textmate` from archdsl/vocabulary.py.",
        "patterns": [{"include": f"#{name}"} for name in top],
        "repository": repository,
    }


def render() -> str:
    """The grammar as the committed JSON file holds it."""
    return json.dumps(grammar(), indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    """Write the grammar to stdout."""
    sys.stdout.write(render())


if __name__ == "__main__":
    main()
