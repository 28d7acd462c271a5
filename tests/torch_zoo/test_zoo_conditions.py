"""The zoo's conditions and computed widths (`and`, `or`, `max`) decide as torchvision's code:
RegNet's projection, MobileNetV3's residuals and squeeze-and-excitation widths (front end only)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from torchvision.models import regnet
from torchvision.models._utils import _make_divisible
from torchvision.models.mobilenetv3 import _mobilenet_v3_conf

from archdsl.compiler import check_source

ZOO = Path(__file__).resolve().parents[2] / "specs" / "zoo"


def statements(report, inner: str) -> dict[int, object]:
    """The statements `blockN<sep>inner` of a checked zoo spec, by N."""
    found = {}
    for s in report.graph.statements:
        m = re.fullmatch(rf"block(\d+)[._]{inner}", s.name)
        if m:
            found[int(m[1])] = s
    return found


@pytest.mark.parametrize("variant", ["large", "small"])
def test_mobilenet_v3_se_widths_and_residuals_are_torchvisions(variant):
    report = check_source((ZOO / f"mobilenet_v3_{variant}.arch").read_text(), "m.arch")
    assert report.ok, report.diagnostics
    configs, _ = _mobilenet_v3_conf(f"mobilenet_v3_{variant}")
    squeeze = {n: s.ops[1].filters for n, s in statements(report, "gate").items()}
    assert squeeze == {
        n: _make_divisible(c.expanded_channels // 4, 8)
        for n, c in enumerate(configs, start=1)
        if c.use_se
    }
    residual = set(statements(report, "sum"))
    assert residual == {
        n
        for n, c in enumerate(configs, start=1)
        if c.stride == 1 and c.input_channels == c.out_channels
    }


def regnet_block() -> str:
    """The `bottleneck` block of the RegNet spec, as written there."""
    text = (ZOO / "regnet_y_400mf.arch").read_text()
    start = text.index("block bottleneck(")
    return text[start : text.index("\n}\n", start) + 3]


@pytest.mark.parametrize(
    "width_in, width, stride", [(16, 16, 1), (16, 16, 2), (8, 16, 1), (8, 16, 2)]
)
def test_regnet_block_projects_where_torchvision_does(width_in, width, stride):
    spec = f"model R\ninput x: {width_in} x 8 x 8\n{regnet_block()}u = bottleneck({width}, stride={stride})\n"
    report = check_source(spec, "r.arch")
    assert report.ok, report.diagnostics
    theirs = regnet.ResBottleneckBlock(
        width_in, width, stride, torch.nn.BatchNorm2d, torch.nn.ReLU, 8, 1.0, 0.25
    )
    projects = any(s.name.endswith("proj") for s in report.graph.statements)
    assert projects == (theirs.proj is not None)
    trainable = sum(p.numel() for p in theirs.parameters())
    assert report.report.trainable_params == trainable
    out = theirs.eval()(torch.zeros(1, width_in, 8, 8)).shape[1:]
    assert list(report.report.outputs.values())[-1] == tuple(out)
