"""How long `archdsl check` takes on AlexNet, on the zoo's largest spec (the most layers:
DenseNet-169) and on generated specs of 1k..10k statements."""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def largest_zoo_spec() -> Path:
    """The zoo spec whose report has the most layers."""
    from archdsl.compiler import check_source

    def layers(path: Path) -> int:
        return len(check_source(path.read_text(encoding="utf-8"), path.name).report.layers)

    return max(sorted((ROOT / "specs" / "zoo").glob("*.arch")), key=layers)


def synthetic_spec(statements: int) -> str:
    """A valid spec of `statements` conv/dense statements with a residual add every 10."""
    lines = ["model Scaling", "input image: 8 x 16 x 16"]
    for i in range(statements - 3):
        if i % 10 == 9:
            lines.append(f"s{i} = add(s{i - 1}, s{i - 2}) |> relu")
        else:
            lines.append(f"s{i} = conv(8, kernel=3, pad=1) |> batchnorm |> relu")
    lines += ["pool = global_avgpool |> flatten", "logits = dense(10)", "probs = softmax"]
    return "\n".join(lines) + "\n"


def wall(cmd: list[str], repeats: int) -> float:
    """Median wall time of running `cmd` in a fresh process."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    """Print wall times and the growth ratio per statement between 1k and 10k statements."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    archdsl = [sys.executable, "-m", "archdsl"]
    empty = wall([sys.executable, "-c", "pass"], args.repeats)
    alexnet = wall([*archdsl, "shapes", str(ROOT / "specs" / "alexnet.arch")], args.repeats)
    print(f"python -c pass (the peer: interpreter start-up)   {empty * 1000:7.1f} ms")
    print(
        f"archdsl shapes specs/alexnet.arch                  {alexnet * 1000:7.1f} ms"
        f"   ({alexnet / empty:.1f}x start-up)"
    )
    largest = largest_zoo_spec()
    for command in ("shapes", "check"):
        seconds = wall([*archdsl, command, str(largest)], args.repeats)
        print(
            f"archdsl {command:<6} specs/zoo/{largest.name:<24} {seconds * 1000:7.1f} ms"
            f"   ({seconds / empty:.1f}x start-up, {seconds / alexnet:.1f}x AlexNet)"
        )
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in (1000, 2500, 5000, 10000):
            spec = Path(tmp) / f"s{n}.arch"
            spec.write_text(synthetic_spec(n))
            rows[n] = wall([*archdsl, "check", str(spec)], max(1, args.repeats // 2))
            per = (rows[n] - alexnet) / n * 1e6
            print(
                f"archdsl check, {n:>6} statements                {rows[n] * 1000:7.1f} ms"
                f"   ({per:.0f} us/statement above AlexNet)"
            )
    ratio = ((rows[10000] - alexnet) / 10000) / ((rows[1000] - alexnet) / 1000)
    print(f"per-statement cost at 10k / at 1k: {ratio:.2f} (1.0 = linear)")


if __name__ == "__main__":
    main()
