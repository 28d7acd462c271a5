"""The Keras side of the conformance runs: `python keras_driver.py JOB.json` (see conform.py).

Tasks:
  infer  compile `spec` for Keras into dir/keras (its text edited by the task's `replace` pairs,
         to plant a mistake), load the portable weights the torch driver wrote into
         `torch_dir` (default: dir; `no_permute`: skip the flatten-order permutation, a
         planted mistake), run the inputs (transposed to N, H, W, C) in inference mode and
         write dir/keras_out.npz (logits) and dir/keras_statements.npz (each statement's output
         in PyTorch's layout: N, C, H, W maps, C, H, W flatten order). The result holds the
         worst difference of each statement against PyTorch's. Then (unless planted) change
         every weight by ~10% and save them for the torch driver's `reverse` task.
  train  the torch driver's training run in Keras: the same weights and batches, dropout rate
         0 (batch norm in training mode), build_optimizer(model), the rate set on the optimizer
         as the schedules set it, in float64; after each step compares the weights with
         PyTorch's (dir/torch_weights{step}.npz) and with conform.Reference's rules.
  strict load_weights on broken copies of `torch_dir`'s weights: the messages it gives.
  seeds  the seed fixtures (seed_fixtures/) against the Keras models compiled from their specs.
"""

import contextlib
import importlib.util
import json
import os
import re
import sys
from pathlib import Path

import conform

os.environ.setdefault("COLUMNS", "200")  # model.summary()'s table, unclipped

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


@contextlib.contextmanager
def planted_no_permute(enabled):
    """With `enabled`, the weights runtime forgets every flatten order (a planted mistake)."""
    module = sys.modules["weights"]
    original = module.flatten_orders
    if enabled:
        module.flatten_orders = lambda model: {}
    try:
        yield
    finally:
        module.flatten_orders = original


def statement_layers(model):
    """{statement: the last layer of that statement}: its output is the statement's."""
    last = {}
    for layer in model.layers:
        if "." in layer.name:
            last[layer.name.rsplit(".", 1)[0]] = layer
    return last


def to_torch_layout(value, order):
    """A Keras activation in PyTorch's layout."""
    value = np.asarray(value)
    if value.ndim == 4:
        return value.transpose(0, 3, 1, 2)
    return sys.modules["weights"].to_portable_features(value, order)


def infer(task):
    directory = Path(task["dir"])
    source = Path(task.get("torch_dir", directory))
    code = conform.compile_spec(task["spec"], "keras", directory / "keras", task.get("replace", ()))
    m = conform.import_model(code)
    keras.utils.set_random_seed(conform.SEED)
    model = m.build_model()
    planted = task.get("no_permute", False) or task.get("replace")
    with planted_no_permute(task.get("no_permute", False)):
        m.load_weights(model, source / "weights.npz")
    if not planted:  # the same tensors, through Keras's layouts and back
        m.save_weights(model, directory / "keras_weights.npz")
    x = np.load(source / "inputs.npz")["x"]
    x = x.transpose(0, 2, 3, 1) if x.ndim == 4 else x
    logits = np.asarray(model(x, training=False))
    np.savez(directory / "keras_out.npz", logits=logits)
    torch_statements = np.load(source / "torch_statements.npz")
    layers = statement_layers(model)
    names = [n for n in torch_statements.files if n in layers]
    orders = sys.modules["weights"].output_orders(model)
    probe = keras.Model(model.inputs, [layers[n].output for n in names])
    values = probe(x, training=False) if names else []
    values = [values] if len(names) == 1 else values
    statements, diffs = {}, {}
    for name, value in zip(names, values, strict=True):
        statements[name] = to_torch_layout(value, orders[layers[name].name])
        if statements[name].shape == torch_statements[name].shape:
            diffs[name] = conform.diff(statements[name], torch_statements[name])
        else:  # a planted mistake may change shapes
            diffs[name] = [float("inf"), float("inf")]
    if task.get("save_statements"):
        np.savez(directory / "keras_statements.npz", **statements)
    if not planted:
        change_weights(model, directory, x)
    return {
        "statements": diffs,
        "missing_statements": sorted(set(torch_statements.files) - set(names)),
    }


def change_weights(model, directory, x):
    """Change every weight and statistic by a random factor of about 10%, as training in Keras
    would, and write them (dir/keras_changed.npz, and dir/keras_changed_unpermuted.npz saved
    without the flatten permutation, a planted mistake) with the logits they give
    (dir/keras_changed_out.npz), for the torch driver's `reverse` task."""
    rng = np.random.default_rng(conform.SEED + 3)
    for variable in model.weights:
        if "float" not in str(variable.dtype):
            continue  # a dropout layer's seed
        factor = np.exp(0.1 * rng.standard_normal(variable.shape))
        variable.assign((keras.ops.convert_to_numpy(variable) * factor).astype(variable.dtype))
    save = sys.modules["weights"].save_weights
    save(model, directory / "keras_changed.npz")
    with planted_no_permute(True):
        save(model, directory / "keras_changed_unpermuted.npz")
    logits = np.asarray(model(x, training=False))
    np.savez(directory / "keras_changed_out.npz", logits=logits)


def portable(entry, value):
    """A variable's value or gradient in the portable layout, contiguous."""
    return np.ascontiguousarray(entry.to_portable(keras.ops.convert_to_numpy(value)))


def train(task):
    directory = Path(task["dir"])
    m = conform.import_model(conform.compile_spec(task["spec"], "keras", directory / "keras"))
    keras.utils.set_random_seed(conform.SEED)
    floatx, policy = keras.config.floatx(), keras.config.dtype_policy()
    keras.config.set_floatx("float64")  # see test_training.py on training in float64
    keras.config.set_dtype_policy("float64")
    runtime = sys.modules.get("layers")
    batchnorm_call = runtime.BatchNorm.call if runtime else None
    try:
        if task.get("biased_bn"):  # planted: Keras's own (biased) moving variance
            runtime.BatchNorm.call = keras.layers.BatchNormalization.call
        return train_float64(task, m, Path(task.get("torch_dir", directory)))
    finally:
        keras.config.set_floatx(floatx)
        keras.config.set_dtype_policy(policy)
        if runtime:
            runtime.BatchNorm.call = batchnorm_call


def train_float64(task, m, directory):
    weights = sys.modules["weights"]
    model = m.build_model()
    m.load_weights(model, directory / "train_start.npz")
    start = dict(np.load(directory / "train_start.npz"))
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dropout) or type(layer).__name__ == "StochasticDepth":
            layer.rate = 0.0  # dropout and stochastic depth off; batch norm still trains
    optimizer = m.build_optimizer(model)
    opt = m.TRAIN["optimizer"]
    lrs = conform.learning_rates(float(keras.ops.convert_to_numpy(optimizer.learning_rate)))
    rules = conform.training_rules(m.TRAIN, task.get("planted"))
    reference = conform.Reference(start, opt, rules, m.TRAIN.get("clip_grad_norm"), m.TRAIN)
    smoothing = m.TRAIN["loss"].get("label_smoothing", 0.0)
    batches = np.load(directory / "batches.npz")
    entries = weights.portable_variables(model)
    by_variable = {id(e.variable): e for e in entries}
    variables = model.trainable_variables
    missing = [v.path for v in variables if id(v) not in by_variable]
    if missing:
        raise ValueError(f"trainable variables without a portable name: {missing}")
    losses, steps, cross = [], [], []
    updates, snapshots = conform.ema_updates(m.TRAIN), []
    runtime = conform.runtime_module(Path(task["dir"]) / "keras", "ema") if updates else None
    average = runtime.WeightAverage(model, m.TRAIN["ema"]["decay"]) if updates else None
    for step in range(1, conform.STEPS + 1):
        optimizer.learning_rate = lrs[step - 1]  # as the schedules set it
        x = batches[f"x{step}"]
        x = x.transpose(0, 2, 3, 1) if x.ndim == 4 else x
        x = x.astype(np.int32 if hasattr(m, "INPUT_VOCAB") else np.float64)
        y = batches[f"y{step}"]  # labels, or mixup / cutmix's soft targets
        y = (
            y.astype(np.float64)
            if y.ndim == 2
            else keras.ops.one_hot(y, m.NUM_CLASSES, dtype="float64")
        )
        with tf.GradientTape() as tape:
            logits = model(x, training=True)
            loss = keras.ops.mean(
                keras.losses.categorical_crossentropy(
                    y, logits, from_logits=True, label_smoothing=smoothing
                )
            )
        grads = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(grads, variables, strict=True))
        grads = {
            by_variable[id(v)].name: portable(by_variable[id(v)], g)
            for v, g in zip(variables, grads, strict=True)
        }
        state = {e.name: portable(e, e.variable) for e in entries}
        dtypes = {str(a.dtype) for a in state.values()}
        if dtypes != {"float64"}:
            raise ValueError(f"the model did not train in float64: {dtypes}")
        steps.append(reference.step(lrs[step - 1], grads, state))
        with np.load(directory / f"torch_weights{step}.npz") as f:
            theirs = dict(f)
        cross.append(conform.tensor_diffs(state, theirs, scales=conform.layer_scales(theirs)))
        compared = sorted(theirs)
        del theirs
        losses.append(float(loss))
        if step in updates:  # the trainer's EMA, updated as the trainer updates it
            average.update(restart=False)
            snapshots.append(state)
    result = {"lrs": lrs, "losses": losses, "reference": steps, "cross": cross}
    if average is not None:
        result.update(ema_results(m, average, entries, snapshots, directory))
    return {**result, "compared": compared}


def ema_results(m, average, entries, snapshots, directory):
    """The Keras EMA (portable tensors) against NumPy's and against PyTorch's."""
    with average.swapped_in():
        averaged = {e.name: portable(e, e.variable) for e in entries}
    with np.load(directory / "torch_ema.npz") as f:
        theirs = dict(f)
    return {
        "ema": conform.ema_check(m.TRAIN, snapshots, averaged),
        "ema_cross": conform.tensor_diffs(averaged, theirs, scales=conform.layer_scales(theirs)),
    }


def strict(task):
    """Load broken copies of the weights PyTorch wrote: {case: the error message}."""
    m = conform.import_model(conform.compile_spec(task["spec"], "keras", Path(task["dir"])))
    weights = sys.modules["weights"]
    model = m.build_model()
    good = dict(np.load(Path(task["torch_dir"]) / "weights.npz"))
    cases = {
        "missing": {k: v for k, v in good.items() if k != "fc8.dense.bias"},
        "extra": {**good, "fc9.dense.weight": np.zeros((2, 2), np.float32)},
        "misshaped": {**good, "fc6.dense.weight": good["fc6.dense.weight"].T},
        "conv_layout": {
            **good,
            "conv1.conv.weight": good["conv1.conv.weight"].transpose(2, 3, 1, 0),
        },
    }
    messages = {}
    for case, arrays in cases.items():
        path = Path(task["dir"]) / f"{case}.npz"
        np.savez(path, **arrays)
        try:
            m.load_weights(model, path)
            messages[case] = None
        except weights.WeightsError as exc:
            messages[case] = str(exc)
    return {"messages": messages}


# ----------------------------------------------------------------------------- seeds


def summary_rows(model):
    """[{name, kind, shape, params}] for each layer with parameters and each pool, in order, and
    the total, all read from model.summary()'s own text."""
    lines = []
    model.summary(print_fn=lambda line, *args, **kwargs: lines.append(line), line_length=180)
    text = "\n".join(lines)
    by_name = {layer.name: layer for layer in model.layers}
    rows = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("│").split("│")]
        found = re.fullmatch(r"(\S+) \((\w+)\)", cells[0]) if len(cells) >= 3 else None
        if not found:
            continue
        name, kind = found.groups()
        pool = "Pool" in type(by_name[name]).__name__
        params = int(cells[2].replace(",", ""))
        if params or pool:
            shape = [int(d) for d in re.findall(r"\d+", cells[1])]
            rows.append(
                {"name": name, "kind": kind, "pool": pool, "shape": shape, "params": params}
            )
    total = re.search(r"Total params: ([\d,]+)", text)
    return rows, int(total.group(1).replace(",", "")), text


def load_fixture(path):
    spec = importlib.util.spec_from_file_location(f"seed_fixture_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def seeds(task):
    directory = Path(task["dir"])
    results = {}
    for name, spec in task["pairs"].items():
        fixture = load_fixture(conform.HERE / "seed_fixtures" / f"{name}.py")
        keras.utils.set_random_seed(conform.SEED)
        seed_model = fixture.build_model()
        code = conform.compile_spec(spec, "keras", directory / name)
        m = conform.import_model(code)
        compiled = m.build_model()
        out = {}
        for label, model in (("seed", seed_model), ("compiled", compiled)):
            rows, total, text = summary_rows(model)
            out[label] = {"rows": rows, "total": total, "summary": text}
        if name in task.get("numeric", []):
            out["numeric"] = copy_and_compare(seed_model, compiled, m)
        results[name] = out
    return results


def copy_and_compare(seed_model, compiled, m):
    """Copy the seed model's weights into the compiled one (the layers with weights, in order)
    and run both on random images: {output: (max abs, max rel) difference} for each LRN (the
    seed's Lambda(tf.nn.local_response_normalization) against our paper-convention layer), for
    fc7 and for the final probabilities; "lrn1_alpha_over_n" plants PyTorch's convention."""
    sources = [layer for layer in seed_model.layers if layer.weights]
    targets = [layer for layer in compiled.layers if layer.weights]
    if len(sources) != len(targets):
        raise ValueError(f"{len(sources)} seed layers with weights, {len(targets)} compiled")
    for source, target in zip(sources, targets, strict=True):
        target.set_weights(source.get_weights())
    rng = np.random.default_rng(conform.SEED)
    x = rng.uniform(0, 1, (conform.BATCH, *m.INPUT_SHAPE)).astype(np.float32)

    def outputs(model, layers):
        probe = keras.Model(model.inputs, [layer.output for layer in layers])
        values = probe(x, training=False)
        return [np.asarray(v) for v in (values if len(layers) > 1 else [values])]

    lambdas = [layer for layer in seed_model.layers if isinstance(layer, keras.layers.Lambda)]
    lrns = [compiled.get_layer(f"{n}.lrn") for n in ("conv1", "conv2")]
    seed_conv1 = [layer for layer in seed_model.layers if isinstance(layer, keras.layers.Conv2D)]
    seed_lrn, our_lrn = outputs(seed_model, lambdas), outputs(compiled, lrns)
    seed_fc7 = outputs(seed_model, [seed_model.layers[-2]])[0]  # the dropout after fc7's dense
    our_fc7 = outputs(compiled, [compiled.get_layer("fc7.dropout")])[0]
    conv1 = outputs(seed_model, seed_conv1[:1])[0]
    torch_style = sys.modules["layers"].LocalResponseNorm(11, alpha=1 / 11, beta=0.5, k=1.0)
    return {
        "lrn1": conform.diff(our_lrn[0], seed_lrn[0]),
        "lrn2": conform.diff(our_lrn[1], seed_lrn[1]),
        "fc7": conform.diff(our_fc7, seed_fc7),
        "probabilities": conform.diff(
            np.asarray(m.predict(compiled, x)), np.asarray(seed_model(x, training=False))
        ),
        "lrn1_alpha_over_n": conform.diff(np.asarray(torch_style(conv1)), seed_lrn[0]),
    }


def main(job):
    for task in json.loads(Path(job).read_text()):
        work = {"infer": infer, "train": train, "seeds": seeds, "strict": strict}[task["kind"]]
        conform.run_task("keras", task, work)


if __name__ == "__main__":
    main(sys.argv[1])
