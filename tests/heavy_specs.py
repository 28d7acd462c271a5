"""Shipped specs too big for the default run's every-spec tests (build and run in each backend,
cross-backend inference in tests/conformance): the zoo models of issue 12, each a few seconds
to a minute per test on two cores.

tests/conftest.py marks `slow` every test parametrised with one of them; tests/conformance
leaves them out of its inference and training runs (their cross-backend check is the weight
exchange of tests/keras_zoo, and tests/torch_zoo compares them with torchvision).
"""

from pathlib import Path

SPECS_DIR = Path(__file__).resolve().parents[1] / "specs"
HEAVY = frozenset(
    SPECS_DIR / "zoo" / f"{stem}.arch"
    for stem in (
        "vgg11",
        "resnet34",
        "resnet101",
        "resnext50_32x4d",
        "wide_resnet50_2",
        "densenet169",
        "inception_v3",
        "mnasnet1_0",
        "efficientnet_b0",
        "mobilenet_v3_large",
        "mobilenet_v3_small",
        "convnext_tiny",
        "regnet_y_400mf",
        "vit_b_16",
    )
)


def is_heavy(value) -> bool:
    """Whether a test parameter is the path of a heavy spec."""
    return isinstance(value, Path) and value.resolve() in HEAVY
