"""--init FILE.npz [--fresh NAME,...]: start a training from portable weights (both trainers).

The file (`archdsl weights ... -o FILE.npz`, or save_weights of either backend) must hold
every tensor of the model with its shape, except those of the statements --fresh names (a
statement, a block call such as `layer4` or one of its calls, `layer4.1`): these keep the
spec's fresh initialisation, and the file's tensors under them, if any, are not used. What
does not fit is refused in one line before any array is read. A resumed run continues from its
checkpoint, which holds the weights already: --resume refuses --init.
"""

import argparse
import re

# the runtime beside this file (isort: split keeps one order wherever ruff runs)
# isort: split
from npzcheck import NpzError, printable, read_headers
from portable import WeightsError, check_arrays, read_npz, under
from trainer_args import UsageError

PREFIX = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*")


def fresh_names(text):
    """An argparse type: comma-separated statement names or block-call prefixes."""
    names = tuple(n.strip() for n in text.split(","))
    bad = [n for n in names if not PREFIX.fullmatch(n)]
    if bad:
        raise argparse.ArgumentTypeError(
            f"{bad[0]!r} is not a statement name (e.g. head, or layer4.1)"
        )
    return names


def add_init_flags(parser):
    """--init and --fresh."""
    parser.add_argument(
        "--init",
        metavar="FILE.npz",
        help="start from portable weights (archdsl weights, save_weights) instead of "
        "the spec's initialisation; not with --resume",
    )
    parser.add_argument(
        "--fresh",
        type=fresh_names,
        default=(),
        metavar="NAME[,NAME]",
        help="with --init: statements (or block calls) that keep their fresh "
        "initialisation; the file need not hold their tensors",
    )


def init_request(args):
    """The --init path (None without it); UsageError for --fresh without --init, or
    --init with --resume."""
    if args.init is None:
        if args.fresh:
            raise UsageError(
                "--fresh names what --init leaves fresh: pass --init FILE.npz"
            )
        return None
    if args.resume is not None:
        raise UsageError(
            "--init starts a run from weights; --resume continues one from its "
            "checkpoint, which holds them already: drop --init"
        )
    return args.init


def warm_start(path, expected, fresh, frozen=()):
    """(arrays to load, the model's tensors left fresh, the line to print) for a model of
    tensors `expected` {name: shape} whose statements `frozen` (the spec's freeze) do not
    train; UsageError if the file does not fit, or --fresh names a frozen statement."""
    for prefix in fresh:
        if under(prefix, frozen) or any(under(f, [prefix]) for f in frozen):
            raise UsageError(
                f"--fresh {prefix}: the spec's `freeze` fixes it, so it would keep its "
                "random initialisation; load it from the file, or unfreeze it"
            )
        if not any(under(n, [prefix]) for n in expected):
            tops = ", ".join(dict.fromkeys(n.split(".", 1)[0] for n in expected))
            raise UsageError(
                f"--fresh {prefix}: the model has no tensors under it (statements: {tops})"
            )
    kept = {n: s for n, s in expected.items() if not under(n, fresh)}
    try:
        headers = read_headers(path)
    except NpzError as err:
        raise UsageError(f"--init {err}") from None
    found = {n: shape for n, (shape, _) in headers.items() if not under(n, fresh)}
    try:
        check_arrays(kept, found, str(path))
        arrays = read_npz(path)
    except WeightsError as err:
        hint = (
            ""
            if fresh
            else " (hint: --fresh NAME leaves new layers, a new head, fresh)"
        )
        raise UsageError(f"--init {err}{hint}") from None
    left = [n for n in expected if n not in kept]
    unused = len(headers) - len(found)
    line = f"init: {len(kept)} tensors from {printable(str(path))}"
    if fresh:
        line += f"; fresh: {', '.join(fresh)} ({len(left)} tensors, the spec's init)"
    if unused:
        line += f"; {unused} tensors of the file under --fresh not used"
    return {n: arrays[n] for n in kept}, left, line
