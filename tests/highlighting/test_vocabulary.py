"""archdsl.vocabulary lists the words the compiler knows: read from it, never retyped."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from archdsl import vocabulary as vocab
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

ROOT = Path(__file__).resolve().parents[2]
GRAMMAR = ROOT / "archdsl" / "grammar.lark"


def test_keywords_are_the_grammars_word_terminals():
    written = re.findall(r'^[A-Z_]+(?:\.\d+)?:\s*"([a-z_]+)"\s*$', GRAMMAR.read_text(), re.M)
    assert set(vocab.KEYWORDS) == set(written)
    assert {"model", "towers", "block", "expect", "from", "not"} <= set(vocab.KEYWORDS)


def test_every_op_recipe_and_setting_has_its_kind():
    kinds = vocab.word_kinds()
    assert all(kinds[name] == "op" for name in REGISTRY)
    for table in (INITS, OPTIMIZERS, SCHEDULES, LOSSES, AUGMENTS, AVERAGES):
        assert all(kinds[name] in ("recipe", "constant") for name in table), table
    assert kinds["none"] == "constant"  # `schedule = none` and `approximate=none` alike
    assert vocab.SETTINGS == TRAIN_SETTINGS


def test_patterns_match_what_the_parser_reads():
    assert re.fullmatch(vocab.DIMS, "3 x 224 x 224") and not re.fullmatch(vocab.DIMS, "224")
    assert re.fullmatch(vocab.NUMBER, "1e-4") and re.fullmatch(vocab.NUMBER, ".5")
    assert re.fullmatch(vocab.NAME, "conv1") and not re.fullmatch(vocab.NAME, "1conv")
    operators = re.findall(vocab.OPERATOR, "a |> b == c // d <= e * f + g / h != i = j - k")
    assert operators == ["|>", "==", "//", "<=", "*", "+", "/", "!=", "=", "-"]


def test_context_words_come_from_their_modules():
    assert vocab.BUILTINS == ("in", "index", "position", "positions", "merge")
    assert vocab.INPUT_WORDS == ("tokens", "of")
    assert set(vocab.CONSTANTS) == {"true", "false", "none", "same", "valid"}
    assert {"fan_out", "val_error", "torch"} <= set(vocab.word_lists()["choice"])


def test_the_vocabulary_imports_no_framework():
    probe = "import sys, archdsl.vocabulary; print(sorted({'numpy', 'torch'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT)
    assert done.stdout.strip() == "[]", done.stderr
