"""Every spec shipped in specs/ has exactly the diagnostics reasoned out below, and no others.

The expectations were written from the specs' text, not copied from the tool's output:
window arithmetic for W101/W102/W104, a trailing softmax (with the default cross-entropy loss)
for I201, an LRN directly after a grouped conv for I202.
"""

from __future__ import annotations

from collections import Counter

import pytest
from core_helpers import SHIPPED_SPECS, SPECS_DIR, relative, run_inprocess

from archdsl.compiler import check_source


def _n(*pairs):
    return Counter(pairs)


EXPECTED: dict[str, Counter] = {
    # 227: conv1 (227-11)/4+1 = 55, pools 55->27, 27->13, 13->6: every window tiles.
    # conv2 (groups=2) is followed by lrn: I202. fc8 ends in softmax: I201.
    "alexnet.arch": _n(("I202", 18), ("I201", 24)),
    # 224: conv1 54.25 -> 54 (W101), pool 54 -> 26.5 (W101), conv2 keeps 26, pool 26 -> 12.5
    # (W101), conv3-5 keep 12, pool 12 -> 5.5 (W101); plus I202 at conv2's lrn and I201.
    "alexnet_224.arch": _n(
        ("W101", 17), ("W101", 18), ("I202", 20), ("W101", 20), ("W101", 23), ("I201", 26)
    ),
    # per tower the same windows as alexnet.arch; no grouped conv (the towers split instead).
    "alexnet_two_tower.arch": _n(("I201", 27)),
    # 67: conv1 (67-11)/4+1 = 15, pool 15 -> 7, pool 7 -> 3; grouped conv2 then lrn.
    "mini_alexnet.arch": _n(("I202", 14), ("I201", 20)),
    # 224 without LRN: conv1 and its pool on line 21, conv2's pool (26, pad same keeps it) on
    # 22, conv5's pool on 12 on line 25.
    "variants/seed000_keras_functional.arch": _n(
        ("W101", 21), ("W101", 21), ("W101", 22), ("W101", 25), ("I201", 28)
    ),
    # 227 with the paper's padding: all windows tile; batchnorm instead of LRN.
    "variants/seed001_bn_sequential.arch": _n(("I201", 23)),
    # 224, no padding: conv1 54.25 and pool 26.5 (line 20), conv2 26 -> 22, pool 10.5 (22),
    # conv3-5 10 -> 8 -> 6 -> 4, pool 1.5 (25) leaving 256 x 1 x 1 before flatten (W104, 26).
    "variants/seed002_keras_bn.arch": _n(
        ("W101", 20), ("W101", 20), ("W101", 22), ("W101", 25), ("W104", 26), ("I201", 29)
    ),
    # resize to 224; conv1 stride 4 pad same -> 56 (padding absorbs the rest), pool 56 -> 27.5
    # (W101, line 23); conv2 -> 7, pool -> 3, conv3 -> 1, then 3x3 convs on 1x1 maps (W102 on
    # 27 and 28), flatten of 256 x 1 x 1 after strided windows (W104, 29), softmax (I201, 31).
    "variants/seed004_cifar_resize.arch": _n(
        ("W101", 23), ("W102", 27), ("W102", 28), ("W104", 29), ("I201", 31)
    ),
    # conv1 pad 2: (224+4-11)/4+1 = 55.25 but only padding is left unread; pools tile 55, 27,
    # 13; no softmax.
    "variants/torchvision_alexnet.arch": _n(),
    # keras.applications' flavours: ResNet-50's strided 1x1s (no W101, as resnet50.arch), the
    # stride-2 convs of MobileNetV2 padding `same` on even sizes (the odd pixel after), and
    # Inception-v3's windows with its pools dividing by the cells inside the map.
    "variants/resnet50_keras.arch": _n(),
    "variants/mobilenet_v2_keras.arch": _n(),
    "variants/inception_v3_keras.arch": _n(),
    # the zoo's ResNet-18 with a 10-class head: its windows tile as there; no softmax.
    "variants/resnet18_finetune10.arch": _n(),
    # stem 7x7/2 pad 3 and pool 3x3/2 pad 1 leave only padding unread; 1x1 and 3x3 pad 1
    # convs; avgpool(2) halves 56, 28, 14 exactly; no softmax.
    "zoo/densenet121.arch": _n(),
    # ceil-mode pools never warn; stem as above; no softmax.
    "zoo/googlenet.arch": _n(),
    # 32 -> 28 -> 14 -> 10 -> 5: every window tiles; softmax output.
    "zoo/lenet5.arch": _n(("I201", 20)),
    # stride-2 3x3 pad 1 convs on even sizes leave only padding; groups = channels divide.
    "zoo/mobilenet_v2.arch": _n(),
    # the same stride-2 3x3 pad 1 windows on even sizes (224, 112, 56, 28, 14); the chunks and
    # shuffles split and interleave even channel counts; no softmax.
    "zoo/shufflenet_v2_x1_0.arch": _n(),
    # the 1x1 stride-2 projections are windows smaller than their stride: no W101.
    "zoo/resnet18.arch": _n(),
    "zoo/resnet50.arch": _n(),
    # conv1 7x7/2 without padding: (224-7)/2+1 = 109.5 (W101, line 18); ceil-mode pools.
    "zoo/squeezenet1_0.arch": _n(("W101", 18)),
    # conv1 3x3/2 without padding: (224-3)/2+1 = 111.5 (W101, line 18).
    "zoo/squeezenet1_1.arch": _n(("W101", 18)),
    # 3x3 pad 1 convs and 2x2 pools on 224, 112, 56, 28, 14: all tile; no softmax.
    "zoo/vgg16.arch": _n(),
    "zoo/vgg16_bn.arch": _n(),
    "zoo/vgg11.arch": _n(),
    # ResNet-18/50's stem and blocks, other depths, groups and widths.
    "zoo/resnet34.arch": _n(),
    "zoo/resnet101.arch": _n(),
    "zoo/resnext50_32x4d.arch": _n(),
    "zoo/wide_resnet50_2.arch": _n(),
    # DenseNet-121's windows (on 1280 and 640 channels instead of 1024 and 512).
    "zoo/densenet169.arch": _n(),
    # 299: 3x3/2 valid (299 - 3) / 2 + 1 = 149, then 147, pool 73, 71, pool 35, the strided
    # 3x3s of Mixed_6a (35 -> 17) and Mixed_7a (17 -> 8): all exact; the rest keep the size.
    "zoo/inception_v3.arch": _n(),
    # stride-2 convs with pad kernel // 2 on even sizes (224 ... 14) leave only padding unread.
    "zoo/mnasnet1_0.arch": _n(),
    # the same stride-2 convs with pad kernel // 2 on even sizes; the squeeze-and-excitation
    # gates are 1x1 convs on 1 x 1 maps (no window to warn about) broadcast over their maps.
    "zoo/efficientnet_b0.arch": _n(),
    "zoo/mobilenet_v3_large.arch": _n(),
    "zoo/mobilenet_v3_small.arch": _n(),
    # patchify 4/4 and 2/2 convs tile 224 ... 14 exactly; the depthwise 7x7s pad 3 and keep it.
    "zoo/convnext_tiny.arch": _n(),
    # stride-2 3x3s with pad 1 and 1x1s on even sizes (224 ... 14) leave only padding unread.
    "zoo/regnet_y_400mf.arch": _n(),
    # the 4/4 patchify conv tiles 224; the maps (56 ... 7) are whole windows of 7 and even
    # for the patch mergings.
    "zoo/swin_t.arch": _n(),
    "text/lstm_classifier.arch": _n(),
    "text/transformer_classifier.arch": _n(),
    # the 16x16/16 patchify conv tiles 224 into 14 x 14 exactly; the rest runs on tokens.
    "zoo/vit_b_16.arch": _n(),
}

IDS = [str(p.relative_to(SPECS_DIR)) for p in SHIPPED_SPECS]


def test_every_shipped_spec_has_expectations_and_none_are_stale():
    assert set(IDS) == set(EXPECTED), (
        f"specs without expectations: {sorted(set(IDS) - set(EXPECTED))}; "
        f"expectations without a spec: {sorted(set(EXPECTED) - set(IDS))}"
    )


@pytest.mark.parametrize("path", SHIPPED_SPECS, ids=IDS)
def test_diagnostics_are_exactly_the_expected_ones(path):
    name = str(path.relative_to(SPECS_DIR))
    if name not in EXPECTED:
        pytest.fail(f"{name}: write down the diagnostics it should have in EXPECTED")
    checked = check_source(path.read_text(encoding="utf-8"), relative(path))
    got = Counter((d.code, d.span.line) for d in checked.diagnostics)
    assert got == EXPECTED[name], "\n".join(
        f"{d.code} {d.span.line}: {d.message}" for d in checked.diagnostics
    )
    assert checked.ok
    assert all(d.span.file == relative(path) for d in checked.diagnostics)


@pytest.mark.parametrize("path", SHIPPED_SPECS, ids=IDS)
def test_check_exits_0_and_strict_exits_1_only_with_warnings(path, capsys):
    expected = EXPECTED.get(str(path.relative_to(SPECS_DIR)), Counter())
    code, out, err = run_inprocess(capsys, "check", str(path))
    assert code == 0 and "Traceback" not in out + err
    has_warnings = any(code_.startswith("W") for code_, _ in expected)
    code, _, err = run_inprocess(capsys, "check", "--strict", str(path))
    assert code == (1 if has_warnings else 0), err


def test_alexnet_224_hint_names_227():
    path = SPECS_DIR / "alexnet_224.arch"
    checked = check_source(path.read_text(encoding="utf-8"), "alexnet_224.arch")
    conv1 = next(d for d in checked.diagnostics if d.code == "W101" and d.span.line == 17)
    assert "(224 + 0 - 11) / 4 + 1 = 54.25" in conv1.message
    assert "an input of 227" in conv1.hint
    assert checked.report.outputs["conv1"] == (96, 26, 26)
    assert checked.report.outputs["conv5"] == (256, 5, 5)
