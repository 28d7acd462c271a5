"""Shared by the conformance tests, their drivers and bench/conformance.py (NumPy and archdsl only).

The comparison runs in two processes, because torch and TensorFlow crash together here:
`torch_driver.py JOB.json` builds each spec in PyTorch, re-initialises it so that every op
matters (see CALIBRATION), saves the portable weights, random inputs, the eval-mode logits and
every statement's output, and trains 5 steps, saving the weights after each; `keras_driver.py
JOB.json` loads those weights into the Keras model compiled from the same spec and does the
same, comparing as it goes. Each driver checks its own training against the NumPy rules here.
A job is a JSON list of tasks, {"kind": "infer" | "train" | "strict" | "seeds", "dir", ...};
each task writes its files into its "dir" and its result (or its error) into
dir/<backend>_<kind>.json, which the tests and the report read.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE.parent / "recipes_common"))
from recipes_reference import clip_by_global_norm, ema_reference, rmsprop_step  # noqa: E402

SPECS = sorted((ROOT / "specs").rglob("*.arch"))
OWN_SPECS = HERE / "specs"

BATCH = 2
SEED = 0
STEPS = 5  # optimizer steps of the training comparison
DROP_AT = 3  # steps DROP_AT.. run at lr * GAMMA, set on the optimizer as the schedules set it
GAMMA = 0.1
# CALIBRATION: after the spec's own initialisation, one eval-mode pass over the inputs rescales
# every conv and dense layer (random biases added first) so that its output has this standard
# deviation, and gives every batch norm running statistics near its input's (mean shifted by
# 0.1 sd, variance (floored at 0.1 of the layer's mean) times 0.5-2) and scale 0.5-1.5, shift
# N(0, 0.5). With the spec's std-0.01 weights and unit inputs AlexNet's activations shrink to
# ~1e-5, where LRN is the identity.
TARGET_STD = 8.0

INFERENCE_RTOL = 1e-4  # max |keras - torch| <= INFERENCE_RTOL * max |torch|, float32
# Training runs in float64 (test_training.py says why). Per tensor, max |a - b| <= tol * max |b|
# (or its layer weight's max, for tensors that stay near 0). Measured: ~1e-16 against the
# NumPy rule fed with the backend's own gradients (the same arithmetic), ~1e-14 between the
# backends (float64 rounding in different summation orders). The planted mistakes are >= 1e-5.
REFERENCE_RTOL = 1e-10
CROSS_RTOL = 1e-8
# Adam between the backends: its step divides each gradient by its own size, so rounding noise
# in a gradient that is mathematically 0 (a conv bias before batch norm) becomes a step of up
# to lr * noise / eps; measured up to 9e-7 (seed002, eps 1e-7), 3e-12 (seed004), 2e-15 (the
# pocket). Adam's rule itself is held to REFERENCE_RTOL against NumPy with each backend's
# gradients; the planted mistakes of test_inference.py are 1e-2 and larger.
ADAM_CROSS_RTOL = 1e-5


def cross_rtol(opt: dict) -> float:
    """The tolerance between the backends' weights when training with TRAIN["optimizer"]."""
    return CROSS_RTOL if opt["name"] == "sgd" else ADAM_CROSS_RTOL


CHUNK = 1 << 15  # elements per piece of the big NumPy loops: temporaries stay in cache

_serial = itertools.count()


def spec_id(path: Path) -> str:
    """A spec's name relative to specs/ (or to this folder's specs/)."""
    path = Path(path).resolve()
    for base in (ROOT / "specs", HERE):
        if path.is_relative_to(base):
            return str(path.relative_to(base))
    return path.name


def spec_dirname(path: Path) -> str:
    return spec_id(path).removesuffix(".arch").replace("/", "__")


# ----------------------------------------------------------------------------- compiling


def compile_spec(spec: Path, backend: str, dest: Path, replace=()) -> Path:
    """Write the backend's output for a spec (its text edited by `replace` pairs) into dest."""
    from archdsl.compiler import check_source
    from archdsl.emit import write_output

    text = Path(spec).read_text(encoding="utf-8")
    for old, new in replace:
        if old not in text:
            raise ValueError(f"{spec}: {old!r} not in the spec (planted mistake not planted)")
        text = text.replace(old, new)
    checked = check_source(text, str(spec))
    errors = [f"{d.code}: {d.message}" for d in checked.diagnostics if d.severity == "error"]
    if errors or not checked.ok:
        raise ValueError(f"{spec}: {errors}")
    write_output(checked, backend, Path(dest), force=True)
    return Path(dest)


def import_model(directory: Path):
    """Import directory/model.py under a fresh name; its runtime siblings (the same files in
    every output directory of a backend) stay imported for the next model."""
    directory = str(directory)
    sys.path.insert(0, directory)
    try:
        spec = importlib.util.spec_from_file_location(
            f"conformance_model_{next(_serial)}", Path(directory) / "model.py"
        )
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(directory)
    return module


# ----------------------------------------------------------------------------- comparing


def _max_abs(a) -> float:
    return float(max(a.max(), -a.min())) if a.size else 0.0


def diff(got, want, scale=0.0) -> tuple[float, float]:
    """(max |got - want|, that divided by max(max |want|, scale)); shapes must agree."""
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape:
        raise ValueError(f"shapes differ: {got.shape} vs {want.shape}")
    if not got.size:
        return 0.0, 0.0
    if got.size > CHUNK and got.flags.c_contiguous and want.flags.c_contiguous:
        pieces = got.size // CHUNK
        pairs = zip(
            np.array_split(got.reshape(-1), pieces),
            np.array_split(want.reshape(-1), pieces),
            strict=True,
        )
    else:
        pairs = [(got, want)]
    err = max(_max_abs(np.subtract(a, b, dtype=np.float64)) for a, b in pairs)
    if math.isnan(err):  # a NaN anywhere is as far off as it gets
        return math.inf, math.inf
    scale = max(_max_abs(want), scale)
    return err, (err / scale if scale else (0.0 if err == 0 else math.inf))


def layer_scales(tensors: dict) -> dict:
    """{name: the largest magnitude of the tensor's layer's weight}: the floor of the relative
    differences of training, so that a tensor that stays near 0 (a conv bias before batch norm,
    whose gradient is 0) is measured against its layer's size instead of against rounding."""
    scales = {}
    for name in tensors:
        weight = name.rsplit(".", 1)[0] + ".weight"
        scales[name] = _max_abs(np.asarray(tensors[weight])) if weight in tensors else 0.0
    return scales


class Worst:
    """The largest max-abs and max-rel differences over many tensors (and the latter's name)."""

    def __init__(self):
        self.max_abs, self.max_rel, self.worst = 0.0, 0.0, None

    def add(self, name, err, rel):
        self.max_abs = max(self.max_abs, err)
        if rel >= self.max_rel:
            self.max_rel, self.worst = rel, name

    def as_dict(self):
        return {"max_abs": self.max_abs, "max_rel": self.max_rel, "worst": self.worst}


def tensor_diffs(got: dict, want: dict, names=None, scales=None) -> dict:
    """Worst max-abs and max-rel (per tensor, relative to that tensor or its `scales` floor)
    over the named tensors (default: all of `want`)."""
    worst = Worst()
    for name in list(want) if names is None else names:
        worst.add(name, *diff(got[name], want[name], (scales or {}).get(name, 0.0)))
    return worst.as_dict()


# ----------------------------------------------------------------------------- references


def lrn_reference(x, size, alpha, beta, k):
    """The paper's LRN on NCHW x: b = a / (k + alpha * sum over the window of a^2)^beta, the
    window c - size // 2 .. c + (size - 1) // 2 (alpha not divided by size)."""
    x = np.asarray(x, np.float64)
    channels = x.shape[1]
    padded = np.pad(x**2, ((0, 0), (size // 2, (size - 1) // 2), (0, 0), (0, 0)))
    total = sum(padded[:, i : i + channels] for i in range(size))
    return x / (k + alpha * total) ** beta


def conv_reference(x, weight, bias, pad, groups=1):
    """A stride-1 convolution of NCHW x with zero padding `pad`, weight (O, I / groups, kh, kw)."""
    x, weight = np.asarray(x, np.float64), np.asarray(weight, np.float64)
    filters, per_group, kh, kw = weight.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    height, width = xp.shape[2] - kh + 1, xp.shape[3] - kw + 1
    out = np.zeros((x.shape[0], filters, height, width))
    per_out = filters // groups
    for g in range(groups):
        xs = xp[:, g * per_group : (g + 1) * per_group]
        ws = weight[g * per_out : (g + 1) * per_out]
        for i in range(kh):
            for j in range(kw):
                window = xs[:, :, i : i + height, j : j + width]
                out[:, g * per_out : (g + 1) * per_out] += np.einsum(
                    "nchw,oc->nohw", window, ws[:, :, i, j]
                )
    return out + np.asarray(bias, np.float64)[None, :, None, None]


def sgd_step(rule, w, v, g, lr, momentum, decay, nesterov=False):
    """One step of an SGD rule, in place on the float64 arrays w and v; returns (w, v).

    paper:     v <- mu*v - lambda*lr*w - lr*g ; w <- w + v    (Krizhevsky et al.)
               nesterov: w <- w + mu*v - lambda*lr*w - lr*g
    torch:     b <- mu*b + (g + lambda*w) ; w <- w - lr*b     (torch.optim.SGD; v holds b)
               nesterov: w <- w - lr*(g + lambda*w + mu*b)
    RULE+decoupled: RULE without decay, then w <- w - lambda*lr*w (a planted mistake: decay
               kept out of the gradient and the momentum, as SGDW / AdamW do)
    """
    g = np.asarray(g, np.float64)
    if rule.endswith("+decoupled"):
        before = w.copy()
        sgd_step(rule.removesuffix("+decoupled"), w, v, g, lr, momentum, 0.0, nesterov)
        w -= (decay * lr) * before
    elif rule == "paper":
        delta = g * -lr
        if decay:
            delta -= (decay * lr) * w
        v *= momentum
        v += delta
        if nesterov:
            delta += momentum * v
            w += delta
        else:
            w += v
    elif rule == "torch":
        d = g + decay * w if decay else g.copy()
        v *= momentum
        v += d
        if nesterov:
            d += momentum * v
            w -= lr * d
        else:
            w -= lr * v
    else:
        raise ValueError(f"unknown rule {rule!r}")
    return w, v


def under(name: str, prefix: str) -> bool:
    """Whether a portable tensor name lies under a statement prefix (`layer1`)."""
    return name.startswith(prefix + ".")


def decays(name: str, no_decay) -> bool:
    """Whether the optimizer decays a tensor, given the spec's no_decay groups."""
    label = name.split(".")[-2]
    # the runtimes' rule: every name ending in bias (attention's in_proj_bias too)
    if "bias" in no_decay and name.endswith("bias"):
        return False
    return not ("norm" in no_decay and label.startswith(("batchnorm", "layernorm")))


def learning_rates(lr: float) -> list[float]:
    """The rate of each step: lr, then lr * GAMMA from step DROP_AT on."""
    return [lr if step < DROP_AT else lr * GAMMA for step in range(1, STEPS + 1)]


def adam_step(w, m, v, t, g, lr, opt, decay, rule):
    """One step of an Adam rule, in place on float64 w, m, v; t counts steps from 1.

    adam:      torch.optim.Adam: g <- g + lambda*w ; m, v moving averages ;
               w <- w - lr * m_hat / (sqrt(v_hat) + eps)   (eps after the bias corrections)
    adamw:     torch.optim.AdamW: w <- w - lr*lambda*w first, then adam without decay
    RULE+keras_eps: Keras's own Adam step, eps added to sqrt(v) before the bias correction
               (w <- w - lr * sqrt(1 - beta2^t) / (1 - beta1^t) * m / (sqrt(v) + eps)): a
               planted mistake, which the runtime's L2Adam / TorchAdamW must not make
    """
    g = np.asarray(g, np.float64)
    base = rule.removesuffix("+keras_eps")
    if base == "adamw":
        w *= 1 - lr * decay
    elif decay:
        g = g + decay * w
    beta1, beta2 = opt["beta1"], opt["beta2"]
    m *= beta1
    m += (1 - beta1) * g
    v *= beta2
    v += (1 - beta2) * g * g
    correction2 = math.sqrt(1 - beta2**t)
    if rule.endswith("+keras_eps"):
        w -= (lr * correction2 / (1 - beta1**t)) * m / (np.sqrt(v) + opt["eps"])
    else:
        w -= (lr / (1 - beta1**t)) * m / (np.sqrt(v) / correction2 + opt["eps"])
    return w, m, v


class Reference:
    """NumPy optimizer rules run beside a backend's training, in float64, fed with its
    gradients (before clipping): the rules of sgd_step, adam_step and rmsprop_step (see
    planted_rules for the planted ones), each after clipping the gradients to max_norm as
    torch.nn.utils.clip_grad_norm_ does (RULE+noclip: without). opt: TRAIN["optimizer"];
    start: the portable tensors the training started from. train: TRAIN, whose fine-tuning
    groups (if any) each rule honours: a statement of lr_scale steps at lr times its factor,
    a frozen one must have no gradient and keep its start bit for bit (statistics too)."""

    def __init__(self, start: dict, opt: dict, rules, max_norm=None, train=None):
        self.opt, self.rules, self.start = opt, list(rules), start
        self.max_norm = max_norm
        self.freeze = (train or {}).get("freeze", [])
        self.lr_scale = (train or {}).get("lr_scale", {})
        self.states = {rule: {} for rule in self.rules}
        self.t = 0

    def clipped(self, grads: dict) -> dict:
        """The gradients as the optimizer sees them: clipped to max_norm (if any)."""
        if self.max_norm is None:
            return grads
        clipped, _ = clip_by_global_norm(list(grads.values()), self.max_norm)
        return dict(zip(grads, clipped, strict=True))

    def step(self, lr: float, grads: dict, weights: dict) -> dict:
        """Advance every rule by one step; {rule: worst diff of `weights` against it}."""
        opt, result = self.opt, {}
        scales = layer_scales(weights)
        clipped = self.clipped(grads)
        self.t += 1
        for rule in self.rules:
            worst = Worst()
            seen = grads if rule.endswith("+noclip") else clipped
            base = rule.removesuffix("+noclip").removesuffix("+unscaled")
            factors = {} if rule.endswith("+unscaled") else self.lr_scale
            moments = 1 if base in ("paper", "torch") or "+decoupled" in base else 2
            for name, g in seen.items():
                if name not in self.states[rule]:
                    w = np.array(self.start[name], np.float64)
                    self.states[rule][name] = (w, *(np.zeros_like(w) for _ in range(moments)))
                state = self.states[rule][name]
                decay = opt["weight_decay"] if decays(name, opt["no_decay"]) else 0.0
                flat = [np.reshape(a, -1) for a in (*state, g, weights[name])]
                err = 0.0
                rate = lr * next((f for p, f in factors.items() if under(name, p)), 1.0)
                for i in range(0, state[0].size, CHUNK):  # cache-sized pieces: no page faults
                    *parts, gc, got = (a[i : i + CHUNK] for a in flat)
                    self.apply(base, parts, gc, rate, decay)
                    err = max(err, diff(got, parts[0])[0])
                scale = max(_max_abs(state[0]), scales[name])
                scale = math.inf if math.isnan(scale) else scale
                worst.add(name, err, err / scale if scale else (0.0 if err == 0 else math.inf))
            for name in (n for n in self.start if any(under(n, p) for p in self.freeze)):
                moved = math.inf if name in seen else diff(weights[name], self.start[name])[0]
                worst.add(name, moved, 0.0 if moved == 0 else math.inf)
            result[rule] = worst.as_dict()
        return result

    def apply(self, rule: str, parts: list, g, lr: float, decay: float) -> None:
        """One step of `rule` in place on the arrays of parts (weights, then moments)."""
        opt = self.opt
        if rule.startswith("adam"):
            adam_step(*parts, self.t, g, lr, opt, decay, rule)
        elif rule.startswith("rmsprop_"):
            form = rule.removeprefix("rmsprop_")
            rmsprop_step(form, *parts, g, lr, opt["alpha"], opt["eps"], opt["momentum"], decay)
        else:
            args = (lr, opt["momentum"], decay, opt["nesterov"])
            sgd_step(rule, *parts, g, *args)


def training_rules(train: dict, planted: bool) -> list[str]:
    """The spec's rule, then (planted) the mistakes the comparison must catch."""
    return [rule_name(train["optimizer"]), *(planted_rules(train) if planted else [])]


def planted_rules(train: dict) -> list[str]:
    """The mistakes a training comparison must catch: weight decay on the wrong side of the
    momentum (coupled vs decoupled) and the other convention of the same optimizer (SGD: the
    paper's rule vs torch's, which differ after the rate drops; Adam: Keras's epsilon;
    RMSprop: epsilon inside or outside the square root); with clip_grad_norm, the rule
    without clipping; with lr_scale, the rule at the unscaled rate."""
    opt = train["optimizer"]
    noclip = [f"{rule_name(opt)}+noclip"] if train.get("clip_grad_norm") else []
    noclip += [f"{rule_name(opt)}+unscaled"] if train.get("lr_scale") else []
    if opt["name"] == "sgd":
        other = "torch" if opt["rule"] == "paper" else "paper"
        return [f"{opt['rule']}+decoupled", other, *noclip]
    if opt["name"] == "rmsprop":
        return ["rmsprop_tf" if opt["rule"] == "torch" else "rmsprop_torch", *noclip]
    swapped = "adamw" if opt["name"] == "adam" else "adam"
    return [swapped, f"{opt['name']}+keras_eps", *noclip]


def rule_name(opt: dict) -> str:
    """The reference rule of a TRAIN["optimizer"]: sgd's rule, rmsprop_RULE, or the name."""
    if opt["name"] == "rmsprop":
        return f"rmsprop_{opt['rule']}"
    return opt["rule"] if opt["name"] == "sgd" else opt["name"]


def random_inputs(module, rng, batch: int):
    """A batch for a compiled model: standard-normal float32 images, or int64 token ids
    below the vocabulary's size for a text model (INPUT_VOCAB)."""
    if hasattr(module, "INPUT_VOCAB"):
        return rng.integers(0, module.INPUT_VOCAB, (batch, *module.INPUT_SHAPE))
    return rng.standard_normal((batch, *module.INPUT_SHAPE)).astype(np.float32)


def mixed_batch(train: dict, x, labels, num_classes: int, step: int):
    """(x, targets) of a harness batch (NCHW or flat x) through the spec's mixup / cutmix, as
    the trainers mix (backends/common/augment.py); (x, labels) without them."""
    augment = _runtime_augment()
    entries = augment.mix_entries(train["augment"])
    if not entries:
        return x, labels
    nhwc = x.transpose(0, 2, 3, 1)
    mixed, targets = augment.mix_batch(
        nhwc, labels, num_classes, entries, augment.batch_rng(SEED, 0, step)
    )
    return np.ascontiguousarray(mixed.transpose(0, 3, 1, 2)), targets


def ema_updates(train: dict) -> list[int]:
    """The harness steps after which the spec's EMA updates (none without one); the harness
    runs past any warmup, so no update restarts the average."""
    ema = train.get("ema")
    if ema is None:
        return []
    if ema["adjust"]:
        raise ValueError("the harness takes the EMA's decay as written (adjust=false)")
    return [step for step in range(1, STEPS + 1) if step % ema["every"] == 0]


def ema_check(train: dict, snapshots: list, averaged: dict) -> dict:
    """{rule: worst diff} of a backend's EMA (portable tensors) against NumPy's average of its
    own weights at the update steps: "ema" (torchvision's, batch-norm statistics averaged) and
    the planted "ema_statistics_copied" (statistics taken as they are, without use_buffers)."""
    decay = train["ema"]["decay"]
    want = ema_reference(snapshots, decay)[-1]
    copied = {k: (snapshots[-1][k] if "running" in k else v) for k, v in want.items()}
    scales = layer_scales(want)
    return {
        "ema": tensor_diffs(averaged, want, scales=scales),
        "ema_statistics_copied": tensor_diffs(averaged, copied, scales=scales),
    }


def runtime_module(directory: Path, name: str):
    """A runtime module of a compiled output directory, imported from its file."""
    spec = importlib.util.spec_from_file_location(
        f"conformance_{name}_{next(_serial)}", Path(directory) / f"{name}.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _runtime_augment():
    """backends/common/augment.py, the module both trainers mix their batches with."""
    common = str(ROOT / "backends" / "common")
    if common not in sys.path:  # augment imports its sibling autoaugment by bare name
        sys.path.append(common)
    spec = importlib.util.spec_from_file_location(
        "conformance_augment", ROOT / "backends" / "common" / "augment.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ----------------------------------------------------------------------------- running


def run_driver(backend: str, tasks: list[dict], job_dir: Path, timeout=900) -> list[dict]:
    """Run the backend's driver on the tasks in a subprocess; return each task's result."""
    job_dir.mkdir(parents=True, exist_ok=True)
    job = job_dir / f"{backend}_job_{next(_serial)}.json"
    job.write_text(json.dumps(tasks, indent=1, default=str))
    path = [str(HERE), str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    done = subprocess.run(
        [sys.executable, str(HERE / f"{backend}_driver.py"), str(job)],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"{backend} driver failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
        )
    return [read_result(backend, task) for task in tasks]


def result_path(backend: str, task: dict) -> Path:
    return Path(task["dir"]) / f"{backend}_{task['kind']}.json"


def read_result(backend: str, task: dict) -> dict:
    path = result_path(backend, task)
    if not path.exists():
        return {"error": f"{path} was not written"}
    return json.loads(path.read_text())


def run_task(backend: str, task: dict, work) -> None:
    """Run one task of a driver, recording its result or its error (the job goes on)."""
    import time
    import traceback

    Path(task["dir"]).mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    try:
        result = work(task) or {}
    except Exception:
        result = {"error": traceback.format_exc()}
    result["seconds"] = round(time.perf_counter() - start, 2)
    result_path(backend, task).write_text(json.dumps(result, indent=1, default=float))
