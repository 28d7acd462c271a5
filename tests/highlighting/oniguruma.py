"""Oniguruma (the regex engine of VS Code's and TextMate's grammars) through ctypes, where the
system has libonig: enough to compile a pattern and list its matches in a line."""

from __future__ import annotations

import ctypes
import ctypes.util

ONIG_OPTION_NONE = 0
ONIG_MISMATCH = -1


class Region(ctypes.Structure):
    """OnigRegion: the byte spans of the match (0) and of each group."""

    _fields_ = [
        ("allocated", ctypes.c_int),
        ("num_regs", ctypes.c_int),
        ("beg", ctypes.POINTER(ctypes.c_int)),
        ("end", ctypes.POINTER(ctypes.c_int)),
        ("history_root", ctypes.c_void_p),
    ]


def load() -> ctypes.CDLL | None:
    """libonig, initialised for UTF-8, or None where it is not installed."""
    name = ctypes.util.find_library("onig")
    if name is None:
        return None
    lib = ctypes.CDLL(name)
    lib.onig_new.argtypes = [ctypes.c_void_p] * 7
    lib.onig_search.argtypes = [ctypes.c_void_p] * 6 + [ctypes.c_uint]
    lib.onig_region_new.restype = ctypes.POINTER(Region)
    lib.onig_initialize((ctypes.c_void_p * 1)(_utf8(lib)), 1)
    return lib


def _utf8(lib: ctypes.CDLL) -> int:
    """The address of Oniguruma's UTF-8 encoding."""
    return ctypes.addressof(ctypes.c_char.in_dll(lib, "OnigEncodingUTF8"))


class Regex:
    """One pattern compiled by Oniguruma with its default (Ruby) syntax, as vscode-textmate does."""

    def __init__(self, lib: ctypes.CDLL, pattern: str):
        self.lib = lib
        source = pattern.encode()
        self._source = ctypes.create_string_buffer(source)
        start = ctypes.addressof(self._source)
        self._handle = ctypes.c_void_p()
        syntax = ctypes.c_void_p.in_dll(lib, "OnigDefaultSyntax")
        error_info = ctypes.create_string_buffer(64)
        code = lib.onig_new(
            ctypes.byref(self._handle),
            start,
            start + len(source),
            ONIG_OPTION_NONE,
            _utf8(lib),
            syntax,
            error_info,
        )
        if code != 0:
            raise ValueError(f"Oniguruma refuses {pattern!r} (error {code})")

    def spans(self, line: str) -> list[tuple[tuple[int, int], ...]]:
        """Each successive match in `line`: the character spans of the match and its groups."""
        data = line.encode()
        buffer = ctypes.create_string_buffer(data)
        base = ctypes.addressof(buffer)
        region = self.lib.onig_region_new()
        out, pos = [], 0
        while pos <= len(data):
            args = (base, base + len(data), base + pos, base + len(data), region)
            if self.lib.onig_search(self._handle, *args, ONIG_OPTION_NONE) == ONIG_MISMATCH:
                break
            r = region.contents
            groups = [(r.beg[i], r.end[i]) for i in range(r.num_regs)]
            out.append(tuple(_characters(data, span) for span in groups))
            pos = groups[0][1] + (groups[0][1] == groups[0][0])
        self.lib.onig_region_free(region, 1)
        return out


def _characters(data: bytes, span: tuple[int, int]) -> tuple[int, int]:
    """A byte span of UTF-8 `data` as a character span (an unmatched group stays (-1, -1))."""
    if span[0] < 0:
        return span
    return tuple(len(data[:b].decode()) for b in span)
