"""The op registry: every op of the language, declared once in a family module (see spec.py).

REGISTRY maps an op's name to its OpSpec, in the order the language documents them; the
tables other modules used to keep (signatures, IR classes, shape rules, counts, tensors) are
views of it.
"""

from __future__ import annotations

from archdsl.ops import (
    activations,
    attention,
    channels,
    linear,
    merges,
    norms,
    sequence,
    shaping,
    swin,
    tokens,
    upsampling,
    windows,
)
from archdsl.ops.spec import OpSpec

FAMILIES = (
    windows,
    norms,
    activations,
    shaping,
    upsampling,
    channels,
    linear,
    merges,
    tokens,
    attention,
    sequence,
    swin,
)

REGISTRY: dict[str, OpSpec] = {spec.name: spec for family in FAMILIES for spec in family.SPECS}
NODES = tuple(dict.fromkeys(spec.node for spec in REGISTRY.values()))  # each IR class once
MERGES = tuple(name for name, spec in REGISTRY.items() if spec.merge)
LEARNED = tuple(name for name, spec in REGISTRY.items() if spec.learned)
