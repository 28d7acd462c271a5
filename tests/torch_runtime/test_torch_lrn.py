"""The runtime's FusedLRN (lrn.py): the paper's formula against conform.py's float64 NumPy
reference, the input's dtype under bf16 autocast, no state, and fewer kernels per forward +
backward than nn.LocalResponseNorm (counted as bench/lrn_kernels.py counts them)."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[2]
sys.path.append(str(ROOT / "tests" / "conformance"))
import conform  # noqa: E402

SIZES = [1, 2, 3, 4, 5, 6, 11]  # odd and even windows; 11 is wider than the 7 channels
ALPHA, BETA, K = 1e-3, 0.75, 2.0


@pytest.fixture(scope="module")
def fused(load):
    """The FusedLRN class of the assembled runtime."""
    return load("lrn").FusedLRN


@pytest.fixture(scope="module")
def bench():
    """bench/lrn_kernels.py, imported by path under a private name."""
    path = ROOT / "bench" / "lrn_kernels.py"
    spec = importlib.util.spec_from_file_location("bench_lrn_kernels", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def activations(shape, scale=30.0):
    """Normal NCHW values large enough that alpha * sum is comparable to k."""
    return np.random.default_rng(0).normal(scale=scale, size=shape)


def lrn(fused, size, channels, alpha=ALPHA):
    """FusedLRN with the paper's `alpha` (torch's argument is alpha * size)."""
    return fused(size, alpha * size, BETA, K, channels=channels)


@pytest.mark.parametrize(("dtype", "rtol"), [("float64", 1e-12), ("float32", 2e-6)])
@pytest.mark.parametrize("size", SIZES)
def test_fused_lrn_is_the_papers_formula(fused, size, dtype, rtol):
    x = activations((2, 7, 3, 4))
    want = conform.lrn_reference(x, size, ALPHA, BETA, K)
    module = lrn(fused, size, 7).to(getattr(torch, dtype))
    got = module(torch.tensor(x, dtype=getattr(torch, dtype))).numpy()
    np.testing.assert_allclose(got, want, rtol=rtol)
    torch_style = conform.lrn_reference(x, size, ALPHA / size, BETA, K)
    assert size == 1 or not np.allclose(got, torch_style, rtol=1e-3)


def test_fused_lrn_equals_nn_local_response_norm_and_its_gradient(fused):
    x = torch.tensor(activations((2, 6, 2, 3), scale=3.0), requires_grad=True)
    module = lrn(fused, 4, 6).double()
    stock = torch.nn.LocalResponseNorm(4, ALPHA * 4, BETA, K)
    torch.testing.assert_close(module(x), stock(x), rtol=1e-12, atol=0)
    assert torch.autograd.gradcheck(module, (x,), fast_mode=True)


def test_under_bf16_autocast_it_returns_bf16_within_bf16_tolerance(fused, monkeypatch):
    x = torch.tensor(activations((2, 16, 5, 5), scale=20.0)).relu().bfloat16()
    want = conform.lrn_reference(x.double().numpy(), 5, ALPHA, BETA, K)
    module = lrn(fused, 5, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = module(x)
    assert got.dtype == torch.bfloat16
    np.testing.assert_allclose(got.double().numpy(), want, rtol=2e-2, atol=1e-3)
    # CUDA's autocast runs pow in float32 (CPU's does not): the output still keeps x's dtype
    pow_ = torch.Tensor.pow
    monkeypatch.setattr(torch.Tensor, "pow", lambda t, e: pow_(t.float(), e))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert module(x).dtype == torch.bfloat16


def test_it_has_no_state_and_converts_exactly(fused):
    module = lrn(fused, 5, 8)
    assert module.state_dict() == {} and not list(module.parameters())
    window = module.double().window
    assert window.dtype == torch.float64 and window.max().item() == ALPHA  # not float32's
    assert window.sum().item() == pytest.approx(ALPHA * (8 * 5 - 2 * (2 + 1)))


def test_fewer_kernels_than_nn_local_response_norm(bench):
    x = torch.tensor(activations((2, 16, 5, 5)), dtype=torch.float32)
    runs = bench.modules(16)
    torch.testing.assert_close(runs["FusedLRN"](x), runs["nn.LocalResponseNorm"](x))
    before, after = (bench.kernels(runs[name], x) for name in runs)
    assert "aten::avg_pool3d" in before and any("convolution" in k for k in after)
    assert len(after) < len(before), (after, before)
