"""The PyTorch trainer's run log: TensorBoard event files (torch.utils.tensorboard) in
OUT/tensorboard, --wandb and --mlflow (run_logging.py); training points read without
waiting for the device."""

import sys
import time
import types
import warnings

import torch

# the runtime beside this file (isort: split keeps one order wherever ruff runs)
# isort: split
from run_logging import TENSORBOARD_DIR, RunLog, open_sinks, warn

# isort: split
from nosync import LaggedReadout


def without_tensorflow():
    """Make TensorBoard's writer use its own stub of TensorFlow's file API: it imports
    TensorFlow where that is installed, which crashes beside PyTorch on some systems."""
    stub = "tensorboard.compat.notf"  # the switch tensorboard.compat looks for
    sys.modules.setdefault(stub, types.ModuleType(stub))


class TensorBoardSink:
    """A SummaryWriter into OUT/tensorboard; events of an earlier run after the start
    step (written after its last checkpoint) are purged from TensorBoard's view."""

    def __init__(self, folder, step):
        """A new event file in folder, continuing after global step `step`."""
        without_tensorflow()
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(folder), purge_step=step + 1)

    def graph(self, net, example):
        """The model's graph (torch.jit.trace in eval mode); a warning where tracing
        fails."""
        try:
            with warnings.catch_warnings():  # the tracer's own warnings
                warnings.simplefilter("ignore")
                self.writer.add_graph(net, example)
        except Exception as err:  # noqa: BLE001 - the tracer fails in many ways
            why = str(err).strip().splitlines() or [type(err).__name__]
            warn(f"no model graph in TensorBoard (torch.jit.trace: {why[0][:200]})")

    def scalars(self, values, step):
        """One scalar event per tag at step."""
        for tag, value in values.items():
            self.writer.add_scalar(tag, value, step)

    def flush(self):
        """Write the queued events to the file."""
        self.writer.flush()

    def close(self, status):
        """Flush and close the event file."""
        self.writer.close()


class LaggedRunLog(RunLog):
    """A RunLog whose training points never wait for the device: when one is due, a
    host copy of the loss sum is queued; the point is logged once the copy arrived."""

    def __init__(self, sinks, every, loss_sum=0.0, seen=0, step=0):
        """As RunLog."""
        super().__init__(sinks, every, loss_sum, seen, step)
        self.readout, self.logged = LaggedReadout(), None

    def after_steps(self, loss_sum, seen, step, count, lr):
        """Queue a point when one is due; log the newest one that has arrived."""
        if not self.sinks:
            return
        if self.due(step, count):
            loss_sum = torch.as_tensor(loss_sum, dtype=torch.float64)
            self.readout.push(loss_sum, seen, step, time.perf_counter(), lr())
        arrived = self.readout.latest()
        if arrived is not self.logged:
            self.logged = arrived
            self.train_point(*arrived)

    def epoch(self, row, loss_sum, seen, end):
        """As RunLog, dropping a point still in flight (the epoch's covers it)."""
        self.readout, self.logged = LaggedReadout(), None
        super().epoch(row, loss_sum, seen, end)


def open_run_log(args, name, lead, totals, step, graph):
    """The run log of rank 0 (other ranks: one without sinks), its windows starting at
    the epoch's totals (loss sum, images) and `step`; graph() gives (model, example
    input) for TensorBoard on a fresh start."""
    if not lead:
        return LaggedRunLog([], args.log_every)

    def tensorboard():
        board = TensorBoardSink(args.out / TENSORBOARD_DIR, step)
        if step == 0:
            board.graph(*graph())
        return board

    sinks = open_sinks(args, name, tensorboard)
    return LaggedRunLog(sinks, args.log_every, *totals, step)
