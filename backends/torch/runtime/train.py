"""Train the sibling model.py with PyTorch: `python train.py --help`.

Data parallel: `torchrun --nproc_per_node N train.py ...` runs DistributedDataParallel (gloo on
the CPU, nccl on CUDA); --batch-size is the global batch, split evenly across the processes, and
only rank 0 prints and writes files.

Model parallel (a spec with `towers N { }`): `--devices 2` or `--devices cuda:0,cuda:1` puts tower t
on device t % N and everything else on the first device, where the data also goes; activations
cross devices only where the towers exchange them. `--devices cpu,cpu` runs the same placement on
the CPU (for testing). Not combinable with torchrun.

Reproducible and resumable: the data order is a function of (seed, epoch), a sample's
augmentation of (seed, epoch, index) and the dropout masks of (seed, rank, step). OUT/last.pt is
written atomically after every epoch, every --save-every steps and on Ctrl-C, so --resume after a
crash or a kill continues exactly where the checkpoint left off (bit for bit on the CPU).

Safe to point at untrusted files: a checkpoint loads without pickle's code (weights_only) and
its structure is checked before use. OUT is locked for the whole run (OUT/.lock holds the pid;
a second run on it stops), checked writable before the first step and cleared of the temp
files of interrupted saves. Bad flags, folders and checkpoints are one line and exit status 2.
"""

import math
import os
import pickle
import random
import re
import signal
import sys
import time
import warnings
from argparse import ArgumentTypeError
from contextlib import ExitStack, nullcontext
from itertools import islice
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler

# the runtime beside this file (isort: split keeps one order wherever ruff runs)
# isort: split
import model as spec
from augment import batch_rng, build_pipeline, mix_batch, mix_entries, sample_rng
from ema_rule import ema_decay, updates_after, warmup_epochs
from imagefolder import DataError
from metrics_log import MetricsLog
from npzcheck import printable
from run_logging import add_logging_flags, check_packages
from start_summary import summary_text
from trainer_args import (
    COUNT_MAX,
    DEVICES_MAX,
    Interrupted,
    UsageError,
    check_checkpoint,
    check_trainable,
    claim_run_folder,
    common_parser,
    datasets,
    device_count,
    error_line,
    integer,
    is_text_model,
    layout_problem,
    parameters_text,
    resume_path,
    val_batch_limit,
    val_note,
)
from warm_start import add_init_flags, init_request, warm_start

# isort: split
from checkpoint_writer import CheckpointWriter
from elastic import batch_change, resume_after_restart, store_warning
from ema import ema_model, update  # beside this file in the repository, too
from fast_defaults import add_precision_flags, resolve_precision
from gpu_decode import (
    EncodedImages,
    check_decode_device,
    device_batches,
    device_ops,
    mix_on_device,
)
from nosync import LaggedReadout, StopAgreement
from progress import StepProgress
from sharding import (
    ShardedCheckpoints,
    add_fsdp_flag,
    check_fsdp,
    even_out,
    shard_model,
    sharded_entries,
    traceable,
)
from tensorboard_log import open_run_log
from weights import load_arrays, portable_tensors

CHECKPOINT = "last.pt"
TORCH_ENTRIES = ("model", "optimizer", "scaler", "rng")
RNG_ENTRIES = ("python", "numpy", "torch", "cuda")
STOP_CHECK_EVERY = 10  # steps between the ranks' agreement on Ctrl-C under torchrun


def parse_args(argv=None):
    """Command-line flags; defaults come from the spec's train section."""
    p = common_parser(spec, CHECKPOINT)
    p.add_argument(
        "--devices",
        type=devices_flag,
        metavar="N|DEV,DEV,...",
        help="model parallel, for a spec with towers: tower t on device t %% N (N GPUs, "
        "or a list such as cuda:0,cuda:1 or cpu,cpu); the rest and the data on the first",
    )
    add_precision_flags(p)
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    add_loading_flags(p)
    p.add_argument(
        "--sync-bn",
        action="store_true",
        help="under torchrun on CUDA: batch norm statistics over the global batch",
    )
    add_init_flags(p)
    add_logging_flags(p)
    add_fsdp_flag(p)
    return p.parse_args(argv)


def add_loading_flags(p):
    """--decode and --prefetch-factor: where images are decoded, how far workers load ahead."""
    p.add_argument(
        "--decode",
        choices=("cpu", "gpu"),
        default="cpu",
        help="gpu: workers read JPEG bytes and draw the augmentation; the batch is "
        "decoded (torchvision.io.decode_jpeg) and augmented on the CUDA device",
    )
    p.add_argument(
        "--prefetch-factor",
        type=integer(1, 64),
        default=2,
        metavar="N",
        help="batches each worker loads ahead (with --workers > 0)",
    )


def pick_device(flag, local_rank):
    """The torch device for --device and this process's local rank."""
    if flag == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is available; use --device cpu")
    if flag == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    torch.cuda.set_device(local_rank)
    torch.backends.cudnn.benchmark = (
        True  # fastest kernels; CUDA runs are not bit-reproducible
    )
    return torch.device("cuda", local_rank)


def parse_devices(text):
    """--devices as a count of devices or a list of cpu and cuda devices (ArgumentTypeError
    if it is neither)."""
    if re.fullmatch(r"[+-]?\d+", text.strip()):
        return device_count(text)
    names = [n.strip() for n in text.split(",")]
    if len(names) > DEVICES_MAX:
        raise ArgumentTypeError(f"{len(names)} devices; at most {DEVICES_MAX}")
    devices = []
    for name in names:
        try:
            device = torch.device(name)
        except RuntimeError:
            raise ArgumentTypeError(f"{name!r} is not a device (cpu, cuda:1)") from None
        if device.type not in ("cpu", "cuda"):
            raise ArgumentTypeError(f"this trainer runs on cpu and cuda, not {name!r}")
        devices.append(device)
    return devices


def devices_flag(text):
    """An argparse type: the text of a valid --devices."""
    parse_devices(text)
    return text


def model_devices(text, flag):
    """The devices of --devices: N GPUs (N times the CPU under --device cpu or without CUDA),
    or a comma-separated list such as cuda:0,cuda:1 or cpu,cpu."""
    if flag == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is available; use --device cpu")
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    parsed = parse_devices(text)
    if isinstance(parsed, int):
        if flag == "cpu" or not gpus:
            return [torch.device("cpu")] * parsed
        if parsed > gpus:
            raise UsageError(
                f"--devices {parsed}: only {gpus} CUDA device(s) visible; "
                "a list may repeat one (--devices cuda:0,cuda:0)"
            )
        return [torch.device("cuda", i) for i in range(parsed)]
    devices = []
    for device in parsed:
        if flag != "auto" and device.type != flag:
            raise UsageError(
                f"--devices {text}: {device} is not a {flag} device (--device {flag})"
            )
        if device.type == "cuda":
            index = device.index or 0
            if index >= gpus:
                raise UsageError(
                    f"--devices {text}: no {device} ({gpus} CUDA device(s) visible)"
                )
            device = torch.device("cuda", index)
        devices.append(torch.device("cpu") if device.type == "cpu" else device)
    return devices


def placement(args):
    """The devices of --devices (None without it), checked against the model and torchrun."""
    if args.devices is None:
        return None
    if not hasattr(spec, "place"):
        raise UsageError(
            f"--devices: {spec.MODEL_NAME} has no towers to place on devices (model parallelism "
            "needs `towers N { }` in the spec); use --device, or torchrun for data parallelism"
        )
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise UsageError(
            "--devices (model parallel) does not combine with torchrun (data parallel); "
            "run train.py directly"
        )
    devices = model_devices(args.devices, args.device)
    if devices[0].type == "cuda":
        torch.cuda.set_device(devices[0])
    if any(d.type == "cuda" for d in devices):
        torch.backends.cudnn.benchmark = (
            True  # as pick_device: CUDA runs are not bit-reproducible
        )
    return devices


def setup_distributed(flag):
    """Return (rank, world size, device), joining the process group under torchrun."""
    world, rank = (
        int(os.environ.get("WORLD_SIZE", "1")),
        int(os.environ.get("RANK", "0")),
    )
    device = pick_device(flag, int(os.environ.get("LOCAL_RANK", "0")))
    if world > 1 and not dist.is_initialized():
        cuda = device.type == "cuda"
        dist.init_process_group(
            "nccl" if cuda else "gloo", device_id=device if cuda else None
        )
    return rank, world, device


def amp_setup(amp, device, lead, devices=None):
    """(autocast dtype or None, GradScaler): bf16 where supported, else fp16 with loss scaling.

    With --devices, AMP is on when any of them is a CUDA device (GradScaler handles gradients
    spread over several devices).
    """
    cuda = any(d.type == "cuda" for d in devices or [device])
    if amp and not cuda and lead:
        print(
            "warning: --amp needs CUDA; training in float32 on the CPU", file=sys.stderr
        )
    if not amp or not cuda:
        return None, torch.amp.GradScaler(device.type, enabled=False)
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return dtype, torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)


def sync_batchnorm(net, device, world):
    """net with SyncBatchNorm for its batch norms under torchrun (one process: net), the
    same parameters and buffers; UsageError off CUDA, where torch has no SyncBatchNorm."""
    if device.type != "cuda":
        raise UsageError(
            "--sync-bn needs CUDA devices (torch syncs batch norm only there)"
        )
    return torch.nn.SyncBatchNorm.convert_sync_batchnorm(net) if world > 1 else net


def precision_text(amp_dtype, channels_last):
    """` (bf16 autocast, channels-last)` for the header: what differs from float32 NCHW."""
    modes = [f"{str(amp_dtype).removeprefix('torch.')} autocast"] if amp_dtype else []
    modes += ["channels-last"] if channels_last else []
    return f" ({', '.join(modes)})" if modes else ""


def plain_progress(ckpt):
    """A checkpoint whose progress totals (host tensors) are Python numbers."""
    loss_sum, seen = ckpt["train_loss_sum"].tolist(), ckpt["train_seen"].tolist()
    return {**ckpt, "train_loss_sum": loss_sum, "train_seen": int(seen)}


def step_seed(seed, rank, step):
    """The torch seed of one optimizer step on one rank (dropout and other layer randomness)."""
    return int(
        np.random.SeedSequence([seed, 1, rank, step]).generate_state(1, np.uint64)[0]
    )


def ignore_sigint(worker_id):
    """DataLoader workers leave Ctrl-C to the main process, which checkpoints first."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def rng_states(device):
    """The python, numpy, torch and (on a CUDA device) CUDA generator states, as plain
    tuples, lists, dicts and tensors (a checkpoint loads without pickle's code)."""
    numpy_state = np.random.get_state(legacy=False)
    key = numpy_state["state"]["key"].tolist()
    return {
        "python": random.getstate(),
        "numpy": {**numpy_state, "state": {**numpy_state["state"], "key": key}},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
    }


def set_rng_states(states, device, path):
    """Restore rng_states(); damaged states are a UsageError."""
    try:
        random.setstate(tuple(states["python"]))
        np.random.set_state(states["numpy"])
        torch.set_rng_state(states["torch"])
        if states["cuda"] is not None and device.type == "cuda":
            torch.cuda.set_rng_state(states["cuda"], device)
    except (
        TypeError,
        ValueError,
        KeyError,
        IndexError,
        RuntimeError,
        OverflowError,
    ) as err:
        raise UsageError(
            f"{path}: not a checkpoint of this trainer (damaged random states: {err})"
        ) from None


def detail(text, default):
    """The first line of an error message that says something (not a heading ending in :)."""
    lines = [line.strip() for line in str(text).splitlines()]
    return next((line for line in lines if line and not line.endswith(":")), default)


def load_checkpoint(path):
    """torch.load without pickle's code: only tensors and plain Python values load."""
    try:
        with warnings.catch_warnings():  # torch's own, about a damaged file's contents
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        code = re.search(r"GLOBAL (\S+)", str(err))
        if code:
            raise UsageError(
                f"{path}: refused to load: it asks to run code ({code.group(1)}); "
                "checkpoints hold only tensors and plain values (those of trainers "
                "before this check cannot be resumed)"
            ) from None
        why = str(err).rpartition("WeightsUnpickler error:")[2]
        raise UsageError(
            f"{path}: unreadable checkpoint ({detail(why, 'not a PyTorch file')})"
        ) from None
    except Exception as err:  # noqa: BLE001 - torch's reader raises any kind on damage
        why = detail(err, type(err).__name__)
        raise UsageError(f"{path}: unreadable checkpoint ({why})") from None


def torch_entries_problem(ckpt):
    """What is wrong with the PyTorch entries' types in a checkpoint; None if nothing."""
    optimizer = ckpt["optimizer"]
    if not isinstance(ckpt["model"], dict):
        return "model is not a dict of tensors"
    if not (
        isinstance(optimizer, dict)
        and isinstance(optimizer.get("state"), dict)
        and isinstance(optimizer.get("param_groups"), list)
        and all(isinstance(g, dict) for g in optimizer["param_groups"])
    ):
        return "optimizer is not a dict of state and param_groups"
    if not isinstance(ckpt["scaler"], dict):
        return "scaler is not a dict"
    if not isinstance(ckpt["rng"], dict) or set(ckpt["rng"]) != set(RNG_ENTRIES):
        return f"rng is not a dict of {', '.join(RNG_ENTRIES)}"
    return None


def hyperparameters(optimizer):
    """Each param group's settings: everything but its parameters."""
    return [
        {k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups
    ]


def optimizer_problem(optimizer, settings):
    """What is wrong with a loaded optimizer: settings missing or of other kinds than
    before, buffers that are not tensors of their parameter's shape; None if nothing."""
    groups = zip(hyperparameters(optimizer), settings, strict=True)
    for i, (loaded, fresh) in enumerate(groups):
        missing = [k for k in fresh if k not in loaded]
        if missing:
            return f"optimizer group {i} has no {', '.join(missing)}"
        known = {k: loaded[k] for k in fresh}  # other torch versions may add settings
        problem = layout_problem(known, fresh, f"optimizer group {i}")
        if problem is not None:
            return problem
    for param, buffers in optimizer.state.items():
        if not isinstance(param, torch.Tensor) or not isinstance(buffers, dict):
            return "optimizer state for parameters the model does not have"
        for name, value in buffers.items():
            shape = torch.Size() if name == "step" else param.shape  # Adam's step count
            if not (isinstance(value, torch.Tensor) and value.shape == shape):
                return f"optimizer buffer {name} does not fit its parameter"
    return None


def token_ids(ids, rng):
    """A text's token ids, unchanged (the pipeline of a text model)."""
    return ids


class Augmented(torch.utils.data.Dataset):
    """(epoch, index) -> (float32 image, label) through a pipeline, reproducibly random."""

    def __init__(self, data, pipeline, seed):
        """Wrap a dataset of (uint8 HxWx3, label)."""
        self.data, self.pipeline, self.seed = data, pipeline, seed

    def __len__(self):
        """Number of images."""
        return len(self.data)

    def __getitem__(self, key):
        """Augment image `index` with the generator of (seed, epoch, index)."""
        epoch, index = key
        image, label = self.data[index]
        return self.pipeline(image, sample_rng(self.seed, epoch, index)), label


class EpochSampler:
    """(epoch, index) keys of this rank's shard of one epoch, after skipping `skip` of them;
    one sampler serves every epoch (start() positions it), so workers can persist."""

    def __init__(self, sampler):
        """sampler: a DistributedSampler over the training set."""
        self.sampler, self.epoch, self.skip = sampler, 0, 0

    def start(self, epoch, skip):
        """Serve `epoch` from its key `skip` on (before iterating the loader)."""
        self.epoch, self.skip = epoch, min(skip, len(self.sampler))

    def __iter__(self):
        """Shuffle as a function of (seed, epoch) and yield the keys."""
        self.sampler.set_epoch(self.epoch)
        return ((self.epoch, i) for i in islice(self.sampler, self.skip, None))

    def __len__(self):
        """Keys left in the epoch."""
        return len(self.sampler) - self.skip


class StopFlag:
    """The first Ctrl-C asks for a checkpoint at the next step; a second one aborts."""

    def __init__(self):
        """Install the SIGINT handler."""
        self.requested = False
        self.previous = signal.signal(signal.SIGINT, self.handle)

    def handle(self, signum, frame):
        """Record the request and restore the default handler."""
        self.requested = True
        signal.signal(signal.SIGINT, signal.default_int_handler)
        print(
            "\nCtrl-C: checkpointing after this step (Ctrl-C again aborts)",
            file=sys.stderr,
        )

    def close(self):
        """Put back the handler that was there before."""
        signal.signal(signal.SIGINT, self.previous)


class Trainer:
    """One training run: model, optimizer, schedule, data and progress."""

    def __init__(self, args):
        """Build everything, restoring a checkpoint for --resume."""
        check_trainable(spec)
        check_packages(args)
        init = init_request(args)
        self.args = args
        self.devices = placement(args)
        if self.devices:
            self.rank, self.world, self.device = 0, 1, self.devices[0]
        else:
            self.rank, self.world, self.device = setup_distributed(args.device)
        if args.decode == "gpu":
            check_decode_device(self.device)
        self.lead = self.rank == 0
        resolve_precision(args, self.devices or [self.device])
        check_fsdp(args, spec, self.world, self.device)
        if args.batch_size % self.world:
            raise UsageError(
                f"--batch-size {args.batch_size} is not divisible by {self.world}"
            )
        if self.lead:  # only rank 0 writes into OUT
            self.run_lock = claim_run_folder(args.out, CHECKPOINT)
        self.batch = args.batch_size // self.world
        train, val, self.classes = datasets(spec, args, spec.INPUT_SHAPE[1:])
        self.train_set, self.val_set = (
            self.augmented(train, True),
            self.augmented(val, False),
        )
        self.train_sampler = DistributedSampler(
            train, self.world, self.rank, seed=args.seed
        )
        self.train_loader, self.val_loader = self.loaders()
        torch.manual_seed(args.seed)
        self.net = self.build_net()
        if init is not None:
            self.start_from(init)
        if args.fsdp:
            self.say(shard_model(self.net, self.world, self.device))
        self.sharded = ShardedCheckpoints(args.out, self.lead) if args.fsdp else None
        self.optimizer = spec.build_optimizer(self.net, lr=args.lr)
        self.scheduler = spec.build_scheduler(self.optimizer)
        self.ema = self.build_ema()
        self.amp_dtype, self.scaler = amp_setup(
            args.amp, self.device, self.lead, self.devices
        )
        smoothing = spec.TRAIN["loss"].get("label_smoothing", 0.0)
        self.criterion = torch.nn.CrossEntropyLoss(label_smoothing=smoothing)
        self.state = {"epoch": 0, "batches_done": 0, "global_step": 0}
        self.loss_sum, self.seen = 0.0, 0
        self.log = MetricsLog(args.out)
        self.warn(store_warning())
        resume_after_restart(args, CHECKPOINT, self.world, self.device)
        resume = resume_path(args, CHECKPOINT)
        if resume is not None:
            self.restore(resume)
        self.eval_net, self.train_net = self.wrap_net()
        self.agreement = StopAgreement(self.world, STOP_CHECK_EVERY)
        self.writer, self.readout = CheckpointWriter(), LaggedReadout()
        self.logs = open_run_log(
            args,
            spec.MODEL_NAME,
            self.lead,
            (self.loss_sum, self.seen),
            self.state["global_step"],
            lambda: traceable(spec, self.net, self.example_input()),
        )
        self.stop = StopFlag()

    def example_input(self):
        """A batch of one zero input on the (first) device, for tracing the model."""
        dtype = torch.long if is_text_model(spec) else torch.float32
        return torch.zeros((1, *spec.INPUT_SHAPE), dtype=dtype, device=self.device)

    def augmented(self, data, train):
        """The dataset with the spec's training or evaluation pipeline (token ids pass
        through as they are)."""
        if is_text_model(spec):
            if self.args.decode == "gpu":
                raise UsageError(
                    "--decode gpu decodes images; this model reads token ids"
                )
            return Augmented(data, token_ids, self.args.seed)
        channels, hw = spec.INPUT_SHAPE[0], spec.INPUT_SHAPE[1:]
        if self.args.decode == "gpu":
            return self.encoded(data, train, channels, hw)
        try:
            pipeline = build_pipeline(
                spec.TRAIN["augment"],
                hw,
                train,
                channels,
                tencrop=self.args.ten_crop and not train,
            )
        except ValueError as err:
            raise UsageError(f"augment: {err}") from None
        return Augmented(data, pipeline, self.args.seed)

    def encoded(self, data, train, channels, hw):
        """The dataset of --decode gpu: image bytes and the pipeline's draws."""
        tencrop = self.args.ten_crop and not train
        try:
            ops = device_ops(spec.TRAIN["augment"], hw, train, channels, tencrop)
        except ValueError as err:
            raise UsageError(f"augment: {err}") from None
        return EncodedImages(data, ops, self.args.seed)

    def build_net(self):
        """The spec's model on the device, or its towers on --devices (channels-last if asked)."""
        fmt = torch.channels_last if self.args.channels_last else torch.preserve_format
        if self.devices:
            return spec.place(spec.build_model(), self.devices).to(memory_format=fmt)
        return spec.build_model().to(self.device, memory_format=fmt)

    def start_from(self, path):
        """Load --init's weights into the model, all but --fresh's (before the EMA copies
        it)."""
        expected = {n: tuple(t.shape) for n, t in portable_tensors(self.net).items()}
        frozen = spec.TRAIN.get("freeze", ())
        arrays, fresh, line = warm_start(path, expected, self.args.fresh, frozen)
        load_arrays(self.net, arrays, str(path), keep=fresh)
        self.say(line)

    def build_ema(self):
        """The spec's EMA of the weights (None without one), evaluated instead of them."""
        ema = spec.TRAIN.get("ema")
        if ema is None:
            return None
        return ema_model(
            self.net, ema_decay(ema, self.args.batch_size, self.args.epochs)
        )

    def update_ema(self, epoch):
        """Fold the weights into the EMA after the steps the spec says."""
        ema = spec.TRAIN.get("ema")
        if ema is not None and updates_after(self.state["global_step"], ema):
            update(self.ema, self.net, epoch < warmup_epochs(spec.TRAIN))

    def wrap_net(self):
        """(evaluation net, training net): compiled and DDP-wrapped as the flags ask."""
        if self.args.sync_bn:
            self.net = sync_batchnorm(self.net, self.device, self.world)
        net = torch.compile(self.net) if self.args.compile else self.net
        if self.world == 1 or self.args.fsdp:
            return net, net
        ids = [self.device.index] if self.device.type == "cuda" else None
        ddp = DistributedDataParallel(
            net,
            device_ids=ids,
            gradient_as_bucket_view=True,
            broadcast_buffers=False,  # sync_buffers() gives rank 0's before validation
        )
        return net, ddp

    def loader(self, dataset, sampler, batch, drop_last):
        """A DataLoader that leaves the global torch generator untouched; its workers
        persist from epoch to epoch."""
        workers = self.args.workers
        return DataLoader(
            dataset,
            batch_size=batch,
            sampler=sampler,
            drop_last=drop_last,
            num_workers=workers,
            pin_memory=self.device.type == "cuda",
            worker_init_fn=ignore_sigint,
            generator=torch.Generator(),
            collate_fn=getattr(dataset, "collate", None),
            persistent_workers=workers > 0,
            prefetch_factor=self.args.prefetch_factor if workers else None,
        )

    def loaders(self):
        """(train loader, val loader), built once: the training one over an EpochSampler,
        the validation one over this rank's share of the val set."""
        self.epoch_sampler = EpochSampler(self.train_sampler)
        drop_last = len(self.train_sampler) >= self.batch
        train = self.loader(self.train_set, self.epoch_sampler, self.batch, drop_last)
        shard = [(0, i) for i in range(self.rank, len(self.val_set), self.world)]
        batch = max(1, self.batch // 10) if self.args.ten_crop else self.batch
        return train, self.loader(self.val_set, shard, batch, drop_last=False)

    def batches(self, loader):
        """The loader's batches; with --decode gpu, decoded and augmented on the device."""
        if self.args.decode == "gpu":
            return device_batches(loader, self.device)
        return loader

    def to_input(self, x):
        """NHWC float batch -> NCHW on the device, in the requested memory format (token
        ids: on the device)."""
        if is_text_model(spec):
            return x.to(self.device, non_blocking=True)
        fmt = (
            torch.channels_last if self.args.channels_last else torch.contiguous_format
        )
        return (
            x.to(self.device, non_blocking=True)
            .permute(0, 3, 1, 2)
            .contiguous(memory_format=fmt)
        )

    def autocast(self):
        """Mixed-precision context for --amp on CUDA (one per device type with --devices)."""
        if self.amp_dtype is None:
            return nullcontext()
        types = dict.fromkeys(d.type for d in self.devices or [self.device])
        stack = ExitStack()
        for kind in types:
            dtype = self.amp_dtype if kind == "cuda" else torch.bfloat16
            stack.enter_context(torch.autocast(kind, dtype=dtype))
        return stack

    def steps_per_epoch(self):
        """Optimizer steps in a full epoch on each rank."""
        n = len(self.train_sampler)
        return n // self.batch if n >= self.batch else 1

    def out_of_steps(self):
        """Whether --max-steps is used up."""
        limit = self.args.max_steps
        return limit is not None and self.state["global_step"] >= limit

    def train_step(self, x, y):
        """One optimizer step; returns the batch's mean loss (a device tensor)."""
        torch.manual_seed(
            step_seed(self.args.seed, self.rank, self.state["global_step"])
        )
        x, y = self.to_input(x), y.to(self.device, non_blocking=True)
        with self.autocast():
            loss = self.criterion(self.train_net(x), y)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.clip_gradients()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return loss.detach()

    def mixed(self, x, y, epoch):
        """The batch through the spec's mixup / cutmix (soft targets), if it has them."""
        entries = mix_entries(spec.TRAIN["augment"])
        if not entries:
            return x, y
        rng = batch_rng(self.args.seed, epoch, self.state["batches_done"], self.rank)
        if self.args.decode == "gpu":
            return mix_on_device(x, y, spec.NUM_CLASSES, entries, rng)
        x, y = mix_batch(x.numpy(), y.numpy(), spec.NUM_CLASSES, entries, rng)
        return torch.from_numpy(x), torch.from_numpy(y)

    def clip_gradients(self):
        """Scale the gradients to the spec's clip_grad_norm (their global L2 norm), if any."""
        max_norm = spec.TRAIN.get("clip_grad_norm")
        if max_norm is not None:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), max_norm)

    def train_epoch(self, epoch):
        """Train from the saved position to the epoch's end, --max-steps or Ctrl-C."""
        st = self.state
        self.epoch_sampler.start(epoch, st["batches_done"] * self.batch)
        batches = self.batches(self.train_loader)
        prefix = f"epoch {epoch + 1}/{self.args.epochs}"
        bar = self.progress_bar(self.steps_per_epoch(), prefix, self.step_fields())
        self.train_net.train()
        self.loss_sum = torch.as_tensor(
            self.loss_sum, dtype=torch.float64, device=self.device
        )
        for x, y in batches:
            x, y = self.mixed(x, y, epoch)
            self.loss_sum += self.train_step(x, y).double() * len(y)
            self.seen += len(y)
            st["batches_done"] += 1
            st["global_step"] += 1
            self.update_ema(epoch)
            self.logs.after_steps(
                self.loss_sum, self.seen, st["global_step"], 1, self.lr
            )
            self.readout.push(self.loss_sum, self.seen)
            bar.update(st["batches_done"])
            if self.args.save_every and st["global_step"] % self.args.save_every == 0:
                self.save()
            if self.out_of_steps() or self.agreement.at_step(
                self.stop.requested, st["global_step"]
            ):
                break
        bar.close()

    def lr(self):
        """The learning rate of the first parameter group."""
        return self.optimizer.param_groups[0]["lr"]

    def progress_bar(self, total, desc, fields, unit="step", images=None):
        """The progress of a pass on rank 0 (tqdm; lines off a terminal), from the
        epoch's saved position for the training steps."""
        initial = self.state["batches_done"] if unit == "step" else 0
        return StepProgress(
            total,
            desc,
            fields,
            unit,
            self.args.batch_size if images is None else images,
            initial,
            enabled=self.lead,
            every_s=self.args.progress_every,
        )

    def step_fields(self):
        """The training bar's fields: the epoch's mean loss and the learning rate."""
        return {
            "loss": self.mean_loss,
            "lr": self.lr,
        }

    def mean_loss(self):
        """The epoch's mean training loss on this rank, as of the newest step whose loss
        has reached the host (read without waiting for the device)."""
        loss_sum, seen = self.readout.latest() or (math.nan, 1)
        return loss_sum / seen

    def stop_agreed(self):
        """Whether Ctrl-C was pressed (on any rank, under torchrun), waiting for all."""
        return self.agreement.now(self.stop.requested)

    def sync_buffers(self):
        """Give every rank rank 0's buffers (BatchNorm statistics) before validation."""
        if self.world > 1:
            for buf in self.net.buffers():
                dist.broadcast(buf, 0)
            for buf in self.ema.module.buffers() if self.ema is not None else []:
                dist.broadcast(buf, 0)

    @torch.no_grad()
    def eval_batch(self, net, x, y):
        """[summed loss, top-1 hits, top-5 hits] of one batch (10-crop: mean softmax)."""
        y = y.to(self.device, non_blocking=True)
        crops = x.shape[1] if self.args.ten_crop else 1
        with self.autocast():
            logits = net(self.to_input(x.flatten(0, 1) if crops > 1 else x))
        logp = torch.log_softmax(logits.float(), dim=-1).view(len(y), crops, -1)
        logp = torch.logsumexp(logp, dim=1) - math.log(crops)
        hits = logp.topk(min(5, logp.shape[-1]), dim=-1).indices == y[:, None]
        loss = F.nll_loss(logp, y, reduction="sum")
        counts = [hits[:, 0].sum(), hits.any(dim=1).sum()]
        return torch.stack([loss.double(), *(c.double() for c in counts)])

    def validate(self):
        """Validation loss (no label smoothing), top-1 and top-5 error over the val set (its
        first batches with --val-steps or --max-steps), of the EMA of the weights if the
        spec keeps one; val_images: the images they cover."""
        net = self.eval_net if self.ema is None else self.ema.module
        net.eval()
        sums = torch.zeros(3, dtype=torch.float64, device=self.device)
        total = min(len(self.val_loader), val_batch_limit(self.args) or COUNT_MAX)
        images = self.val_loader.batch_size * self.world
        bar = self.progress_bar(total, "validate", {}, "batch", images)
        share = 0  # this rank's images, known on the host
        for done, (x, y) in enumerate(islice(self.batches(self.val_loader), total), 1):
            sums += self.eval_batch(net, x, y)
            share += len(y)
            bar.update(done)
        bar.close()
        if self.sharded is not None:
            limit = val_batch_limit(self.args) or COUNT_MAX
            even_out(net, self.val_loader, limit, self.example_input(), self.autocast)
        count = torch.tensor([share], dtype=torch.float64, device=self.device)
        totals = torch.cat([sums, count])  # one read of the device, after the loop
        if self.world > 1:
            dist.all_reduce(totals)
        loss, top1, top5, n = totals.tolist()
        return {
            "val_loss": loss / n,
            "val_error": 1 - top1 / n,
            "val_top5_error": 1 - top5 / n,
            "val_images": int(n),
        }

    def progress_totals(self):
        """[train loss sum, images] of the epoch so far over all ranks (a device tensor)."""
        loss_sum = torch.as_tensor(
            self.loss_sum, dtype=torch.float64, device=self.device
        )
        totals = torch.stack([loss_sum, torch.full_like(loss_sum, self.seen)])
        if self.world > 1:
            dist.all_reduce(totals)
        return totals

    def progress(self):
        """(train loss sum, images) of the epoch so far over all ranks."""
        loss_sum, seen = self.progress_totals().tolist()
        return loss_sum, int(seen)

    def checkpoint(self, loss_sum, seen):
        """Everything --resume needs, as one picklable dict."""
        sched = self.scheduler.state_dict() if self.scheduler is not None else None
        return {
            "model_name": spec.MODEL_NAME,
            "model": self.net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": sched,
            "scaler": self.scaler.state_dict(),
            "state": dict(self.state),
            "train_loss_sum": loss_sum,
            "train_seen": seen,
            "metrics": self.log.rows,
            "rng": rng_states(self.device),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "classes": self.classes,
            "args": {
                k: str(v) if isinstance(v, Path) else v
                for k, v in vars(self.args).items()
            },
        }

    def save(self):
        """Write OUT/last.pt, then metrics.csv, atomically in the background (rank 0);
        all ranks must call this. The step loop waits only for the previous write."""
        ckpt = self.checkpoint(*self.progress_totals())
        if self.sharded is not None:
            ckpt = self.sharded.save(ckpt, self.net, self.optimizer)
        if self.lead:
            out = self.args.out
            self.writer.submit(
                out / CHECKPOINT,
                ckpt,
                plain_progress,
                lambda host: MetricsLog(out, host["metrics"]).write(),
            )
        self.logs.flush()

    def restore(self, path):
        """Load a checkpoint written by save(), checking its structure before using it."""
        ckpt = load_checkpoint(path)
        sched = self.scheduler.state_dict() if self.scheduler is not None else None
        check_checkpoint(ckpt, path, spec.MODEL_NAME, TORCH_ENTRIES, sched)
        self.warn(batch_change(ckpt, self.args.batch_size, path))
        settings = hyperparameters(self.optimizer)  # before --fsdp's shards load them
        ckpt = sharded_entries(ckpt, path, self.sharded, self.net, self.optimizer)
        problem = torch_entries_problem(ckpt)
        if problem is None:
            problem = self.load_states(ckpt, path, settings)
        if problem is not None:
            raise UsageError(f"{path}: not a checkpoint of this trainer ({problem})")
        set_rng_states(ckpt["rng"], self.device, path)
        self.state = dict(ckpt["state"])
        if self.lead:
            self.loss_sum, self.seen = ckpt["train_loss_sum"], ckpt["train_seen"]
            self.log = MetricsLog(self.args.out, ckpt["metrics"])
            self.log.write()

    def load_states(self, ckpt, path, settings):
        """Load model, optimizer, scaler and schedule; returns what does not fit, or None.
        settings: the optimizer's hyperparameters before anything was loaded."""
        scaler = self.scaler.state_dict()
        try:
            self.net.load_state_dict(ckpt["model"])
            self.optimizer.load_state_dict(ckpt["optimizer"])
        except (RuntimeError, ValueError, TypeError, KeyError, IndexError) as err:
            why = detail(err, type(err).__name__)
            raise UsageError(
                f"{path}: checkpoint does not fit this model ({why})"
            ) from None
        problem = optimizer_problem(self.optimizer, settings)
        if problem is None and scaler and ckpt["scaler"]:
            problem = layout_problem(ckpt["scaler"], scaler, "scaler")
        if problem is not None:
            return problem
        if ckpt["scaler"]:
            self.scaler.load_state_dict(ckpt["scaler"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(ckpt["scheduler"])
        return self.load_ema(ckpt.get("ema"))

    def load_ema(self, state):
        """Restore the EMA of a checkpoint; what does not fit, or None."""
        if self.ema is None:
            return None if state is None else "an EMA this spec does not keep"
        if not isinstance(state, dict):
            return "no EMA of the weights"
        try:
            self.ema.load_state_dict(state)
        except (RuntimeError, ValueError, TypeError, KeyError) as err:
            return f"EMA: {detail(err, type(err).__name__)}"
        return None

    def end_epoch(self, epoch, train_seconds, images, start):
        """Validate, step the schedule, log and checkpoint a finished epoch."""
        self.sync_buffers()
        loss_sum, seen = self.progress()
        metrics = {"train_loss": loss_sum / max(seen, 1), **self.validate()}
        lr = self.optimizer.param_groups[0]["lr"]
        if self.scheduler is not None:
            self.scheduler.step_epoch(metrics)
        row = dict(epoch=epoch + 1, step=self.state["global_step"], lr=lr, **metrics)
        row.update(images_per_s=images * self.world / max(train_seconds, 1e-9))
        row.update(seconds=time.perf_counter() - start)
        self.log.append(**row)
        self.logs.epoch(row, self.loss_sum, self.seen, start + train_seconds)
        self.state.update(epoch=epoch + 1, batches_done=0)
        self.loss_sum, self.seen = 0.0, 0
        self.save()
        self.writer.wait()  # the epoch's line means its checkpoint is on disk
        self.say(
            f"epoch {epoch + 1}/{self.args.epochs}  step {row['step']}  lr {lr:.4g}  "
            f"train_loss {row['train_loss']:.4f}  val_loss {row['val_loss']:.4f}  "
            f"top-1 err {100 * row['val_error']:.2f}%  top-5 err {100 * row['val_top5_error']:.2f}%  "
            f"{row['images_per_s']:.0f} img/s  {row['seconds']:.1f}s"
            + val_note(row, len(self.val_set))
        )

    def run_epoch(self, epoch):
        """Train and (unless interrupted mid-epoch) finish one epoch."""
        start = time.perf_counter()
        seen_before = self.seen
        self.readout = LaggedReadout()  # no loss of the epoch before on the bar
        self.train_epoch(epoch)
        train_seconds = time.perf_counter() - start
        if self.stop_agreed():
            self.save()
            raise Interrupted
        self.end_epoch(epoch, train_seconds, self.seen - seen_before, start)

    def say(self, text):
        """Print on rank 0."""
        if self.lead:
            print(text, flush=True)

    def warn(self, line):
        """Print a warning line on rank 0's stderr (nothing for None)."""
        if line and self.lead:
            print(line, file=sys.stderr)

    def header(self):
        """Describe the run."""
        params = parameters_text(
            sum(p.numel() for p in self.net.parameters()),
            sum(p.numel() for p in self.net.parameters() if p.requires_grad),
        )
        kind = "text" if is_text_model(spec) else "ImageFolder"
        items = "texts" if is_text_model(spec) else "images"
        source = (
            f"{kind} {printable(str(self.args.data))}"
            if self.args.data
            else "synthetic"
        )
        where = f"{self.world} process(es) on {self.device}"
        if self.devices:
            where = f"towers on {', '.join(map(str, self.devices))} (model parallel)"
        where += precision_text(self.amp_dtype, self.args.channels_last)
        self.say(
            f"{spec.MODEL_NAME} ({spec.SPEC}): {params}; {len(self.train_set)} train / "
            f"{len(self.val_set)} val {items} ({source}); {where}; global batch "
            f"{self.args.batch_size}; from epoch "
            f"{self.state['epoch'] + 1}, step {self.state['global_step']}"
        )
        self.say(summary_text(self.args.batch_size, self.world, spec.NUM_CLASSES))

    def finish(self):
        """Write metrics.csv and metrics.png (rank 0)."""
        if self.lead:
            self.log.write()
            self.log.plot()

    def run(self):
        """Train to --epochs or --max-steps; returns the (unwrapped) model."""
        self.header()
        try:
            while self.state["epoch"] < self.args.epochs and not self.out_of_steps():
                self.run_epoch(self.state["epoch"])
            if self.sharded is not None:
                self.writer.wait()  # the newest checkpoint on disk before pruning
                self.sharded.finish(self.net)
        finally:
            self.stop.close()
            self.writer.wait()
            self.train_loader = self.val_loader = None  # ends persistent workers
            self.finish()
        return self.net


def train(args):
    """Run a training; returns the trained model (also under torchrun, on every rank)."""
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
    except Interrupted:
        print(
            f"interrupted: saved {printable(str(args.out / CHECKPOINT))}; continue with --resume",
            file=sys.stderr,
        )
        return 130
    except KeyboardInterrupt:
        print("aborted", file=sys.stderr)
        return 130
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
