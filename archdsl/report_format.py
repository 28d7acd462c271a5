"""The shape report as a terminal table, Markdown, or JSON-ready data."""

from __future__ import annotations

from archdsl.diagnostics import Diagnostic
from archdsl.ops.spec import layout
from archdsl.shapes import Report
from archdsl.train_groups import covered

MAC_NOTE = (
    "conv, conv_transpose, dense, attention, lstm and gru multiply-accumulates; bias adds excluded"
)


def _shape(shape) -> str:
    return " x ".join(str(d) for d in shape)


def _input(inp) -> str:
    """An input's shape as the spec writes it: `256 tokens of 20000` for token ids."""
    return f"{inp.shape[0]} tokens of {inp.vocab}" if inp.vocab else _shape(inp.shape)


def _shown(shape) -> str:
    """A shape in the table: token sequences (L x D) say so, maps and vectors need not."""
    return _shape(shape) + (" tokens" if layout(shape) == "tokens" else "")


def as_data(report: Report, diagnostics: list[Diagnostic], batch: int) -> dict:
    """The report as plain data (the `--format json` contract)."""
    g = report.graph
    return {
        "model": g.name,
        "file": g.file,
        "inputs": [
            {"name": i.name, "shape": list(i.shape)} | ({"vocab": i.vocab} if i.vocab else {})
            for i in g.inputs
        ],
        "output": g.output,
        "layers": [
            {
                "name": layer.name,
                "statement": layer.statement,
                "op": layer.op,
                "input_shape": list(layer.input_shape),
                "output_shape": list(layer.output_shape),
                "params": layer.params,
                "trainable_params": layer.trainable_params,
                "non_trainable_params": layer.frozen_params,
                "macs": layer.macs,
                "activations": layer.activations,
                "formula": layer.formula,
                "built": layer.built,
                "line": layer.span.line,
            }
            for layer in report.layers
        ],
        "total_params": report.total_params,
        "trainable_params": report.trainable_params,
        "non_trainable_params": report.total_params - report.trainable_params,
        "trained_params": report.trainable_params - frozen_params(report),
        "total_macs": report.total_macs,
        "macs_include_bias": False,
        "total_activations": report.total_activations,
        "batch": batch,
        "activation_memory_bytes": activation_bytes(report, batch),
        "diagnostics": [d.as_dict() for d in diagnostics],
    }


def activation_bytes(report: Report, batch: int) -> int:
    """float32 memory of every op's output (and the inputs) for one forward pass of `batch`."""
    inputs = sum(_prod(i.shape) for i in report.graph.inputs)
    return 4 * batch * (report.total_activations + inputs)


def _prod(shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def frozen_params(report: Report) -> int:
    """Trainable parameters of the statements the train block freezes."""
    freeze = report.graph.train.freeze
    return sum(
        layer.trainable_params for layer in report.layers if covered(layer.statement, freeze)
    )


def _fine_tuning(report: Report) -> list[str]:
    """The line on what the train block's `freeze` leaves to train (none without it)."""
    if not report.graph.train.freeze:
        return []
    frozen = frozen_params(report)
    return [
        f"fine-tuning: {report.trainable_params - frozen:,} of {report.trainable_params:,} "
        f"trainable params are trained ({frozen:,} frozen by `freeze`)"
    ]


def _rows(report: Report) -> list[list[str]]:
    return [
        [
            layer.name,
            layer.op,
            _shown(layer.output_shape),
            f"{layer.params:,}" if layer.params else "-",
            f"{layer.macs:,}" if layer.macs else "-",
            layer.formula if layer.built else f"{layer.formula}  (unused: not built)".lstrip(),
        ]
        for layer in report.layers
    ]


HEADERS = ["layer", "op", "output (C x H x W)", "params", "MACs", "how"]


def _totals(report: Report, batch: int) -> list[str]:
    frozen = report.total_params - report.trainable_params
    return [
        f"total params: {report.total_params:,} (trainable {report.trainable_params:,}, "
        f"non-trainable {frozen:,})",
        *_fine_tuning(report),
        f"total MACs: {report.total_macs:,} per example ({MAC_NOTE})",
        f"activations: {report.total_activations:,} values per example; "
        f"{activation_bytes(report, batch) / 2**20:,.1f} MiB in float32 at batch {batch}",
    ]


def as_table(report: Report, batch: int) -> str:
    """A fixed-width table that reads the same in a terminal and in a pipe."""
    rows = _rows(report)
    inputs = [[i.name, "input", _input(i), "-", "-", ""] for i in report.graph.inputs]
    body = inputs + rows
    widths = [max(len(r[c]) for r in [HEADERS, *body]) for c in range(len(HEADERS))]
    right = {3, 4}

    def line(cells: list[str]) -> str:
        out = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(out).rstrip()

    rule = "  ".join("-" * w for w in widths)
    title = f"{report.graph.name} ({report.graph.file})"
    return "\n".join([title, line(HEADERS), rule, *map(line, body), rule, *_totals(report, batch)])


def as_markdown(report: Report, batch: int) -> str:
    """A GitHub-flavoured Markdown table."""
    body = [[i.name, "input", _input(i), "-", "-", ""] for i in report.graph.inputs]
    body += _rows(report)

    def esc(cell: str) -> str:
        return cell.replace("|", "\\|")

    lines = [f"### {report.graph.name}", "", "| " + " | ".join(HEADERS) + " |"]
    lines.append("|" + "|".join(["---", "---", "---", "---:", "---:", "---"]) + "|")
    lines += ["| " + " | ".join(esc(c) for c in r) + " |" for r in body]
    lines += [""] + [f"- {t}" for t in _totals(report, batch)]
    return "\n".join(lines)
