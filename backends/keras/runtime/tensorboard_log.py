"""The Keras trainer's run log: TensorBoard event files (tf.summary) in OUT/tensorboard,
--wandb and --mlflow (run_logging.py); training points read with the checkpoints."""

import time

import tensorflow as tf

# the runtime beside this file (isort: split keeps one order wherever ruff runs)
# isort: split
from run_logging import TENSORBOARD_DIR, RunLog, open_sinks, warn


class TensorBoardSink:
    """A tf.summary file writer into OUT/tensorboard; events of an earlier run after the
    start step (written after its last checkpoint) are purged from TensorBoard's view, as
    SummaryWriter(purge_step=) does in PyTorch."""

    def __init__(self, folder, step):
        """A new event file in folder, continuing after global step `step`."""
        self.writer = tf.summary.create_file_writer(str(folder))
        start = tf.compat.v1.SessionLog(status=tf.compat.v1.SessionLog.START)
        event = tf.compat.v1.Event(
            step=step + 1, wall_time=time.time(), session_log=start
        )
        # tf.summary has no call for a session log: the op its import_event runs (which
        # reads the writer's _resource the same way)
        tf.raw_ops.ImportEvent(
            writer=self.writer._resource,
            event=event.SerializeToString(),
        )

    def graph(self, net):
        """The model's inference graph (a tf.function of one batch); a warning where
        tracing fails."""
        shape = (1, *net.inputs[0].shape[1:])
        forward = tf.function(lambda x: net(x, training=False))
        try:
            traced = forward.get_concrete_function(
                tf.TensorSpec(shape, net.inputs[0].dtype)
            )
            with self.writer.as_default():
                tf.summary.graph(traced.graph)
        except Exception as err:  # noqa: BLE001 - tracing fails in many ways
            why = str(err).strip().splitlines() or [type(err).__name__]
            warn(f"no model graph in TensorBoard (tf.function: {why[0][:200]})")

    def scalars(self, values, step):
        """One scalar summary per tag at step."""
        with self.writer.as_default(step=step):
            for tag, value in values.items():
                tf.summary.scalar(tag, value)

    def flush(self):
        """Write the buffered events to the file."""
        self.writer.flush()

    def close(self, status):
        """Flush and close the event file."""
        self.writer.close()


class DeferredRunLog(RunLog):
    """A RunLog whose training points are read from the device only with each checkpoint
    (flush) and at the epoch's end, which read it anyway: the step loop never waits for
    the device. Their learning rate is read then (the schedules change it only between
    epochs)."""

    def __init__(self, sinks, every, loss_sum=0.0, seen=0, step=0):
        """As RunLog."""
        super().__init__(sinks, every, loss_sum, seen, step)
        self.pending, self.lr = [], None

    def after_steps(self, loss_sum, seen, step, count, lr):
        """Keep a due point's loss sum (a device scalar) for later."""
        if self.due(step, count):
            self.pending.append((loss_sum, seen, step, time.perf_counter()))
            self.lr = lr

    def log_pending(self, lr):
        """Log the points kept so far."""
        pending, self.pending = self.pending, []
        for loss_sum, seen, step, now in pending:
            self.train_point(float(loss_sum), seen, step, now, lr)

    def flush(self):
        """Log the points kept so far, then flush the sinks."""
        if self.pending:
            self.log_pending(self.lr())
        super().flush()

    def epoch(self, row, loss_sum, seen, end):
        """Log the points kept so far, then as RunLog."""
        self.log_pending(row["lr"])
        super().epoch(row, loss_sum, seen, end)


def open_run_log(args, name, totals, step, net):
    """The run log, its windows starting at the epoch's totals (loss sum, images) and
    `step`; the model's graph goes to TensorBoard on a fresh start."""

    def tensorboard():
        board = TensorBoardSink(args.out / TENSORBOARD_DIR, step)
        if step == 0:
            board.graph(net)
        return board

    sinks = open_sinks(args, name, tensorboard)
    return DeferredRunLog(sinks, args.log_every, *totals, step)
