"""The `archdsl` command line: check, shapes, ir, compile, train. Only this module does I/O."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from archdsl.compiler import Checked, check_source
from archdsl.diagnostics import Diagnostic, error, render

EXIT_OK, EXIT_ERRORS, EXIT_USAGE = 0, 1, 2
BACKENDS = ("torch", "keras")


class UsageError(Exception):
    """A problem with the command line or the files it names (exit code 2)."""


def _read(path: str) -> str:
    """Read a spec, turning I/O and encoding problems into UsageError."""
    p = Path(path)
    if not p.exists():
        raise UsageError(f"{path}: no such file")
    if p.is_dir():
        raise UsageError(f"{path}: is a directory, expected a .arch file")
    try:
        return p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise UsageError(f"{path}: {exc.strerror}") from None


def _color(stream) -> bool:
    return stream.isatty() and "NO_COLOR" not in os.environ


def _print_diagnostics(checked: Checked, stream=None, notes: bool = True) -> None:
    stream = stream or sys.stderr
    for d in checked.diagnostics:
        if d.severity == "info" and not notes:
            continue
        print(render(d, checked.source, _color(stream)), file=stream)


def _summary(diagnostics: list[Diagnostic]) -> str:
    counts = {s: sum(d.severity == s for d in diagnostics) for s in ("error", "warning", "info")}
    parts = [f"{n} {s}{'s' if n != 1 else ''}" for s, n in counts.items() if n]
    return ", ".join(parts) or "no problems"


def _promote(checked: Checked, strict: bool) -> None:
    """--strict: every warning becomes an error."""
    if strict:
        checked.diagnostics = [
            Diagnostic(d.code, "error", d.span, d.message, d.hint) if d.severity == "warning" else d
            for d in checked.diagnostics
        ]


def _exit_code(checked: Checked) -> int:
    return EXIT_ERRORS if any(d.severity == "error" for d in checked.diagnostics) else EXIT_OK


def _load(path: str, strict: bool = False) -> Checked:
    checked = check_source(_read(path), path)
    _promote(checked, strict)
    return checked


def cmd_check(args) -> int:
    """Report every diagnostic of each spec."""
    worst = EXIT_OK
    results = []
    for path in args.files:
        checked = _load(path, args.strict)
        worst = max(worst, _exit_code(checked))
        if args.format == "json":
            results.append(
                {
                    "file": path,
                    "ok": _exit_code(checked) == 0,
                    "diagnostics": [d.as_dict() for d in checked.diagnostics],
                }
            )
        else:
            _print_diagnostics(checked)
            print(f"{path}: {_summary(checked.diagnostics)}", file=sys.stderr)
    if args.format == "json":
        print(json.dumps(results if len(results) > 1 else results[0], indent=2))
    return worst


def cmd_shapes(args) -> int:
    """Print per-layer shapes, parameters and MACs."""
    from archdsl import report_format

    checked = _load(args.file, args.strict)
    if args.format == "json":
        if checked.report is None or not checked.report.layers and _exit_code(checked):
            data = {"file": args.file, "diagnostics": [d.as_dict() for d in checked.diagnostics]}
        else:
            data = report_format.as_data(checked.report, checked.diagnostics, args.batch)
        print(json.dumps(data, indent=2))
        return _exit_code(checked)
    _print_diagnostics(checked, notes=False)
    if checked.report is not None and _exit_code(checked) == EXIT_OK:
        render_fn = (
            report_format.as_markdown if args.format == "markdown" else report_format.as_table
        )
        print(render_fn(checked.report, args.batch))
    return _exit_code(checked)


def cmd_ir(args) -> int:
    """Print the IR as JSON, or its JSON Schema."""
    from archdsl import ir

    if args.schema:
        print(json.dumps(ir.Graph.model_json_schema(by_alias=True), indent=2))
        return EXIT_OK
    if not args.file:
        raise UsageError("ir: give a spec file, or --schema")
    checked = _load(args.file)
    if checked.graph is None or _exit_code(checked):
        _print_diagnostics(checked)
        return EXIT_ERRORS
    print(checked.graph.model_dump_json(indent=2, by_alias=True))
    return EXIT_OK


def cmd_compile(args) -> int:
    """Emit a standalone model and trainer for one backend."""
    from archdsl.emit import EmitError, write_output

    checked = _load(args.file, args.strict)
    _print_diagnostics(checked, notes=False)
    if not checked.ok:
        return EXIT_ERRORS
    out = Path(args.out) if args.out else Path("build") / f"{Path(args.file).stem}-{args.backend}"
    try:
        written = write_output(checked, args.backend, out, force=args.force)
    except EmitError as exc:
        raise UsageError(str(exc)) from None
    print(f"wrote {len(written)} files to {out}/ ({', '.join(sorted(p.name for p in written))})")
    return EXIT_OK


def cmd_train(args) -> int:
    """Compile, then run the generated trainer in a fresh process."""
    import subprocess

    args.out = args.out or str(Path("build") / f"{Path(args.file).stem}-{args.backend}")
    code = cmd_compile(args)
    if code != EXIT_OK:
        return code
    cmd = [sys.executable, str(Path(args.out) / "train.py"), *args.trainer_args]
    print("$ " + " ".join(cmd), file=sys.stderr)
    return subprocess.call(cmd)


def cmd_weights(args) -> int:
    """List the portable tensors a spec's model has, or check a weight file against them."""
    from archdsl.weights import WeightFileError, compare, expected_tensors, npz_shapes

    checked = _load(args.file)
    if not checked.ok:
        _print_diagnostics(checked)
        return EXIT_ERRORS
    expected = expected_tensors(checked.report)
    if not args.weights:
        for name, shape in expected.items():
            print(f"{name:<40} {' x '.join(map(str, shape))}")
        print(f"{len(expected)} tensors, {checked.report.total_params:,} values")
        return EXIT_OK
    path = Path(args.weights)
    if not path.is_file():
        raise UsageError(f"{args.weights}: no such file")
    try:
        found = npz_shapes(path)
    except WeightFileError as exc:
        raise UsageError(str(exc)) from None
    result = compare(expected, found)
    for name in result.missing:
        print(f"missing   {name} (expected {' x '.join(map(str, expected[name]))})")
    for name in result.extra:
        print(f"extra     {name} ({' x '.join(map(str, found[name][0]))}): not in {args.file}")
    for name, want, got in result.mismatched:
        print(
            f"mismatch  {name}: expected {' x '.join(map(str, want))}, found {' x '.join(map(str, got))}"
        )
    verdict = "matches" if result.ok else "does not match"
    print(f"{args.weights} {verdict} {args.file}: {result.matched} of {len(expected)} tensors fit")
    return EXIT_OK if result.ok else EXIT_ERRORS


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one sub-command per verb."""
    p = argparse.ArgumentParser(
        prog="archdsl", description="Compile neural-network architecture specs."
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    c = sub.add_parser("check", help="report errors and warnings with source locations")
    c.add_argument("files", nargs="+", metavar="FILE")
    c.add_argument("--strict", action="store_true", help="treat warnings as errors")
    c.add_argument("--format", choices=("text", "json"), default="text")
    c.set_defaults(func=cmd_check)

    s = sub.add_parser("shapes", help="per-layer shapes, parameters, MACs and totals")
    s.add_argument("file", metavar="FILE")
    s.add_argument("--format", choices=("table", "json", "markdown"), default="table")
    s.add_argument("--batch", type=_positive, default=1, help="batch size for activation memory")
    s.add_argument("--strict", action="store_true", help="treat warnings as errors")
    s.set_defaults(func=cmd_shapes)

    i = sub.add_parser("ir", help="print the validated IR as JSON (or its JSON Schema)")
    i.add_argument("file", nargs="?", metavar="FILE")
    i.add_argument("--schema", action="store_true", help="print the IR's JSON Schema instead")
    i.set_defaults(func=cmd_ir)

    w = sub.add_parser(
        "weights", help="the portable weight layout of a spec, or check an .npz file"
    )
    w.add_argument("file", metavar="FILE")
    w.add_argument("weights", nargs="?", metavar="WEIGHTS.npz", help="a weight file to check")
    w.set_defaults(func=cmd_weights)

    for name, helptext, func in (
        ("compile", "emit a standalone model.py and train.py", cmd_compile),
        (
            "train",
            "compile, then run the generated trainer (other flags go to train.py)",
            cmd_train,
        ),
    ):
        t = sub.add_parser(name, help=helptext)
        t.add_argument("file", metavar="FILE")
        t.add_argument("--backend", choices=BACKENDS, default="torch")
        t.add_argument(
            "-o", "--out", metavar="DIR", help="output directory (default build/<spec>-<backend>)"
        )
        t.add_argument(
            "--force", action="store_true", help="overwrite a directory archdsl did not write"
        )
        t.add_argument("--strict", action="store_true", help="treat warnings as errors")
        t.set_defaults(func=func)
    return p


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a positive whole number, got {text!r}"
        ) from None
    if n <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {n}")
    return n


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command == "train":
        args.trainer_args = extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return args.func(args)
    except UsageError as exc:
        print(render(error("usage", None, str(exc)), None), file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        return EXIT_OK
    except KeyboardInterrupt:
        return 130
