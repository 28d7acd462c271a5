"""The AlexNet specs against figures published outside this project."""

from __future__ import annotations

import re
from pathlib import Path

from archdsl.compiler import check_source

SPECS = Path(__file__).resolve().parents[2] / "specs"


def report(path: Path, text: str | None = None):
    """The shape report of a spec (optionally with its text replaced)."""
    checked = check_source(text if text is not None else path.read_text(), str(path))
    assert checked.ok, checked.diagnostics
    return checked.report


def test_paper_alexnet_parameters_and_macs():
    r = report(SPECS / "alexnet.arch")
    assert r.trainable_params == r.total_params == 60_965_224
    assert r.total_macs == 724_406_816  # forward MACs per image, bias adds excluded


def test_paper_alexnet_without_groups():
    text = (SPECS / "alexnet.arch").read_text()
    ungrouped = re.sub(r", groups=2", "", text)
    assert ungrouped != text
    assert report(SPECS / "alexnet.arch", ungrouped).trainable_params == 62_378_344


def test_paper_alexnet_shapes_match_seed_003_table():
    r = report(SPECS / "alexnet.arch")
    shapes = {layer.name: layer.output_shape for layer in r.layers}
    assert shapes["conv1.conv"] == (96, 55, 55)
    assert shapes["conv1.maxpool"] == (96, 27, 27)
    assert shapes["conv2.conv"] == (256, 27, 27)
    assert shapes["conv2.maxpool"] == (256, 13, 13)
    assert shapes["conv3.conv"] == shapes["conv4.conv"] == (384, 13, 13)
    assert shapes["conv5.conv"] == (256, 13, 13)
    assert shapes["conv5.maxpool"] == (256, 6, 6)
    assert shapes["fc6.flatten"] == (9216,)


def test_torchvision_alexnet_parameters():
    r = report(SPECS / "variants" / "torchvision_alexnet.arch")
    assert r.trainable_params == 61_100_840


def test_seed002_keras_summary_rows():
    # The seed's own model.summary() printout: conv 54x54x96 34,944; pool 26x26; BN 384;
    # conv 22x22x256 614,656; pool 10x10; BN 1,024.
    r = report(SPECS / "variants" / "seed002_keras_bn.arch")
    rows = {layer.name: layer for layer in r.layers}
    assert rows["conv1.conv"].output_shape == (96, 54, 54) and rows["conv1.conv"].params == 34_944
    assert rows["conv1.maxpool"].output_shape == (96, 26, 26)
    assert rows["conv1.batchnorm"].params == 384
    assert rows["conv2.conv"].output_shape == (256, 22, 22)
    assert rows["conv2.conv"].params == 614_656
    assert rows["conv2.maxpool"].output_shape == (256, 10, 10)
    assert rows["conv2.batchnorm"].params == 1_024
    assert rows["conv5.maxpool"].output_shape == (256, 1, 1)


def test_seed004_keras_summary_rows():
    # The seed's summary: conv2d 56x56x96 34,944; pool 27x27x96; conv2d 7x7x256 614,656.
    r = report(SPECS / "variants" / "seed004_cifar_resize.arch")
    rows = {layer.name: layer for layer in r.layers}
    assert rows["resize.resize"].output_shape == (3, 224, 224)
    assert rows["conv1.conv"].output_shape == (96, 56, 56) and rows["conv1.conv"].params == 34_944
    assert rows["conv1.maxpool"].output_shape == (96, 27, 27)
    assert rows["conv2.conv"].output_shape == (256, 7, 7) and rows["conv2.conv"].params == 614_656
    assert rows["conv3.conv"].output_shape == (384, 1, 1)
