"""Planted mistakes make the inference comparison fail: each Keras model below loads the
weights PyTorch wrote for the correct spec, with one mistake planted on the Keras side, and its
logits must then differ from PyTorch's by more than the tolerance the real runs meet.

(Decoupled weight decay and the other SGD convention are planted in test_training.py, the
biased batch-norm variance there too, and alpha / n against TensorFlow's own LRN in
test_seeds.py.)
"""

import conform
import pytest
from conftest import CEIL, MINI, PLANTED, UPSAMPLE_POCKET

SOURCES = {name: conform.spec_id(p["spec"]) for name, p in PLANTED.items()}


@pytest.mark.parametrize("name", list(PLANTED))
def test_planted_mistake_exceeds_the_tolerance(inference, name):
    correct = inference[SOURCES[name]].check()
    planted = inference[name].check()
    want = correct.npz("torch_out.npz")["logits"]
    err, rel = conform.diff(planted.npz("keras_out.npz")["logits"], want)
    ok = conform.diff(correct.npz("keras_out.npz")["logits"], want)[1]
    print(f"{name}: planted max rel {rel:.2e} (abs {err:.2e}); unplanted {ok:.2e}")
    assert ok <= conform.INFERENCE_RTOL
    assert rel > 10 * conform.INFERENCE_RTOL


def test_the_planted_specs_tile_or_not_as_intended():
    """mini_alexnet has two default LRNs to plant in; ceil_pool's pool does not tile, so that
    floor and ceil differ (and a global average keeps the shapes equal)."""
    assert MINI.read_text().count("|> lrn |>") == 2
    assert "maxpool(3, stride=2)" in CEIL.read_text()
    assert "global_avgpool" in CEIL.read_text()
    pocket = UPSAMPLE_POCKET.read_text()
    assert pocket.count("align_corners=true") == pocket.count("upsample(3)") == 1
