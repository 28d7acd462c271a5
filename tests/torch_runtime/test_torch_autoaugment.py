"""trivial_augment, rand_augment and auto_augment: every op's pixels and every draw are
torchvision's (v2.TrivialAugmentWide, v2.RandAugment, v2.AutoAugment on uint8 tensors)."""

import ast
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "recipes_common"))

torch = pytest.importorskip("torch")
v2 = pytest.importorskip("torchvision.transforms.v2")

SIZES = [(16, 16), (19, 27)]  # square (rotate's quarter turns) and odd, unequal sides
# a sample coordinate this near a pixel's edge is a tie: torch's float32 grid (a bmm, with or
# without FMA by CPU) and ours may round it to either neighbour, so torchvision's own pixels
# there differ between CPUs (seen: an Intel Xeon, where AMD EPYCs gave ours)
TIE = 1e-4  # in pixels: float32 rounding of coordinates up to 224 is about 1e-5


@pytest.fixture
def auto(load):
    """The autoaugment module."""
    return load("autoaugment")


@pytest.fixture
def aug(load):
    """The augment module."""
    return load("augment")


def picture(h, w, seed=0):
    """A uint8 HxWx3 image: noise over a ramp, so every op changes it."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 200, h * w).reshape(h, w, 1)
    return np.clip(ramp + rng.integers(0, 56, (h, w, 3)), 0, 255).astype(np.uint8)


def theirs(policy, img, op, magnitude):
    """torchvision's op on the CHW uint8 tensor of img, back as HxWxC."""
    tensor = torch.from_numpy(img.transpose(2, 0, 1).copy())
    out = policy._apply_image_or_video_transform(
        tensor, op, magnitude, interpolation=policy.interpolation, fill=policy._fill
    )
    return out.numpy().transpose(1, 2, 0)


def policies(auto):
    """(torchvision transform, our space, bins) for TrivialAugmentWide, RandAugment and
    AutoAugment."""
    return [
        (v2.TrivialAugmentWide(), auto.WIDE, 31),
        (v2.RandAugment(), auto.RAND, 31),
        (v2.AutoAugment(), auto.AUTO, 10),
    ]


@pytest.mark.parametrize("hw", [(16, 16), (37, 53), (224, 224)])
def test_magnitude_tables_are_torchvisions(auto, hw):
    for policy, space, bins in policies(auto):
        assert list(space) == list(policy._AUGMENTATION_SPACE)
        for op, (table, signed) in policy._AUGMENTATION_SPACE.items():
            ours, our_signed = space[op]
            want, got = table(bins, *hw), ours(bins, *hw)
            assert our_signed == signed, op
            if want is None:
                assert got is None, op
            else:
                np.testing.assert_array_equal(got, want.numpy(), err_msg=op)


def affine_matrix(auto, op, magnitude, hw):
    """The inverse affine matrix an op samples with (None: not an affine op)."""
    axis = int(op.endswith("Y"))
    if op.startswith("Shear"):
        return auto.shear_matrix(magnitude, axis, hw)
    if op.startswith("Translate"):
        return auto.translate_matrix(magnitude, axis)
    return auto.rotate_matrix(magnitude) if op == "Rotate" else None


def tie_pixels(auto, op, magnitude, hw):
    """The output pixels whose sample coordinate (exact, in float64) lies within TIE of a
    pixel's edge, where nearest sampling rounds by the float32 arithmetic's order."""
    matrix, (h, w) = affine_matrix(auto, op, magnitude, hw), hw
    if matrix is None:
        return np.zeros(hw, bool)
    theta = np.array(matrix).reshape(2, 3).T / [0.5 * w, 0.5 * h]
    gx, gy = np.meshgrid(np.arange(w) + (1.0 - w) * 0.5, np.arange(h) + (1.0 - h) * 0.5)
    tie = np.zeros(hw, bool)
    for axis, size in ((0, w), (1, h)):
        a, b, c = theta[:, axis]
        edge = (gx * a + gy * b + c + 1) * size / 2  # an integer on a pixel's edge
        tie |= np.abs(edge - np.round(edge)) < TIE
    return tie


def check_op(auto, policy, img, op, magnitude):
    """Our op's pixels are torchvision's, exactly, but at ties (tie_pixels)."""
    got = auto.apply_op(img, op, magnitude)
    want = theirs(policy, img, op, magnitude)
    assert got.dtype == np.uint8 and got.shape == img.shape
    tie = tie_pixels(auto, op, magnitude, img.shape[:2])[..., None]
    np.testing.assert_array_equal(
        np.where(tie, want, got), want, err_msg=f"{op} {magnitude} {img.shape}"
    )


def compared(auto, got, want, calls, hw):
    """Whether got, a policy's image, was compared with torchvision's (and equal): skipped
    where an op of `calls` sampled a tie (a later op may move the pixel; check_op checks
    each op's pixels)."""
    if any(tie_pixels(auto, op, magnitude, hw).any() for op, magnitude in calls):
        return False
    np.testing.assert_array_equal(got, want)
    return True


def op_cases(space, hw, bins, count=31):
    """(op, magnitude) for each op at each of `bins` of `count`, both signs where signed."""
    for op, (table, signed) in space.items():
        values = table(count, *hw)
        if values is None:
            yield op, 0.0
            continue
        for b in bins:
            yield op, float(values[b])
            if signed:
                yield op, -float(values[b])


@pytest.mark.parametrize("hw", SIZES)
def test_each_op_gives_torchvisions_pixels(auto, hw):
    img = picture(*hw)
    changed = set()
    for policy, space, count in policies(auto):
        for op, magnitude in op_cases(space, hw, (3, 9, 20, 30)[: 2 + count // 30], count):
            check_op(auto, policy, img, op, magnitude)
            if not np.array_equal(auto.apply_op(img, op, magnitude), img):
                changed.add(op)
    assert changed == set(auto.AUTO) | set(auto.WIDE) - {"Identity"}  # each op did something


def test_each_op_gives_torchvisions_pixels_on_one_channel(auto):
    img = picture(13, 17)[..., :1]
    for policy, space, count in policies(auto):
        for op, magnitude in op_cases(space, (13, 17), (count - 1, 9), count):
            check_op(auto, policy, img, op, magnitude)


def test_quarter_turns_and_flat_images(auto):
    """rotate by 90 on a non-square image (pixel centres on ties), and autocontrast / equalize
    of a one-colour image (left as it is)."""
    policy = v2.TrivialAugmentWide()
    for hw in [(19, 27), (20, 27), (16, 16)]:
        for angle in (90.0, -90.0, 180.0, 135.0, -4.5):
            check_op(auto, policy, picture(*hw), "Rotate", angle)
    flat = np.full((5, 6, 3), 77, np.uint8)
    for op in ("AutoContrast", "Equalize", "Contrast", "Sharpness"):
        check_op(auto, policy, flat, op, 0.5)


@pytest.mark.slow
@pytest.mark.parametrize("hw", [(32, 32), (37, 53), (64, 48), (224, 224)])
def test_every_op_at_every_magnitude_gives_torchvisions_pixels(auto, hw):
    for seed in range(2):
        img = picture(*hw, seed)
        for policy, space, count in policies(auto):
            for op, magnitude in op_cases(space, hw, range(count), count):
                check_op(auto, policy, img, op, magnitude)


class TorchDraws:
    """Draws as torchvision's policies draw (the global torch generator)."""

    def integers(self, low, high):
        """torch.randint(high, ()), as _get_random_item and the bin draw."""
        assert low == 0
        return int(torch.randint(high, ()))

    def random(self):
        """torch.rand(()), as the sign draw."""
        return float(torch.rand(()))


def recorded(policy):
    """The (op, magnitude) calls a torchvision policy makes, recorded as it applies them."""
    calls = []
    apply = policy._apply_image_or_video_transform

    def record(image, op, magnitude, **kwargs):
        calls.append((op, magnitude))
        return apply(image, op, magnitude, **kwargs)

    policy._apply_image_or_video_transform = record
    return calls


def test_trivial_augment_draws_are_torchvisions(auto):
    """For the same torch draws: the same op, bin and sign, and the same image."""
    img, policy = picture(19, 27), v2.TrivialAugmentWide()
    calls, ops, seen = recorded(policy), set(), 0
    tensor = torch.from_numpy(img.transpose(2, 0, 1).copy())
    for seed in range(100):
        torch.manual_seed(seed)
        want = policy(tensor).numpy().transpose(1, 2, 0)
        torch.manual_seed(seed)
        assert auto.draw_op(auto.WIDE, img, TorchDraws()) == calls[-1], seed
        torch.manual_seed(seed)
        got = auto.trivial_augment(img, TorchDraws())
        seen += compared(auto, got, want, calls[-1:], img.shape[:2])
        ops.add(calls[-1][0])
    assert ops == set(auto.WIDE) and seen >= 90
    assert {m < 0 for _, m in calls} == {True, False}


def test_rand_augment_draws_are_torchvisions(auto):
    img, policy = picture(19, 27), v2.RandAugment(num_ops=2, magnitude=9)
    calls, seen = recorded(policy), 0
    tensor = torch.from_numpy(img.transpose(2, 0, 1).copy())
    for seed in range(40):
        torch.manual_seed(seed)
        want = policy(tensor).numpy().transpose(1, 2, 0)
        torch.manual_seed(seed)
        draws = TorchDraws()
        assert [auto.draw_op(auto.RAND, img, draws, 9) for _ in range(2)] == calls[-2:], seed
        torch.manual_seed(seed)
        got = auto.rand_augment(img, TorchDraws(), 2, 9)
        seen += compared(auto, got, want, calls[-2:], img.shape[:2])
    assert seen >= 30


@pytest.mark.parametrize("name", ["imagenet", "cifar10", "svhn"])
def test_auto_augment_sub_policies_and_draws_are_torchvisions(auto, name, monkeypatch):
    """The policy's table is torchvision's; for the same torch draws: the same ops applied
    (the sub-policy's, each with its probability) at the same signed magnitudes, in the same
    order, and the same image."""
    img, policy = picture(19, 27), v2.AutoAugment(v2.AutoAugmentPolicy(name))
    assert auto.POLICIES[name] == tuple(map(tuple, policy._policies))
    theirs_calls, ours = recorded(policy), []
    apply = auto.apply_op

    def record(image, op, magnitude):
        ours.append((op, magnitude))
        return apply(image, op, magnitude)

    monkeypatch.setattr(auto, "apply_op", record)
    tensor = torch.from_numpy(img.transpose(2, 0, 1).copy())
    seen = 0
    for seed in range(60):
        start = len(theirs_calls)
        torch.manual_seed(seed)
        want = policy(tensor).numpy().transpose(1, 2, 0)
        torch.manual_seed(seed)
        got = auto.auto_augment(img, TorchDraws(), name)
        seen += compared(auto, got, want, theirs_calls[start:], img.shape[:2])
        assert ours == theirs_calls, seed
    assert 60 < len(ours) < 120 and seen >= 45  # some ops skipped by their probability
    assert {m < 0 for _, m in ours} == {True, False}


def test_the_pipeline_applies_the_policies_before_normalize(aug):
    img = picture(12, 12)
    norm = {"name": "normalize", "mean": [0.5] * 3, "std": [0.5] * 3}
    rand = {"name": "rand_augment", "num_ops": 2, "magnitude": 9}
    svhn = {"name": "auto_augment", "policy": "svhn"}
    for entry, policy in (
        ({"name": "trivial_augment"}, aug.trivial_augment),
        (rand, lambda img, rng: aug.rand_augment(img, rng, 2, 9)),
        (svhn, lambda img, rng: aug.auto_augment(img, rng, "svhn")),
    ):
        pipe = pickle.loads(pickle.dumps(aug.build_pipeline([entry, norm], (12, 12), True)))
        out = pipe(img, aug.sample_rng(0, 0, 5))
        rng = aug.sample_rng(0, 0, 5)
        by_hand = policy(img, rng)
        np.testing.assert_allclose(out, (by_hand / 255 - 0.5) / 0.5, atol=1e-6)
        evaluated = aug.build_pipeline([entry, norm], (12, 12), train=False)(img)
        np.testing.assert_allclose(evaluated, (img / 255 - 0.5) / 0.5, atol=1e-6)
    late = aug.build_pipeline([norm, {"name": "trivial_augment"}], (12, 12), train=True)
    with pytest.raises(ValueError, match="before normalize"):
        late(img, aug.sample_rng(0, 0, 0))


def generated_train(directory):
    """TRAIN of a generated model.py, read as the literal it is (no framework imported)."""
    tree = ast.parse((directory / "model.py").read_text())
    (value,) = [
        node.value
        for node in tree.body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "TRAIN"
    ]
    return ast.literal_eval(value)


def test_both_backends_train_data_carries_the_policies_the_pipeline_applies(aug, tmp_path):
    """The recipes spec (trained by both trainers in their slow tests) compiles to the same
    TRAIN["augment"] for both; its pipeline is the steps done by hand."""
    from recipes_trainer import compile_recipes

    torch_train, keras_train = (
        generated_train(compile_recipes(tmp_path / b, b)) for b in ("torch", "keras")
    )
    entries = torch_train["augment"]
    assert entries == keras_train["augment"]
    assert entries[2:5] == [
        {"name": "trivial_augment"},
        {"name": "rand_augment", "num_ops": 2, "magnitude": 9},
        {"name": "auto_augment", "policy": "imagenet"},
    ]
    img = picture(20, 24)
    out = aug.build_pipeline(entries, (16, 16), train=True)(img, aug.sample_rng(1, 0, 7))
    rng = aug.sample_rng(1, 0, 7)
    x = aug.hflip(aug.random_resized_crop(img, 16, (0.08, 1.0), (0.75, 4 / 3), rng), rng)
    x = aug.auto_augment(aug.rand_augment(aug.trivial_augment(x, rng), rng, 2, 9), rng)
    want = aug.normalize(x, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    np.testing.assert_array_equal(out, want)
