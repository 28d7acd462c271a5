"""The train block's fine-tuning groups (`freeze`, `lr_scale`): what reaches the IR for plain,
block-call and towered statements, every refusal located with a hint, the parameter count
`shapes` reports, and model.py's TRAIN (only where a spec has them)."""

from __future__ import annotations

import json

import pytest

from archdsl.cli import main
from archdsl.compiler import check_source

HEAD = """model T
input x: 3 x 8 x 8
block basic(planes: int) {
  conv1 = conv(planes, kernel=3, pad=1, bias=false) |> batchnorm |> relu
  out = add(conv1, in) |> relu
}
stem   = conv(4, kernel=3, pad=1, bias=false) |> batchnorm |> relu
layer1 = basic(4) * 2
act    = relu
head   = global_avgpool |> flatten |> dense(5)
"""
TRAIN_LINE = 12  # the first line inside `train {`


def check(*settings: str):
    """The checked spec HEAD with a train block of `settings`, one per line."""
    return check_source(HEAD + "train {\n" + "\n".join(settings) + "\n}\n", "t.arch")


def found(checked) -> list[tuple[str, int, int]]:
    """(code, line, column) of every diagnostic."""
    return [(d.code, d.span.line, d.span.column) for d in checked.diagnostics]


def test_groups_reach_the_ir_as_tensor_prefixes():
    checked = check("freeze = [stem, layer1]", "lr_scale = [head(10)]")
    assert checked.ok, found(checked)
    train = checked.graph.train
    assert train.freeze == ("stem", "layer1")
    assert train.lr_scale == (("head", 10.0),)
    plain = check("epochs = 2").graph.train
    assert (plain.freeze, plain.lr_scale) == ((), ())


def test_a_towered_statement_covers_its_towers():
    source = (
        "model T\ninput x: 3 x 8 x 8\ntowers 2 {\n  c = conv(4, kernel=3) |> relu\n}\n"
        "head = global_avgpool |> flatten |> dense(3)\n"
        "train {\n  freeze = [c]\n}\n"
    )
    checked = check_source(source, "t.arch")
    assert checked.ok, found(checked)
    assert checked.graph.train.freeze == ("c_t0", "c_t1")


@pytest.mark.parametrize(
    ("settings", "expected", "message", "hint"),
    [
        (["freeze = [stem, layr1]"], [("E010", 0, 17)], "no statement `layr1`", "`layer1`"),
        (["freeze = [x]"], [("E010", 0, 11)], "no statement `x`", "expected one of"),
        (["freeze = []"], [("E019", 0, 10)], "`freeze` is empty", "leave it out"),
        (["freeze = [act]"], [("E019", 0, 11)], "`act` has no parameters", "conv, dense"),
        (["freeze = [stem, stem]"], [("E016", 0, 17)], "`stem` given twice", ""),
        (["freeze = 3"], [("E019", 0, 10)], "takes statement names", "freeze = [stem"),
        (
            ["freeze = [stem, layer1, head]"],
            [("E019", 0, 10)],
            "nothing is left to train",
            "the head",
        ),
        (["lr_scale = [head]"], [("E019", 0, 13)], "entries are `name(factor)`", "layer4(0.1)"),
        (["lr_scale = [head(x=1)]"], [("E019", 0, 13)], "`name(factor)`", ""),
        (["lr_scale = [head(true)]"], [("E019", 0, 18)], "factor is a number", ""),
        (
            ["lr_scale = [stem(0), head(-0.5)]"],
            [("E019", 0, 18), ("E019", 0, 27)],
            "must be > 0, got 0",
            "put it in `freeze`",
        ),
        (
            ["freeze = [stem]", "lr_scale = [stem(0.1), head(2)]"],
            [("E019", 1, 13)],
            "`stem` is frozen",
            "out of `freeze` or out of `lr_scale`",
        ),
        (["lr_scale = [head(1), head(2)]"], [("E016", 0, 22)], "`head` given twice", ""),
        (["frieze = [stem]"], [("E019", 0, 1)], "unknown train setting", "`freeze`"),
    ],
)
def test_refusals_are_located_with_a_hint(settings, expected, message, hint):
    checked = check(*settings)
    assert not checked.ok
    assert found(checked) == [(c, TRAIN_LINE + row, col) for c, row, col in expected]
    first = checked.diagnostics[0]
    assert message in first.message
    assert hint in first.hint


def test_shapes_says_how_many_parameters_train(tmp_path, capsys):
    path = tmp_path / "t.arch"
    path.write_text(HEAD + "train {\n  freeze = [stem, layer1]\n}\n")
    assert main(["shapes", str(path)]) == 0
    out = capsys.readouterr().out
    # the head alone trains: dense(5) on 4 features
    head = 4 * 5 + 5
    trainable = 4 * 3 * 9 + 2 * 4 + 2 * (4 * 4 * 9 + 2 * 4) + head
    assert f"fine-tuning: {head} of {trainable:,} trainable params are trained" in out
    assert main(["shapes", str(path), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["trainable_params"], data["trained_params"]) == (trainable, head)


def test_model_py_holds_the_groups_only_where_the_spec_has_them(tmp_path):
    from archdsl.emit import write_output

    for backend in ("torch", "keras"):
        grouped = check("freeze = [stem, layer1]", "lr_scale = [head(0.5)]")
        write_output(grouped, backend, tmp_path / backend, force=True)
        text = (tmp_path / backend / "model.py").read_text()
        assert '"freeze": ["stem", "layer1"]' in text
        assert '"lr_scale": {"head": 0.5}' in text
        write_output(check("epochs = 2"), backend, tmp_path / f"{backend}-plain", force=True)
        plain = (tmp_path / f"{backend}-plain" / "model.py").read_text()
        assert "freeze" not in plain and "lr_scale" not in plain
