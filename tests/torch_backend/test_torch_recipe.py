"""TRAIN, build_optimizer and build_scheduler: the spec's recipe through the torch runtime."""

import pytest
from ptgen import ROOT

torch = pytest.importorskip("torch")

NET = """
model Recipe
input image: 3 x 6 x 6
body = conv(4, kernel=3) |> batchnorm |> relu |> flatten |> dense(5)
"""


def recipe(compiled, optimizer, schedule="none", epochs=10):
    """The compiled module of a small net trained with the given settings."""
    train = (
        f"train {{\n  optimizer = {optimizer}\n  schedule = {schedule}\n  epochs = {epochs}\n}}\n"
    )
    return compiled(NET + train).module


def test_train_is_the_specs_recipe_as_plain_data(compiled_file):
    assert compiled_file(ROOT / "specs" / "alexnet.arch").module.TRAIN == {
        "batch": 128,
        "epochs": 90,
        "loss": {"name": "cross_entropy", "label_smoothing": 0.0},
        "optimizer": {
            "name": "sgd",
            "lr": 0.01,
            "momentum": 0.9,
            "weight_decay": 0.0005,
            "nesterov": False,
            "rule": "paper",
            "no_decay": [],
        },
        "schedule": {
            "name": "on_plateau",
            "factor": 0.1,
            "patience": 1,
            "metric": "val_error",
            "max_drops": 3,
            "min_delta": 0.0,
        },
        "augment": [
            {"name": "random_crop", "size": 227, "from": 256},
            {"name": "hflip", "p": 0.5},
            {"name": "pca_lighting", "std": 0.1},
            {"name": "normalize", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
        ],
        "clip_grad_norm": None,
        "ema": None,
    }


def test_paper_sgd_comes_from_the_runtime(compiled):
    module = recipe(compiled, "sgd(lr=0.02, momentum=0.9, weight_decay=0.0005, rule=paper)")
    model = module.build_model()
    opt = module.build_optimizer(model)
    assert type(opt) is module.PaperSGD and type(opt).__module__ == "optim"
    assert opt.foreach  # one list of tensors per device and dtype
    expected = {"lr": 0.02, "momentum": 0.9, "weight_decay": 0.0005, "nesterov": False}
    assert {k: opt.defaults[k] for k in expected} == expected
    assert [p for g in opt.param_groups for p in g["params"]] == list(model.parameters())
    assert module.build_optimizer(model, lr=0.5).param_groups[0]["lr"] == 0.5
    assert module.build_scheduler(opt) is None


def test_torch_sgd_with_no_decay_groups(compiled):
    module = recipe(
        compiled,
        "sgd(lr=0.1, momentum=0.8, weight_decay=0.001, nesterov=true, rule=torch, "
        "no_decay=[bias, norm])",
    )
    model = module.build_model()
    opt = module.build_optimizer(model)
    assert type(opt) is torch.optim.SGD
    assert opt.defaults["fused"]  # torch fuses SGD's step on the CPU, too
    assert (opt.defaults["momentum"], opt.defaults["nesterov"]) == (0.8, True)
    decay = {id(p): g["weight_decay"] for g in opt.param_groups for p in g["params"]}
    assert decay == {
        id(model.body.conv.weight): 0.001,
        id(model.body.dense.weight): 0.001,
        id(model.body.conv.bias): 0.0,
        id(model.body.batchnorm.weight): 0.0,
        id(model.body.batchnorm.bias): 0.0,
        id(model.body.dense.bias): 0.0,
    }


@pytest.mark.parametrize(("name", "cls"), [("adam", "Adam"), ("adamw", "AdamW")])
def test_adam_variants(name, cls, compiled):
    module = recipe(
        compiled, f"{name}(lr=0.002, beta1=0.8, beta2=0.99, eps=1e-6, weight_decay=0.05)"
    )
    opt = module.build_optimizer(module.build_model())
    assert type(opt) is getattr(torch.optim, cls)
    assert opt.defaults["fused"]
    assert opt.defaults["betas"] == (0.8, 0.99)
    assert (opt.defaults["lr"], opt.defaults["eps"], opt.defaults["weight_decay"]) == (
        0.002,
        1e-6,
        0.05,
    )


def lrs(module, schedule, metrics, epochs):
    """The learning rate after each of `epochs` scheduler steps."""
    opt = module.build_optimizer(module.build_model())
    scheduler = module.build_scheduler(opt)
    assert (
        type(scheduler) is getattr(module, schedule) and type(scheduler).__module__ == "schedules"
    )
    out = []
    for _ in range(epochs):
        scheduler.step_epoch(metrics)
        out.append(round(opt.param_groups[0]["lr"], 12))
    return out


def test_step_and_multistep_schedules(compiled):
    step = recipe(compiled, "sgd(lr=1.0)", "step(step_size=2, gamma=0.5)")
    assert lrs(step, "StepDecay", {}, 5) == [1.0, 0.5, 0.5, 0.25, 0.25]
    multi = recipe(compiled, "sgd(lr=1.0)", "multistep(milestones=[1, 3], gamma=0.1)")
    assert lrs(multi, "MultiStep", {}, 4) == [0.1, 0.1, 0.01, 0.01]


def test_cosine_anneals_over_the_specs_epochs(compiled):
    module = recipe(compiled, "sgd(lr=1.0)", "cosine(min_lr=0.5)", epochs=4)
    assert lrs(module, "Cosine", {}, 5) == [
        round(0.5 + 0.25 * (1 + x), 12) for x in (2**-0.5, 0.0, -(2**-0.5), -1.0, -1.0)
    ]


def test_on_plateau_takes_the_specs_settings(compiled):
    module = recipe(
        compiled, "sgd(lr=1.0)", "on_plateau(factor=0.5, patience=1, metric=val_loss, max_drops=2)"
    )
    opt = module.build_optimizer(module.build_model())
    scheduler = module.build_scheduler(opt)
    assert type(scheduler) is module.OnPlateau
    assert (scheduler.factor, scheduler.patience, scheduler.metric) == (0.5, 1, "val_loss")
    assert (scheduler.max_drops, scheduler.min_delta) == (2, 0.0)
