"""Blocks, repetition, conditions and expressions; the zoo against torchvision's counts."""

from __future__ import annotations

from pathlib import Path

import pytest

from archdsl.compiler import check_source

ZOO = Path(__file__).resolve().parents[2] / "specs" / "zoo"

# Parameter counts of torchvision.models.* (weights=None): sum(p.numel() for p in parameters())
TORCHVISION_PARAMS = {
    "vgg16": 138_357_544,
    "vgg16_bn": 138_365_992,
    "resnet18": 11_689_512,
    "resnet50": 25_557_032,
    "googlenet": 6_624_904,  # aux_logits=False
    "squeezenet1_0": 1_248_424,
    "squeezenet1_1": 1_235_496,
    "mobilenet_v2": 3_504_872,
    "densenet121": 7_978_856,
    "shufflenet_v2_x1_0": 2_278_604,
    "lenet5": 61_706,  # LeNet-5 with a dense C5: the commonly quoted figure
}


def check(text: str):
    """Check a spec given as text."""
    return check_source(text, "t.arch")


@pytest.mark.parametrize("name, params", sorted(TORCHVISION_PARAMS.items()))
def test_zoo_parameter_counts(name, params):
    c = check_source((ZOO / f"{name}.arch").read_text(), f"{name}.arch")
    assert c.ok, c.diagnostics
    assert c.report.trainable_params == params


def test_resnet50_is_concise():
    assert len((ZOO / "resnet50.arch").read_text().splitlines()) < 60


def test_calls_are_named_by_statement_index_and_inner_name():
    c = check_source((ZOO / "resnet18.arch").read_text(), "resnet18.arch")
    names = {s.name for s in c.graph.statements}
    assert {"layer1.0.conv1", "layer1.1.out", "layer2.0.downsample", "layer4.1.conv2"} <= names
    assert "layer2.1.downsample" not in names  # only the first block of a stage projects
    inputs = {s.name: s.inputs for s in c.graph.statements}
    assert inputs["layer2.0.downsample"] == ("layer1.1.out",)  # `in` is the call's input
    assert inputs["layer2.0.out"] == ("layer2.0.conv2", "layer2.0.downsample")
    assert inputs["layer2.1.out"] == ("layer2.1.conv2", "layer2.0.out")
    assert inputs["head"] == ("layer4.1.out",)  # reading `layer4` reads its last statement


SMALL = """model T
input x: 4 x 8 x 8
block unit(width: int, stride: int = 1, project: bool = false) {
  a = conv(width * 2, kernel=3, stride=stride, pad=1)
  b = conv(width * 2, kernel=1) from in   if project
}
"""


def test_single_call_is_not_numbered_and_expressions_fold():
    c = check(SMALL + "u = unit(3, stride=2, project=true)\n")
    assert c.ok, c.diagnostics
    assert [s.name for s in c.graph.statements] == ["u.a", "u.b"]
    assert c.report.outputs["u.a"] == (6, 4, 4)
    assert c.report.outputs["u.b"] == (6, 8, 8)


def test_repetition_index_drives_arguments():
    c = check(SMALL + "u = unit(2, stride=2 if index == 0 else 1) * 3\n")
    assert c.ok, c.diagnostics
    assert c.report.outputs["u.0.a"] == (4, 4, 4)
    assert c.report.outputs["u.2.a"] == (4, 4, 4)
    assert [s.name for s in c.graph.statements] == ["u.0.a", "u.1.a", "u.2.a"]


def test_expressions_outside_blocks():
    c = check(
        "model T\ninput x: 3 x 8 x 8\ny = conv(2 * (3 + 1), kernel=8 // 2 - 1, weight=normal(mean=-1, std=0.5))"
    )
    assert c.ok, c.diagnostics
    assert c.report.outputs["y"] == (8, 6, 6)
    assert c.graph.statements[0].ops[0].weight_init.mean == -1


def diagnostics(text: str):
    return [(d.code, d.span.line, d.message) for d in check(text).diagnostics]


def test_errors_inside_blocks_name_the_call_site():
    text = SMALL.replace("kernel=1) from in", "kernel=9) from in") + "\nu = unit(3, project=true)\n"
    ((code, line, message),) = [d for d in diagnostics(text) if d[0] == "E007"]
    assert line == 5  # the line in the block
    assert "called at t.arch:8:" in message  # and the call site


def codes(text: str) -> list[str]:
    return [d[0] for d in diagnostics(text)]


def test_block_errors():
    head = "model T\ninput x: 4 x 8 x 8\n"
    assert codes(SMALL + "u = unit(project=true)\n") == ["E005"]
    assert codes(SMALL + "u = unit(3, project=3)\n") == ["E004"]
    assert codes(SMALL + "u = unit(3, depth=2)\n") == ["E003"]
    assert codes(SMALL + "u = unit(3) * 0\n") == ["E006"]
    assert codes(SMALL + "u = unit(3) |> relu\n") == ["E004"]
    assert codes(head + "block b(n: integer) {\n a = conv(n, kernel=1)\n}\n") == ["E004"]
    assert codes(head + "block b() {\n a = conv(4, kernel=1) from x\n}\ny = b()\n") == ["E010"]
    assert codes(head + "block b() {\n a = b()\n}\ny = b()\n") == ["E011"]
    assert codes(head + "block relu() {\n a = conv(4, kernel=1)\n}\n") == ["E009"]


def test_names_generated_code_takes_from_a_block_are_checked():
    """A block's parameters and statements become Python names (a class's arguments and
    attributes, a function's): a keyword or a framework member is refused, once."""
    head = "model T\ninput x: 4 x 8 x 8\n"
    keyword = "block b(lambda: bool = false) {\n a = conv(4, kernel=1) if lambda\n}\ny = b()\n"
    assert codes(head + keyword) == ["E015"]
    member = "block b() {\n forward = conv(4, kernel=1)\n}\ny = b()\n"
    assert codes(head + member) == ["E015"]
