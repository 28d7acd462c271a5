"""Runs under torchrun on one or several machines: resuming after an elastic restart
and at another world size.

The data order of an epoch is a function of (seed, epoch) alone: one permutation of the
training set, of which rank r of W takes every W-th sample from r on. Step s of an epoch
reads samples [s * B, (s + 1) * B) of the permutation for a global batch B at any W, so a
checkpoint's step count within the epoch (batches_done) is a position in it that every
world size continues from, provided B stays the same.
"""

import os

import torch
import torch.distributed as dist

# the runtime beside this file (isort: split keeps one order wherever ruff runs)
# isort: split
from trainer_args import UsageError, is_count


def restart_count():
    """How often this node's torchrun agent has restarted its workers after a failure
    (--max-restarts); 0 outside torchrun."""
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))


def restarted(world, device):
    """Whether torchrun restarted the worker group: any rank's restart count is above 0
    (each agent counts only the failures of its own workers; all ranks must call this)."""
    count = torch.tensor([restart_count()], device=device)
    if world > 1:
        dist.all_reduce(count, op=dist.ReduceOp.MAX)
    return count.item() > 0


def resume_after_restart(args, checkpoint, world, device):
    """After a torchrun restart, continue from OUT's own checkpoint (the restarted
    workers run the first command line again); with none written yet, start over."""
    if restarted(world, device) and (args.out / checkpoint).is_file():
        args.resume = ""


def store_warning():
    """A one-line warning for restarts over several nodes through the rendezvous's
    shared store, where the restarted ranks meet stale addresses (None otherwise)."""
    shared = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"
    nodes = int(os.environ.get("GROUP_WORLD_SIZE", "1"))
    restarts = int(os.environ.get("TORCHELASTIC_MAX_RESTARTS", "0"))
    if not (shared and nodes > 1 and restarts > 0):
        return None
    return (
        "warning: torchrun --max-restarts on several nodes: restarted workers may fail "
        "to connect; export TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1 before torchrun"
    )


def saved_batch(ckpt):
    """The global batch a checkpoint was trained with; None where it does not say."""
    args = ckpt.get("args")
    batch = args.get("batch_size") if isinstance(args, dict) else None
    return batch if is_count(batch) and batch > 0 else None


def batch_change(ckpt, batch_size, path):
    """A one-line warning when a checkpoint saved between epochs continues at another
    global batch (None when it is the same or unknown); UsageError inside an epoch,
    where the position is counted in batches of the saved size."""
    saved = saved_batch(ckpt)
    if saved is None or saved == batch_size:
        return None
    if ckpt["state"]["batches_done"]:
        raise UsageError(
            f"{path}: saved inside an epoch at global batch {saved}; resume with "
            f"--batch-size {saved} (or from a checkpoint at an epoch's end)"
        )
    return (
        f"warning: {path}: trained at global batch {saved}, continuing at "
        f"{batch_size} (steps per epoch and the schedule's steps change with it)"
    )
