"""Where a statement's modules live in the PyTorch model: the spec's nesting of block calls.

A statement named `layer2.0.conv1` (call 0 of `layer2 = basic(...) * 2`, its statement `conv1`)
is the module `self.layer2[0].conv1`: `layer2` is an nn.ModuleList holding one nn.Module per
call, and each call's module holds its statements' modules, so the state_dict key of that
statement's conv weight is `layer2.0.conv1.conv.weight`, its portable name.
"""

from __future__ import annotations

from collections.abc import Callable

from archdsl.backends.pysource import Call, Code, Seq
from archdsl.backends.torch.block_classes import sequence


def attribute(name: str, owner: str = "self") -> str:
    """The expression of a statement's module inside `owner`: `self.layer2[0].conv1`."""
    out = owner
    for part in name.split("."):
        out += f"[{part}]" if part.isdigit() else f".{part}"
    return out


def containers(names: list[str], make: Callable[[str], Code | None]) -> dict[str, list]:
    """Per statement, the containers to create before its own module, as (name, constructor),
    each once, at the first statement in it. A call's container is `make(path)` (a block's
    class), or a plain `nn.Module()` where that is None; the calls of one statement are an
    nn.Sequential when all have a class, else an nn.ModuleList."""
    calls: dict[str, int] = {}
    for name in names:
        parts = name.split(".")
        for i, part in enumerate(parts[:-1]):
            if part.isdigit():
                prefix = ".".join(parts[:i])
                calls[prefix] = max(calls.get(prefix, 0), int(part) + 1)
    made: set[str] = set()
    out = {}
    for name in names:
        parts = name.split(".")
        lines = []
        for i in range(1, len(parts)):
            prefix = ".".join(parts[:i])
            if prefix in made or parts[i - 1].isdigit():  # a call's module: its list made it
                continue
            made.add(prefix)
            if parts[i].isdigit():
                lines.append((prefix, _calls(prefix, calls[prefix], make)))
            else:
                lines.append((prefix, make(prefix) or "nn.Module()"))
        out[name] = lines
    return out


def _calls(prefix: str, count: int, make: Callable[[str], Code | None]) -> Code:
    """The container of a statement's calls `prefix.0` ... `prefix.{count - 1}`."""
    made = [make(f"{prefix}.{k}") for k in range(count)]
    if all(m is not None for m in made):
        return sequence(made)
    if not any(made):
        return f"nn.ModuleList(nn.Module() for _ in range({count}))"
    return Call("nn.ModuleList", (Seq("[]", tuple(m or "nn.Module()" for m in made)),))
