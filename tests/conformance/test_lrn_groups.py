"""LRN after a grouped conv, where the LRN window crosses the group boundary, and the two-tower
form, where it does not: each backend against conform.py's NumPy references (specs/
lrn_groups.arch, calibrated so that the LRN's alpha term is a few per cent of k).

The single-op cases are tested elsewhere (tests/torch_backend/test_torch_semantics.py and
tests/keras_backend/test_keras_semantics.py: the LRN formula, grouped conv as two convs); this
adds the cross-cutting one the paper's grouped-vs-tower difference (I202) is about.
"""

import conform
import numpy as np
import pytest

SPEC = "specs/lrn_groups.arch"
LRN = {"size": 5, "alpha": 1e-4, "beta": 0.75, "k": 2.0}
RTOL = 1e-5  # float32 backends against float64 NumPy


@pytest.fixture(scope="module")
def case(inference):
    run = inference[SPEC].check()
    weights = run.npz("weights.npz")
    x = run.npz("inputs.npz")["x"]
    grouped = conform.conv_reference(
        x, weights["grouped.conv.weight"], weights["grouped.conv.bias"], pad=1, groups=2
    )
    towers = [
        conform.conv_reference(
            x, weights[f"tower_t{t}.conv.weight"], weights[f"tower_t{t}.conv.bias"], pad=1
        )
        for t in (0, 1)
    ]
    return run, grouped, towers


@pytest.mark.parametrize("backend", ["torch", "keras"])
def test_lrn_across_the_group_boundary(case, backend):
    run, grouped, _ = case
    got = run.npz(f"{backend}_statements.npz")["grouped"]
    want = conform.lrn_reference(grouped, **LRN)
    err, rel = conform.diff(got, want)
    assert rel <= RTOL, (err, rel)
    # the window does cross: normalising each group alone gives other numbers for channels 3..6
    per_group = np.concatenate(
        [conform.lrn_reference(half, **LRN) for half in np.split(grouped, 2, axis=1)], axis=1
    )
    assert conform.diff(got, per_group)[1] > 100 * RTOL
    assert conform.diff(got[:, [0, 1, 8, 9]], per_group[:, [0, 1, 8, 9]])[1] <= RTOL


@pytest.mark.parametrize("backend", ["torch", "keras"])
def test_lrn_within_each_tower(case, backend):
    run, _, towers = case
    statements = run.npz(f"{backend}_statements.npz")
    for t, conv in enumerate(towers):
        got = statements[f"tower_t{t}"]
        assert conform.diff(got, conform.lrn_reference(conv, **LRN))[1] <= RTOL


@pytest.mark.parametrize("backend", ["torch", "keras"])
def test_alpha_over_n_is_caught(case, backend):
    """The planted mistake: PyTorch's and Caffe's alpha / size taken as the paper's alpha."""
    run, grouped, _ = case
    got = run.npz(f"{backend}_statements.npz")["grouped"]
    planted = conform.lrn_reference(grouped, **{**LRN, "alpha": LRN["alpha"] / LRN["size"]})
    assert conform.diff(got, planted)[1] > 100 * RTOL
