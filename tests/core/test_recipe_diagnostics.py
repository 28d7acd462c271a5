"""The train section's recipe settings (rmsprop, cosine warmup, clip_grad_norm, ema,
random_resized_crop, mixup / cutmix): accepted as written, and one located diagnostic with a
hint for each kind of bad value."""

from __future__ import annotations

import pytest

from archdsl.compiler import check_source

HEAD = "model T\ninput x: 3 x 32 x 32\ny = conv(4, kernel=3) |> global_avgpool |> flatten |> dense(3)\n"


def check(train: str):
    """The checked source of a spec whose train section is `train` (lines from line 4)."""
    return check_source(f"{HEAD}train {{\n{train}\n}}\n", "t.arch")


def test_the_recipes_settings_reach_the_ir():
    checked = check(
        "  optimizer = rmsprop(lr=0.064, alpha=0.9, eps=0.0316, momentum=0.9, rule=tf)\n"
        "  schedule = cosine(warmup=5, warmup_factor=0.01)\n"
        "  epochs = 600\n"
        "  clip_grad_norm = 2.5\n"
        "  ema = ema(decay=0.99998, every=32, adjust=true)\n"
        "  augment = [random_resized_crop(32, scale=[0.25, 1]), normalize,"
        " random_erasing(p=0.25, value=-1), mixup(0.2), cutmix(1.0)]"
    )
    assert checked.ok, [d.message for d in checked.diagnostics]
    train = checked.graph.train
    assert (train.optimizer.name, train.optimizer.rule, train.optimizer.eps) == (
        "rmsprop",
        "tf",
        0.0316,
    )
    assert (train.schedule.warmup, train.schedule.warmup_factor) == (5, 0.01)
    assert train.clip_grad_norm == 2.5
    assert (train.ema.decay, train.ema.every, train.ema.adjust) == (0.99998, 32, True)
    crop, _, erasing, mixup, cutmix = train.augment
    assert (erasing.p, erasing.scale, erasing.ratio, erasing.value) == (
        0.25,
        (0.02, 0.33),
        (0.3, 3.3),
        -1,
    )
    assert (crop.scale, crop.ratio, crop.from_) == ((0.25, 1.0), (0.75, 4 / 3), 37)
    assert (mixup.alpha, cutmix.alpha) == (0.2, 1.0)


@pytest.mark.parametrize(
    "train, code, where, hint",
    [
        ("  schedule = cosine(warmup=10)\n  epochs = 10", "E019", (5, 14), "`warmup=1`"),
        ("  schedule = cosine(warmup_factor=0)", "E004", (5, 35), ""),
        ("  clip_grad_norm = 0", "E006", (5, 20), "without clipping"),
        ("  clip_grad = 1", "E019", (5, 3), "`clip_grad_norm`"),
        ("  optimizer = rmsprop(rule=keras)", "E004", (5, 28), "`tf`, `torch`"),
        ("  optimizer = rmsprop(alpha=1)", "E004", (5, 29), ""),
        ("  ema = 0.99", "E019", (5, 9), "`ema = ema(decay=0.99)`"),
        ("  ema = ema(every=0)", "E006", (5, 19), ""),
        ("  augment = [random_resized_crop(32, scale=[1, 0.5])]", "E019", (5, 14), "scale="),
        ("  augment = [random_resized_crop(32, ratio=[1])]", "E019", (5, 14), "ratio="),
        ("  augment = [random_resized_crop(30)]", "E019", (5, 14), "crop to the input size"),
        ("  augment = [mixup(0.2), mixup(0.4)]", "E016", (5, 26), "chosen at random"),
        ("  augment = [cutmix(alpha=0)]", "E004", (5, 27), ""),
        ("  augment = [random_erasing(p=2)]", "E004", (5, 31), ""),
        ("  augment = [random_erasing(ratio=[3, 0.3])]", "E019", (5, 14), "ratio=[0.3, 3.3]"),
        ("  augment = [random_erasing(scale=[0.1])]", "E019", (5, 14), "scale=[0.02, 0.33]"),
    ],
)
def test_bad_recipe_values_get_one_located_diagnostic(train, code, where, hint):
    checked = check(train)
    errors = [d for d in checked.diagnostics if d.severity == "error"]
    assert len(errors) == 1, [d.message for d in errors]
    (error,) = errors
    assert (error.code, error.span.line, error.span.column) == (code, *where), error.message
    assert "\n" not in error.message
    assert hint in (error.hint or "")
