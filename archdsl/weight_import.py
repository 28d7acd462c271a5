"""`archdsl weights SPEC --from SOURCE -o FILE.npz`: another model's weights in the portable layout.

A source is a PyTorch state_dict file (`.pth`, `.pt`; read with `torch.load(weights_only=True)`,
a checkpoint's `state_dict` or `model` entry taken when it has one), a `.safetensors` file (read
with NumPy alone), or `torchvision:NAME` (the builder's own random initialisation). With
`--arch torchvision:NAME` the file's tensors are paired through that model's traced graph;
without it, a file is paired in key order, by kind and shape alone. The pairing itself is
archdsl/weight_pairing.py's. The output is written atomically and marked as archdsl's (a zip
comment), so that a later import may replace it; any other file needs --force.
"""

from __future__ import annotations

import os
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from archdsl.backends.common.metrics_log import atomic_write
from archdsl.shapes import Report
from archdsl.spec_records import spec_graph
from archdsl.torch_source import (
    SKIP,
    SourceError,
    Traced,
    build_torchvision,
    state_dict_graph,
    trace,
)
from archdsl.weight_pairing import LayerGraph, PairingError, pair

MARK = b"archdsl weights"  # the zip comment of every file this module writes
BUILDER = "torchvision:"
CHECKPOINT_KEYS = ("state_dict", "model")


@dataclass
class Source:
    """Where the tensors come from: their records, their arrays, and what never ran."""

    graph: LayerGraph
    arrays: dict
    unused: list[str] = field(default_factory=list)


@dataclass
class Imported:
    """What an import wrote and left out."""

    origin: str
    written: int
    layers: int
    by_order: bool
    left_out: list[str]  # their keys, partners of the layers of ours left out
    not_written: list[str]  # our keys left out
    unused: list[str]  # their tensors the traced model never ran

    def summary(self, out: str, spec: str) -> list[str]:
        """What was paired, how, and what was left out, in a line each."""
        how = (
            "in key order, by kind and shape alone (no --arch)" if self.by_order else "by structure"
        )
        lines = [
            f"wrote {out}: {self.written} tensors of {self.origin} ({self.layers} layers) "
            f"paired {how} with {spec}"
        ]
        if self.not_written:
            lines.append(
                f"left out by --except: theirs {_listed(self.left_out)}; ours "
                f"{_listed(self.not_written)} (not in {out}: they keep the model's initialisation)"
            )
        if self.unused:
            lines.append(
                f"not used: {self.origin}'s {_listed(self.unused)}, which its eval-mode forward "
                "never runs"
            )
        return lines


def _listed(keys: list[str], most: int = 4) -> str:
    """`a, b, c` or `a, b, c, d and 14 more`."""
    shown = ", ".join(keys[:most])
    return shown if len(keys) <= most else f"{shown} and {len(keys) - most} more"


def load_source(source: str, arch: str | None, input_shape: tuple[int, ...]) -> Source:
    """The records and arrays of a source (see the module's docstring); SourceError if it
    cannot be read, built or traced, PairingError if the file does not fit --arch."""
    if source.startswith(BUILDER):
        if arch:
            raise SourceError("--arch goes with a weight file, not with --from torchvision:NAME")
        traced = trace(build_torchvision(source[len(BUILDER) :]), input_shape, source)
        return Source(traced.graph, _numpy(traced.state, source), traced.unused)
    arrays = read_weight_file(Path(source))
    if not arch:
        return Source(state_dict_graph(arrays, source), arrays)
    if not arch.startswith(BUILDER):
        raise SourceError(f"--arch {arch}: expected torchvision:NAME (e.g. torchvision:resnet50)")
    traced = trace(build_torchvision(arch[len(BUILDER) :]), input_shape, arch)
    _check_same_tensors(arrays, traced, source, arch)
    return Source(traced.graph, arrays, [k for k in traced.unused if k in arrays])


def read_weight_file(path: Path) -> dict:
    """{key: NumPy array} of a state_dict file (.safetensors, or torch's .pth / .pt)."""
    if not path.is_file():
        raise SourceError(f"{path}: {'not a regular file' if path.exists() else 'no such file'}")
    if path.suffix == ".safetensors":
        from archdsl.safetensors_file import SafetensorsError, read_safetensors

        try:
            return _floats(read_safetensors(path), str(path))
        except (SafetensorsError, OSError) as exc:
            raise SourceError(str(exc)) from None
    return _numpy(_torch_state(path), str(path))


def _torch_state(path: Path) -> dict:
    """A torch file's state_dict (a checkpoint's `state_dict` or `model` entry), unpickled
    with weights_only=True."""
    try:
        import torch
    except ImportError as exc:
        raise SourceError(f"{path}: reading a PyTorch file needs torch ({exc})") from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # not a torch file, or one that asks to run code
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SourceError(
            f"{path}: not a PyTorch state_dict torch.load can read safely ({first})"
        ) from None
    if isinstance(state, dict):
        state = next((state[k] for k in CHECKPOINT_KEYS if isinstance(state.get(k), dict)), state)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise SourceError(f"{path}: not a state_dict (a dict of tensor names to tensors)")
    return state


def _numpy(state: dict, origin: str) -> dict:
    """A state_dict's tensors as NumPy arrays (see _floats; bfloat16 and half as float32)."""
    arrays = {
        str(k): (t.detach().cpu().float() if t.is_floating_point() else t.detach().cpu()).numpy()
        for k, t in state.items()
    }
    return _floats(arrays, origin)


def _floats(arrays: dict, origin: str) -> dict:
    """The arrays as float32, counters (`num_batches_tracked`) left out; SourceError for any
    other array that does not hold floats."""
    found = {}
    for key, array in arrays.items():
        if not key.endswith(SKIP):
            if array.dtype.kind != "f":
                raise SourceError(f"{origin}: tensor {key} holds {array.dtype}, not floats")
            found[key] = array.astype("float32", copy=False)
    return found


def _check_same_tensors(arrays: dict, traced: Traced, source: str, arch: str) -> None:
    """PairingError unless the file holds the built model's tensors with their shapes (those
    the model never runs in eval mode may be absent) and no others."""
    for key, tensor in traced.state.items():
        if key not in arrays and key not in traced.unused:
            raise PairingError(f"{source} does not fit {arch}: it lacks {key}")
        if key in arrays and tuple(arrays[key].shape) != tuple(tensor.shape):
            shape = " x ".join(map(str, arrays[key].shape))
            want = " x ".join(map(str, tensor.shape))
            raise PairingError(f"{source} does not fit {arch}: {key} is {shape}, not {want}")
    extra = [k for k in arrays if k not in traced.state]
    if extra:
        raise PairingError(f"{source} does not fit {arch}: {arch} has no {extra[0]}")


def left_out_layers(report: Report, names: list[str]) -> frozenset[str]:
    """The layers of ours under each statement or call prefix in `names` (SourceError for a
    name that covers none)."""
    layers = [layer.name for layer in spec_graph(report).layers]
    found = set()
    for name in names:
        covered = {x for x in layers if x == name or x.startswith(f"{name}.")}
        if not covered:
            raise SourceError(f"--except {name}: no layer with tensors is named {name} or {name}.*")
        found |= covered
    return frozenset(found)


def import_weights(
    report: Report, source: Source, leave_out: frozenset[str], out: Path, force: bool
) -> Imported:
    """Pair the source's tensors with the spec's, write them as FILE.npz; PairingError if they
    do not pair, SourceError if the output cannot be written."""
    ours = spec_graph(report)
    check_target(out, force)  # again: the file may have appeared while the source loaded
    pairing = pair(ours, source.graph, leave_out)
    shapes = {key: shape for layer in ours.layers for _, key, shape in layer.tensors}
    theirs = {ours_key: their_key for their_key, ours_key in pairing.keys.items()}
    arrays = {
        key: source.arrays[theirs[key]].reshape(shapes[key]) for key in shapes if key in theirs
    }
    write_marked_npz(out, arrays)
    return Imported(
        source.graph.origin,
        len(arrays),
        len(pairing.layers),
        pairing.by_order,
        pairing.left_out,
        [key for key in shapes if key not in theirs],
        source.unused,
    )


def check_target(out: Path, force: bool) -> None:
    """SourceError unless `out` is absent, a file this module wrote, or --force allows it."""
    if not os.path.lexists(out):
        return
    mode = out.lstat().st_mode
    if stat.S_ISDIR(mode):
        raise SourceError(f"{out}: is a directory, expected the .npz file to write")
    if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
        raise SourceError(f"{out}: not a regular file (a device, FIFO or socket?)")
    if not force and not (stat.S_ISREG(mode) and _written_here(out)):
        raise SourceError(
            f"{out}: refusing to overwrite a file archdsl did not import; "
            "choose another output file, or pass --force"
        )


def _written_here(path: Path) -> bool:
    """True for an .npz whose zip comment marks it as written by `archdsl weights --from`."""
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.comment.startswith(MARK)
    except (OSError, zipfile.BadZipFile, ValueError):
        return False


def write_marked_npz(path: Path, arrays: dict) -> None:
    """Write {name: array} as a float32 .npz (np.savez's layout) with MARK as its zip comment,
    atomically."""
    import numpy as np

    def write(f):
        with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
            archive.comment = MARK
            for name, array in arrays.items():
                with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, np.asarray(array, dtype=np.float32))

    try:
        atomic_write(path, write)
    except OSError as exc:
        raise SourceError(f"{path}: cannot write here: {exc.strerror or exc}") from None
