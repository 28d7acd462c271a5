"""Specs as small trees the generator builds, the tracker reads and the shrinker edits, and
their text (the language of README.md, "The language")."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Init:
    """An initialiser call: `normal(std=0.1)`."""

    name: str
    args: tuple = ()  # (name, value) pairs

    def text(self) -> str:
        """The call as written."""
        inner = ", ".join(f"{k}={value_text(v)}" for k, v in self.args)
        return f"{self.name}({inner})" if self.args else self.name


@dataclass(frozen=True)
class Ref:
    """A block parameter read in the block's body, in an expression of its own:
    `w`, `w * 2`, `w * 2 // 3 + 1` (((w * factor) // div) + plus)."""

    param: str
    factor: int = 1
    div: int = 1
    plus: int = 0

    def text(self) -> str:
        """As the language writes it."""
        out = self.param + (f" * {self.factor}" if self.factor != 1 else "")
        out += f" // {self.div}" if self.div != 1 else ""
        return out + (
            f" + {self.plus}" if self.plus > 0 else f" - {-self.plus}" if self.plus else ""
        )

    def value(self, env: dict):
        """The value in `env` (the block's parameters and `index`)."""
        value = env[self.param]
        if (self.factor, self.div, self.plus) == (1, 1, 0):
            return value  # any type: a size, a name, a float
        return value * self.factor // self.div + self.plus


@dataclass(frozen=True)
class IfFirst:
    """A call argument that differs in the first repetition: `2 if index == 0 else 1`, or
    (first=True, rest=False) written as `index == 0`."""

    first: object
    rest: object

    def text(self) -> str:
        """As the language writes it."""
        if self.first is True and self.rest is False:
            return "index == 0"
        return f"{value_text(self.first)} if index == 0 else {value_text(self.rest)}"

    def value(self, env: dict):
        """The value in `env` (the block's parameters and `index`)."""
        return self.first if env["index"] == 0 else self.rest


def value_text(value) -> str:
    """A value as the language writes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return " x ".join(str(v) for v in value)
    if isinstance(value, (Init, Ref, IfFirst)):
        return value.text()
    return str(value)


def evaluate(value, env: dict):
    """A value with block parameters and `index` replaced by what they hold in `env`."""
    return value.value(env) if isinstance(value, (Ref, IfFirst)) else value


@dataclass
class Op:
    """One op of a pipeline: its kind, its arguments in the order written, and how many of the
    leading ones are written positionally."""

    kind: str
    args: dict = field(default_factory=dict)
    positional: int = 0
    again: tuple = ()  # (name, value) pairs written once more at the end (a mistake: E016)

    def items(self) -> list:
        """Every (name, value) as written, `again` included."""
        return [*self.args.items(), *self.again]

    def text(self) -> str:
        """As the language writes it."""
        items = self.items()
        parts = [value_text(v) for _, v in items[: self.positional]]
        parts += [f"{k}={value_text(v)}" for k, v in items[self.positional :]]
        return f"{self.kind}({', '.join(parts)})" if parts else self.kind


@dataclass
class Call:
    """A block call, repeated `repeat` times (`* N`) or once without it (None)."""

    block: str
    args: dict = field(default_factory=dict)
    repeat: int | None = None

    def text(self) -> str:
        """As the language writes it."""
        inner = ", ".join(f"{k}={value_text(v)}" for k, v in self.args.items())
        return f"{self.block}({inner})" + (f" * {self.repeat}" if self.repeat else "")


@dataclass
class Stmt:
    """`name = [merge(a, b) |> | merge |>] op |> ... [from source] [expect dims] [if cond]`.

    merge: ("concat" | "add", names) starting the pipeline; tower_merge: `merge |>` (inside
    towers); call: a block call instead of ops; cond: (param, wanted) inside a block body.
    """

    name: str
    ops: list = field(default_factory=list)
    source: str | None = None
    merge: tuple | None = None
    tower_merge: bool = False
    call: Call | None = None
    expect: tuple | None = None
    cond: tuple | None = None

    def text(self) -> str:
        """As the language writes it."""
        pipe = []
        if self.merge:
            pipe.append(f"{self.merge[0]}({', '.join(self.merge[1])})")
        if self.tower_merge:
            pipe.append("merge")
        pipe += [op.text() for op in self.ops]
        if self.call:
            pipe.append(self.call.text())
        line = f"{self.name} = {' |> '.join(pipe)}"
        if self.source:
            line += f" from {self.source}"
        if self.expect:
            line += f" expect {value_text(tuple(self.expect))}"
        if self.cond:
            param, wanted = self.cond
            line += f" if {param}" if wanted else f" if not {param}"
        return line


@dataclass
class Block:
    """`block name(params) { body }`; params: (name, type, default or None) triples."""

    name: str
    params: list
    body: list


@dataclass
class Towers:
    """`towers count { body }`."""

    count: int
    body: list


@dataclass
class Spec:
    """A whole spec: the model's name, its inputs (name, shape), blocks and top-level items
    (Stmt or Towers), in the order written."""

    name: str
    inputs: list
    items: list
    blocks: list = field(default_factory=list)

    def statements(self) -> list:
        """Every top-level statement, those inside towers included, in order."""
        out = []
        for item in self.items:
            out += item.body if isinstance(item, Towers) else [item]
        return out

    def render(self) -> tuple[str, dict]:
        """(the spec's text, {top-level or towers statement name: its line number})."""
        lines, where = [f"model {self.name}"], {}
        lines += [f"input {name}: {value_text(tuple(shape))}" for name, shape in self.inputs]
        for block in self.blocks:
            params = ", ".join(_param_text(p) for p in block.params)
            lines.append(f"block {block.name}({params}) {{")
            lines += [f"  {s.text()}" for s in block.body]
            lines.append("}")
        for item in self.items:
            if isinstance(item, Towers):
                lines.append(f"towers {item.count} {{")
                for stmt in item.body:
                    lines.append(f"  {stmt.text()}")
                    where[stmt.name] = len(lines)
                lines.append("}")
            else:
                lines.append(item.text())
                where[item.name] = len(lines)
        return "\n".join(lines) + "\n", where

    def text(self) -> str:
        """As the language writes it."""
        return self.render()[0]


def _param_text(param) -> str:
    """A block parameter as written: `name: type = default`."""
    name, kind, default = param
    return f"{name}: {kind}" + ("" if default is None else f" = {value_text(default)}")
