"""A pocket Swin Transformer (tests/swin_common/pocket_swin.arch) against torchvision's
SwinTransformer class built with the same configuration, in the default run (Swin-T itself:
test_zoo_vs_torchvision and test_weight_import under -m slow): the same trainable parameters;
torchvision's weights, with random biases and layer norms, paired by structure through the
functions `archdsl weights --from` calls (the pairing equal to torchvision_names.py's rule) give
its outputs in eval mode to 1e-5 of their largest value; `shapes`' MACs are half the FLOPs
FlopCounterMode counts on torchvision's model and on ours."""

import numpy as np
import pytest
from ptgen import ROOT, check_file, compile_to, import_model
from test_zoo_vs_torchvision import agrees
from torchvision_names import key_mapping, swin

from archdsl.spec_records import spec_graph
from archdsl.torch_source import trace
from archdsl.weight_import import Source, import_weights
from archdsl.weight_pairing import pair
from archdsl.weights import expected_tensors

torch = pytest.importorskip("torch")
swin_transformer = pytest.importorskip("torchvision.models.swin_transformer")
flop_counter = pytest.importorskip("torch.utils.flop_counter")

POCKET = ROOT / "tests" / "swin_common" / "pocket_swin.arch"
CONFIG = {
    "patch_size": [4, 4],
    "embed_dim": 32,
    "depths": [2, 2],
    "num_heads": [2, 4],
    "window_size": [4, 4],
    "num_classes": 10,
}
INPUT = (3, 36, 36)


@pytest.fixture(scope="module")
def theirs():
    """torchvision's pocket Swin with random biases and layer norms, in eval mode."""
    torch.manual_seed(0)
    model = swin_transformer.SwinTransformer(**CONFIG)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, tensor in model.named_parameters():
            if name.endswith("bias") or ("norm" in name and name.endswith("weight")):
                tensor.copy_(torch.randn(tensor.shape, generator=generator) * 0.3 + 0.5)
    return model.eval()


@pytest.fixture(scope="module")
def checked():
    return check_file(POCKET)


@pytest.fixture(scope="module")
def compiled(checked, tmp_path_factory):
    """The pocket spec's generated model.py, imported."""
    return import_model(compile_to(checked, tmp_path_factory.mktemp("pocket")))


def test_the_parameters_are_torchvisions(theirs, checked):
    assert checked.report.trainable_params == sum(p.numel() for p in theirs.parameters())


def test_torchvisions_weights_pair_by_structure_and_give_its_outputs(
    theirs, checked, compiled, tmp_path
):
    traced = trace(theirs, INPUT, "torchvision's pocket Swin")
    state = {k: v.numpy() for k, v in traced.state.items()}
    oracle = key_mapping(state, expected_tensors(checked.report), swin(state))
    assert pair(spec_graph(checked.report), traced.graph).keys == oracle
    npz = tmp_path / "pocket.npz"
    import_weights(checked.report, Source(traced.graph, state), frozenset(), npz, force=False)
    ours = compiled.load_weights(compiled.build_model(), npz).eval()
    x = torch.randn(2, *INPUT, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        a, b = ours(x).numpy(), theirs(x).numpy()
    scale = np.abs(b).max()
    assert agrees(np.abs(a - b).max(), scale) and scale > 0.1


def flops(model):
    """FLOPs FlopCounterMode counts for one forward pass of a batch of 2."""
    counter = flop_counter.FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.zeros(2, *INPUT))
    return counter.get_total_flops()


def test_macs_are_half_the_flop_counters_flops(theirs, checked, compiled):
    expected = 2 * 2 * checked.report.total_macs
    assert flops(compiled.build_model().eval()) == expected == flops(theirs)
