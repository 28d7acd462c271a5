"""Hostile .npz files for the npzcheck tests of `archdsl weights` and the runtimes' load_weights.

CASES lists (id, the file's bytes, a key part of the one-line message that refuses it); the
front end's tests (tests/unit) and the runtimes' (tests/torch_runtime, tests/keras_runtime)
run the same files. Built with the standard library alone: a test may run anywhere.
"""

import io
import struct
import warnings
import zipfile
import zlib

NPY_MAGIC = b"\x93NUMPY"
GOOD = {"descr": "<f4", "fortran_order": False, "shape": (2, 3)}
GOOD_DATA = bytes(24)  # 2 x 3 float32
# a field of a zip central directory entry -> (offset in the entry, struct format)
DIRECTORY_FIELDS = {
    "flags": (8, "<H"),
    "method": (10, "<H"),
    "compressed_size": (20, "<I"),
    "file_size": (24, "<I"),
    "offset": (42, "<I"),
}
CLAIMED = 375_000_000  # float32 values: 1.5 GB claimed by a member of 1.45 MB


def header(**changes) -> str:
    """The text of a good .npy header with some values changed."""
    return repr(GOOD | changes)


def npy(text=None, data=GOOD_DATA, version=(1, 0), magic=NPY_MAGIC) -> bytes:
    """An .npy member: magic, version, header length, the header text as given, data."""
    raw = (header() if text is None else text).encode("utf8" if version == (3, 0) else "latin1")
    length = struct.pack("<H" if version == (1, 0) else "<I", len(raw))
    return magic + bytes(version) + length + raw + data


def npz(*members, method=zipfile.ZIP_STORED) -> bytes:
    """A zip of (name, bytes) members, as given (duplicate names too)."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns of a duplicate name
        with zipfile.ZipFile(buffer, "w", method) as archive:
            for name, data in members:
                archive.writestr(name, data)
    return buffer.getvalue()


GOOD_FILE = npz(("a.npy", npy()))


def patched(data: bytes, field: str, value: int) -> bytes:
    """The archive with one field of its first central directory entry set to `value`."""
    offset, fmt = DIRECTORY_FIELDS[field]
    at = data.index(b"PK\x01\x02") + offset
    return data[:at] + struct.pack(fmt, value) + data[at + struct.calcsize(fmt) :]


def repeated_entries(count: int, name: str = "a.npy") -> bytes:
    """One small member whose directory entry is listed `count` times."""
    one = npz((name, npy()))
    start, end = one.index(b"PK\x01\x02"), one.index(b"PK\x05\x06")
    directory = one[start:end] * count
    entries = min(count, 0xFFFF)
    record = struct.pack(
        "<4s4H2LH", b"PK\x05\x06", 0, 0, entries, entries, len(directory), start, 0
    )
    return one[:start] + directory + record


def garbled_deflate() -> bytes:
    """A deflated member whose compressed bytes are not a deflate stream."""
    data = npz(("a.npy", npy()), method=zipfile.ZIP_DEFLATED)
    start = data.index(b"a.npy") + len("a.npy")  # the local header ends with the name
    return data[:start] + b"\xff" * 16 + data[start + 16 :]


def deflated_zeros(values: int = CLAIMED) -> bytes:
    """A real .npz whose member a.npy deflates `values` float32 zeros (1.5 GB) into about a
    thousandth of that: each million zero bytes is one identical deflate block. Its CRC is
    left 0: nothing may read that far."""
    head, zeros, end = (zlib.compressobj(9, zlib.DEFLATED, -15) for _ in range(3))
    npy_header = npy(header(shape=(values,)), data=b"")
    million = zeros.compress(bytes(10**6)) + zeros.flush(zlib.Z_FULL_FLUSH)
    stream = b"".join(
        [
            head.compress(npy_header) + head.flush(zlib.Z_FULL_FLUSH),
            million * (values * 4 // 10**6),
            end.flush(),
        ]
    )
    size, name = len(npy_header) + values * 4, b"a.npy"
    sizes = (0, len(stream), size, len(name))  # crc, compressed, uncompressed, name length
    local = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 8, 0, 0, *sizes, 0) + name
    entry = struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 8, 0, 0, *sizes, 0, 0, 0, 0, 0, 0)
    directory = entry + name
    offset = len(local) + len(stream)
    end_record = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, len(directory), offset, 0)
    return local + stream + directory + end_record


def raw_npy_v1(length: int, rest: bytes) -> bytes:
    """An .npy member of version 1.0 with any header length and the bytes after it."""
    return NPY_MAGIC + b"\x01\x00" + struct.pack("<H", length) + rest


# a good array whose name would colour a terminal red
ESCAPE_NAMED = npz(("\x1b[31mred.npy", npy()))
# a valid file of 1.45 MB holding a 1.5 GB array: only its headers may be read
DEFLATED_ZEROS = deflated_zeros()

CASES = [
    ("not_a_zip", b"this is not a zip archive", "not an .npz file (not a zip archive)"),
    ("junk_before_zip", b"junk" + GOOD_FILE, "not an .npz file (not a zip archive)"),
    ("truncated_zip", GOOD_FILE[: len(GOOD_FILE) // 2], "not a readable .npz file"),
    ("member_not_npy", npz(("notes.txt", b"hello")), "member notes.txt: not an .npy array"),
    ("folder_member", npz(("folder/", b"")), "member folder/: not an .npy array"),
    ("bad_magic", npz(("a.npy", npy(magic=b"\x93NUMPX"))), "member a.npy: not in .npy format"),
    ("short_member", npz(("a.npy", b"\x93NU")), "member a.npy: not in .npy format"),
    ("npy_version_4", npz(("a.npy", npy(version=(4, 0)))), ".npy version 4.0 (1.0 to 3.0)"),
    (
        "header_past_member",
        npz(("a.npy", raw_npy_v1(0xFFFF, b"{}"))),
        "the .npy header runs past the member's end",
    ),
    (
        "header_too_long",
        npz(("a.npy", npy(header() + " " * 20_000, version=(2, 0)))),
        f"a {len(header()) + 20_000:,}-byte .npy header; at most 10,000",
    ),
    (
        "header_not_utf8",
        npz(("a.npy", NPY_MAGIC + b"\x03\x00" + struct.pack("<I", 2) + b"\xff\xfe")),
        "the .npy header is not utf8 text",
    ),
    (
        "header_code",
        npz(("a.npy", npy("{'descr': __import__('os').system('touch pwned')}"))),
        "the .npy header is not a Python literal",
    ),
    ("header_nested", npz(("a.npy", npy("-" * 5000 + "1"))), "not a Python literal"),
    (
        "header_not_dict",
        npz(("a.npy", npy("[1, 2]"))),
        "the .npy header is not a dict of exactly descr, fortran_order, shape",
    ),
    (
        "header_missing_key",
        npz(("a.npy", npy(repr({"descr": "<f4", "shape": (2, 3)})))),
        "not a dict of exactly descr, fortran_order, shape",
    ),
    (
        "header_extra_key",
        npz(("a.npy", npy(header(extra=1)))),
        "not a dict of exactly descr, fortran_order, shape",
    ),
    (
        "fortran_order_text",
        npz(("a.npy", npy(header(fortran_order="yes")))),
        "fortran_order is not True or False",
    ),
    *(
        (f"shape_{kind}", npz(("a.npy", npy(header(shape=shape)))), "non-negative integers")
        for kind, shape in (
            ("negative", (-1, 6)),
            ("float", (2.0, 3)),
            ("list", [2, 3]),
            ("bool", (True, 6)),
            ("33_dims", (1,) * 33),
        )
    ),
    (
        "shape_huge",
        npz(("a.npy", npy(header(shape=(2**40, 2**40))))),
        "the .npy shape is too large for any array",
    ),
    (
        "shape_huge_and_empty",
        npz(("a.npy", npy(header(shape=(0, 2**70)), data=b""))),
        "the .npy shape is too large for any array",
    ),
    (
        "pickled_objects",
        npz(("a.npy", npy(header(descr="|O")))),
        "dtype '|O' is not a plain little-endian float or integer",
    ),
    (
        "structured_dtype",
        npz(("a.npy", npy(header(descr=[("x", "<f4")])))),
        "dtype [('x', '<f4')] is not a plain",
    ),
    ("big_endian", npz(("a.npy", npy(header(descr=">f4")))), "dtype '>f4' is not a plain"),
    ("descr_number", npz(("a.npy", npy(header(descr=4)))), "dtype 4 is not a plain"),
    (
        "claims_1_5_gb",
        npz(("a.npy", npy(header(shape=(CLAIMED,)), data=bytes(1_450_000)))),
        f"its header claims 1,500,000,000 bytes of data ({CLAIMED} of <f4), "
        "the member holds 1,450,000",
    ),
    (
        "short_data",
        npz(("a.npy", npy(data=bytes(23)))),
        "its header claims 24 bytes of data (2 x 3 of <f4), the member holds 23",
    ),
    (
        "deflate_size_lie",
        patched(npz(("a.npy", npy()), method=zipfile.ZIP_DEFLATED), "file_size", 1_500_000_000),
        "claims 1,500,000,000 bytes from",
    ),
    (
        "stored_size_lie",
        patched(GOOD_FILE, "file_size", 1_000_000),
        "member a.npy: claims 1,000,000 bytes from",
    ),
    ("outside_file", patched(GOOD_FILE, "offset", 10**9), "member a.npy: lies outside the file"),
    ("encrypted", patched(GOOD_FILE, "flags", 0x1), "member a.npy: encrypted or patched"),
    (
        "bzip2",
        npz(("a.npy", npy()), method=zipfile.ZIP_BZIP2),
        "member a.npy: compression method 12; only stored and deflated",
    ),
    ("garbled_deflate", garbled_deflate(), "member a.npy: cannot be read"),
    ("duplicate", npz(("a.npy", npy()), ("a.npy", npy())), "member a.npy appears twice"),
    ("many_members", repeated_entries(100_001), "100,001 members; at most 100,000"),
    (
        "huge_directory",
        repeated_entries(17_000, "d" * 1000 + ".npy"),
        "the zip directory is over 16,777,216 bytes",
    ),
    (
        "escape_in_name",
        npz(("\x1b[31mevil", b"x")),
        "member \\x1b[31mevil: not an .npy array",
    ),
    ("newline_in_name", npz(("a\nb.npy", b"x")), "member a\\nb.npy: not in .npy format"),
]
