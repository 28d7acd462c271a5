"""The Keras runtime's load_weights on a few hostile .npz files (tests/unit/npz_crafts.py).

The same checks as the PyTorch runtime's (tests/torch_runtime/test_torch_weights_hostile.py
runs every case): a WeightsError of one line, the model untouched, and a good file loads.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from npz_crafts import CASES, DEFLATED_ZEROS, ESCAPE_NAMED  # noqa: E402

pytest.importorskip("keras")

CHOSEN = ["claims_1_5_gb", "deflate_size_lie", "pickled_objects", "header_code", "duplicate"]
DRIVER = '''
import json
import sys
import time

import keras
import numpy as np

import model
import weights


def values(net):
    """The model's variables as arrays."""
    return [keras.ops.convert_to_numpy(v) for v in net.weights]


def outcome(path):
    """What load_weights does with the file: the error it raises, whether the model changed."""
    net = model.build_model()
    before = values(net)
    start = time.perf_counter()
    try:
        weights.load_weights(net, path)
        error = None
    except Exception as exc:  # the tests count any type but WeightsError as a failure
        error = [type(exc).__name__, str(exc)]
    return {
        "error": error,
        "seconds": time.perf_counter() - start,
        "unchanged": all(np.array_equal(a, b) for a, b in zip(before, values(net))),
    }


keras.utils.set_random_seed(0)
weights.save_weights(model.build_model(), sys.argv[1])
print(json.dumps({path: outcome(path) for path in sys.argv[1:]}))
'''


@pytest.fixture(scope="module")
def loaded(outdir, tmp_path_factory):
    """({file stem: outcome of load_weights}, the files' folder)."""
    (outdir / "weights_driver.py").write_text(DRIVER)
    files = tmp_path_factory.mktemp("hostile_npz")
    (files / "escape_named.npz").write_bytes(ESCAPE_NAMED)
    (files / "deflated_zeros.npz").write_bytes(DEFLATED_ZEROS)
    for case, data, _ in CASES:
        if case in CHOSEN:
            (files / f"{case}.npz").write_bytes(data)
    named = ["good", "escape_named", "deflated_zeros", *CHOSEN]
    paths = [files / f"{name}.npz" for name in named]
    cmd = [sys.executable, "weights_driver.py", *map(str, paths)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(cmd, cwd=outdir, capture_output=True, text=True, timeout=240, env=env)
    assert done.returncode == 0, done.stderr[-4000:]
    return {Path(p).stem: r for p, r in json.loads(done.stdout).items()}, files


def refusal(outcome):
    """The WeightsError message of a refused file (any other exception fails the test)."""
    kind, message = outcome["error"]
    assert kind == "WeightsError", message
    assert "\n" not in message and "\x1b" not in message, repr(message)
    assert outcome["unchanged"]
    return message


@pytest.mark.parametrize(
    "case, says", [pytest.param(c, s, id=c) for c, _, s in CASES if c in CHOSEN]
)
def test_hostile_file_is_refused_in_one_line(loaded, case, says):
    outcomes, files = loaded
    message = refusal(outcomes[case])
    assert message.startswith(f"{files / case}.npz: ")
    assert says in message, message
    assert outcomes[case]["seconds"] < 2


def test_names_from_the_file_are_escaped(loaded):
    message = refusal(loaded[0]["escape_named"])
    assert "extra (not in the model) \\x1b[31mred" in message
    assert "missing conv1.weight" in message


def test_a_deflated_1_5_gb_array_is_refused_before_it_is_read(loaded):
    outcome = loaded[0]["deflated_zeros"]
    message = refusal(outcome)
    assert "missing conv1.weight" in message and "extra (not in the model) a" in message
    assert outcome["seconds"] < 2


def test_a_good_file_still_loads(loaded):
    outcome = loaded[0]["good"]
    assert outcome["error"] is None
    assert not outcome["unchanged"]
