"""--decode gpu's machinery run on the CPU device: the same draws as the CPU pipeline, pixels
within the README's tolerance of Pillow's, the same mixes, and the trainer's flags."""

import json
import sys

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

SEED = 7
NORM = {"name": "normalize", "mean": [0.5, 0.4, 0.3], "std": [0.25, 0.2, 0.3]}
# one level of a uint8 pixel after NORM: what Pillow's and torch's bilinear may differ by
LEVEL = 1 / 255 / min(NORM["std"])
RRC = {"name": "random_resized_crop", "size": 24, "scale": [0.2, 1.0], "ratio": [0.75, 1.33]}
ERASE = {"name": "random_erasing", "p": 0.5, "scale": [0.02, 0.3], "ratio": [0.3, 3.3]}
NO_RESIZE = [  # shorter side already `from`: the device path must be exact
    {"name": "random_crop", "size": 24, "from": 32},
    {"name": "hflip"},
    {"name": "pca_lighting", "std": 0.1},
    NORM,
    {**ERASE, "value": 0.5},
]
KEYS = [(epoch, index) for epoch in range(3) for index in range(8)]


@pytest.fixture(scope="module")
def gd(load):
    """The gpu_decode module."""
    return load("gpu_decode")


@pytest.fixture(scope="module")
def aug(load):
    """The augment module."""
    return load("augment")


def noisy_ramps(h, w, seed):
    """A uint8 HxWx3 image whose every window differs: ramps across and down, plus noise."""
    rows, cols = np.mgrid[0:h, 0:w]
    ramps = np.stack([cols * 200 / w, rows * 200 / h, (rows + cols) * 100 / (h + w)], -1)
    noise = np.random.default_rng(seed).integers(0, 40, (h, w, 3))
    return (ramps + noise).astype(np.uint8)


def device_batch(gd, data, ops, keys):
    """The device path on the CPU: EncodedImages samples collated and augmented."""
    encoded = gd.EncodedImages(data, ops, SEED)
    batch, labels = encoded.collate([encoded[k] for k in keys])
    return gd.augment_batch(ops, batch, torch.device("cpu")).numpy(), labels


def cpu_batch(aug, data, augment, train, keys, tencrop=False):
    """The CPU pipeline's images for the same keys."""
    pipeline = aug.build_pipeline(augment, (24, 24), train, tencrop=tencrop)
    return np.stack([pipeline(data[i][0], aug.sample_rng(SEED, e, i)) for e, i in keys])


def test_without_resizing_the_device_path_is_exact(gd, aug):
    """Crops, flips, lighting and erasing drawn as the CPU pipeline draws them: equal pixels."""
    data = [(noisy_ramps(32, 32 + 3 * i, i), i % 2) for i in range(8)]
    for train, tencrop in ((True, False), (False, False), (False, True)):
        ops = gd.device_ops(NO_RESIZE, (24, 24), train, tencrop=tencrop)
        got, labels = device_batch(gd, data, ops, KEYS)
        want = cpu_batch(aug, data, NO_RESIZE, train, KEYS, tencrop)
        assert got.shape == want.shape and np.array_equal(got, want), (train, tencrop)
        assert labels.tolist() == [data[i][1] for _, i in KEYS]


def test_random_resized_crops_match_within_one_level(gd, aug):
    """A wrong box or flip would differ by many levels on these ramps; resizing by one."""
    augment = [RRC, {"name": "hflip"}, NORM]
    data = [(noisy_ramps(30 + 5 * i, 60 - 4 * i, i), 0) for i in range(8)]
    got, _ = device_batch(gd, data, gd.device_ops(augment, (24, 24), True), KEYS)
    want = cpu_batch(aug, data, augment, True, KEYS)
    assert np.abs(got - want).max() <= LEVEL * 1.001


def jpeg_folder(root, count):
    """count JPEGs (quality 90, sizes around 48 x 40, two of each: resized together) and one
    PNG of noisy ramps."""
    root.mkdir(parents=True)
    paths = []
    for i in range(count):
        path = root / f"{i}.jpg"
        h, w = 40 + 3 * (i // 2), 52 - 2 * (i // 2)
        Image.fromarray(noisy_ramps(h, w, i)).save(path, quality=90)
        paths.append(path)
    Image.fromarray(noisy_ramps(36, 30, 99)).save(root / "x.png")
    return [(str(p), 0) for p in [*paths, root / "x.png"]]


@pytest.fixture(scope="module")
def jpegs(tmp_path_factory, load):
    """An ImageFolderDataset of 8 JPEGs and a PNG."""
    items = jpeg_folder(tmp_path_factory.mktemp("gd") / "imgs", 8)
    return load("imagefolder").ImageFolderDataset(items)


@pytest.mark.parametrize(
    "augment",
    [[{"name": "random_crop", "size": 24, "from": 28}, {"name": "hflip"}, NORM], [RRC, NORM]],
)
@pytest.mark.parametrize("train", [True, False])
def test_jpegs_decoded_by_torchvision_are_within_one_level_of_pillow(
    gd, aug, jpegs, augment, train
):
    keys = [(1, i) for i in range(len(jpegs))]
    ops = gd.device_ops(augment, (24, 24), train)
    encoded = gd.EncodedImages(jpegs, ops, SEED)
    kinds = [encoded[k][0].dim() for k in keys]
    assert kinds == [1] * 8 + [3]  # the JPEGs go as bytes, the PNG as Pillow's pixels
    got, _ = device_batch(gd, jpegs, ops, keys)
    want = cpu_batch(aug, jpegs, augment, train, keys)
    diff = np.abs(got - want)
    assert diff.max() <= LEVEL * 1.001 and diff.mean() <= 0.1 * LEVEL, diff.mean() / LEVEL


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_cuda_the_device_path_gives_the_cpu_device_values(gd, jpegs):
    """Uploaded pixels: exact; nvJPEG's decode: close to libjpeg's (prints what it finds)."""
    crop = {"name": "random_crop", "size": 24, "from": 30}  # the PNG (36 x 30): not resized
    ops = gd.device_ops([crop, {"name": "hflip"}, NORM], (24, 24), True)
    keys = [(0, i) for i in range(len(jpegs))]
    encoded = gd.EncodedImages(jpegs, ops, SEED)
    batch, _ = encoded.collate([encoded[k] for k in keys])
    on_cpu = gd.augment_batch(ops, batch, torch.device("cpu"))
    on_cuda = gd.augment_batch(ops, batch, torch.device("cuda")).cpu()
    assert torch.equal(on_cuda[-1], on_cpu[-1])  # the PNG, decoded by Pillow
    diff = (on_cuda - on_cpu).abs() / LEVEL
    print(f"nvJPEG vs libjpeg, in levels: max {diff.max():.2f}, mean {diff.mean():.3f}")
    assert diff.max() <= 8 and diff.mean() <= 1


def test_a_jpeg_only_the_device_cannot_decode_is_a_data_error_naming_it(gd, load, tmp_path):
    items = jpeg_folder(tmp_path / "imgs", 2)
    path = tmp_path / "imgs" / "1.jpg"
    data = bytearray(path.read_bytes())
    start = data.find(b"\xff\xc4")  # a Huffman table: Pillow reads the header regardless
    data[start + 5 : start + 25] = b"\xff" * 20
    path.write_bytes(bytes(data))
    ops = gd.device_ops([NORM], (24, 24), True)
    dataset = load("imagefolder").ImageFolderDataset(items)
    with pytest.raises(gd.DataError) as err:  # imagefolder's, as gpu_decode imports it
        device_batch(gd, dataset, ops, [(0, 0), (0, 1)])
    assert str(err.value) == (
        f"{path}: cannot decode JPEG (Bogus Huffman table definition); remove or replace the file"
    )


def test_the_start_up_probe_decodes_on_the_cpu_and_refuses_a_decoder_that_fails(gd, monkeypatch):
    gd.probe_decoder(torch.device("cpu"))  # torchvision decodes on the CPU: no error

    def not_built(jpegs, device):
        raise RuntimeError("decode_jpeg, /src/decode_jpeg.cpp:42, Not compiled with GPU support")

    monkeypatch.setattr(gd, "decode_jpegs", not_built)
    with pytest.raises(gd.UsageError) as err:
        gd.probe_decoder(torch.device("cpu"))
    assert str(err.value) == (
        "--decode gpu: torchvision cannot decode JPEGs on cpu (Not compiled with GPU support); "
        "use --decode cpu"
    )


@pytest.mark.parametrize("entry", ["trivial_augment", "rand_augment", "auto_augment"])
def test_cpu_only_entries_are_refused(gd, entry):
    args = {"rand_augment": {"num_ops": 2, "magnitude": 9}, "auto_augment": {"policy": "imagenet"}}
    with pytest.raises(ValueError, match=f"^{entry} runs only on the CPU; use --decode cpu$"):
        gd.device_ops([{"name": entry, **args.get(entry, {})}], (24, 24), True)


@pytest.mark.parametrize("name", ["mixup", "cutmix"])
def test_mixing_on_the_device_equals_mix_batch(gd, aug, name):
    x = np.random.default_rng(0).random((6, 24, 20, 3), dtype=np.float32)
    labels = np.array([0, 3, 1, 2, 3, 0])
    for batch in range(5):
        entries = [{"name": name, "alpha": 0.4}]
        want = aug.mix_batch(x, labels, 4, entries, aug.batch_rng(SEED, 0, batch))
        got = gd.mix_on_device(
            torch.from_numpy(x), torch.from_numpy(labels), 4, entries, aug.batch_rng(SEED, 0, batch)
        )
        assert all(np.array_equal(g.numpy(), w) for g, w in zip(got, want, strict=True))


# train.main(argv) for each [on_cpu, argv] of sys.argv[1] (JSON); on_cpu: the device path is
# allowed on the CPU (check_decode_device, which refuses it, skipped)
DRIVER = """
import contextlib, io, json, sys
import train
check = train.check_decode_device
results = []
for on_cpu, argv in json.loads(sys.argv[1]):
    train.check_decode_device = (lambda device: None) if on_cpu else check
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = train.main(argv)
    results.append({"code": code, "stdout": out.getvalue(), "stderr": err.getvalue()})
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    """A 10-class folder of JPEGs (one PNG) for TinyNet: 3 train and 1 val image a class."""
    root = tmp_path_factory.mktemp("gdfolder") / "data"
    for split, count in (("train", 3), ("val", 1)):
        for c in range(10):
            jpeg_folder(root / split / f"c{c}", count)
            if c:
                (root / split / f"c{c}" / "x.png").unlink()
    return root


def flag_sets(folder, slow):
    """The flag combinations to train with: a few, or (slow) all of them."""
    data = [["--synthetic-per-class", "2"], ["--data", folder]]
    decode = [["--decode", "cpu"], ["--decode", "gpu"]]
    loading = [["--workers", "0"], ["--workers", "2", "--prefetch-factor", "3"]]
    extra = [[], ["--ten-crop", "--channels-last"]]
    every = [d + e + w + x for d in data for e in decode for w in loading for x in extra]
    if slow:
        return every
    return [every[5], every[14]]  # synthetic, gpu, ten-crop; folder, gpu, 2 workers


def training(runs, folder):
    """[on_cpu, argv] of each flag list: two steps of batch 8 into folder/<i>."""
    common = ["--max-steps", "2", "--batch-size", "8"]
    return [
        [True, [*map(str, f), *common, "--out", str(folder / str(i))]] for i, f in enumerate(runs)
    ]


def refused_out(folder):
    """The --out of the run that --decode gpu must refuse."""
    return folder / "refused"


def refused(folder):
    """[on_cpu, argv] of --decode gpu without a CUDA device (or with --device cpu where one is)."""
    device = ["--device", "cpu"] if torch.cuda.is_available() else []
    return [False, ["--decode", "gpu", *device, "--out", str(refused_out(folder))]]


def run_driver(outdir, run_command, calls):
    """DRIVER's results of the calls, in one process."""
    done = run_command([sys.executable, "-c", DRIVER, json.dumps(calls)], outdir, 600)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


@pytest.fixture(scope="module")
def default_results(outdir, run_command, image_folder, tmp_path_factory):
    """(the refused call's result, [(flags, result, out) of the default flag sets])."""
    folder = tmp_path_factory.mktemp("gdruns")
    runs = flag_sets(image_folder, slow=False)
    found = run_driver(outdir, run_command, [refused(folder), *training(runs, folder)])
    return found[0], folder, list(zip(runs, found[1:], strict=True))


def test_decode_gpu_without_a_cuda_device_is_one_line_before_any_work(default_results):
    result, folder, _ = default_results
    assert result["code"] == 2 and result["stderr"].count("\n") == 1, result
    assert "use --decode cpu" in result["stderr"] and not refused_out(folder).exists()
    if not torch.cuda.is_available():
        want = "error: --decode gpu: no CUDA device is available; use --decode cpu\n"
        assert result["stderr"] == want


def train_losses(runs, results, folder):
    """{flags: first epoch's train loss} of runs that each trained two steps and validated."""
    losses = {}
    for i, (flags, result) in enumerate(zip(runs, results, strict=True)):
        assert result["code"] == 0, (flags, result["stderr"])
        rows = (folder / str(i) / "metrics.csv").read_text().splitlines()
        row = dict(zip(rows[0].split(","), rows[1].split(","), strict=True))
        assert row["step"] == "2" and 0 <= float(row["val_error"]) <= 1, (flags, row)
        losses[tuple(map(str, flags))] = float(row["train_loss"])
    return losses


def test_flag_combinations_train_a_few_steps(default_results):
    _, folder, done = default_results
    runs, results = zip(*done, strict=True)
    assert len(train_losses(runs, results, folder)) == len(runs)


@pytest.mark.slow
def test_every_flag_combination_trains_and_both_decodes_agree(
    outdir, run_command, image_folder, tmp_path
):
    runs = flag_sets(image_folder, slow=True)
    losses = train_losses(runs, run_driver(outdir, run_command, training(runs, tmp_path)), tmp_path)
    for flags, loss in losses.items():
        if "gpu" in flags:  # the same run with --decode cpu: pixels within a level, same draws
            cpu = tuple("cpu" if f == "gpu" else f for f in flags)
            assert abs(loss - losses[cpu]) < 0.01, flags


MIX_SPEC = """model MixNet
input image: 3 x 16 x 16
c1 = conv(8, kernel=3, pad=1, bias=false) |> batchnorm |> relu |> maxpool(2)
c2 = conv(8, kernel=3, pad=1, bias=false) |> batchnorm |> relu |> global_avgpool
fc = flatten |> dense(3)
train {
  optimizer = sgd(lr=0.05, momentum=0.9)
  loss      = cross_entropy
  batch     = 8
  epochs    = 2
  augment   = [random_resized_crop(16), hflip, random_erasing, mixup(0.2), cutmix(1.0), normalize]
}
"""


@pytest.mark.slow
def test_mixup_cutmix_and_erasing_train_alike_on_both_decodes(run_command, tmp_path):
    from archdsl.compiler import check_source
    from archdsl.emit import write_output

    checked = check_source(MIX_SPEC, "mix.arch")
    assert checked.ok, [d.message for d in checked.diagnostics]
    write_output(checked, "torch", tmp_path / "mix", force=True)
    flags = ["--synthetic-per-class", "8", "--workers", "0", "--seed", "3"]
    calls = [[True, [*flags, "--decode", d, "--out", str(tmp_path / d)]] for d in ("cpu", "gpu")]
    results = run_driver(tmp_path / "mix", run_command, calls)
    assert [r["code"] for r in results] == [0, 0], results
    cpu, gpu = ((tmp_path / d / "metrics.csv").read_text().splitlines() for d in ("cpu", "gpu"))
    column = cpu[0].split(",").index("train_loss")
    for a, b in zip(cpu[1:], gpu[1:], strict=True):
        assert abs(float(a.split(",")[column]) - float(b.split(",")[column])) < 0.01
