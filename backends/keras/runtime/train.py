"""Train the sibling model.py with Keras 3 on TensorFlow: `python train.py --help`.

Flags and outputs match the PyTorch trainer. Data parallel: `--devices N` mirrors the model over
N GPUs with tf.distribute.MirroredStrategy (without GPUs, over N logical CPU devices, which is
only good for testing); --batch-size is the global batch, split across the replicas.
Several machines: a TF_CONFIG naming several workers (multi_worker.py) runs the same rules
under MultiWorkerMirroredStrategy, worker 0 writing OUT.

Reproducible and resumable: the data order is a function of (seed, epoch), a sample's
augmentation of (seed, epoch, index), and dropout draws from seed generators whose state is saved
with the weights. OUT/last.npz is written atomically after every epoch, every --save-every steps
and on Ctrl-C, so --resume after a crash or a kill continues exactly where it left off (bit for
bit on the CPU). It holds only numbers (its metadata as JSON bytes) and loads without pickle,
its .npz headers checked first (npzcheck); the run folder is handled as in the PyTorch trainer.
"""

import json
import math
import signal
import sys
import time
from contextlib import nullcontext

import keras
import numpy as np

# the runtime beside this file (isort: split keeps one order wherever ruff runs)
# isort: split
import tensorflow_only  # noqa: F401  exits 2 before TensorFlow loads on another backend

# isort: split
import tensorflow as tf

# isort: split
import model as spec
from augment import build_pipeline, mix_entries
from ema_rule import ema_decay, updates_after, warmup_epochs
from imagefolder import DataError
from metrics_log import MetricsLog, atomic_write
from npzcheck import printable
from portable import WeightsError, read_npz
from run_logging import add_logging_flags, check_packages
from start_summary import summary_text
from trainer_args import (
    Interrupted,
    UsageError,
    check_checkpoint,
    check_trainable,
    claim_run_folder,
    common_parser,
    datasets,
    device_count,
    error_line,
    is_count,
    is_text_model,
    parameters_text,
    resume_path,
    val_batch_limit,
    val_note,
)
from warm_start import add_init_flags, init_request, warm_start

# isort: split
from ema import WeightAverage  # beside this file in the repository, too
from fast_defaults import add_fast_flags, modes_text, resolve_fast_defaults
from feed import Feed
from multi_worker import worker_cluster
from progress import StepProgress
from tensorboard_log import open_run_log
from weights import load_arrays, portable_variables

CHECKPOINT = "last.npz"
META = "meta"  # the checkpoint's array of JSON bytes: position, schedule, metrics


def parse_args(argv=None):
    """Command-line flags; defaults come from the spec's train section."""
    p = common_parser(spec, CHECKPOINT)
    p.add_argument(
        "--devices",
        type=device_count,
        default=1,
        help="data-parallel replicas (mirrored)",
    )
    add_fast_flags(p)
    p.add_argument(
        "--channels-last", action="store_true", help="accepted; Keras always is"
    )
    add_init_flags(p)
    add_logging_flags(p)
    return p.parse_args(argv)


def replica_devices(flag, count):
    """The device names for --device and --devices, splitting the CPU when it must."""
    gpus = tf.config.list_physical_devices("GPU")
    if flag == "cuda" and not gpus:
        raise UsageError(
            "--device cuda: no GPU is visible to TensorFlow; use --device cpu"
        )
    if flag == "cpu" and gpus:
        tf.config.set_visible_devices([], "GPU")
        gpus = []
    if gpus:
        if count > len(gpus):
            raise UsageError(f"--devices {count}: only {len(gpus)} GPU(s) visible")
        return [f"/gpu:{i}" for i in range(count)]
    if count > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        logical = [tf.config.LogicalDeviceConfiguration() for _ in range(count)]
        tf.config.set_logical_device_configuration(cpu, logical)
    return [f"/cpu:{i}" for i in range(count)]


def make_strategy(devices):
    """MirroredStrategy over several devices, OneDeviceStrategy for one."""
    if len(devices) == 1:
        return tf.distribute.OneDeviceStrategy(devices[0])
    return tf.distribute.MirroredStrategy(devices)


def token_ids(ids, rng):
    """A text's token ids as the model's int32 input (the pipeline of a text model)."""
    return ids.astype("int32")


def xla_parts(strategy, jit):
    """(wrap a replica's part, XLA around the whole step) for jit: the whole step on one
    replica; with several, each replica's part (tf.distribute's cross-replica calls, the
    all-reduce and the optimizer's update, cannot run inside XLA), traced anew for each
    replica so that it reads that replica's copy of the variables."""
    one = strategy.num_replicas_in_sync == 1

    def wrap(part):
        """part, or an XLA-compiled function of it made in this replica's trace."""
        return tf.function(part, jit_compile=True) if jit and not one else part

    return wrap, jit and one


def make_train_step(strategy, net, optimizer, smoothing, jit):
    """A compiled step: forward, mean cross-entropy over the global batch, one update;
    jit: XLA-compiled (with several replicas, each one's forward and backward)."""
    classes = spec.NUM_CLASSES
    xla_replica, jit_step = xla_parts(strategy, jit)

    def gradients(x, y, count):
        with tf.GradientTape() as tape:
            logits = tf.cast(net(x, training=True), tf.float32)
            losses = keras.losses.categorical_crossentropy(
                y
                if y.shape.rank == 2
                else tf.one_hot(y, classes),  # mixed: soft targets
                logits,
                from_logits=True,
                label_smoothing=smoothing,
            )
            scaled = optimizer.scale_loss(tf.reduce_sum(losses) / count)
        return tape.gradient(scaled, net.trainable_variables), tf.reduce_sum(losses)

    def replica_step(x, y):
        context = tf.distribute.get_replica_context()
        count = context.all_reduce("sum", tf.cast(tf.shape(y)[0], tf.float32))
        grads, loss = xla_replica(gradients)(x, y, count)
        optimizer.apply(grads, net.trainable_variables)
        return loss

    @tf.function(reduce_retracing=True, jit_compile=jit_step)
    def step(batch):
        return strategy.reduce("sum", strategy.run(replica_step, batch), axis=None)

    return step


def make_train_steps(step):
    """A tf.function running `count` steps on the next batches of an iterator, one after the
    other as separate calls would: returns `total` plus their summed losses (float64)."""

    @tf.function(reduce_retracing=True)
    def steps(batches, count, total):
        for _ in tf.range(count):
            total += tf.cast(step(next(batches)), tf.float64)
        return total

    return steps


def steps_in_call(most, step, left_in_epoch, max_steps, every):
    """Steps in the next call from global step `step`: at most `most`, ending at the
    epoch's end, at --max-steps and at each multiple of the `every` counts (checkpoints,
    EMA updates: 0 for none)."""
    count = min(most, left_in_epoch)
    if max_steps is not None:
        count = min(count, max_steps - step)
    for period in every:
        count = min(count, period - step % period) if period else count
    return count


def padded(batch, count):
    """(x, y, weights) of a batch padded to at least count items with copies of its first
    item, weighted 0: every replica gets an image (an empty part breaks some TF kernels)."""
    x, y = batch
    size = tf.shape(y)[0]
    pick = tf.range(tf.maximum(size, count)) % size
    weights = tf.cast(tf.range(tf.size(pick)) < size, tf.float32)
    return tf.gather(x, pick), tf.gather(y, pick), weights


def make_eval_step(strategy, net, jit):
    """A compiled step: weighted summed loss (no smoothing), top-1 and top-5 hits of
    (x, y, weights); a 5-D batch of images holds crops; jit: XLA-compiled."""
    top = min(5, spec.NUM_CLASSES)
    xla_replica, jit_step = xla_parts(strategy, jit)

    def replica_sums(x, y, w):
        rank = len(spec.INPUT_SHAPE)  # of one input: 3 for images, 1 for token ids
        crops = x.shape[1] if len(x.shape) == rank + 2 else 1
        logits = net(tf.reshape(x, (-1, *x.shape[-rank:])), training=False)
        logp = tf.nn.log_softmax(tf.cast(logits, tf.float32))
        logp = tf.reshape(logp, (tf.shape(y)[0], crops, spec.NUM_CLASSES))
        logp = tf.reduce_logsumexp(logp, axis=1) - math.log(
            crops
        )  # log of the mean softmax
        hits = tf.math.top_k(logp, top).indices == y[:, None]
        loss = -tf.reduce_sum(w * tf.gather(logp, y, batch_dims=1))
        return (
            loss,
            tf.reduce_sum(w * tf.cast(hits[:, 0], tf.float32)),
            tf.reduce_sum(w * tf.cast(tf.reduce_any(hits, axis=1), tf.float32)),
        )

    @tf.function(reduce_retracing=True, jit_compile=jit_step)
    def step(batch):
        sums = strategy.run(lambda *part: xla_replica(replica_sums)(*part), batch)
        return tf.stack([strategy.reduce("sum", value, axis=None) for value in sums])

    return step


class StopFlag:
    """The first Ctrl-C asks for a checkpoint at the next step; a second one aborts."""

    def __init__(self):
        """Install the SIGINT handler."""
        self.requested = False
        signal.signal(signal.SIGINT, self.handle)

    def handle(self, signum, frame):
        """Record the request and restore the default handler."""
        self.requested = True
        signal.signal(signal.SIGINT, signal.default_int_handler)
        print(
            "\nCtrl-C: checkpointing after this step (Ctrl-C again aborts)",
            file=sys.stderr,
        )


def learned(entry):
    """Whether a portable tensor is a parameter (not a batch norm's running statistic)."""
    return not entry.name.endswith((".running_mean", ".running_var"))


def named_variables(net, optimizer):
    """(name, variable) of the model's and the optimizer's variables: model/00000, ..."""
    for prefix, variables in (
        ("model", net.variables),
        ("optimizer", optimizer.variables),
    ):
        for i, variable in enumerate(variables):
            yield f"{prefix}/{i:05d}", variable


def variable_arrays(net, optimizer):
    """{"model/00000": array, ..., "optimizer/00000": array, ...} in variable order."""
    return {
        name: keras.ops.convert_to_numpy(variable)
        for name, variable in named_variables(net, optimizer)
    }


def assign_arrays(arrays, net, optimizer, path):
    """Assign variable_arrays() output back, checking every name, shape and dtype first."""
    variables = dict(named_variables(net, optimizer))
    for prefix in ("model", "optimizer"):
        ours = {n: v for n, v in variables.items() if n.startswith(f"{prefix}/")}
        saved = {n: a for n, a in arrays.items() if n.startswith(f"{prefix}/")}
        if {n: (a.shape, a.dtype) for n, a in saved.items()} != {
            n: (tuple(v.shape), np.dtype(v.dtype)) for n, v in ours.items()
        }:
            raise UsageError(
                f"{path}: the checkpoint's {prefix} variables do not match this {prefix} "
                "(another spec or optimizer, or a different --amp?)"
            )
    for name, variable in variables.items():
        variable.assign(arrays[name])


def read_checkpoint(path):
    """(arrays, meta) of a checkpoint written by Trainer.save(), read without pickle and
    only after the .npz's headers are checked (npzcheck)."""
    try:
        arrays = read_npz(path)
    except WeightsError as err:
        raise UsageError(str(err)) from None
    meta = arrays.pop(META, np.zeros(0, np.float32))
    try:
        if meta.dtype != np.uint8 or meta.ndim != 1:
            raise ValueError(f"no {META} array of JSON bytes")
        return arrays, json.loads(meta.tobytes().decode("utf-8"))
    except (ValueError, RecursionError) as err:
        raise UsageError(f"{path}: not a checkpoint of this trainer ({err})") from None


class Trainer:
    """One training run: model, optimizer, schedule, data and progress."""

    def __init__(self, args):
        """Build everything, restoring a checkpoint for --resume."""
        self.args, self.stop, self.stopped = args, StopFlag(), False
        check_trainable(spec)
        check_packages(args)
        self.init = init_request(args)
        self.cluster = worker_cluster(args, CHECKPOINT)  # TF_CONFIG's workers
        self.run_lock = claim_run_folder(args.out, CHECKPOINT)
        self.devices = replica_devices(args.device, args.devices)
        resolve_fast_defaults(args, self.devices)
        self.strategy = (
            make_strategy(self.devices)
            if self.cluster.count == 1
            else self.cluster.strategy(self.devices)
        )
        self.train_set, self.val_set, _ = datasets(spec, args, spec.INPUT_SHAPE[:2])
        per_step = min(args.batch_size, len(self.train_set))
        if per_step < len(self.devices):
            raise UsageError(
                f"--devices {len(self.devices)}: more replicas than the {per_step} images "
                "of a training step; use a larger --batch-size or fewer --devices"
            )
        self.cluster.check_batch(per_step, len(self.devices))
        self.train_data = self.loader(self.train_set, train=True)
        self.val_data = self.loader(self.val_set, train=False)
        self.state = {"epoch": 0, "batches_done": 0, "global_step": 0}
        self.loss_sum, self.seen = 0.0, 0
        self.log = MetricsLog(args.out)
        keras.utils.set_random_seed(args.seed)
        if args.policy is not None:
            keras.mixed_precision.set_dtype_policy(args.policy)
        self.build()
        resume = resume_path(args, CHECKPOINT)
        if resume is not None:
            self.restore(resume)
        self.logs = open_run_log(
            args,
            spec.MODEL_NAME,
            (self.loss_sum, self.seen),
            self.state["global_step"],
            self.net,
        )

    def loader(self, data, train):
        """A Feed with the spec's training or evaluation pipeline (token ids pass
        through as they are)."""
        seed, workers = self.args.seed, self.args.workers
        if is_text_model(spec):
            ids = tf.TensorSpec(spec.INPUT_SHAPE, tf.int32)
            return Feed(data, token_ids, seed, workers, ids)
        hw, channels = spec.INPUT_SHAPE[:2], spec.INPUT_SHAPE[2]
        tencrop = self.args.ten_crop and not train
        crops = (10,) if tencrop else ()
        images = tf.TensorSpec((*crops, *spec.INPUT_SHAPE), tf.float32)
        try:
            pipeline = build_pipeline(
                spec.TRAIN["augment"], hw, train, channels, tencrop=tencrop
            )
        except ValueError as err:
            raise UsageError(f"augment: {err}") from None
        return Feed(data, pipeline, seed, workers, images)

    def build(self):
        """Model, optimizer (loss-scaled under mixed_float16), schedule and compiled
        steps."""
        smoothing = spec.TRAIN["loss"].get("label_smoothing", 0.0)
        with self.strategy.scope():
            self.net = spec.build_model()
            if self.init is not None:
                self.start_from(self.init)
            self.optimizer = spec.build_optimizer(self.net, lr=self.args.lr)
            self.scheduler = spec.build_scheduler(self.optimizer)
            if self.args.policy == "mixed_float16":
                self.optimizer = keras.optimizers.LossScaleOptimizer(self.optimizer)
            self.optimizer.build(self.net.trainable_variables)
        jit = self.args.compile
        self.train_steps = make_train_steps(
            make_train_step(self.strategy, self.net, self.optimizer, smoothing, jit)
        )
        self.eval_step = make_eval_step(self.strategy, self.net, jit)
        ema = spec.TRAIN.get("ema")
        self.ema = None
        if ema is not None:
            decay = ema_decay(ema, self.args.batch_size, self.args.epochs)
            self.ema = WeightAverage(self.net, decay)

    def start_from(self, path):
        """Load --init's weights into the model, all but --fresh's (before the EMA copies
        it)."""
        expected = {e.name: e.shape for e in portable_variables(self.net)}
        frozen = spec.TRAIN.get("freeze", ())
        arrays, fresh, line = warm_start(path, expected, self.args.fresh, frozen)
        load_arrays(self.net, arrays, str(path), keep=fresh)
        print(line, flush=True)

    def update_ema(self, epoch):
        """Fold the weights into the EMA after the steps the spec says."""
        ema = spec.TRAIN.get("ema")
        if ema is not None and updates_after(self.state["global_step"], ema):
            self.ema.update(epoch < warmup_epochs(spec.TRAIN))

    def steps_per_epoch(self):
        """Optimizer steps in a full epoch (the last partial batch is dropped)."""
        n = len(self.train_set)
        return n // self.args.batch_size if n >= self.args.batch_size else 1

    def out_of_steps(self):
        """Whether --max-steps is used up."""
        limit = self.args.max_steps
        return limit is not None and self.state["global_step"] >= limit

    def epoch_order(self, epoch):
        """This epoch's training items: a permutation drawn from (seed, epoch), full batches."""
        order = np.random.default_rng([self.args.seed, 2, epoch]).permutation(
            len(self.train_set)
        )
        return order[: self.steps_per_epoch() * self.args.batch_size]

    def train_epoch(self, epoch):
        """Train from the saved position to the epoch's end, --max-steps or Ctrl-C."""
        st, batch = self.state, self.args.batch_size
        bar = self.progress_bar(
            self.steps_per_epoch(),
            f"epoch {epoch + 1}/{self.args.epochs}",
            {"loss": self.mean_loss, "lr": self.lr},
        )
        order = self.epoch_order(epoch)
        mix = (spec.NUM_CLASSES, mix_entries(spec.TRAIN["augment"]))
        shard, size = self.cluster.share(order, batch)  # this worker's items
        batches = self.train_data.dataset(epoch, shard, size, st["batches_done"], mix)
        batches = iter(self.cluster.distribute(self.strategy, batches))
        per_step = min(batch, len(order))  # full batches, or one of all items
        while not self.stopping():
            count = self.steps_in_call()
            if count <= 0:  # the epoch's end or --max-steps
                break
            with self.train_data.reported():
                self.loss_sum = self.train_steps(
                    batches,
                    tf.constant(count),
                    tf.convert_to_tensor(self.loss_sum, tf.float64),
                )  # on the device: read when printed
            self.seen += count * per_step
            st["batches_done"] += count
            st["global_step"] += count
            self.update_ema(epoch)
            self.logs.after_steps(
                self.loss_sum, self.seen, st["global_step"], count, self.lr
            )
            bar.update(st["batches_done"])
            if self.args.save_every and st["global_step"] % self.args.save_every == 0:
                self.save()
        bar.close()

    def stopping(self):
        """Whether to stop before the next call: a Ctrl-C here or, on several workers,
        on any of them (all workers decide at the same step)."""
        self.stopped = self.cluster.any_asked(self.strategy, self.stop.requested)
        return self.stopped

    def steps_in_call(self):
        """The next call's steps: --steps-per-call, fewer where the epoch's end,
        --max-steps, a --save-every checkpoint or an EMA update comes first (0 or less at
        the epoch's end or past --max-steps)."""
        ema = spec.TRAIN.get("ema")
        return steps_in_call(
            self.args.steps_per_call,
            self.state["global_step"],
            self.steps_per_epoch() - self.state["batches_done"],
            self.args.max_steps,
            (self.args.save_every, ema["every"] if ema is not None else 0),
        )

    def progress_bar(self, total, desc, fields, unit="step", images=None):
        """The progress of a pass (Keras's Progbar; lines off a terminal), from the
        epoch's saved position for the training steps."""
        initial = self.state["batches_done"] if unit == "step" else 0
        return StepProgress(
            total,
            desc,
            fields,
            unit,
            self.args.batch_size if images is None else images,
            initial,
            every_s=self.args.progress_every,
        )

    def mean_loss(self):
        """The epoch's mean training loss so far (reads the device's running sum)."""
        return float(self.loss_sum) / max(self.seen, 1)

    def validate(self):
        """Validation loss (no label smoothing), top-1 and top-5 error over the val set (its
        first batches with --val-steps or --max-steps), of the EMA of the weights if the
        spec keeps one; val_images: the images they cover."""
        size = (
            max(1, self.args.batch_size // 10)
            if self.args.ten_crop
            else self.args.batch_size
        )
        totals = tf.zeros(3, tf.float64)  # summed on the device, read once
        replicas = self.strategy.num_replicas_in_sync
        limit = val_batch_limit(self.args)
        count = (
            len(self.val_set) if limit is None else min(len(self.val_set), limit * size)
        )
        batches = self.val_data.dataset(0, np.arange(count), size)
        batches = batches.map(lambda x, y: padded((x, y), replicas))
        bar = self.progress_bar(-(-count // size), "validate", {}, "batch", size)
        with self.ema.swapped_in() if self.ema is not None else nullcontext():
            parts_of = self.cluster.distribute(self.strategy, batches, whole=True)
            for done, parts in enumerate(self.val_data.checked(parts_of), 1):
                totals += tf.cast(self.eval_step(parts), tf.float64)
                bar.update(done)
        bar.close()
        loss, top1, top5 = totals.numpy() / count
        return {
            "val_loss": loss,
            "val_error": 1 - top1,
            "val_top5_error": 1 - top5,
            "val_images": count,
        }

    def lr(self):
        """The optimizer's current learning rate (a float32 variable: 7 significant digits)."""
        return float(
            f"{float(keras.ops.convert_to_numpy(self.optimizer.learning_rate)):.7g}"
        )

    def save(self):
        """Write OUT/last.npz (weights, optimizer, schedule, position, metrics) and metrics.csv."""
        if not self.cluster.chief:  # the chief (TF_CONFIG's worker 0) writes the run
            return
        meta = {
            "model_name": spec.MODEL_NAME,
            "state": self.state,
            "train_loss_sum": float(self.loss_sum),
            "train_seen": self.seen,
            "scheduler": self.scheduler.state_dict()
            if self.scheduler is not None
            else None,
            "metrics": self.log.rows,
            "seed": self.args.seed,
            "ema_updates": self.ema.n_averaged if self.ema is not None else None,
        }
        arrays = {
            **variable_arrays(self.net, self.optimizer),
            **(self.ema.arrays() if self.ema is not None else {}),
            META: np.frombuffer(json.dumps(meta).encode("utf-8"), np.uint8),
        }
        atomic_write(self.args.out / CHECKPOINT, lambda f: np.savez(f, **arrays))
        self.log.write()
        self.logs.flush()

    def restore(self, path):
        """Load a checkpoint written by save(), checking its structure before using it."""
        arrays, meta = read_checkpoint(path)
        sched = self.scheduler.state_dict() if self.scheduler is not None else None
        check_checkpoint(meta, path, spec.MODEL_NAME, ("seed",), sched)
        if not is_count(meta["seed"]):
            raise UsageError(f"{path}: not a checkpoint of this trainer (a bad seed)")
        if meta["seed"] != self.args.seed:
            raise UsageError(
                f"{path}: written with --seed {meta['seed']}, not {self.args.seed}"
            )
        assign_arrays(arrays, self.net, self.optimizer, path)
        self.restore_ema(arrays, meta, path)
        if self.scheduler is not None:
            self.scheduler.load_state_dict(meta["scheduler"])
        self.state = meta["state"]
        self.loss_sum, self.seen = meta["train_loss_sum"], meta["train_seen"]
        self.log = MetricsLog(self.args.out, meta["metrics"])
        self.log.write()

    def restore_ema(self, arrays, meta, path):
        """Load the checkpoint's EMA of the weights, checked against this spec's."""
        updates = meta.get("ema_updates")
        if self.ema is None and updates is None:
            return
        if self.ema is None or not is_count(updates):
            raise UsageError(f"{path}: not a checkpoint of this trainer (its EMA)")
        if not self.ema.load(arrays, updates):
            raise UsageError(f"{path}: the checkpoint's EMA does not match this model")

    def end_epoch(self, epoch, train_seconds, images, start):
        """Validate, step the schedule, log and checkpoint a finished epoch."""
        metrics = {"train_loss": self.mean_loss(), **self.validate()}
        lr = self.lr()
        if self.scheduler is not None:
            self.scheduler.step_epoch(metrics)
        row = dict(epoch=epoch + 1, step=self.state["global_step"], lr=lr, **metrics)
        row.update(images_per_s=images / max(train_seconds, 1e-9))
        row.update(seconds=time.perf_counter() - start)
        self.log.append(**row)
        self.logs.epoch(row, self.loss_sum, self.seen, start + train_seconds)
        self.state.update(epoch=epoch + 1, batches_done=0)
        self.loss_sum, self.seen = 0.0, 0
        self.save()
        print(
            f"epoch {epoch + 1}/{self.args.epochs}  step {row['step']}  lr {lr:.4g}  "
            f"train_loss {row['train_loss']:.4f}  val_loss {row['val_loss']:.4f}  "
            f"top-1 err {100 * row['val_error']:.2f}%  "
            f"top-5 err {100 * row['val_top5_error']:.2f}%  "
            f"{row['images_per_s']:.0f} img/s  {row['seconds']:.1f}s"
            + val_note(row, len(self.val_set)),
            flush=True,
        )

    def run_epoch(self, epoch):
        """Train and (unless interrupted mid-epoch) finish one epoch."""
        start = time.perf_counter()
        seen_before = self.seen
        self.train_epoch(epoch)
        train_seconds = time.perf_counter() - start
        if self.stopped:  # as every worker decided at the same step
            self.save()
            raise Interrupted(
                f"saved {printable(str(self.args.out / CHECKPOINT))}"
                if self.cluster.chief
                else f"stopped with the others; worker 0 saved {CHECKPOINT}"
            )
        self.end_epoch(epoch, train_seconds, self.seen - seen_before, start)

    def header(self):
        """Describe the run."""
        trained = sum(math.prod(v.shape) for v in self.net.trainable_variables)
        params = parameters_text(
            sum(math.prod(e.shape) for e in portable_variables(self.net) if learned(e))
            if spec.TRAIN.get("freeze")
            else trained,
            trained,
        )
        data = self.args.data
        kind = "text" if is_text_model(spec) else "ImageFolder"
        items = "texts" if is_text_model(spec) else "images"
        source = f"{kind} {printable(str(data))}" if data else "synthetic"
        replicas = self.strategy.num_replicas_in_sync
        print(
            f"{spec.MODEL_NAME} ({spec.SPEC}): {params}; {len(self.train_set)} train "
            f"/ {len(self.val_set)} val {items} ({source}); {replicas} replica(s) on "
            f"{', '.join(self.devices)}{modes_text(self.args)}; global batch "
            f"{self.args.batch_size}; from epoch "
            f"{self.state['epoch'] + 1}, step {self.state['global_step']}",
            flush=True,
        )
        print(
            summary_text(self.args.batch_size, replicas, spec.NUM_CLASSES), flush=True
        )

    def run(self):
        """Train to --epochs or --max-steps; returns the model."""
        self.header()
        try:
            while self.state["epoch"] < self.args.epochs and not self.out_of_steps():
                self.run_epoch(self.state["epoch"])
        finally:
            self.log.write()
            self.log.plot()
        return self.net


def train(args):
    """Run a training; returns the trained model."""
    trainer = Trainer(args)
    with trainer.logs:  # closed also on Ctrl-C and errors
        return trainer.run()


def main(argv=None):
    """Entry point: exit 0 when done, 2 on bad data or flags, 130 on Ctrl-C."""
    args = parse_args(argv)
    try:
        train(args)
    except (DataError, UsageError) as err:
        print(f"error: {error_line(err)}", file=sys.stderr)
        return 2
    except Interrupted as stop:
        print(f"interrupted: {stop}; continue with --resume", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("aborted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
