"""The seeds that give Keras code, rebuilt as the seed builds them (seed_fixtures/), against the
Keras models compiled from their transcriptions in specs/variants/: model.summary()'s output
shapes and parameter counts, for every layer with parameters and every pool, in order, and the
total; for seed 004 also the numbers, with the seed's weights copied into the compiled model.
"""

import conform
import pytest
from conftest import SEEDS


@pytest.mark.parametrize("seed", list(SEEDS))
def test_summary_shapes_and_parameters_match(seeds, seed):
    result = seeds[seed]
    ours, theirs = result["compiled"], result["seed"]
    assert theirs["rows"], theirs["summary"]
    shown = [(r["pool"], r["shape"], r["params"]) for r in ours["rows"]]
    expected = [(r["pool"], r["shape"], r["params"]) for r in theirs["rows"]]
    assert shown == expected, (ours["summary"], theirs["summary"])
    assert ours["total"] == theirs["total"]


def test_seed_totals_are_the_transcriptions(seeds):
    """What the seeds' networks weigh (the summaries' "Total params")."""
    totals = {seed: seeds[seed]["seed"]["total"] for seed in SEEDS}
    assert totals == {"seed000": 54_776_168, "seed002": 64_752_360, "seed004": 21_622_154}


def test_seed004_numbers_with_its_weights(seeds):
    """The seed's Lambda(tf.nn.local_response_normalization), TensorFlow's defaults
    (depth_radius=5, bias=1, alpha=1, beta=0.5), equals our paper-convention LRN with size=11,
    alpha=1, beta=0.5, k=1; so do fc7's features and the probabilities."""
    numeric = seeds["seed004"]["numeric"]
    for output in ("lrn1", "lrn2", "fc7", "probabilities"):
        err, rel = numeric[output]
        assert rel <= conform.INFERENCE_RTOL, (output, err, rel)
    # PyTorch's convention (alpha divided by size) would not be the seed's LRN
    assert numeric["lrn1_alpha_over_n"][1] > 100 * conform.INFERENCE_RTOL
