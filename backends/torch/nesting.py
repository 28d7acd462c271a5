"""Where a statement's modules live in the PyTorch model: the spec's nesting of block calls.

A statement named `layer2.0.conv1` (call 0 of `layer2 = basic(...) * 2`, its statement `conv1`)
is the module `self.layer2[0].conv1`: `layer2` is an nn.ModuleList holding one nn.Module per
call, and each call's module holds its statements' modules, so the state_dict key of that
statement's conv weight is `layer2.0.conv1.conv.weight`, its portable name.
"""

from __future__ import annotations


def attribute(name: str, owner: str = "self") -> str:
    """The expression of a statement's module inside `owner`: `self.layer2[0].conv1`."""
    out = owner
    for part in name.split("."):
        out += f"[{part}]" if part.isdigit() else f".{part}"
    return out


def containers(names: list[str]) -> dict[str, list[tuple[str, str]]]:
    """Per statement, the containers to create before its own module, as (name, constructor):
    (`layer2`, `nn.ModuleList(nn.Module() for _ in range(2))`), (`inception3a`, `nn.Module()`);
    each container once, at the first statement in it, sized for every call `names` numbers."""
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
                made_list = f"nn.ModuleList(nn.Module() for _ in range({calls[prefix]}))"
                lines.append((prefix, made_list))
            else:
                lines.append((prefix, "nn.Module()"))
        out[name] = lines
    return out
