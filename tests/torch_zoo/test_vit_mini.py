"""The pocket ViT of specs/vit_mini.arch (vit_b_16's encoder layer, 2 layers 64 wide) against
torchvision's own VisionTransformer class built at the same size: parameters, the structural
weight import, outputs, MACs against FlopCounterMode, and training on the synthetic data.
ViT-B/16 itself runs the same comparisons under -m slow (test_zoo_vs_torchvision,
test_weight_import, test_zoo_macs)."""

from pathlib import Path

import pytest
from ptgen import check_file, compile_to, import_model
from test_zoo_macs import counted_flops
from test_zoo_train_mode_and_init import initialisation_mismatches
from test_zoo_training import CHANCE, train
from test_zoo_vs_torchvision import TOLERANCE
from torchvision_names import key_mapping, vit

from archdsl.spec_records import spec_graph
from archdsl.torch_source import trace
from archdsl.weight_import import Source, import_weights
from archdsl.weight_pairing import pair
from archdsl.weights import expected_tensors

torch = pytest.importorskip("torch")
vision_transformer = pytest.importorskip("torchvision.models.vision_transformer")

SPEC = Path(__file__).resolve().parent / "specs" / "vit_mini.arch"
SIZE = {"image_size": 32, "patch_size": 8, "num_layers": 2, "num_heads": 4, "hidden_dim": 64}


@pytest.fixture(scope="module")
def checked():
    return check_file(SPEC)


@pytest.fixture(scope="module")
def directory(checked, tmp_path_factory):
    return compile_to(checked, tmp_path_factory.mktemp("vit_mini"))


def torchvision_vit():
    """torchvision's VisionTransformer at the spec's size, every tensor random (its class
    token, attention biases and head start at zero)."""
    torch.manual_seed(0)
    model = vision_transformer.VisionTransformer(**SIZE, mlp_dim=128, num_classes=10)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p + 0.2 * torch.randn(p.shape, generator=generator))
    return model.eval()


def test_the_spec_has_torchvisions_parameters(checked):
    theirs = torchvision_vit()
    assert checked.report.trainable_params == sum(p.numel() for p in theirs.parameters()) == 81226


def test_imported_weights_give_torchvisions_outputs(checked, directory, tmp_path):
    """Traced and paired by structure (`archdsl weights --from`'s path), the pairing is the
    hand-written rule's, and the compiled model with the imported file computes torchvision's
    outputs."""
    theirs = torchvision_vit()
    traced = trace(theirs, (3, 32, 32), "torchvision ViT")
    pairing = pair(spec_graph(checked.report), traced.graph)
    state = theirs.state_dict()
    assert pairing.keys == key_mapping(state, expected_tensors(checked.report), vit)
    npz = tmp_path / "vit.npz"
    arrays = {k: t.detach().numpy() for k, t in traced.state.items()}
    source = Source(traced.graph, arrays)
    import_weights(checked.report, source, frozenset(), npz, force=False)
    module = import_model(directory)
    ours = module.load_weights(module.build_model(), npz).eval()
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        a, b = ours(x), theirs(x)
    scale = b.abs().max().item()
    assert (a - b).abs().max().item() <= TOLERANCE * max(1.0, scale) and scale > 0.1


def test_macs_are_half_the_flop_counters_flops(checked, directory):
    """The projections and both attention matmuls (Q K^T, A V) are counted as torch counts
    them (scaled_dot_product_attention's bmm's, the Linear's addmm)."""
    flops, per_op = counted_flops(import_model(directory))
    assert "aten.bmm" in per_op and flops == 2 * 2 * checked.report.total_macs, per_op


def test_trains_on_synthetic_images_and_beats_chance(directory, tmp_path):
    # 400 images, 12 steps per epoch at the spec's batch 32
    rows = train(directory, tmp_path / "run", "--synthetic-per-class", 40, "--max-steps", 36)
    assert [int(r["step"]) for r in rows] == [12, 24, 36]
    losses = [float(r["train_loss"]) for r in rows]
    top1 = float(rows[-1]["val_error"])
    print(f"vit_mini: train loss {losses[0]:.3f} -> {losses[-1]:.3f}; val top-1 {top1:.3f}")
    assert losses[-1] < losses[0] - 0.5
    assert top1 < CHANCE - 0.3  # 80 val images: chance's standard deviation is 0.034


def test_every_tensor_is_initialised_as_torchvision(directory):
    """Each tensor drawn from torchvision's distribution (a KS test), its constants equal."""
    torch.manual_seed(0)
    theirs = vision_transformer.VisionTransformer(**SIZE, mlp_dim=128, num_classes=10)
    torch.manual_seed(2)
    ours = import_model(directory).build_model()
    assert initialisation_mismatches(ours, theirs, vit) == []
