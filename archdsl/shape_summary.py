"""The generated shape_table.py: `archdsl shapes`'s table as data, for the trainers' start."""

from __future__ import annotations

import json

from archdsl.report_format import activation_bytes, as_table
from archdsl.shapes import Report

HEADER = '"""The shape table of `archdsl shapes` for {spec}, computed at compile time."""'


def render_shape_table(report: Report, spec_name: str) -> str:
    """shape_table.py: LINES (the table and its totals but its title and the activation
    line at batch 1), ACTIVATION_VALUES and ACTIVATION_BYTES per example (float32)."""
    lines = as_table(report, 1).splitlines()[1:-1]
    shown = "".join(f"    {json.dumps(line)},\n" for line in lines)
    return (
        f"{HEADER.format(spec=json.dumps(spec_name)[1:-1])}\n\n"
        f"LINES = (\n{shown})\n"
        f"ACTIVATION_VALUES = {report.total_activations}  # op outputs per example\n"
        "# float32 bytes per example of every op's output and the input (one forward)\n"
        f"ACTIVATION_BYTES = {activation_bytes(report, 1)}\n"
    )
