"""A small TextMate tokenizer in Python's `re`, enough to run the generated .arch grammar.

It follows TextMate's rules for what the grammar uses: lines are read one at a time; at each
position the pattern matching earliest wins (the first listed on a tie, a region's `end`
before its patterns); `match` names its span and its captures; `begin`/`end` opens a region
whose patterns apply until `end`; `include` reads `#name` from the repository.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass
class Region:
    """An open `begin`/`end` region: its end regex and the patterns inside it."""

    end: re.Pattern | None
    patterns: list[dict]


def flatten(patterns: list[dict], repository: dict) -> list[dict]:
    """The patterns with every `include` replaced by what it names, in order."""
    out: list[dict] = []
    for pattern in patterns:
        if "include" in pattern:
            named = repository[pattern["include"].removeprefix("#")]
            is_rule = "match" in named or "begin" in named  # else a list of patterns
            out += [named] if is_rule else flatten(named["patterns"], repository)
        else:
            out.append(pattern)
    return out


def name_span(scopes: list[str | None], start: int, end: int, name: str | None) -> None:
    """Give the characters start..end the scope `name` (when there is one)."""
    if name:
        scopes[start:end] = [name] * (end - start)


def name_match(scopes: list[str | None], offset: int, m: re.Match, pattern: dict, key: str):
    """Scope a match: the pattern's name over it, then each named capture over its group."""
    name_span(scopes, offset + m.start(), offset + m.end(), pattern.get("name"))
    for group, capture in pattern.get(key, {}).items():
        if m.group(int(group)):
            name_span(
                scopes, offset + m.start(int(group)), offset + m.end(int(group)), capture["name"]
            )


def earliest(region: Region, line: str, pos: int):
    """The first match at or after `pos`: (match, pattern, or None for the region's end)."""
    best = (region.end.search(line, pos), None) if region.end else (None, None)
    for pattern in region.patterns:
        m = re.compile(pattern.get("match") or pattern["begin"]).search(line, pos)
        if m and (best[0] is None or m.start() < best[0].start()):
            best = (m, pattern)
    return best


def tokenize(grammar: dict, text: str) -> list[str | None]:
    """The innermost scope of every character of `text` (None where no pattern names it)."""
    repository = grammar["repository"]
    stack = [Region(None, flatten(grammar["patterns"], repository))]
    scopes: list[str | None] = [None] * len(text)
    offset = 0
    for line in text.splitlines(keepends=True):
        pos = 0
        while pos < len(line):
            m, pattern = earliest(stack[-1], line, pos)
            if m is None:
                break
            if pattern is None:
                stack.pop()
            elif "begin" in pattern:
                name_match(scopes, offset, m, pattern, "beginCaptures")
                inside = flatten(pattern.get("patterns", []), repository)
                stack.append(Region(re.compile(pattern["end"]), inside))
            else:
                name_match(scopes, offset, m, pattern, "captures")
            stuck = m.end() == pos and pattern is not None and "begin" not in pattern
            pos = pos + 1 if stuck else m.end()  # an empty match moves on; an empty end pops
        offset += len(line)
    return scopes
