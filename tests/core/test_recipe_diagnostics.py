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


def test_the_policies_reach_the_ir():
    checked = check(
        "  augment = [random_resized_crop(32), hflip, trivial_augment, normalize]\n  augment2 = 1"
    )
    assert [d.code for d in checked.diagnostics] == ["E019"]  # augment2: unknown setting
    checked = check("  augment = [hflip, rand_augment(num_ops=3, magnitude=30), random_erasing]")
    assert checked.ok, [d.message for d in checked.diagnostics]
    _, rand, _ = checked.graph.train.augment
    assert (rand.name, rand.num_ops, rand.magnitude) == ("rand_augment", 3, 30)
    (trivial,) = check("  augment = [trivial_augment]").graph.train.augment
    assert trivial.name == "trivial_augment"
    default = check("  augment = [rand_augment]").graph.train.augment[0]
    assert (default.num_ops, default.magnitude) == (2, 9)  # torchvision's defaults
    auto = check("  augment = [auto_augment, auto_augment(svhn), auto_augment(policy=cifar10)]")
    assert [a.policy for a in auto.graph.train.augment] == ["imagenet", "svhn", "cifar10"]


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
        ("  augment = [rand_augment(magnitude=31)]", "E004", (5, 37), "at most 30"),
        ("  augment = [rand_augment(num_ops=-1)]", "E004", (5, 35), "at least 0"),
        ("  augment = [rand_augment(num_ops=1.5)]", "E004", (5, 35), ""),
        ("  augment = [trivial_augment(2)]", "E016", (5, 30), "none"),
        ("  augment = [auto_augment(policy=imagnet)]", "E004", (5, 34), "`imagenet`"),
        ("  augment = [auto_augment(3)]", "E004", (5, 27), "`cifar10`"),
        ("  augment = [auto_augment(mode=svhn)]", "E003", (5, 27), "`policy`"),
        ("  augment = [random_erasing, auto_augment]", "E019", (5, 30), "before `random_erasing`"),
        ("  augment = [normalize, trivial_augment]", "E019", (5, 25), "before `normalize`"),
        ("  augment = [pca_lighting, rand_augment]", "E019", (5, 28), "before `pca_lighting`"),
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


def located(train: str) -> list[tuple[str, int, int]]:
    """(code, line, column) of each error of the spec, in order."""
    return [
        (d.code, d.span.line, d.span.column)
        for d in check(train).diagnostics
        if d.severity == "error"
    ]


def test_every_bad_argument_of_a_recipe_call_is_reported():
    """A bind error (rule) and range errors (alpha, eps) of one call: one diagnostic each."""
    assert located("  optimizer = rmsprop(rule=keras, alpha=1, eps=-1)") == [
        ("E004", 5, 28),
        ("E004", 5, 41),
        ("E004", 5, 48),
    ]
    assert located(
        "  schedule = cosine(warmup_factor=0, min_lr=x)\n  ema = ema(decay=2, every=0)"
    ) == [
        ("E004", 5, 35),
        ("E004", 5, 45),
        ("E004", 6, 19),
        ("E006", 6, 28),
    ]


def test_every_bad_augment_entry_and_argument_is_reported():
    train = (
        "  augment = [random_erasing(p=2, scale=1), rand_augment(num_ops=-1, magnitude=31),"
        " random_resized_crop(30, ratio=[1]), cutmix(alpha=0)]"
    )
    assert located(train) == [
        ("E004", 5, 31),  # p
        ("E004", 5, 40),  # scale
        ("E004", 5, 65),  # num_ops
        ("E004", 5, 79),  # magnitude
        ("E019", 5, 84),  # ratio: one number
        ("E019", 5, 84),  # 30 x 30 crops of a 32 x 32 input
        ("E004", 5, 133),  # alpha
    ]


def test_every_misplaced_policy_and_repeated_mix_is_reported():
    train = "  augment = [normalize, trivial_augment, mixup, rand_augment, mixup]"
    assert located(train) == [("E019", 5, 25), ("E019", 5, 49), ("E016", 5, 63)]


def test_a_recipe_call_with_several_bad_arguments_prints_one_line_each(tmp_path, capsys):
    from archdsl.cli import main

    path = tmp_path / "bad.arch"
    path.write_text(f"{HEAD}train {{\n  augment = [rand_augment(num_ops=-1, magnitude=31)]\n}}\n")
    assert main(["check", str(path)]) == 1
    err = capsys.readouterr().err
    for column in (35, 49):
        assert f"{path}:5:{column}: error[E004]" in err, err
    assert err.rstrip().endswith("2 errors")
