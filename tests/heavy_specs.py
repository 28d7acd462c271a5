"""Shipped specs too big for the default run's every-spec tests (build and run in each backend,
cross-backend inference in tests/conformance): the zoo models of issues 12 and 13 and the
fine-tuned ResNet-18 of specs/variants, each a few seconds
to a minute per test on two cores.

tests/conftest.py marks `slow` every test parametrised with one of them; tests/conformance
leaves them out of its inference and training runs (their cross-backend check is the weight
exchange of tests/keras_zoo, and tests/torch_zoo compares them with torchvision).
"""

from pathlib import Path

SPECS_DIR = Path(__file__).resolve().parents[1] / "specs"
HEAVY = frozenset(
    SPECS_DIR / f"{stem}.arch"
    for stem in (
        "variants/resnet18_finetune10",  # the zoo's ResNet-18 again, fine-tuned (README)
        "zoo/vgg11",
        "zoo/resnet34",
        "zoo/resnet101",
        "zoo/resnext50_32x4d",
        "zoo/wide_resnet50_2",
        "zoo/densenet169",
        "zoo/inception_v3",
        "zoo/mnasnet1_0",
        "zoo/efficientnet_b0",
        "zoo/mobilenet_v3_large",
        "zoo/mobilenet_v3_small",
        "zoo/convnext_tiny",
        "zoo/regnet_y_400mf",
        "zoo/swin_t",
        "zoo/vit_b_16",
    )
) | frozenset(
    SPECS_DIR / "variants" / f"{stem}_keras.arch"
    for stem in ("resnet50", "mobilenet_v2", "inception_v3")  # keras.applications' flavours
)


def is_heavy(value) -> bool:
    """Whether a test parameter is the path of a heavy spec."""
    return isinstance(value, Path) and value.resolve() in HEAVY
