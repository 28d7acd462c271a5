"""The `archdsl` command line: check, shapes, ir, compile, train, export, import, weights, diagram.

Only this module (and the writers it calls) does I/O."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import stat
import sys
from pathlib import Path

from archdsl.compiler import Checked, check_source
from archdsl.diagnostics import Diagnostic, error, render, source_lines, visible
from archdsl.syntax import MAX_SIZE

EXIT_OK, EXIT_ERRORS, EXIT_USAGE = 0, 1, 2
BACKENDS = ("torch", "keras")
SPEC_LIMIT_MIB = 1  # a spec is a few KB; a larger file is refused unread


class UsageError(Exception):
    """A problem with the command line or the files it names (exit code 2)."""


def _read(path: str) -> str:
    """Read a spec (a regular UTF-8 file, not too large), turning every problem into UsageError."""
    limit = SPEC_LIMIT_MIB << 20
    try:
        _check_spec_file(os.stat(path), path, limit)
        # O_NONBLOCK: should the path become a FIFO after the check, opening it does not hang
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as f:
            _check_spec_file(os.fstat(f.fileno()), path, limit)
            data = f.read(limit + 1)
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except OSError as exc:
        raise UsageError(f"{path}: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise _too_large(path)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")  # the newlines text mode reads


def _check_spec_file(status: os.stat_result, path: str, limit: int) -> None:
    """UsageError unless `status` is that of a regular file of at most `limit` bytes."""
    if stat.S_ISDIR(status.st_mode):
        raise UsageError(f"{path}: is a directory, expected a .arch file")
    if not stat.S_ISREG(status.st_mode):
        raise UsageError(
            f"{path}: not a regular file (a device, FIFO or socket?), expected a .arch file"
        )
    if status.st_size > limit:
        raise _too_large(path)


def _too_large(path: str) -> UsageError:
    """The error for a spec file over the size limit."""
    return UsageError(f"{path}: larger than {SPEC_LIMIT_MIB} MiB, the limit for a spec file")


def _say(text: str, stream=None) -> None:
    """Print a line to stdout (or `stream`); what its encoding cannot show becomes escapes."""
    stream = stream or sys.stdout
    encoding = getattr(stream, "encoding", None)
    if encoding:
        text = text.encode(encoding, "backslashreplace").decode(encoding)
    print(text, file=stream)


def _color(stream) -> bool:
    """Colour diagnostics on a terminal, unless NO_COLOR is set (no stream: stderr is closed)."""
    return stream is not None and stream.isatty() and "NO_COLOR" not in os.environ


def _print_diagnostics(checked: Checked, stream=None, notes: bool = True) -> None:
    """Print a spec's diagnostics (to stderr), splitting its source into lines once."""
    stream = stream or sys.stderr
    lines, color = source_lines(checked.source), _color(stream)
    for d in checked.diagnostics:
        if d.severity == "info" and not notes:
            continue
        _say(render(d, lines, color), stream)


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
    """Read and check a spec; its file name is kept as printed (control characters escaped)."""
    checked = check_source(_read(path), visible(path))
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
                    "file": checked.file,
                    "ok": _exit_code(checked) == 0,
                    "diagnostics": [d.as_dict() for d in checked.diagnostics],
                }
            )
        else:
            _print_diagnostics(checked)
            _say(f"{checked.file}: {_summary(checked.diagnostics)}", sys.stderr)
    if args.format == "json":
        _say(json.dumps(results if len(results) > 1 else results[0], indent=2))
    return worst


def cmd_shapes(args) -> int:
    """Print per-layer shapes, parameters and MACs."""
    from archdsl import report_format

    checked = _load(args.file, args.strict)
    if args.format == "json":
        if checked.report is None or not checked.report.layers and _exit_code(checked):
            data = {"file": checked.file, "diagnostics": [d.as_dict() for d in checked.diagnostics]}
        else:
            data = report_format.as_data(checked.report, checked.diagnostics, args.batch)
        _say(json.dumps(data, indent=2))
        return _exit_code(checked)
    _print_diagnostics(checked, notes=False)
    if checked.report is not None and _exit_code(checked) == EXIT_OK:
        render_fn = (
            report_format.as_markdown if args.format == "markdown" else report_format.as_table
        )
        _say(render_fn(checked.report, args.batch))
    return _exit_code(checked)


def cmd_ir(args) -> int:
    """Print the IR as JSON, or its JSON Schema."""
    from archdsl import ir

    if args.schema:
        _say(json.dumps(ir.Graph.model_json_schema(by_alias=True), indent=2))
        return EXIT_OK
    if not args.file:
        raise UsageError("ir: give a spec file, or --schema")
    checked = _load(args.file)
    if checked.graph is None or _exit_code(checked):
        _print_diagnostics(checked)
        return EXIT_ERRORS
    _say(checked.graph.model_dump_json(indent=2, by_alias=True))
    return EXIT_OK


def cmd_compile(args) -> int:
    """Emit a standalone model and trainer for one backend."""
    from archdsl.emit import EmitError, write_output

    checked = _load(args.file, args.strict)
    _print_diagnostics(checked, notes=False)
    if not checked.ok:
        return EXIT_ERRORS
    out = Path(args.out) if args.out else _default_dir("build", args)
    try:
        written = write_output(checked, args.backend, out, force=args.force)
    except EmitError as exc:
        raise UsageError(str(exc)) from None
    names = ", ".join(sorted(p.name for p in written))
    _say(visible(f"wrote {len(written)} files to {out}/ ({names})"))
    return EXIT_OK


def _default_dir(parent: str, args) -> Path:
    """PARENT/<spec stem>-<backend>: the default build and run folders."""
    return Path(parent) / f"{Path(args.file).stem}-{args.backend}"


def cmd_train(args) -> int:
    """Compile into the build folder, then run its trainer with --out the run folder."""
    import subprocess

    for flag in args.trainer_args:
        if _is_out_flag(flag):
            raise UsageError(
                f"train: {flag.split('=', 1)[0]} is ambiguous here: give --build-dir DIR for the "
                "compiled model and trainer, --run-dir DIR for checkpoints and metrics"
            )
    args.out = args.build_dir or str(_default_dir("build", args))
    code = cmd_compile(args)
    if code != EXIT_OK:
        return code
    run_dir = args.run_dir or str(_default_dir("runs", args))
    cmd = [sys.executable, str(Path(args.out) / "train.py"), "--out", run_dir, *args.trainer_args]
    _say(visible("$ " + shlex.join(cmd)), sys.stderr)
    return subprocess.call(cmd)


def _is_out_flag(arg: str) -> bool:
    """-o/--out in any spelling (-oDIR, --out=DIR, an abbreviation such as --ou)."""
    if arg.startswith("--"):
        name = arg.split("=", 1)[0]
        return len(name) > 2 and "--out".startswith(name)
    return arg.startswith("-o")


def cmd_export(args) -> int:
    """Export the spec's PyTorch model to ONNX, checked by onnx.checker and shape inference."""
    checked = _load(args.file, args.strict)
    _print_diagnostics(checked, notes=False)
    if not checked.ok:
        return EXIT_ERRORS
    try:  # torch and onnx load only here: the compile path never imports them
        from archdsl.onnx_export import ExportError, check_target, export_spec, write_model
    except ImportError as exc:
        raise UsageError(f"export needs torch and onnx ({exc}): pip install torch onnx") from None
    out = Path(args.onnx)
    weights = Path(args.weights) if args.weights else None
    try:
        check_target(out, args.force)
        exported = export_spec(checked, weights, args.opset, args.dynamic_batch)
        write_model(exported.proto, out)
    except ExportError as exc:
        raise UsageError(str(exc)) from None
    source = f"weights {args.weights}" if weights else "freshly initialised weights (no --weights)"
    output = " (probabilities: the spec's softmax)" if exported.softmax else ""
    _say(
        visible(
            f"wrote {out} (opset {exported.opset}): input {_dims(exported.input_dims)} -> "
            f"output {_dims(exported.output_dims)}{output}, {source}; "
            "onnx.checker and shape inference pass"
        )
    )
    return EXIT_OK


def cmd_diagram(args) -> int:
    """Draw the spec's graph with Graphviz: .svg, .png or .dot by the output's extension."""
    try:  # graphviz loads only here: the compile path never imports it
        from archdsl.diagram import diagram
        from archdsl.diagram_files import DiagramError, output_format, write_diagram
    except ModuleNotFoundError as exc:
        if exc.name != "graphviz":
            raise
        raise UsageError(
            "diagram needs the graphviz Python package: pip install 'archdsl[diagram]'"
        ) from None
    out = Path(args.out)
    try:
        output_format(out)
        checked = _load(args.file, args.strict)
        _print_diagnostics(checked, notes=False)
        if not checked.ok:
            return EXIT_ERRORS
        _say(visible(write_diagram(diagram(checked.report), out, args.force)))
    except DiagramError as exc:
        raise UsageError(str(exc)) from None
    return EXIT_OK


def cmd_weights(args) -> int:
    """List the portable tensors a spec's model has, or check a weight file against them."""
    from archdsl.weights import WeightFileError, compare, expected_tensors, npz_shapes

    checked = _load(args.file)
    if not checked.ok:
        _print_diagnostics(checked)
        return EXIT_ERRORS
    if args.source or args.out or args.arch or args.leave_out or args.force:
        return cmd_weights_import(args, checked)
    expected = expected_tensors(checked.report)
    if not args.weights:
        for name, shape in expected.items():
            _say(f"{name:<40} {_dims(shape)}")
        _say(f"{len(expected)} tensors, {checked.report.total_params:,} values")
        return EXIT_OK
    path = Path(args.weights)
    if not path.is_file():
        problem = "not a regular file" if path.exists() else "no such file"
        raise UsageError(f"{args.weights}: {problem}")
    try:
        found = npz_shapes(path)
    except WeightFileError as exc:
        raise UsageError(str(exc)) from None
    result = compare(expected, found)
    for line in _comparison_lines(result, expected, found, args.file):
        _say(visible(line))
    verdict = "matches" if result.ok else "does not match"
    fit = f"{result.matched} of {len(expected)} tensors fit"
    _say(visible(f"{args.weights} {verdict} {args.file}: {fit}"))
    return EXIT_OK if result.ok else EXIT_ERRORS


def cmd_weights_import(args, checked: Checked) -> int:
    """Pair a PyTorch or Keras source's tensors with the spec's by structure and write
    FILE.npz."""
    from archdsl.keras_source import is_keras_source, read_keras_source
    from archdsl.torch_source import SourceError
    from archdsl.weight_import import check_target, import_weights, left_out_layers, load_source
    from archdsl.weight_pairing import PairingError
    from archdsl.weight_settings import setting_notes

    if not (args.source and args.out) or args.weights:
        raise UsageError("weights: --from SOURCE and -o FILE.npz go together, without WEIGHTS.npz")
    try:
        leave_out = left_out_layers(
            checked.report, args.leave_out.split(",") if args.leave_out else []
        )
        check_target(Path(args.out), args.force)
        load = read_keras_source if is_keras_source(args.source, args.arch) else load_source
        source = load(args.source, args.arch, tuple(checked.graph.inputs[0].shape))
        done = import_weights(checked.report, source, leave_out, Path(args.out), args.force)
    except SourceError as exc:
        raise UsageError(str(exc)) from None
    except PairingError as exc:
        _say(render(error("weights", None, visible(str(exc))), None), sys.stderr)
        return EXIT_ERRORS
    settings = getattr(source, "settings", {})  # a Keras source's strides, paddings, eps
    for line in [
        *done.summary(args.out, args.file),
        *setting_notes(checked.report, source.graph, settings, leave_out),
    ]:
        _say(visible(line))
    return EXIT_OK


def cmd_import(args) -> int:
    """Write an ONNX model as a spec and its initialisers as portable weights."""
    try:  # onnx and numpy load only here: the compile path never imports them
        from archdsl.onnx_import.errors import ImportFailure, Unsupported
        from archdsl.onnx_import.importer import check_targets, import_onnx, write_outputs
    except ImportError as exc:
        raise UsageError(f"import needs onnx and numpy ({exc}): pip install onnx") from None
    spec = Path(args.out)
    weights = Path(args.weights_out) if args.weights_out else spec.with_suffix(".npz")
    try:
        check_targets([spec, weights], args.force)
        imported = import_onnx(Path(args.model), spec.name, weights.name)
        write_outputs(imported, spec, weights)
    except ImportFailure as exc:
        raise UsageError(str(exc)) from None
    except Unsupported as exc:
        _say(render(error("import", None, f"{args.model}: {exc}"), None), sys.stderr)
        return EXIT_ERRORS
    values = sum(a.size for a in imported.arrays.values())
    _say(
        visible(
            f"wrote {spec} ({imported.statements} statements, {imported.layers} layers) and "
            f"{weights} ({len(imported.arrays)} tensors, {values:,} values) from {args.model}; "
            "archdsl check passes and every layer's shape is onnx's"
        )
    )
    return EXIT_OK


def cmd_lsp(args) -> int:
    """Serve the language server over stdin and stdout (needs pygls)."""
    try:  # pygls loads only here: nothing else needs it
        from archdsl.lsp.server import serve
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] not in ("pygls", "lsprotocol"):
            raise
        raise UsageError("lsp needs pygls: pip install 'archdsl[lsp]'") from None
    serve()
    return EXIT_OK


def _comparison_lines(result, expected: dict, found: dict, spec: str):
    """One line per missing, extra and mis-shaped tensor of a weight file."""
    for name in result.missing:
        yield f"missing   {name} (expected {_dims(expected[name])})"
    for name in result.extra:
        yield f"extra     {name} ({_dims(found[name][0])}): not in {spec}"
    for name, want, got in result.mismatched:
        yield f"mismatch  {name}: expected {_dims(want)}, found {_dims(got)}"


def _dims(shape) -> str:
    """A shape written `3 x 224 x 224`."""
    return " x ".join(map(str, shape))


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one visible line and exit code 2."""

    def error(self, message: str):
        """Report a command-line problem in the form of every other usage error."""
        _say(render(error("usage", None, f"{message}; see `{self.prog} --help`"), None), sys.stderr)
        sys.exit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one sub-command per verb."""
    p = _Parser(prog="archdsl", description="Compile neural-network architecture specs.")
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
        "weights",
        help="the portable weight layout of a spec, check an .npz file, or import one (--from)",
    )
    w.add_argument("file", metavar="FILE")
    w.add_argument("weights", nargs="?", metavar="WEIGHTS.npz", help="a weight file to check")
    w.add_argument(
        "--from",
        dest="source",
        metavar="SOURCE",
        help="import weights: a state_dict (.pth, .pt), a .safetensors file, or torchvision:NAME "
        "(that builder's random initialisation); Keras: a .keras file, a .weights.h5 file with "
        "--arch, or keras:NAME",
    )
    w.add_argument(
        "--arch",
        metavar="torchvision:NAME|keras:NAME",
        help="the model the --from file was saved from",
    )
    w.add_argument(
        "--except",
        dest="leave_out",
        metavar="NAME[,NAME]",
        help="statements or call prefixes of the spec not to import (a new head)",
    )
    w.add_argument("-o", "--out", metavar="FILE.npz", help="the portable weight file to write")
    w.add_argument("--force", action="store_true", help="overwrite a file archdsl did not write")
    w.set_defaults(func=cmd_weights)

    o = _compile_flags(sub.add_parser("compile", help="emit a standalone model.py and train.py"))
    o.add_argument(
        "-o", "--out", metavar="DIR", help="output directory (default build/<spec>-<backend>)"
    )
    o.set_defaults(func=cmd_compile)

    e = sub.add_parser(
        "export",
        help="export the spec's PyTorch model to ONNX (needs torch and onnx)",
        description="Export the spec's PyTorch model with torch.onnx.export, then check it with "
        "onnx.checker and shape inference. The ONNX graph computes what the generated "
        "predict() does: a trailing softmax is included.",
    )
    e.add_argument("file", metavar="FILE")
    e.add_argument("--onnx", required=True, metavar="MODEL.onnx", help="the ONNX file to write")
    e.add_argument("--weights", metavar="FILE.npz", help="portable weights (default: fresh init)")
    e.add_argument("--opset", type=int, help="the ONNX opset, 9 to 20 (default 17)")
    e.add_argument("--dynamic-batch", action="store_true", help="a symbolic batch size (default 1)")
    e.add_argument("--force", action="store_true", help="overwrite a file archdsl did not export")
    e.add_argument("--strict", action="store_true", help="treat warnings as errors")
    e.set_defaults(func=cmd_export)

    d = sub.add_parser(
        "diagram",
        help="draw the graph with Graphviz (.svg, .png or .dot by the extension)",
        description="Draw the spec's graph: a node per statement with its ops, parameters and "
        "MACs, edges labelled with tensor shapes, block calls and towers as clusters. .svg and "
        ".png need Graphviz's dot program; .dot is the source, written without it.",
    )
    d.add_argument("file", metavar="FILE")
    d.add_argument("-o", "--out", required=True, metavar="FILE.svg", help=".svg, .png or .dot")
    d.add_argument("--force", action="store_true", help="overwrite a file archdsl did not draw")
    d.add_argument("--strict", action="store_true", help="treat warnings as errors")
    d.set_defaults(func=cmd_diagram)

    m = sub.add_parser(
        "import",
        help="write an ONNX model as a spec and portable weights (needs onnx)",
        description="Translate an ONNX model into a spec (checked by archdsl, its shapes "
        "compared with onnx's shape inference) and its initialisers into a portable .npz.",
    )
    m.add_argument("model", metavar="MODEL.onnx")
    m.add_argument("-o", "--out", required=True, metavar="MODEL.arch", help="the spec to write")
    m.add_argument(
        "-w", "--weights-out", metavar="FILE.npz", help="the weights (default: beside the spec)"
    )
    m.add_argument("--force", action="store_true", help="overwrite existing files")
    m.set_defaults(func=cmd_import)

    _fmt_flags(sub.add_parser("fmt", help="rewrite specs in the canonical layout (see --check)"))

    t = _compile_flags(
        sub.add_parser(
            "train",
            help="compile, then run the generated trainer (other flags go to train.py)",
            description="Compile FILE into --build-dir, then run its train.py with --out "
            "set to --run-dir. Every other flag goes to train.py unchanged (see its --help).",
            allow_abbrev=False,  # an abbreviation of a trainer flag must reach the trainer
        )
    )
    t.add_argument(
        "--build-dir", metavar="DIR", help="where to compile (default build/<spec>-<backend>)"
    )
    t.add_argument(
        "--run-dir",
        metavar="DIR",
        help="the trainer's --out: checkpoints and metrics (default runs/<spec>-<backend>)",
    )
    t.set_defaults(func=cmd_train)

    lsp = sub.add_parser(
        "lsp",
        help="a language server over stdin and stdout, for editors (needs pygls)",
        description="Serve the Language Server Protocol over stdin and stdout: diagnostics as "
        "`check` reports them, hover, completion, go-to-definition and formatting.",
    )
    lsp.add_argument(
        "--stdio", action="store_true", help="the default; accepted for clients that pass it"
    )
    lsp.set_defaults(func=cmd_lsp)
    return p


def _compile_flags(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The spec, backend, --force and --strict of `compile` and `train`."""
    parser.add_argument("file", metavar="FILE")
    parser.add_argument("--backend", choices=BACKENDS, default="torch")
    parser.add_argument(
        "--force", action="store_true", help="overwrite a directory archdsl did not write"
    )
    parser.add_argument("--strict", action="store_true", help="treat warnings as errors")
    return parser


def _fmt_flags(parser: argparse.ArgumentParser) -> None:
    """`archdsl fmt FILE... [--check]` or `archdsl fmt --stdin`."""
    parser.add_argument("files", nargs="*", metavar="FILE")
    parser.add_argument(
        "--check", action="store_true", help="write nothing: print the diffs, exit 1 if any"
    )
    parser.add_argument("--stdin", action="store_true", help="format stdin to stdout")
    parser.set_defaults(func=cmd_fmt)


def cmd_fmt(args) -> int:
    """Rewrite specs in the canonical layout (archdsl/formatter_cli.py)."""
    from archdsl.formatter_cli import cmd_fmt as fmt

    return fmt(args)


def _positive(text: str) -> int:
    """A --batch: a whole number from 1 to MAX_SIZE (larger ones overflow the report's sums)."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a positive whole number, got {text!r}"
        ) from None
    if n <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {n}")
    if n > MAX_SIZE:
        shown = text.strip() if len(text.strip()) <= 20 else f"a number of {len(str(n)):,} digits"
        raise argparse.ArgumentTypeError(f"expected at most {MAX_SIZE}, got {shown}")
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
        code = args.func(args)
        if sys.stdout is not None:
            sys.stdout.flush()  # a full disk or closed pipe shows here, not at interpreter exit
        return code
    except UsageError as exc:
        _say(render(error("usage", None, str(exc)), None), sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_OK
    except OSError as exc:  # e.g. stdout closed, or the disk under it full
        where = exc.filename if exc.filename else "writing the output"
        problem = f"{where}: {exc.strerror or exc}"
        _say(render(error("usage", None, problem), None), sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's final flush into a closed pipe is quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, sys.stdout.fileno())
        finally:
            os.close(devnull)
    except (OSError, ValueError):
        pass  # not a real file descriptor (an in-process caller's stream)
