"""The PyTorch side of the conformance runs: `python torch_driver.py JOB.json` (see conform.py).

Tasks:
  infer  compile `spec` for PyTorch into dir/torch, initialise with the spec's rules, then
         calibrate (conform.CALIBRATION); write dir/weights.npz (the model's save_weights),
         dir/inputs.npz (x: N, C, H, W), dir/torch_out.npz (eval-mode logits) and
         dir/torch_statements.npz (each statement's eval-mode output).
  reverse  load the weights the Keras driver changed and saved (dir/keras_changed.npz, and
         dir/keras_changed_unpermuted.npz) and write the eval-mode logits of the inputs
         (dir/torch_reverse_out.npz).
  train  from the spec's own initialisation (or dir/weights.npz with start="calibrated"),
         written to dir/train_start.npz, in float64: dropout off (p = 0; batch norm in training
         mode), STEPS steps of build_optimizer(model) on the cross-entropy of random batches of
         `batch` (default 2; written to dir/batches.npz), the rate set as
         conform.learning_rates says; after each step write dir/torch_weights{step}.npz
         (float64, portable layout) and compare the weights with conform.Reference's rules.
         With `sensitivity` (a relative size), train again from the start weights perturbed
         by that much and report how far each step lands from the first run's.
"""

import json
import sys
from pathlib import Path

import conform
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d)
TOKEN_MODULES = ("ClassToken", "PositionEmbedding", "SelfAttention")


def calibrate(model, x, rng, target=conform.TARGET_STD):
    """One eval-mode pass that rescales each conv (transposed too) / linear output to std
    `target` (random biases first) and gives each batch norm non-trivial statistics near its
    input's; layer norms and layer scales get random scales (and shifts), window attention a
    relative position bias that shows; class tokens, position embeddings and attention biases
    (zeros at first) random values."""

    def affine(module, inputs, output):
        out = output
        if module.bias is not None:
            bias = torch.from_numpy(rng.normal(0, 0.5, module.bias.shape).astype(np.float32))
            bias = bias * out.std()
            axes = [1] * out.dim()  # a linear layer's features are last (vectors, tokens)
            axes[-1 if isinstance(module, nn.Linear) else 1] = -1
            out = out + bias.view(axes)
        scale = target / float(out.std())
        module.weight.mul_(scale)
        if module.bias is not None:
            module.bias.copy_(bias * scale)
        return out * scale

    def batchnorm(module, inputs):
        x = inputs[0]
        dims = [d for d in range(x.dim()) if d != 1]
        mean, var = x.mean(dim=dims), x.var(dim=dims)
        var = var + 0.1 * var.mean() + 1e-6  # no channel amplified much above the rest
        shape = module.running_mean.shape
        noise = torch.from_numpy(rng.normal(0, 0.1, shape).astype(np.float32))
        module.running_mean.copy_(mean + noise * var.sqrt())
        module.running_var.copy_(var * torch.from_numpy(rng.uniform(0.5, 2.0, shape)).float())
        module.weight.copy_(torch.from_numpy(rng.uniform(0.5, 1.5, shape)).float())
        module.bias.copy_(torch.from_numpy(rng.normal(0, 0.5, shape)).float())

    def uniform(tensor, low, high):
        tensor.copy_(torch.from_numpy(rng.uniform(low, high, tensor.shape)).float())

    hooks = []
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                if module.bias is not None:
                    module.bias.zero_()
                hooks.append(module.register_forward_hook(affine))
            elif isinstance(module, BATCHNORMS):
                hooks.append(module.register_forward_pre_hook(batchnorm))
            elif isinstance(module, nn.LayerNorm):  # scales and shifts that show
                uniform(module.weight, 0.5, 1.5)
                uniform(module.bias, -0.5, 0.5)
            elif type(module).__name__ == "LayerScale":
                uniform(module.scale, 0.5, 1.5)
            elif type(module).__name__ == "ShiftedWindowAttention":
                uniform(module.relative_position_bias_table, -1.0, 1.0)
            for name in ("token", "embedding", "in_proj_bias"):  # ViT's learned tensors
                if (
                    type(module).__name__ in TOKEN_MODULES
                    and getattr(module, name, None) is not None
                ):
                    uniform(getattr(module, name), -1.0, 1.0)
        model.eval()
        try:
            model(x)
        finally:
            for hook in hooks:
                hook.remove()


def statement_modules(model) -> dict:
    """{statement: its nn.Sequential}: the Sequentials keyed by op labels (`conv`, `relu`), at
    the statement's dotted path; a Sequential of block calls (keyed 0, 1, ...) is not one."""
    return {
        name: module
        for name, module in model.named_modules()
        if isinstance(module, nn.Sequential) and not any(k.isdigit() for k in module._modules)
    }


def statement_outputs(model, x):
    """{statement: eval-mode output} for every statement the model has a Sequential for."""
    seen, hooks = {}, []
    for name, module in statement_modules(model).items():

        def keep(module, inputs, output, name=name):
            seen[name] = output.detach().numpy().copy()

        hooks.append(module.register_forward_hook(keep))
    try:
        with torch.no_grad():
            logits = model(x).numpy()
    finally:
        for hook in hooks:
            hook.remove()
    return logits, seen


def infer(task):
    directory = Path(task["dir"])
    code = conform.compile_spec(task["spec"], "torch", directory / "torch")
    m = conform.import_model(code)
    torch.manual_seed(conform.SEED)
    rng = np.random.default_rng(conform.SEED)
    model = m.build_model()
    x = torch.from_numpy(conform.random_inputs(m, rng, conform.BATCH))
    calibrate(model, x, rng)
    m.save_weights(model, directory / "weights.npz")
    model.eval()
    logits, statements = statement_outputs(model, x)
    np.savez(directory / "inputs.npz", x=x.numpy())
    np.savez(directory / "torch_out.npz", logits=logits)
    np.savez(directory / "torch_statements.npz", **statements)
    return {
        "logits_std": float(logits.std()),
        "params": int(sum(p.numel() for p in model.parameters())),
        "statements": sorted(statements),
    }


def reverse(task):
    """Load the weights the Keras driver changed and saved (dir/keras_changed.npz, and the
    planted dir/keras_changed_unpermuted.npz) and run the inference inputs in eval mode."""
    directory = Path(task["dir"])
    m = conform.import_model(directory / "torch")
    x = torch.from_numpy(np.load(directory / "inputs.npz")["x"])
    outputs = {}
    for name in ("keras_changed", "keras_changed_unpermuted"):
        model = m.build_model()
        m.load_weights(model, directory / f"{name}.npz")
        with torch.no_grad():
            outputs[name] = model.eval()(x).numpy()
    np.savez(directory / "torch_reverse_out.npz", **outputs)
    return {}


def train(task):
    directory = Path(task["dir"])
    m = conform.import_model(conform.compile_spec(task["spec"], "torch", directory / "torch"))
    torch.manual_seed(conform.SEED)
    model = m.build_model()  # the spec's own initialisation, the start of its training
    if task.get("start") == "calibrated":
        m.load_weights(model, directory / "weights.npz")
    m.save_weights(model, directory / "train_start.npz")
    start = dict(np.load(directory / "train_start.npz"))
    opt = m.TRAIN["optimizer"]
    rng = np.random.default_rng(conform.SEED + 1)
    batches = {}
    for step in range(1, conform.STEPS + 1):
        batch = task.get("batch", conform.BATCH)
        x = conform.random_inputs(m, rng, batch)
        y = rng.integers(0, m.NUM_CLASSES, batch)
        batches[f"x{step}"], batches[f"y{step}"] = conform.mixed_batch(
            m.TRAIN, x, y, m.NUM_CLASSES, step
        )
    np.savez(directory / "batches.npz", **batches)
    rules = conform.training_rules(m.TRAIN, task.get("planted"))
    reference = conform.Reference(start, opt, rules, m.TRAIN.get("clip_grad_norm"), m.TRAIN)
    steps, updates, snapshots, ema = [], conform.ema_updates(m.TRAIN), [], []
    runtime = conform.runtime_module(directory / "torch", "ema") if updates else None

    def compare(step, lr, grads, state, model):
        np.savez(directory / f"torch_weights{step}.npz", **state)
        steps.append(reference.step(lr, grads, state))
        if step in updates:  # the trainer's EMA, updated as the trainer updates it
            if not ema:
                ema.append(runtime.ema_model(model, m.TRAIN["ema"]["decay"]))
            runtime.update(ema[0], model, restart=False)
            snapshots.append({n: a.copy() for n, a in state.items()})  # views of the model

    lrs, losses = train_steps(m, model, batches, compare)
    result = {"optimizer": opt, "train": m.TRAIN, "lrs": lrs, "losses": losses, "reference": steps}
    if ema:
        averaged = {
            n: t.detach().numpy()
            for n, t in sys.modules["weights"].portable_tensors(ema[0].module).items()
        }
        np.savez(directory / "torch_ema.npz", **averaged)
        result["ema"] = conform.ema_check(m.TRAIN, snapshots, averaged)
    if task.get("sensitivity"):
        result["sensitivity"] = sensitivity(m, directory, batches, task["sensitivity"])
    return result


def train_steps(m, model, batches, after_step):
    """Train `model` in float64 for STEPS steps of its optimizer on the batches, the rate set as
    the schedules set it, the gradients clipped as the trainer clips them; after_step(step, lr,
    grads before clipping, portable float64 state, model) after each.
    Returns (lrs, losses)."""
    model = model.double()  # float64: see test_training.py
    tensors = sys.modules["weights"].portable_tensors
    for module in model.modules():
        if isinstance(module, nn.Dropout) or type(module).__name__ == "StochasticDepth":
            module.p = 0.0  # dropout and stochastic depth off; batch norm still trains
    model.train()
    optimizer = m.build_optimizer(model)
    smoothing = m.TRAIN["loss"].get("label_smoothing", 0.0)
    lrs = conform.learning_rates(optimizer.param_groups[0]["lr"])
    # each group's share of the first's rate (lr_scale's factor), which the schedules keep
    shares = [g["lr"] / optimizer.param_groups[0]["lr"] for g in optimizer.param_groups]
    names = {id(p): n for n, p in model.named_parameters()}
    losses = []
    for step in range(1, conform.STEPS + 1):
        for group, share in zip(optimizer.param_groups, shares, strict=True):
            group["lr"] = lrs[step - 1] * share  # as the schedules set it
        optimizer.zero_grad()
        x = torch.from_numpy(batches[f"x{step}"])
        x = x if hasattr(m, "INPUT_VOCAB") else x.double()  # token ids stay integers
        y = torch.from_numpy(batches[f"y{step}"])
        y = y.double() if y.is_floating_point() else y  # mixup / cutmix: soft targets
        loss = F.cross_entropy(model(x), y, label_smoothing=smoothing)
        loss.backward()
        grads = {
            names[id(p)]: p.grad.numpy().copy() for p in model.parameters() if p.grad is not None
        }
        if m.TRAIN.get("clip_grad_norm") is not None:  # as the trainer clips
            torch.nn.utils.clip_grad_norm_(model.parameters(), m.TRAIN["clip_grad_norm"])
        optimizer.step()
        state = {n: t.detach().numpy() for n, t in tensors(model).items()}
        after_step(step, lrs[step - 1], grads, state, model)
        losses.append(float(loss.detach()))
    return lrs, losses


def sensitivity(m, directory, batches, delta):
    """How far PyTorch's own run moves when its start moves by rounding: the same training
    from the start weights each times (1 + delta * N(0, 1)), compared after each step with the
    weights the run above wrote (the envelope that chaotic training leaves any comparison)."""
    model = m.build_model()
    m.load_weights(model, directory / "train_start.npz")
    model = model.double()  # before the perturbation, which float32 would round away
    noise = torch.Generator().manual_seed(conform.SEED + 2)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1 + delta * torch.randn(p.shape, generator=noise, dtype=p.dtype))
    diffs = []

    def compare(step, lr, grads, state, model):
        with np.load(directory / f"torch_weights{step}.npz") as f:
            theirs = dict(f)
        diffs.append(conform.tensor_diffs(state, theirs, scales=conform.layer_scales(theirs)))

    train_steps(m, model, batches, compare)
    return diffs


def main(job):
    for task in json.loads(Path(job).read_text()):
        work = {"infer": infer, "reverse": reverse, "train": train}[task["kind"]]
        conform.run_task("torch", task, work)


if __name__ == "__main__":
    main(sys.argv[1])
