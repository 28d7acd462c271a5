"""Checks an .npz weight file from its zip directory and .npy headers, reading no array data.

Standard library only: `archdsl weights` and the runtimes' `portable.read_npz` both use it.
A file passes when it is a zip archive (at most MAX_MEMBERS members, stored or deflated) of
`NAME.npy` members, each with a literal {descr, fortran_order, shape} header, a plain
little-endian float or integer dtype and exactly the data its shape needs: a file cannot
claim more data than it holds, so loading it allocates no more than it really decompresses
to. Every problem is an NpzError with a one-line message naming the file and the member.
"""

import ast
import io
import math
import os
import stat
import zipfile
import zlib

MAX_MEMBERS = 100_000
MAX_DIRECTORY_BYTES = 16 * 2**20  # zipfile reads the whole zip directory at once
MAX_HEADER_BYTES = 10_000  # numpy's own limit (np.load's max_header_size)
MAX_DIMS = 32
MAX_ARRAY_BYTES = 2**62
DEFLATE_MAX_RATIO = 1032  # deflate never makes more than 1032 bytes of one
# zip flags zipfile cannot read: encrypted, compressed patched data, strong encryption
UNREADABLE_FLAGS = 0x1 | 0x20 | 0x40
ZIP_STARTS = (b"PK\x03\x04", b"PK\x05\x06")  # a member, or the end of an empty archive
NPY_MAGIC = b"\x93NUMPY"
# .npy version -> (bytes of the header-length field, the header's encoding)
NPY_VERSIONS = {(1, 0): (2, "latin1"), (2, 0): (4, "latin1"), (3, 0): (4, "utf8")}
HEADER_KEYS = {"descr", "fortran_order", "shape"}
# the dtypes numpy writes for plain floats and integers -> their size in bytes
DTYPES = {
    f"{'|' if size == 1 else '<'}{kind}{size}": size
    for kind, sizes in (("f", (2, 4, 8)), ("i", (1, 2, 4, 8)), ("u", (1, 2, 4, 8)))
    for size in sizes
}
# what zipfile and zlib raise on a damaged archive or member (OSError: a bad offset)
ZIP_ERRORS = (
    OSError,
    EOFError,
    ValueError,
    NotImplementedError,
    zipfile.BadZipFile,
    zlib.error,
)


class NpzError(ValueError):
    """An .npz file that is not a plain archive of numeric arrays (one-line message)."""


def printable(text):
    """The text with each unprintable character (ESC, newline, ...) as its Python escape."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


def read_headers(path):
    """{array name: (shape, descr)} of every array in an .npz, checked without its data."""
    where = printable(str(path))
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise NpzError(f"{where}: not a regular file")
        f = _CappedReads(path, where)
    except OSError as exc:
        raise NpzError(f"{where}: cannot be read ({_reason(exc)})") from None
    with f:
        try:
            if f.read(4) not in ZIP_STARTS:
                raise NpzError(f"{where}: not an .npz file (not a zip archive)")
            with zipfile.ZipFile(f) as archive:
                return _read_archive(archive, os.fstat(f.fileno()).st_size, where)
        except NpzError:
            raise
        except ZIP_ERRORS as exc:
            raise NpzError(
                f"{where}: not a readable .npz file ({_reason(exc)})"
            ) from None


class _CappedReads(io.BufferedReader):
    """A binary file that refuses any one read over MAX_DIRECTORY_BYTES: zipfile reads the
    whole zip directory in one read, so a huge directory is refused before it is parsed."""

    def __init__(self, path, where):
        """Open `path` for reading; `where` names it in messages."""
        super().__init__(io.FileIO(path))
        self.where = where

    def read(self, size=-1):
        """At most `size` bytes, `size` being at most MAX_DIRECTORY_BYTES."""
        if size is not None and size > MAX_DIRECTORY_BYTES:
            raise NpzError(
                f"{self.where}: the zip directory is over {MAX_DIRECTORY_BYTES:,} bytes"
            )
        return super().read(size)


def _reason(exc):
    """An exception's message, on one printable line."""
    return printable(getattr(exc, "strerror", None) or str(exc) or type(exc).__name__)


def _read_archive(archive, archive_size, where):
    """The headers of every member, their names and sizes checked before any is opened."""
    members = archive.infolist()
    if len(members) > MAX_MEMBERS:
        raise NpzError(f"{where}: {len(members):,} members; at most {MAX_MEMBERS:,}")
    seen = set()
    for info in members:
        _check_member(info, archive_size, f"{where}: member {printable(info.filename)}")
        if info.filename in seen:
            raise NpzError(f"{where}: member {printable(info.filename)} appears twice")
        seen.add(info.filename)
    return {
        info.filename.removesuffix(".npy"): _read_member(archive, info, where)
        for info in members
    }


def _check_member(info, archive_size, member):
    """Refuse a member that is not an uncompressed-or-deflated .npy its archive can hold."""
    if not info.filename.endswith(".npy"):
        raise NpzError(f"{member}: not an .npy array (an .npz holds only NAME.npy)")
    if info.flag_bits & UNREADABLE_FLAGS:
        raise NpzError(
            f"{member}: encrypted or patched (zip flags {info.flag_bits:#x})"
        )
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise NpzError(
            f"{member}: compression method {info.compress_type}; "
            "only stored and deflated members are read"
        )
    if not 0 <= info.header_offset <= archive_size - info.compress_size:
        raise NpzError(f"{member}: lies outside the file")
    most = info.compress_size
    if info.compress_type == zipfile.ZIP_DEFLATED:
        most *= DEFLATE_MAX_RATIO
    if info.file_size > most:
        raise NpzError(
            f"{member}: claims {info.file_size:,} bytes from {info.compress_size:,} "
            f"in the file; they can hold at most {most:,}"
        )


def _read_member(archive, info, where):
    """(shape, descr) of one member, from its header alone."""
    member = f"{where}: member {printable(info.filename)}"
    try:
        with archive.open(info) as f:
            header_end, text = _header_text(f, info.file_size, member)
    except NpzError:
        raise
    except ZIP_ERRORS as exc:
        raise NpzError(f"{member}: cannot be read ({_reason(exc)})") from None
    shape, descr = _parse_header(text, member)
    data_bytes = math.prod(shape) * DTYPES[descr]
    if data_bytes != info.file_size - header_end:
        raise NpzError(
            f"{member}: its header claims {data_bytes:,} bytes of data "
            f"({' x '.join(map(str, shape)) or 'scalar'} of {descr}), "
            f"the member holds {info.file_size - header_end:,}"
        )
    return shape, descr


def _header_text(f, member_size, member):
    """(offset of the array data, the header's text) of an open .npy member."""
    prefix = f.read(len(NPY_MAGIC) + 2)
    if prefix[: len(NPY_MAGIC)] != NPY_MAGIC or len(prefix) < len(NPY_MAGIC) + 2:
        raise NpzError(f"{member}: not in .npy format (no .npy magic)")
    version = tuple(prefix[len(NPY_MAGIC) :])
    if version not in NPY_VERSIONS:
        raise NpzError(f"{member}: .npy version {version[0]}.{version[1]} (1.0 to 3.0)")
    length_bytes, encoding = NPY_VERSIONS[version]
    field = f.read(length_bytes)
    length = int.from_bytes(field, "little")
    header_end = len(prefix) + length_bytes + length
    if len(field) < length_bytes or header_end > member_size:
        raise NpzError(f"{member}: the .npy header runs past the member's end")
    if length > MAX_HEADER_BYTES:
        raise NpzError(
            f"{member}: a {length:,}-byte .npy header; at most {MAX_HEADER_BYTES:,}"
        )
    try:
        return header_end, f.read(length).decode(encoding)
    except UnicodeDecodeError:
        raise NpzError(f"{member}: the .npy header is not {encoding} text") from None


def _parse_header(text, member):
    """(shape, descr) from an .npy header's text, every value checked."""
    try:
        header = ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, RecursionError):
        raise NpzError(f"{member}: the .npy header is not a Python literal") from None
    if not isinstance(header, dict) or set(header) != HEADER_KEYS:
        raise NpzError(
            f"{member}: the .npy header is not a dict of exactly "
            + ", ".join(sorted(HEADER_KEYS))
        )
    if type(header["fortran_order"]) is not bool:
        raise NpzError(
            f"{member}: the .npy header's fortran_order is not True or False"
        )
    descr = header["descr"]
    if not isinstance(descr, str) or descr not in DTYPES:
        raise NpzError(
            f"{member}: dtype {printable(repr(descr))[:40]} is not a plain "
            "little-endian float or integer (no objects, no structured types)"
        )
    return _checked_shape(header["shape"], DTYPES[descr], member), descr


def _checked_shape(shape, itemsize, member):
    """The header's shape: a tuple of at most MAX_DIMS sizes that numpy can allocate."""
    if not (
        type(shape) is tuple
        and len(shape) <= MAX_DIMS
        and all(type(n) is int and n >= 0 for n in shape)
    ):
        raise NpzError(
            f"{member}: the .npy shape is not a tuple of at most {MAX_DIMS} "
            "non-negative integers"
        )
    if math.prod(max(n, 1) for n in shape) * itemsize > MAX_ARRAY_BYTES:
        raise NpzError(f"{member}: the .npy shape is too large for any array")
    return shape
