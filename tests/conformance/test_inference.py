"""Every spec, built in PyTorch, loaded into Keras through the portable weights: the same logits.

The torch driver re-initialises each model so that every op matters (conform.CALIBRATION:
conv / dense outputs of standard deviation 8, batch norms with non-trivial statistics), saves
its weights, random N, C, H, W inputs and its eval-mode outputs; the Keras driver loads the
weights into the model compiled from the same spec and runs the inputs as N, H, W, C.
"""

import conform
import numpy as np
import pytest
from conftest import INFER_SPECS, SLOW_INFER_SPECS, with_slow

IDS = with_slow(INFER_SPECS, SLOW_INFER_SPECS)


@pytest.mark.parametrize("spec", IDS)
def test_logits_agree_between_backends(inference, spec):
    run = inference[spec].check()
    torch_logits = run.npz("torch_out.npz")["logits"]
    keras_logits = run.npz("keras_out.npz")["logits"]
    err, rel = conform.diff(keras_logits, torch_logits)
    print(f"{spec}: logits max abs {err:.2e}, max rel {rel:.2e}")
    assert rel <= conform.INFERENCE_RTOL, (err, rel)
    # the calibration worked: logits of order 1-10, not 1e-5 (where every op looks linear)
    assert 1.0 < run.torch["logits_std"] < 20.0


@pytest.mark.parametrize("spec", IDS)
def test_every_statement_agrees(inference, spec):
    """Each statement's output (maps as N, C, H, W; flattened features in C, H, W order)."""
    run = inference[spec].check()
    diffs = run.keras["statements"]
    assert diffs, "no statement compared"
    assert not run.keras["missing_statements"]
    worst = max(diffs, key=lambda name: diffs[name][1])
    assert diffs[worst][1] <= conform.INFERENCE_RTOL, (worst, diffs[worst])


@pytest.mark.parametrize("spec", IDS)
def test_weights_survive_the_keras_layouts(inference, spec):
    """Keras's save_weights gives back exactly the file PyTorch wrote (every transpose and the
    flatten permutation undone; the order of the names is the models' layer order)."""
    run = inference[spec].check()
    theirs, ours = run.npz("weights.npz"), run.npz("keras_weights.npz")
    assert sorted(ours) == sorted(theirs)
    for name in theirs:
        assert ours[name].dtype == np.float32
        np.testing.assert_array_equal(ours[name], theirs[name], err_msg=name)


@pytest.mark.parametrize("spec", IDS)
def test_weights_changed_in_keras_run_in_pytorch(inference, spec):
    """A model trained in Keras runs in PyTorch: every Keras weight and statistic changed by
    ~10%, saved by Keras, loaded by PyTorch, gives Keras's logits (and the change mattered)."""
    run = inference[spec].check()
    keras_logits = run.npz("keras_changed_out.npz")["logits"]
    torch_logits = run.npz("torch_reverse_out.npz")["keras_changed"]
    err, rel = conform.diff(torch_logits, keras_logits)
    print(f"{spec}: Keras's changed weights in PyTorch: max abs {err:.2e}, max rel {rel:.2e}")
    assert rel <= conform.INFERENCE_RTOL, (err, rel)
    assert conform.diff(keras_logits, run.npz("keras_out.npz")["logits"])[1] > 1e-2


@pytest.mark.parametrize(
    "spec", ["alexnet.arch", "mini_alexnet.arch", "variants/seed001_bn_sequential.arch"]
)
def test_keras_saving_without_the_flatten_permutation_is_caught(inference, spec):
    """The planted mistake: Keras writes its first dense layer after a flatten in its own
    H, W, C input order."""
    run = inference[spec].check()
    keras_logits = run.npz("keras_changed_out.npz")["logits"]
    planted = run.npz("torch_reverse_out.npz")["keras_changed_unpermuted"]
    assert conform.diff(planted, keras_logits)[1] > 100 * conform.INFERENCE_RTOL


BATCHNORM_SPECS = with_slow(
    [s for s in INFER_SPECS if "batchnorm" in s.read_text()],
    [s for s in SLOW_INFER_SPECS if "batchnorm" in s.read_text()],
)


@pytest.mark.parametrize("spec", BATCHNORM_SPECS)
def test_batchnorm_statistics_travel(inference, spec):
    """The specs with batch norm carry non-trivial running statistics into Keras (the logits
    agree above with them in use)."""
    weights = inference[spec].check().npz("weights.npz")
    means = [v for k, v in weights.items() if k.endswith("running_mean")]
    variances = [v for k, v in weights.items() if k.endswith("running_var")]
    assert means and variances
    assert all(np.abs(m).max() > 1e-3 for m in means)
    assert all(np.abs(v - 1).max() > 1e-2 for v in variances)
