"""Sharded training (--fsdp): the model's statements and block calls, then the whole
model, under torch.distributed.fsdp.fully_shard (FSDP2); checkpoints through
torch.distributed.checkpoint (DCP) into OUT/sharded-STEP-K; the portable weights
gathered on rank 0 into OUT/weights.npz at the end.

`python sharding.py OUT/last.pt FILE.npz` converts a sharded checkpoint into portable
weights in one process (DCP reads the shards of any world size).
"""

import logging
import math
import os
import re
import shutil
import sys
import warnings
from contextlib import contextmanager, nullcontext
from pathlib import Path

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint import FileSystemReader
from torch.distributed.checkpoint.api import CheckpointException
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_state_dict,
    set_state_dict,
)
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import FSDPModule, fully_shard

# the runtime beside this file (isort: split keeps one order wherever ruff runs)
# isort: split
from portable import write_npz
from trainer_args import UsageError

# isort: split
from weights import portable_state, save_weights

FOLDER = re.compile(r"sharded-\d+-\d+")
WEIGHTS = "weights.npz"


def add_fsdp_flag(parser):
    """--fsdp: shard parameters, gradients and optimizer state over torchrun's processes."""
    parser.add_argument(
        "--fsdp",
        action="store_true",
        help="under torchrun: shard parameters, gradients and optimizer state over "
        "the processes (FSDP2); checkpoints in OUT/sharded-*, weights in OUT/weights.npz",
    )


def fsdp_problem(args, spec, world):
    """Why --fsdp cannot run with these flags and this model; None if it can."""
    if args.devices is not None:
        return "--fsdp does not combine with --devices (the two-tower split); use one"
    if args.sync_bn:
        return "--fsdp does not combine with --sync-bn (batch norm statistics stay per process)"
    if args.compile:
        return "--fsdp does not combine with --compile (not supported yet); drop one"
    if spec.TRAIN.get("ema") is not None:
        return (
            f"--fsdp: {spec.MODEL_NAME} keeps an EMA of the weights, which is not "
            "sharded yet; train it with DDP (torchrun without --fsdp)"
        )
    if world < 2:
        return (
            "--fsdp shards over torchrun's processes: run under "
            "torchrun --nproc_per_node N (N >= 2), or drop --fsdp"
        )
    return None


def check_fsdp(args, spec, world, device):
    """UsageError where --fsdp cannot run (flags, model, world size, fp16 loss scaling)."""
    if not args.fsdp:
        return
    problem = fsdp_problem(args, spec, world)
    fp16 = args.amp and device.type == "cuda" and not torch.cuda.is_bf16_supported()
    if problem is None and fp16:
        problem = (
            "--fsdp --amp needs a GPU with bf16 (fp16 loss scaling is not sharded)"
        )
    if problem is not None:
        raise UsageError(problem)


def has_parameters(module):
    """Whether the module holds any parameter (its own or its children's)."""
    return next(module.parameters(), None) is not None


def is_block_call(module):
    """Whether the module is a generated block (a class of model.py, not torch's)."""
    return not type(module).__module__.startswith("torch.")


def wrapping_units(net):
    """The modules sharded one by one: each statement with parameters, or the block calls
    of a statement that repeats blocks."""
    units = []
    for statement in net.children():
        if not has_parameters(statement):
            continue
        blocks = [
            c for c in statement.children() if is_block_call(c) and has_parameters(c)
        ]
        units += blocks or [statement]
    return units


def shard_model(net, world, device):
    """fully_shard each wrapping unit, then the root, over a mesh of the world on
    device's type (FSDP's default mesh takes the GPU even under --device cpu); returns
    the line to print."""
    mesh = init_device_mesh(device.type, (world,))
    units = wrapping_units(net)
    for unit in units:
        fully_shard(unit, mesh=mesh)
    fully_shard(net, mesh=mesh)
    return f"fsdp: {len(units)} units and the root sharded over {world} processes"


def traceable(spec, net, example):
    """(model, example) for TensorBoard's graph: net, or for a sharded net a fresh one on
    the CPU (tracing the sharded one on rank 0 alone would wait for the others)."""
    if not isinstance(net, FSDPModule):
        return net, example
    return spec.build_model(), example.cpu()


def extra_forwards(loader, limit):
    """Validation batches this rank runs fewer than rank 0 (which has the most images),
    each running at most `limit`."""
    count = len(loader.dataset)
    world = dist.get_world_size()
    most = math.ceil(math.ceil(count / world) / loader.batch_size)
    return min(most, limit) - min(len(loader), limit)


@torch.no_grad()
def even_out(net, loader, limit, example, autocast=nullcontext):
    """Run the forwards rank 0 runs and this rank does not (of at most `limit`): each
    one gathers every rank's shards, so all ranks must make the same number."""
    for _ in range(extra_forwards(loader, limit)):
        with autocast():
            net(example)


def gathered_arrays(net):
    """{portable name: CPU tensor} of the whole model, gathered on rank 0 (the other
    ranks get an empty dict); every rank must call this."""
    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    state = get_model_state_dict(net, options=options)
    return {n: t.float().numpy() for n, t in portable_state(state).items()}


@contextmanager
def quiet():
    """Silence DCP's warnings and log records (tracebacks of what it tries first)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.disable(logging.CRITICAL)
        try:
            yield
        finally:
            logging.disable(logging.NOTSET)


def fit_problem(model, saved):
    """What of `model` (a state dict) the saved tensors (DCP's metadata by name) do not
    fit; None if they all do."""
    for name, tensor in model.items():
        if not isinstance(tensor, torch.Tensor):
            continue
        meta = saved.get(f"model.{name}")
        if meta is None:
            return f"it has no {name}"
        size = getattr(meta, "size", None)
        if size is None or tuple(size) != tuple(tensor.shape):
            found = "not a tensor" if size is None else list(size)
            return f"{name} is {found} there, {list(tensor.shape)} in the model"
    return None


def read_shards(state, folder):
    """dcp.load state (in place) from folder; a one-line UsageError if the folder is
    missing, unfinished or damaged, or if its tensors do not fit state["model"]."""
    if not (folder / ".metadata").is_file():
        raise UsageError(f"{folder}: no sharded checkpoint there (no .metadata)")
    try:
        with quiet():
            saved = FileSystemReader(folder).read_metadata().state_dict_metadata
            problem = fit_problem(state["model"], saved)
            if problem is None:
                dcp.load(state, checkpoint_id=folder)
    except (Exception, CheckpointException) as err:  # noqa: BLE001 - any kind on damage
        lines = str(err).strip().splitlines()
        why = lines[-1].split(". ")[0][:300] if lines else type(err).__name__
        raise UsageError(f"{folder}: unreadable sharded checkpoint ({why})") from None
    if problem is not None:
        raise UsageError(f"{folder}: does not fit this model ({problem})")


class ShardedCheckpoints:
    """The tensor half of the checkpoints of a sharded run: every rank writes its shards
    of the model and optimizer into OUT/sharded-STEP-K.tmp, rank 0 writes DCP's metadata
    and renames the folder; last.pt (written after) names it, so a crash mid-save leaves
    the previous pair whole. The two newest folders stay (the older one until last.pt
    naming the newer is on disk), the rest go."""

    def __init__(self, out, lead):
        """Checkpoints in OUT; lead: rank 0, the one that renames and removes."""
        self.out, self.lead, self.kept = Path(out), lead, []

    def save(self, ckpt, net, optimizer):
        """Write the shards (all ranks); returns ckpt naming them, its model and
        optimizer entries emptied (their tensors are in the folder)."""
        name = self.new_name(ckpt["state"]["global_step"])
        for buffer in net.buffers():  # DCP writes one rank's copy: make it rank 0's
            dist.broadcast(buffer, 0)
        model, optim = get_state_dict(net, optimizer)
        temp = self.out / f"{name}.tmp"
        dcp.save({"model": model, "optim": optim}, checkpoint_id=temp)
        if self.lead:
            temp.rename(self.out / name)
            sync_folder(self.out)
        self.kept = [*self.kept[-1:], name]
        groups = ckpt["optimizer"]["param_groups"]
        plain = {"state": {}, "param_groups": groups}
        return {**ckpt, "model": {}, "optimizer": plain, "sharded": name}

    def new_name(self, step):
        """A folder name no save has used (rank 0 picks it and removes the stale
        folders; every rank gets it)."""
        chosen = [None]
        if self.lead:
            self.prune(self.kept)
            taken = {p.name.removesuffix(".tmp") for p in self.out.glob("sharded-*")}
            k = next(
                k for k in range(len(taken) + 1) if f"sharded-{step}-{k}" not in taken
            )
            chosen = [f"sharded-{step}-{k}"]
        dist.broadcast_object_list(chosen, src=0)
        return chosen[0]

    def prune(self, keep):
        """Remove the sharded folders (and unfinished ones) not named in keep (rank 0)."""
        for path in self.out.glob("sharded-*"):
            if path.name not in keep:
                shutil.rmtree(path, ignore_errors=True)

    def restore(self, ckpt, path, net, optimizer):
        """Load the shards ckpt names into net and optimizer (all ranks); returns ckpt
        with their (now loaded) state dicts as its model and optimizer entries."""
        name = ckpt.get("sharded")
        if not (isinstance(name, str) and FOLDER.fullmatch(name)):
            raise UsageError(
                f"{path}: written without --fsdp; resume it without --fsdp"
            )
        model, optim = get_state_dict(net, optimizer)
        read_shards({"model": model, "optim": optim}, Path(path).parent / name)
        set_state_dict(net, optimizer, model_state_dict=model, optim_state_dict=optim)
        self.kept = [name]
        return {**ckpt, "model": net.state_dict(), "optimizer": optimizer.state_dict()}

    def finish(self, net):
        """Write OUT/weights.npz from the gathered model and keep only the newest
        folder (all ranks call this, after the last checkpoint is on disk)."""
        arrays = gathered_arrays(net)
        if self.lead:
            write_npz(self.out / WEIGHTS, arrays)
            self.prune(self.kept[-1:])


def sharded_entries(ckpt, path, sharded, net, optimizer):
    """ckpt ready for the trainer's checks: under --fsdp with its shards loaded; without
    it refused if it has shards."""
    if sharded is not None:
        return sharded.restore(ckpt, path, net, optimizer)
    if "sharded" in ckpt:
        raise UsageError(
            f"{path}: written by an --fsdp run; resume it with --fsdp under torchrun, "
            "or convert it: python sharding.py CHECKPOINT FILE.npz"
        )
    return ckpt


def sync_folder(folder):
    """fsync a folder, so that a rename in it survives a crash."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def convert(checkpoint, target):
    """Write the portable weights of a sharded checkpoint (one process, no torchrun)."""
    import model as spec  # the generated model beside this file

    # isort: split
    from train import load_checkpoint

    ckpt = load_checkpoint(checkpoint)
    name = ckpt.get("sharded") if isinstance(ckpt, dict) else None
    if not (isinstance(name, str) and FOLDER.fullmatch(name)):
        raise UsageError(f"{checkpoint}: not a checkpoint of an --fsdp run")
    net = spec.build_model()
    state = net.state_dict()
    folder = Path(checkpoint).parent / name
    read_shards({"model": state}, folder)
    net.load_state_dict(state)
    save_weights(net, target)
    return f"wrote {target}: {len(portable_state(state))} tensors from {folder}"


def main(argv):
    """`python sharding.py OUT/last.pt FILE.npz`: exit 0, or 2 with one line."""
    if len(argv) != 2:
        print("usage: python sharding.py OUT/last.pt FILE.npz", file=sys.stderr)
        return 2
    try:
        print(convert(*argv))
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"error: {argv[1]}: cannot write it ({err.strerror})", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
