"""Keras gives PyTorch's outputs for the pocket Swin Transformer (tests/swin_common/
pocket_swin.arch: padded and shifted windows, an odd map merged) from PyTorch's weights through
the portable .npz, in the default run; Swin-T does in test_keras_zoo under -m slow."""

import numpy as np
import pytest
from kerasgen import ROOT
from test_keras_zoo import EXCHANGE_RTOL, keras_outputs, torch_reference

keras = pytest.importorskip("keras")

POCKET = ROOT / "tests" / "swin_common" / "pocket_swin.arch"


def test_keras_gives_pytorch_outputs_from_pytorch_weights(tmp_path):
    keras.utils.set_random_seed(0)
    torch_reference(POCKET, tmp_path)
    expected = np.load(tmp_path / "torch_out.npz")["out"]
    got = keras_outputs(POCKET, tmp_path)
    difference, scale = np.abs(got - expected).max(), np.abs(expected).max()
    assert got.shape == expected.shape == (2, 10)
    assert scale > 0.1 and difference <= EXCHANGE_RTOL * scale, (difference, scale)
    keras.backend.clear_session()
