"""The table of bench/gpu_check.sh: one row per check, summarised from the check's log, kept
as a Markdown section of bench/RESULTS.md between two marker comments.

  gpu_check_report.py record ROWS ID STATUS SECONDS LOG COMMAND...   append a row to ROWS
  gpu_check_report.py render ROWS MACHINE > SECTION.md               the section, rows in order
  gpu_check_report.py write SECTION.md RESULTS.md                    put it into RESULTS.md

`write` replaces the text between the markers (or appends the section when RESULTS.md has
none) and keeps the rows of the section already there whose check SECTION.md lacks, so a
rerun of a few checks (GPU_CHECK_ONLY) updates only their rows. Standard library only.
"""

from __future__ import annotations

import json
import re
import statistics
import sys
from pathlib import Path

BEGIN = "<!-- gpu_check: begin (bench/gpu_check.sh writes this section; do not edit by hand) -->"
END = "<!-- gpu_check: end -->"
COLUMNS = ("check", "command", "status", "s", "result", "measured (UTC)")
TITLE = "## GPU check: `bench/gpu_check.sh` (issues 15 and 16)"
ROW_ID = re.compile(r"^\| `(?P<id>[\w-]+)` \|")
CELL_MAX = 400


def cell(text: str) -> str:
    """One table cell: a single line, pipes escaped, at most CELL_MAX characters."""
    flat = " ".join(str(text).split()).replace("|", "\\|")
    return flat if len(flat) <= CELL_MAX else flat[: CELL_MAX - 3] + "..."


def last_line(lines: list[str]) -> str:
    """The last non-blank line (a failure's message), or a dash."""
    return next((line.strip() for line in reversed(lines) if line.strip()), "-")


def table_rows(lines: list[str]) -> list[list[str]]:
    """The cells of every Markdown table row in lines but header and rule rows."""
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines]
    return [r for r in rows if len(r) > 1 and not set(r[0]) <= set("-:")][1:]


def summarise_torch_vs_reference(lines: list[str]) -> str:
    """generated / reference per pair and the generated models' images/s."""
    ratios = [line.split(":", 1)[1].strip() for line in lines if line.startswith("generated / ")]
    rates = [
        line.split("ms/step")[1].split("images/s")[0].strip()
        for line in lines
        if line.strip().startswith("generated ") and "images/s" in line
    ]
    if not ratios:
        return last_line(lines)
    return f"gen / ref {ratios[-1]}; generated img/s {', '.join(rates)}"


def summarise_profile(lines: list[str]) -> str:
    """bench/gpu_profile_step.py's `profile:` line."""
    found = [line.split(":", 1)[1].strip() for line in lines if line.startswith("profile:")]
    return found[-1] if found else last_line(lines)


def summarise_end_to_end(lines: list[str]) -> str:
    """Per case and backend: trainer and bare images/s, their ratio, trainer / reference."""
    table = [line for line in lines if line.startswith("|")]
    parts = []
    for r in table_rows(table):
        if len(r) < 13:
            continue
        versus = "" if r[11] == "-" else f", trainer / reference {r[11]}"
        parts.append(
            f"{r[0]} {r[2]} b{r[3]}: trainer {r[5]} img/s, bare {r[8]}, "
            f"trainer / bare {r[9].strip('*')}{versus}"
        )
    return "; ".join(parts) if parts else last_line(lines)


def summarise_decode(lines: list[str]) -> str:
    """bench/gpu_decode.py: median images/s of each feed, the ratio and the pixel distance."""
    rows = [r for r in table_rows([line for line in lines if line.startswith("|")]) if len(r) == 4]
    tail = [line for line in lines if line.startswith("median ratio")]
    if not rows or not tail:
        return last_line(lines)
    cpu = statistics.median(float(r[1]) for r in rows)
    gpu = statistics.median(float(r[2]) for r in rows)
    return f"--decode cpu {cpu:.0f} img/s, --decode gpu {gpu:.0f} img/s; {tail[-1]}"


def summarise_env(lines: list[str]) -> str:
    """The `env:` lines of the machine check."""
    found = [line.split(":", 1)[1].strip() for line in lines if line.startswith("env:")]
    return "; ".join(found) if found else last_line(lines)


SUMMARISERS = {
    "env": summarise_env,
    "tvr": summarise_torch_vs_reference,
    "profile": summarise_profile,
    "e2e": summarise_end_to_end,
    "keras": summarise_end_to_end,
    "decode": summarise_decode,
}


def summarise(check: str, status: str, log: Path) -> str:
    """The result cell of a check: its figures when it ran, else its log's last line."""
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines() if log.exists() else []
    if status.startswith("skipped"):
        return "-"
    if status != "ok":
        return last_line(lines)
    return SUMMARISERS[check.split("-")[0]](lines)


def record(rows: Path, check: str, status: str, seconds: str, log: Path, command: str) -> None:
    """Append one row (as a JSON line) to rows."""
    from datetime import datetime, timezone

    row = {
        "check": check,
        "command": command,
        "status": status,
        "s": f"{float(seconds):.0f}",
        "result": summarise(check, status, log),
        "measured (UTC)": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M"),
    }
    with rows.open("a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")


def row_line(row: dict) -> str:
    """One Markdown table row; the check's name in backticks."""
    cells = [f"`{row['check']}`", f"`{cell(row['command'])}`"]
    cells += [cell(row[c]) for c in COLUMNS[2:]]
    return "| " + " | ".join(cells) + " |"


def render(rows: Path, machine: str) -> str:
    """The whole section, markers included."""
    records = [json.loads(line) for line in rows.read_text(encoding="utf-8").splitlines() if line]
    head = "| " + " | ".join(COLUMNS) + " |\n" + "|---" * len(COLUMNS) + "|"
    body = "\n".join(row_line(r) for r in records)
    return f"{BEGIN}\n{TITLE}\n\n{machine}\n\n{head}\n{body}\n{END}\n"


def section_of(text: str) -> str | None:
    """The marked section of text, markers included, or None."""
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        return None
    return text[start : end + len(END)] + "\n"


def row_ids(section: str) -> dict[str, str]:
    """{check: its table line} of a section."""
    found = (ROW_ID.match(line) for line in section.splitlines())
    return {m["id"]: m.string for m in found if m}


def merged(new: str, old: str | None) -> str:
    """new's section with old's rows too: in old's order, each replaced by new's row of the
    same check where new has one; new's other rows after them."""
    fresh, kept = row_ids(new), row_ids(old or "")
    if not kept:
        return new
    rows = {**{check: fresh.get(check, line) for check, line in kept.items()}, **fresh}
    lines = new.splitlines()
    first = next(i for i, line in enumerate(lines) if ROW_ID.match(line))
    lines = [line for line in lines if not ROW_ID.match(line)]
    lines[first:first] = rows.values()
    return "\n".join(lines) + "\n"


def write(section_file: Path, results: Path) -> None:
    """Replace (or append) the marked section of results with section_file's, merged."""
    new = section_of(section_file.read_text(encoding="utf-8"))
    if new is None:
        sys.exit(f"{section_file}: no gpu_check section (markers missing)")
    text = results.read_text(encoding="utf-8")
    old = section_of(text)
    section = merged(new, old)
    if old is None:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        text = text.replace(old, section, 1)
    results.write_text(text, encoding="utf-8")


def main(argv: list[str]) -> None:
    """Dispatch the subcommands of the module docstring."""
    usage = __doc__.split("\n\n")[1]
    if len(argv) >= 6 and argv[0] == "record":
        rows, check, status, seconds, log, *command = argv[1:]
        record(Path(rows), check, status, seconds, Path(log), " ".join(command))
    elif len(argv) == 3 and argv[0] == "render":
        sys.stdout.write(render(Path(argv[1]), argv[2]))
    elif len(argv) == 3 and argv[0] == "write":
        write(Path(argv[1]), Path(argv[2]))
    else:
        sys.exit(f"usage:\n{usage}")


if __name__ == "__main__":
    main(sys.argv[1:])
