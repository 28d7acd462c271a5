"""The settings pairing by tensors cannot see (archdsl/weight_settings.py), read off specs."""

from pathlib import Path

from archdsl.compiler import check_source
from archdsl.weight_settings import differences, spec_settings

SPECS = Path(__file__).resolve().parents[2] / "specs"


def settings(path):
    """spec_settings of a shipped spec."""
    checked = check_source(path.read_text(encoding="utf-8"), str(path))
    assert checked.ok
    return spec_settings(checked.report)


def test_a_spec_s_convs_and_norms_have_their_resolved_settings():
    torchvision = settings(SPECS / "zoo" / "mobilenet_v2.arch")
    keras = settings(SPECS / "variants" / "mobilenet_v2_keras.arch")
    # pad=1 on every side against TensorFlow's `same` on 224 x 224 at stride 2: the odd
    # pixel after, none before
    assert torchvision["stem.conv"] == {
        "stride": (2, 2),
        "dilation": (1, 1),
        "padding": ((1, 1), (1, 1)),
    }
    assert keras["stem.conv"]["padding"] == ((0, 1), (0, 1))
    assert keras["block1.depthwise.conv"]["padding"] == ((1, 1), (1, 1))  # stride 1: the same
    assert torchvision["stem.batchnorm"] == {"eps": 1e-5}
    assert keras["stem.batchnorm"] == {"eps": 0.001}


def test_differences_name_each_setting_of_each_pair():
    ours = {"a.conv": {"stride": (1, 1), "padding": ((1, 1), (1, 1))}, "a.bn": {"eps": 1e-5}}
    theirs = {"c": {"stride": (1, 1), "padding": ((0, 1), (0, 1))}, "b": {"eps": 1e-5}}
    found = list(differences(ours, theirs, {"c": "a.conv", "b": "a.bn"}))
    assert [(d.setting, d.theirs, d.ours, d.their_layer) for d in found] == [
        ("padding", ((0, 1), (0, 1)), ((1, 1), (1, 1)), "c")
    ]
