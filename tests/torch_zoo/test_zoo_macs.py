"""`archdsl shapes` counts the multiply-accumulates PyTorch's own FLOP counter sees.

Each zoo spec is compiled for PyTorch, built on the meta device (shapes only: no memory, no
arithmetic) and run once under torch.utils.flop_counter.FlopCounterMode, which counts 2 FLOPs per
multiply-accumulate of convolutions and matrix products (Linear's addmm without its bias add).
The report's total_macs must be exactly half of that, per example. Both leave out the same
things: bias adds, pooling, batch norm, activations, concatenation and residual adds (README,
"Statistics"). MNASNet runs by default; the other specs with -m slow (a compile and an import
each, about a second).
"""

import time

import pytest
from ptgen import ROOT, check_file, compile_to, import_model

torch = pytest.importorskip("torch")
flop_counter = pytest.importorskip("torch.utils.flop_counter")

ZOO = sorted((ROOT / "specs" / "zoo").glob("*.arch"))
DEFAULT = "mnasnet1_0"  # grouped and depthwise convs, 1x1 convs, a dense layer
BATCH = 2


def counted_flops(module):
    """(total FLOPs, FLOPs per aten op) of one forward pass of a batch, on the meta device."""
    with torch.device("meta"):
        model = module.build_model().eval()
        x = torch.empty(BATCH, *module.INPUT_SHAPE)
    counter = flop_counter.FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(x)
    per_op = {str(op): n for op, n in counter.get_flop_counts()["Global"].items()}
    return counter.get_total_flops(), per_op


@pytest.mark.parametrize(
    "path",
    [p if p.stem == DEFAULT else pytest.param(p, marks=pytest.mark.slow) for p in ZOO],
    ids=lambda p: p.stem,
)
def test_macs_are_half_the_flop_counters_flops(path, tmp_path):
    start = time.perf_counter()
    checked = check_file(path)
    module = import_model(compile_to(checked, tmp_path / path.stem))
    flops, per_op = counted_flops(module)
    macs = checked.report.total_macs
    print(
        f"{path.stem}: {macs:,} MACs, FlopCounterMode {flops:,} FLOPs per {BATCH}; {per_op}; "
        f"{time.perf_counter() - start:.1f} s"
    )
    assert macs > 0 and flops == 2 * BATCH * macs, (flops, 2 * BATCH * macs, per_op)
