"""Five optimizer steps in each backend from the same weights on the same batches agree with each
other and with a NumPy implementation of the spec's optimizer rule (SGD in the paper's or
torch's convention, Adam and AdamW as torch.optim takes their steps).

How the runs are made (torch_driver.py / keras_driver.py `train`): the spec's own
initialisation (saved by PyTorch, loaded by Keras), random batches of 2 (8 for the pockets,
whose 1-D batch norms are ill-conditioned at 2; mixed by the spec's mixup / cutmix into soft
targets, as the trainers mix them), dropout off (rate 0) while batch norm trains on batch
statistics, the optimizer from the generated build_optimizer(model), the gradients clipped to
the spec's clip_grad_norm as the trainers clip them (the NumPy rules clip the raw gradients
themselves), and the rate dropped by 10x from step 3 on by setting it on the optimizer as the
schedules do (torch: param_group["lr"]; Keras: optimizer.learning_rate). The default run trains the specs of
conftest.TRAIN_SPECS; every other spec in specs/ runs under the `slow` marker.

Both backends train in float64. In float32 a ReLU input or max-pool tie within rounding of its
kink switches between the backends now and then (AlexNet has ~1.3M of them per step at batch 2)
and the two trajectories part for good; in float64 nothing comes that close. Measured: the
backends agree to ~1e-14 and each matches the NumPy rule fed with its own gradients to
~1e-16 (relative to each tensor's largest value, or its layer's weight for tensors that stay
near 0, like a conv bias before batch norm). The tolerances (conform.REFERENCE_RTOL,
CROSS_RTOL) leave room for other BLAS builds; the planted mistakes below are 1e-5 and larger.
Adam between the backends has a looser bound (conform.ADAM_CROSS_RTOL, which says why): its
step turns the rounding noise of a gradient that is mathematically 0 into a step of its own.

Keras batch norm: the generated model uses the runtime's layers.BatchNorm, whose moving
variance takes the unbiased batch variance as PyTorch's running_var does (Keras's own
BatchNormalization takes the biased one: a factor n / (n - 1) per update); the running
statistics are among the tensors compared.
"""

import conform
import pytest
from conftest import SLOW_TRAIN_SPECS, TRAIN_SPECS, with_slow

DEFAULT = [conform.spec_id(s) for s in TRAIN_SPECS]
IDS = with_slow(TRAIN_SPECS, SLOW_TRAIN_SPECS)
PLANTED = [conform.spec_id(s) for s, options in TRAIN_SPECS.items() if options.get("planted")]


def show(label, steps):
    print(label, " ".join(f"{s['max_abs']:.1e}/{s['max_rel']:.1e}" for s in steps))


@pytest.mark.parametrize("spec", IDS)
def test_backends_agree_after_every_step(training, spec):
    """Within CROSS_RTOL (ADAM_CROSS_RTOL for Adam), or, for a spec whose training is chaotic,
    within how far PyTorch's own run moves when its start moves by 1e-13 (its `sensitivity`)."""
    run = training[spec].check()
    cross = run.keras["cross"]
    show(f"{spec} keras vs torch (abs/rel)", cross)
    assert len(cross) == conform.STEPS
    tolerance = conform.cross_rtol(run.torch["optimizer"])
    limits = [tolerance] * conform.STEPS
    if "sensitivity" in run.torch:
        show(f"{spec} torch vs torch started 1e-13 away", run.torch["sensitivity"])
        limits = [max(tolerance, s["max_rel"]) for s in run.torch["sensitivity"]]
    for step, (diff, limit) in enumerate(zip(cross, limits, strict=True), start=1):
        assert diff["max_rel"] <= limit, (step, diff, limit)
    # the runs moved the weights and followed the same losses (step k's from step k - 1's weights)
    losses = zip(run.keras["losses"], run.torch["losses"], strict=True)
    for step, (ours, theirs) in enumerate(losses, start=1):
        limit = 1e-9 if step == 1 else max(1e-9, limits[step - 2])
        assert ours == pytest.approx(theirs, rel=limit), step


@pytest.mark.parametrize("spec", IDS)
@pytest.mark.parametrize("backend", ["torch", "keras"])
def test_each_backend_follows_the_numpy_rule(training, spec, backend):
    run = training[spec].check()
    rule = conform.rule_name(run.torch["optimizer"])
    steps = [s[rule] for s in getattr(run, backend)["reference"]]
    show(f"{spec} {backend} vs NumPy {rule} rule", steps)
    for step, diff in enumerate(steps, start=1):
        assert diff["max_rel"] <= conform.REFERENCE_RTOL, (step, diff)


@pytest.mark.parametrize("spec", IDS)
def test_the_rate_drops_at_step_3(training, spec):
    run = training[spec].check()
    lr = run.torch["optimizer"]["lr"]
    expected = [lr, lr, lr * 0.1, lr * 0.1, lr * 0.1]
    assert run.torch["lrs"] == pytest.approx(expected)
    assert run.keras["lrs"] == pytest.approx(expected)


@pytest.mark.parametrize("spec", PLANTED)
@pytest.mark.parametrize("backend", ["torch", "keras"])
def test_planted_rules_are_caught(training, spec, backend):
    """Weight decay on the wrong side of the momentum (SGD: decay kept out of the momentum;
    Adam: decoupled AdamW for Adam, coupled L2 for AdamW) and the optimizer's other convention
    (SGD: paper vs torch, which differ after the rate drops; Adam: Keras's epsilon placement)
    all exceed the tolerance."""
    run = training[spec].check()
    result = getattr(run, backend)["reference"]
    for planted in conform.planted_rules(run.torch["train"]):
        worst = max(step[planted]["max_rel"] for step in result)
        show(f"{spec} {backend} vs planted {planted}", [s[planted] for s in result])
        assert worst > 1e3 * max(conform.REFERENCE_RTOL, conform.CROSS_RTOL), planted


def test_training_covers_both_rules_nesterov_adam_and_no_decay(training):
    """What the specs exercise: the paper's rule and torch's, Nesterov, Adam, both no_decay
    groups and `bias` alone beside batch norm (whose shift is a bias too, as PyTorch names it),
    batch norm with its running statistics."""
    runs = {spec: training[spec].check() for spec in DEFAULT}
    opts = {spec: run.torch["optimizer"] for spec, run in runs.items()}
    assert {conform.rule_name(o) for o in opts.values()} >= {"paper", "torch", "adam"}
    assert any(o.get("nesterov") for o in opts.values())
    assert any(set(o["no_decay"]) == {"bias", "norm"} for o in opts.values())
    assert any(
        o["no_decay"] == ["bias"]
        and o["weight_decay"] > 0
        and "conv2.batchnorm.bias" in run.keras["compared"]
        for o, run in zip(opts.values(), runs.values(), strict=True)
    )


def test_running_variance_is_pytorchs_unbiased_one(training):
    """The batch-norm running statistics agree (they are among the tensors compared above);
    with Keras's own BatchNormalization (biased moving variance) they would not."""
    run = training["specs/bn_pocket.arch"].check()
    compared = run.keras["compared"]
    assert {"fc6.batchnorm.running_var", "conv2.batchnorm.running_mean"} <= set(compared)
    assert all(s["max_rel"] <= conform.CROSS_RTOL for s in run.keras["cross"])
    planted = training["biased_bn"].check().keras["cross"]
    show("bn_pocket with a biased moving variance", planted)
    assert planted[0]["worst"].endswith("running_var")
    assert planted[0]["max_rel"] > 1e3 * conform.CROSS_RTOL


def test_recipes_pocket_trains_tf_rmsprop_clipped_on_mixed_batches(training):
    """The recipes pocket: TensorFlow's RMSprop, clipping active (its planted `+noclip` rule is
    caught by test_planted_rules_are_caught) and mixup / cutmix soft targets in every batch."""
    run = training["specs/recipes_pocket.arch"].check()
    train = run.torch["train"]
    assert conform.rule_name(train["optimizer"]) == "rmsprop_tf"
    assert train["clip_grad_norm"] == 1.0
    targets = [run.npz("batches.npz")[f"y{step}"] for step in range(1, conform.STEPS + 1)]
    assert all(t.ndim == 2 and (t.max(axis=1) < 1).any() for t in targets)


@pytest.mark.parametrize("backend", ["torch", "keras"])
def test_ema_of_the_recipes_pocket_is_torchvisions(training, backend):
    """Each trainer's EMA (AveragedModel with its buffers; Keras's WeightAverage), updated after
    steps 2 and 4, is NumPy's average of the weights and batch-norm statistics at those steps;
    the average that takes the statistics as they are (without use_buffers) is caught."""
    result = getattr(training["specs/recipes_pocket.arch"].check(), backend)["ema"]
    show(f"recipes_pocket {backend} EMA vs NumPy", [result["ema"]])
    assert result["ema"]["max_rel"] <= conform.REFERENCE_RTOL
    assert result["ema_statistics_copied"]["max_rel"] > 1e3 * conform.CROSS_RTOL
    assert "running" in result["ema_statistics_copied"]["worst"]


def test_ema_agrees_between_the_backends(training):
    cross = training["specs/recipes_pocket.arch"].check().keras["ema_cross"]
    show("recipes_pocket EMA keras vs torch", [cross])
    assert cross["max_rel"] <= conform.CROSS_RTOL
