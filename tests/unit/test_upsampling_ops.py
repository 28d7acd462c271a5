"""conv_transpose and upsample in the front end: shape rules, counts, fans and diagnostics."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from archdsl.compiler import check_source
from archdsl.emit import write_output
from archdsl.initializers import fans


def check(body: str, input_shape: str):
    return check_source(f"model T\ninput x: {input_shape}\n{body}\n", "t.arch")


def layer(body: str, input_shape: str):
    """The only layer of a one-statement spec that checks without errors."""
    checked = check(body, input_shape)
    assert checked.ok, checked.diagnostics
    (only,) = checked.report.layers
    return only, checked.graph.statements[0].ops[0]


@pytest.mark.parametrize(
    ("shape", "op", "out"),
    [
        # (in - 1) * stride - 2 * pad + dilation * (k - 1) + output_pad + 1
        ("4 x 16 x 16", "conv_transpose(2, kernel=3, stride=2, pad=1, output_pad=1)", (2, 32, 32)),
        ("4 x 16 x 16", "conv_transpose(2, kernel=4, stride=2, pad=1)", (2, 32, 32)),
        ("4 x 5 x 7", "conv_transpose(6, kernel=3 x 2, stride=2 x 3, pad=1 x 0)", (6, 9, 20)),
        ("1 x 4 x 4", "conv_transpose(1, kernel=3, dilation=3, output_pad=2)", (1, 12, 12)),
        ("1 x 4 x 4", "conv_transpose(1, kernel=1, stride=3, output_pad=2)", (1, 12, 12)),
        ("1 x 5 x 5", "conv_transpose(1, kernel=3, stride=2, pad=3)", (1, 5, 5)),
        ("3 x 2 x 5", "upsample", (3, 4, 10)),
        ("3 x 2 x 5", "upsample(3 x 1, mode=bilinear, align_corners=true)", (3, 6, 5)),
    ],
)
def test_output_shapes(shape, op, out):
    assert layer(f"y = {op}", shape)[0].output_shape == out


def test_conv_transpose_counts_and_fans():
    """weight (in, filters / groups, kh, kw); MACs: every tap at every input position (as
    FlopCounterMode counts); fans as torch.nn.init computes them from that weight."""
    found, op = layer(
        "y = conv_transpose(6, kernel=3 x 2, stride=2, groups=2, weight=he_normal)", "4 x 5 x 7"
    )
    assert found.params == 4 * 3 * 3 * 2 + 6
    assert found.macs == (4 * 3 * 3 * 2) * (5 * 7)
    assert fans(op, (4, 5, 7)) == (3 * 3 * 2, 4 * 3 * 2)
    assert "(5 - 1) * 2 - 0 + 2 + 0 + 1 = 11" in found.formula


def test_upsample_has_no_parameters_or_macs():
    found, _ = layer("y = upsample(2, mode=bilinear)", "3 x 4 x 4")
    assert (found.params, found.macs) == (0, 0)


def test_conv_transpose_defaults_take_per_kind_initialisers():
    checked = check(
        "init conv_transpose.weight = zeros\ny = conv_transpose(2, kernel=2)", "1 x 2 x 2"
    )
    assert checked.ok, checked.diagnostics
    assert checked.graph.statements[0].ops[0].weight_init.value == 0.0


@pytest.mark.parametrize(
    ("shape", "op", "code", "column", "message", "hint"),
    [
        (
            "4 x 8 x 8",
            "conv_transpose(2, kernel=3, stride=2, output_pad=2)",
            "E004",
            54,
            "output_pad 2 must be smaller than the stride (2) or the dilation (1)",
            "use output_pad <= 1",
        ),
        (
            "4 x 8 x 8",
            "conv_transpose(2, kernel=3, output_pad=1)",
            "E004",
            44,
            "smaller than the stride (1) or the dilation (1)",
            "drop `output_pad`: at stride 1 and dilation 1 it must be 0",
        ),
        (
            "4 x 2 x 2",
            "conv_transpose(2, kernel=1, pad=2)",
            "E007",
            5,
            "conv_transpose's padding crops its whole output: (2 - 1) * 1 - 4 + 0 + 0 + 1 = -2",
            "use less padding",
        ),
        (
            "4 x 8 x 8",
            "conv_transpose(6, kernel=3, groups=4)",
            "E008",
            5,
            "groups=4 does not divide the 6 filters",
            "try one of [1, 2]",
        ),
        (
            "4 x 8 x 8",
            "conv_transpose(2, kernel=3, pad=same)",
            "E004",
            37,
            "`pad` of `conv_transpose` must be a whole number or H x W, not `same`",
            "e.g. `1` or `0 x 2`",
        ),
        (
            "4 x 8 x 8",
            "upsample(2, align_corners=true)",
            "E004",
            31,
            "`align_corners` applies only to `mode=bilinear`",
            "drop `align_corners`, or write `mode=bilinear`",
        ),
        ("4 x 8 x 8", "upsample(0)", "E006", 14, "`scale` of `upsample` must be positive", ""),
        ("4 x 8 x 8", "upsample(mode=bicubic)", "E004", 19, "must be one of nearest", "bilinear"),
        ("12", "upsample", "E018", 5, "upsample needs a C x H x W map, got 12", "before `flatten`"),
    ],
)
def test_bad_arguments_get_one_line_diagnostics_with_hints(shape, op, code, column, message, hint):
    checked = check(f"y = {op}", shape)
    (diagnostic,) = [d for d in checked.diagnostics if d.severity == "error"]
    assert (diagnostic.code, diagnostic.span.line, diagnostic.span.column) == (code, 3, column)
    assert message in diagnostic.message and "\n" not in diagnostic.message
    assert hint in diagnostic.hint and "\n" not in diagnostic.hint


POCKET = Path(__file__).resolve().parents[1] / "conformance" / "specs" / "upsample_pocket.arch"


@pytest.mark.parametrize("backend", ["torch", "keras"])
def test_generated_code_is_deterministic_and_ruff_clean(backend, tmp_path):
    """The same spec gives byte-identical model.py files that pass ruff's defaults."""
    checked = check_source(POCKET.read_text(encoding="utf-8"), str(POCKET))
    texts = []
    for run in ("a", "b"):
        write_output(checked, backend, tmp_path / run)
        texts.append((tmp_path / run / "model.py").read_text(encoding="utf-8"))
    assert texts[0] == texts[1]
    assert ("ConvTranspose" in texts[0]) and ("Resize" in texts[0])
    if importlib.util.find_spec("ruff") is None:
        pytest.skip("ruff is not installed (pip install -e '.[dev]')")
    for command in (["check"], ["format", "--check"]):
        done = subprocess.run(
            [sys.executable, "-m", "ruff", *command, "--isolated", "--no-cache", "model.py"],
            cwd=tmp_path / "a",
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stdout + done.stderr
