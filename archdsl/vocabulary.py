"""The words and token patterns of the .arch language, read from the compiler itself.

Keywords, symbols and the patterns of comments, dims, numbers and names come from the grammar's
terminals; op names from the op registry; recipe names, their choices and the train settings
from the signatures; the names blocks, towers and expressions give meaning to from the modules
that do. The highlighters (archdsl/pygments_lexer.py, and the TextMate grammar that
archdsl/textmate.py writes) are built from these lists, so they cannot drift from the compiler.
"""

from __future__ import annotations

from typing import get_args

from lark.lexer import PatternStr

from archdsl.blocks import BLOCK_INPUT, INDEX, PARAM_KINDS, POSITION, POSITIONS
from archdsl.expressions import NUMBER_FUNCTIONS
from archdsl.ir_types import Padding
from archdsl.lowering import INIT_TARGETS as INIT_TARGETS  # `init weight`, `init conv.weight`
from archdsl.lowering import LANGUAGE_WORDS, TOKEN_WORDS
from archdsl.ops import REGISTRY
from archdsl.signatures import (
    AUGMENTS,
    AVERAGES,
    INITS,
    LOSSES,
    OPTIMIZERS,
    SCHEDULES,
    TRAIN_SETTINGS,
)
from archdsl.syntax import terminals
from archdsl.towers import MERGE

# grammar terminals that are brackets and separators, and those with rules of their own
PUNCTUATION = ("LPAR", "RPAR", "LSQB", "RSQB", "LBRACE", "RBRACE", "COMMA", "COLON", "DOT")
PATTERNED = ("WS", "COMMENT", "DIMS", "NUMBER", "NAME")
RECIPE_TABLES = (INITS, OPTIMIZERS, SCHEDULES, LOSSES, AUGMENTS, AVERAGES)


def _is_word(terminal) -> bool:
    """Whether a terminal is a literal word (a keyword) rather than a symbol or a pattern."""
    return isinstance(terminal.pattern, PatternStr) and terminal.pattern.value.isidentifier()


def _operator_pattern() -> str:
    """One regex for every operator terminal, the longest alternatives first."""
    operators = [
        t for t in terminals() if not _is_word(t) and t.name not in PUNCTUATION + PATTERNED
    ]
    operators.sort(key=lambda t: (-t.pattern.max_width, t.name))
    return "|".join(t.pattern.to_regexp() for t in operators)


def _choices() -> tuple[str, ...]:
    """Every value a `choice:a|b` argument of an op or recipe takes, each once."""
    signatures = [spec.params for spec in REGISTRY.values()]
    signatures += [params for table in RECIPE_TABLES for params in table.values()]
    kinds = [p.kind for params in signatures for p in params]
    values = [v for k in kinds if k.startswith("choice:") for v in k.split(":", 1)[1].split("|")]
    return tuple(dict.fromkeys(values))


PATTERNS = {t.name: t.pattern.to_regexp() for t in terminals()}
COMMENT, DIMS, NUMBER, NAME = (PATTERNS[name] for name in PATTERNED[1:])
OPERATOR = _operator_pattern()

KEYWORDS = tuple(t.pattern.value for t in terminals() if _is_word(t))
PADDINGS = get_args(get_args(Padding)[0])  # `pad=same`, `pad=valid`
CONSTANTS = (*sorted(LANGUAGE_WORDS - set(KEYWORDS)), *PADDINGS)  # true, false, none, ...
BUILTINS = (BLOCK_INPUT, INDEX, POSITION, POSITIONS, MERGE)  # names blocks and towers define
SETTINGS = TRAIN_SETTINGS  # `NAME = value` in `train { }`
PARAM_TYPES = tuple(PARAM_KINDS)  # `block NAME(planes: int)`
INPUT_WORDS = TOKEN_WORDS  # `input text: tokens 32 of 1000`


def word_lists() -> dict[str, tuple[str, ...]]:
    """The language's names by kind, read from the registry and signatures when called."""
    return {
        "keyword": KEYWORDS,
        "constant": CONSTANTS,
        "op": tuple(REGISTRY),
        "function": tuple(NUMBER_FUNCTIONS),  # max, min in argument expressions
        "recipe": tuple(dict.fromkeys(name for table in RECIPE_TABLES for name in table)),
        "builtin": BUILTINS,
        "choice": _choices(),
    }


def word_kinds() -> dict[str, str]:
    """Each listed word and its kind (a key of word_lists), earlier lists winning."""
    kinds: dict[str, str] = {}
    for kind, words in word_lists().items():
        for word in words:
            kinds.setdefault(word, kind)
    return kinds


def words_of_kind(kind: str) -> tuple[str, ...]:
    """The words `word_kinds` gives `kind`, in list order."""
    return tuple(word for word, k in word_kinds().items() if k == kind)
