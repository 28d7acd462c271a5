"""Host-side bookkeeping that never waits for the device: a lagged readout of a device
scalar and the ranks' agreement on Ctrl-C over a CPU (gloo) group.

Host values are read with .numpy(), which only works on host tensors: a device tensor
cannot be read here by mistake (that would wait for the device).
"""

import torch
import torch.distributed as dist


def copies_queued(devices):
    """Events marking the work queued so far on each CUDA device of devices (CPU work is
    done when queued, so CPU devices need none)."""
    events = []
    for device in dict.fromkeys(devices):
        if device.type == "cuda":
            event = torch.cuda.Event()
            event.record(torch.cuda.current_stream(device))
            events.append(event)
    return events


class LaggedReadout:
    """The latest value of a device tensor that has reached the host: push() queues a copy
    (unless one is in flight), latest() returns the newest arrived, never waiting."""

    def __init__(self):
        """Nothing read yet."""
        self.pending, self.value = None, None

    def push(self, tensor, *extra):
        """Queue a host copy of tensor (and keep extra host values beside it)."""
        self.harvest()
        if self.pending is None:
            host = tensor.detach().to("cpu", non_blocking=True, copy=True)
            self.pending = (host, extra, copies_queued([tensor.device]))

    def harvest(self):
        """Take the pending copy if it has arrived."""
        if self.pending is not None and all(e.query() for e in self.pending[2]):
            host, extra, _ = self.pending
            self.value, self.pending = (host.numpy().tolist(), *extra), None

    def latest(self):
        """(value, *extra) of the newest copy that arrived; None before the first."""
        self.harvest()
        return self.value


class StopAgreement:
    """Ctrl-C agreed by all ranks at the same step without a device sync: every `every`
    steps each rank starts an all_reduce (MAX) of its flag over a gloo group and reads the
    one it started `every` steps before (long arrived)."""

    def __init__(self, world, every):
        """A gloo group beside the default one under torchrun (all ranks construct it)."""
        self.world, self.every, self.pending = world, every, None
        self.group = dist.new_group(backend="gloo") if world > 1 else None

    def start(self, requested):
        """Start one agreement; returns (work, flag)."""
        flag = torch.tensor([int(requested)], dtype=torch.int32)
        work = dist.all_reduce(
            flag, op=dist.ReduceOp.MAX, group=self.group, async_op=True
        )
        return work, flag

    def finish(self):
        """Whether the pending agreement (if any) says stop, waiting for it."""
        if self.pending is None:
            return False
        work, flag = self.pending
        self.pending = None
        work.wait()
        return bool(flag.numpy()[0])

    def at_step(self, requested, step):
        """Whether to stop after this step: one rank's flag alone without torchrun, else
        the agreement of `every` steps ago (every rank decides at the same step)."""
        if self.world == 1:
            return requested
        if step % self.every:
            return False
        agreed = self.finish()
        self.pending = self.start(requested)
        return agreed

    def now(self, requested):
        """A blocking agreement (between epochs), after the pending one."""
        if self.world == 1:
            return requested
        agreed = self.finish()
        self.pending = self.start(requested)
        return self.finish() or agreed
