"""The PyTorch runtime's load_weights on hostile .npz files (tests/unit/npz_crafts.py).

Each file gives a WeightsError of one line naming it and the problem, fast, with the model
untouched; a file whose headers fit but whose data is damaged too; a good file still loads.
The runtime runs in a subprocess (its modules import each other by bare name).
"""

import json
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from npz_crafts import CASES, DEFLATED_ZEROS, ESCAPE_NAMED  # noqa: E402

DRIVER = '''
import json
import sys
import time
from pathlib import Path

import torch

import model
import weights


def outcome(path):
    """What load_weights does with the file: the error it raises, whether the model changed."""
    net = model.build_model()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    start = time.perf_counter()
    try:
        weights.load_weights(net, path)
        error = None
    except Exception as exc:  # the tests count any type but WeightsError as a failure
        error = [type(exc).__name__, str(exc)]
    return {
        "error": error,
        "seconds": time.perf_counter() - start,
        "unchanged": all(torch.equal(v, before[k]) for k, v in net.state_dict().items()),
    }


torch.manual_seed(0)
if sys.argv[1] == "save":
    weights.save_weights(model.build_model(), sys.argv[2])
else:
    results = {path: outcome(path) for path in sys.argv[2:]}
    # this process's own peak (VmHWM): getrusage's ru_maxrss also counts the parent's memory,
    # which the process had between fork and exec
    status = Path("/proc/self/status").read_text()
    rss = int(next(l for l in status.splitlines() if l.startswith("VmHWM:")).split()[1]) * 1024
    print(json.dumps({"files": results, "max_rss": rss}))
'''


def damaged_data(good: Path, path: Path, member: str) -> Path:
    """A copy of `good` with one byte flipped in the middle of `member`'s data."""
    data = bytearray(good.read_bytes())
    with zipfile.ZipFile(good) as archive:
        info = archive.getinfo(member)
    data[info.header_offset + info.compress_size // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    return path


@pytest.fixture(scope="module")
def loaded(tmp_path_factory, assemble_into, run_command):
    """({file stem: outcome of load_weights}, the driver's peak memory, the files' folder)."""
    out = assemble_into(tmp_path_factory.mktemp("torch_weights"))
    (out / "driver.py").write_text(DRIVER)
    files = tmp_path_factory.mktemp("hostile_npz")
    good = files / "good.npz"
    done = run_command([sys.executable, "driver.py", "save", str(good)], out, 120)
    assert done.returncode == 0, done.stderr
    (files / "escape_named.npz").write_bytes(ESCAPE_NAMED)
    (files / "deflated_zeros.npz").write_bytes(DEFLATED_ZEROS)
    paths = [
        files / "escape_named.npz",
        files / "deflated_zeros.npz",
        damaged_data(good, files / "crc.npz", "fc.weight.npy"),
    ]
    with np.load(good) as arrays:
        np.savez_compressed(files / "compressed.npz", **arrays)
    for case, data, _ in CASES:
        (files / f"{case}.npz").write_bytes(data)
    paths += [good, files / "compressed.npz", *(files / f"{c}.npz" for c, _, _ in CASES)]
    done = run_command([sys.executable, "driver.py", "load", *map(str, paths)], out, 240)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    return {Path(p).stem: r for p, r in report["files"].items()}, report["max_rss"], files


def refusal(outcome):
    """The WeightsError message of a refused file (any other exception fails the test)."""
    kind, message = outcome["error"]
    assert kind == "WeightsError", message
    assert "\n" not in message and "\x1b" not in message, repr(message)
    assert outcome["unchanged"]
    return message


@pytest.mark.parametrize("case, says", [pytest.param(c, s, id=c) for c, _, s in CASES])
def test_hostile_file_is_refused_in_one_line(loaded, case, says):
    outcome = loaded[0][case]
    message = refusal(outcome)
    assert message.startswith(f"{loaded[2] / case}.npz: ")
    assert says in message, message
    assert outcome["seconds"] < 2


def test_no_file_makes_the_loader_allocate_what_it_claims(loaded):
    assert loaded[1] < 2**30  # deflated_zeros once took 3 GB (and 21 s)


def test_names_from_the_file_are_escaped(loaded):
    message = refusal(loaded[0]["escape_named"])
    assert "extra (not in the model) \\x1b[31mred" in message
    assert "missing conv1.weight" in message


def test_a_deflated_1_5_gb_array_is_refused_before_it_is_read(loaded):
    outcome = loaded[0]["deflated_zeros"]
    message = refusal(outcome)
    assert "missing conv1.weight" in message and "extra (not in the model) a" in message
    assert outcome["seconds"] < 2


def test_damaged_data_is_refused_in_one_line(loaded):
    message = refusal(loaded[0]["crc"])
    assert message == (
        f"{loaded[2] / 'crc.npz'}: the arrays cannot be read (Bad CRC-32 for file 'fc.weight.npy')"
    )


@pytest.mark.parametrize("name", ["good", "compressed"])
def test_good_files_still_load(loaded, name):
    outcome = loaded[0][name]
    assert outcome["error"] is None
    assert not outcome["unchanged"]
