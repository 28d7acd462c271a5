"""Pairing two models' tensor layers in order, by kind and shape: all a bare state_dict allows."""

from __future__ import annotations

from archdsl.weight_records import LayerGraph, Pairing, PairingError, family, tensor_keys


def pair_in_order(ours: LayerGraph, theirs: LayerGraph, leave_out: frozenset[str]) -> Pairing:
    """The k-th layer of ours with the k-th of theirs: equal kinds and shapes (a left-out
    layer of ours: equal kind family), the same number of layers, or PairingError naming the
    first two that differ."""
    mine, other = ours.in_order(), theirs.in_order()
    result = Pairing(by_order=True)
    for a, b in zip(mine, other, strict=False):
        if a.name in leave_out and family(a.kind) == family(b.kind):
            result.left_out.extend(key for _, key, _ in b.tensors)
        elif a.signature == b.signature and a.name not in leave_out:
            result.layers[b.name] = a.name
            result.keys.update(tensor_keys(a, b))
        else:
            raise PairingError(
                f"cannot pair the tensors in order: {theirs.origin}'s {b.describe()} meets "
                f"{ours.origin}'s {a.describe()}"
            )
    if len(mine) != len(other):
        longer, shorter = (ours, theirs) if len(mine) > len(other) else (theirs, ours)
        extra = longer.in_order()[len(shorter.layers)]
        raise PairingError(
            f"cannot pair the tensors in order: {longer.origin}'s {extra.describe()} has no "
            f"partner in {shorter.origin} ({len(mine)} layers with tensors against "
            f"{len(other)})"
        )
    return result
