"""Reading a .safetensors file with NumPy alone (no `safetensors` package, no pickle).

The format: an 8-byte little-endian header length N, N bytes of a JSON object
{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}, then the raw
little-endian data, each tensor's bytes at [begin, end) of it. Every field is checked before
any data is read; floats become float32, integers keep their type.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

MAX_HEADER_BYTES = 100 * 2**20
# safetensors dtype -> (NumPy dtype, bytes per value); BF16 is read as the top half of float32
DTYPES = {
    "F64": ("<f8", 8),
    "F32": ("<f4", 4),
    "F16": ("<f2", 2),
    "BF16": ("<u2", 2),
    "I64": ("<i8", 8),
    "I32": ("<i4", 4),
    "I16": ("<i2", 2),
    "I8": ("i1", 1),
    "U8": ("u1", 1),
    "BOOL": ("u1", 1),
}


class SafetensorsError(ValueError):
    """Not a readable .safetensors file (a one-line message)."""


def read_safetensors(path: Path) -> dict:
    """{name: NumPy array} of every tensor in the file, in the header's order."""
    import numpy as np

    with open(path, "rb") as f:
        size = f.seek(0, 2)
        f.seek(0)
        length = int.from_bytes(f.read(8), "little")
        if size < 8 or not 2 <= length <= min(MAX_HEADER_BYTES, size - 8):
            raise SafetensorsError(f"{path}: not a .safetensors file (bad header length)")
        entries = _entries(f.read(length), path)
        data_size = size - 8 - length
        arrays = {}
        for name, (dtype, shape, begin, end) in entries.items():
            numpy_dtype, width = DTYPES[dtype]
            if not 0 <= begin <= end <= data_size or end - begin != math.prod(shape) * width:
                raise SafetensorsError(
                    f"{path}: tensor {name!r}: its data_offsets do not hold "
                    f"{' x '.join(map(str, shape)) or 'a scalar'} of {dtype}"
                )
            f.seek(8 + length + begin)
            values = np.frombuffer(f.read(end - begin), dtype=numpy_dtype).reshape(shape)
            arrays[name] = _converted(values, dtype)
    return arrays


def _converted(values, dtype: str):
    """Floats as float32 (BF16 widened), integers and booleans as stored."""
    import numpy as np

    if dtype == "BF16":
        return (values.astype(np.uint32) << 16).view(np.float32)
    if dtype.startswith("F"):
        return values.astype(np.float32)
    return values.copy()


def _entries(header: bytes, path: Path) -> dict:
    """{name: (dtype, shape, begin, end)} from the JSON header, every field checked."""
    try:
        table = json.loads(header.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise SafetensorsError(
            f"{path}: not a .safetensors file (the header is not JSON)"
        ) from None
    if not isinstance(table, dict):
        raise SafetensorsError(f"{path}: not a .safetensors file (the header is not an object)")
    entries = {}
    for name, entry in table.items():
        if name == "__metadata__":
            continue
        ok = isinstance(entry, dict) and entry.get("dtype") in DTYPES
        shape, offsets = (entry.get("shape"), entry.get("data_offsets")) if ok else (None, None)
        if not (ok and _ints(shape) and _ints(offsets) and len(offsets) == 2):
            raise SafetensorsError(f"{path}: tensor {name!r} has no valid dtype, shape, offsets")
        entries[name] = (entry["dtype"], tuple(shape), *offsets)
    return entries


def _ints(values) -> bool:
    """Whether `values` is a list of non-negative integers."""
    return isinstance(values, list) and all(type(v) is int and v >= 0 for v in values)
