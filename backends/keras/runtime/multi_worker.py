"""Several machines: the Keras trainer under tf.distribute.MultiWorkerMirroredStrategy.

Each worker process gets a TF_CONFIG naming the cluster and itself, e.g. for worker 1 of 2:
{"cluster": {"worker": ["node0:12345", "node1:12345"]}, "task": {"type": "worker",
"index": 1}}. Worker 0 is the chief. --batch-size stays the global batch: each epoch's
order is the one of (seed, epoch) and every global batch is split as PyTorch's
DistributedSampler splits it under torchrun (worker i takes items i, i + W, ...), then
across the worker's replicas. Every worker validates the whole batches and evaluates its
part of them. Only the chief writes OUT (checkpoint, metrics.csv, metrics.png, TensorBoard,
--wandb, --mlflow); the others write their metrics into a temporary folder removed at exit
and read --resume's checkpoint from OUT (a shared folder, or a copy of the chief's).
A Ctrl-C on any worker stops every worker after the same step (any_asked).
Without TF_CONFIG, or with one worker in it, nothing changes.
"""

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import tensorflow as tf

# the runtime beside this file (isort: split keeps one order wherever ruff runs)
# isort: split
from trainer_args import UsageError

# isort: split
from feed import distribute, replica_parts

EXAMPLE = '{"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker", "index": I}}'


def is_address(text):
    """Whether text is a "host:port" address (port 1-65535)."""
    if not isinstance(text, str):
        return False
    host, _, port = text.rpartition(":")
    return bool(host) and port.isdigit() and 0 < int(port) < 65536


def read_tf_config(text):
    """(worker addresses, this worker's index) of a TF_CONFIG text; a UsageError naming
    what is wrong otherwise."""
    try:
        config = json.loads(text)
    except (ValueError, RecursionError) as err:
        raise UsageError(f"TF_CONFIG: not JSON ({err}); expected {EXAMPLE}") from None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    if not isinstance(cluster, dict):
        raise UsageError(f'TF_CONFIG: no "cluster" object; expected {EXAMPLE}')
    others = sorted(set(cluster) - {"worker"})
    if others:
        raise UsageError(
            f"TF_CONFIG: cluster job(s) {', '.join(map(repr, others))} are not "
            'supported: list every process under "worker" (worker 0 is the chief)'
        )
    workers = cluster.get("worker")
    if not isinstance(workers, list) or not workers:
        raise UsageError('TF_CONFIG: cluster.worker must be a list of "host:port"')
    bad = [w for w in workers if not is_address(w)]
    if bad:
        raise UsageError(f'TF_CONFIG: {bad[0]!r} in cluster.worker is not "host:port"')
    if len(set(workers)) < len(workers):
        raise UsageError("TF_CONFIG: cluster.worker names an address twice")
    task = config.get("task")
    if not isinstance(task, dict) or task.get("type") != "worker":
        raise UsageError('TF_CONFIG: task.type must be "worker"')
    index = task.get("index")
    if type(index) is not int or not 0 <= index < len(workers):
        raise UsageError(
            f"TF_CONFIG: task.index must be an integer from 0 to {len(workers) - 1}"
        )
    return workers, index


class Cluster:
    """The workers of a run and this process's place among them (one: a local run)."""

    def __init__(self, workers=("local",), index=0):
        """workers: their addresses; index: this worker's (0 is the chief)."""
        self.workers, self.index = list(workers), index
        self.count, self.chief = len(self.workers), index == 0
        self.scratch = None  # a non-chief's temporary OUT (removed at exit)
        self._agree = None  # any_asked's all-reduce, traced on first use

    def take_outputs(self, args, checkpoint):
        """A non-chief: --resume reads OUT's checkpoint, and its own outputs go to a
        temporary folder without TensorBoard, --wandb or --mlflow."""
        if self.chief:
            return
        if args.resume == "":
            args.resume = str(args.out / checkpoint)
            if not Path(args.resume).is_file():  # told before joining, not after
                raise UsageError(
                    f"{args.resume}: worker {self.index} finds no checkpoint; --resume "
                    "reads the chief's OUT, so put OUT on a folder every worker sees "
                    "(or copy the chief's checkpoint to that path)"
                )
        self.scratch = tempfile.TemporaryDirectory(prefix=f"worker{self.index}-")
        args.out = Path(self.scratch.name)
        args.tensorboard = args.wandb = args.mlflow = False

    def strategy(self, devices):
        """MultiWorkerMirroredStrategy over the workers, this worker's replicas on
        `devices` (GPUs, or the one CPU)."""
        if len(devices) > 1 and not devices[0].startswith("/gpu"):
            raise UsageError(
                f"--devices {len(devices)}: a worker of a TF_CONFIG cluster mirrors over "
                "its GPUs only; on the CPU start one worker per replica"
            )
        kind = "GPU" if devices[0].startswith("/gpu") else None
        if kind:
            gpus = tf.config.list_physical_devices("GPU")
            tf.config.set_visible_devices(gpus[: len(devices)], "GPU")
        resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
            tf.train.ClusterSpec({"worker": self.workers}),
            task_type="worker",
            task_id=self.index,
            num_accelerators={"GPU": len(devices)} if kind else {},
            rpc_layer="grpc",
        )
        return tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=resolver)

    def check_batch(self, per_step, local):
        """Refuse a training step that does not split into the workers' equal parts of
        at least `local` (this worker's replicas) images each."""
        if self.count > 1 and (per_step % self.count or per_step < self.count * local):
            raise UsageError(
                f"--batch-size {per_step}: a training step must split into {self.count} "
                f"equal parts (the TF_CONFIG workers) of at least {local} image(s)"
            )

    def share(self, order, batch):
        """(this worker's items of `order`, its batch size): of each global batch of
        `order`, the items index, index + count, ... (DistributedSampler's split)."""
        per_step = min(batch, len(order))
        rows = np.asarray(order).reshape(-1, per_step)
        return rows[:, self.index :: self.count].reshape(-1), per_step // self.count

    def any_asked(self, strategy, requested):
        """Whether this worker's Ctrl-C or, on several workers, any worker's asks to
        stop: one small all-reduce that every worker makes at the same point of its
        loop, so all stop after the same step (one alone would leave the others waiting
        in the next step's collectives)."""
        if self.count == 1:
            return requested
        if self._agree is None:

            @tf.function
            def agree(flag):
                per_replica = strategy.run(tf.identity, args=(flag,))
                return strategy.reduce("sum", per_replica, axis=None)

            self._agree = agree
        return bool(self._agree(tf.constant(float(requested))).numpy() > 0)

    def distribute(self, strategy, batches, whole=False):
        """This worker's batches fed to its replicas: split across them, or with
        whole=True (global batches, as in validation) its parts of each."""
        if self.count == 1:
            return distribute(strategy, batches)
        total = strategy.num_replicas_in_sync
        local = total // self.count
        if whole:
            first = self.index * local
            parts = batches.flat_map(
                lambda *batch: replica_parts(total)(*batch).skip(first).take(local)
            )
        else:
            parts = batches.flat_map(replica_parts(local))
        return strategy.distribute_datasets_from_function(lambda context: parts)


def worker_cluster(args, checkpoint):
    """The Cluster that $TF_CONFIG names (one local worker without it), its batch
    checked and the flags of a non-chief pointed away from OUT."""
    text = os.environ.get("TF_CONFIG", "").strip()
    cluster = Cluster(*read_tf_config(text)) if text else Cluster()
    if cluster.count > 1:
        cluster.check_batch(args.batch_size, args.devices)  # before joining the others
        cluster.take_outputs(args, checkpoint)
    return cluster
