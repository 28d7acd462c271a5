"""docs/keras_local_workers.sh's signal and exit-code rules, with stand-in workers (a short
Python script in place of train.py): the trainer's own behaviour is tested under -m slow."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

LAUNCHER = Path(__file__).resolve().parents[2] / "docs" / "keras_local_workers.sh"

# a worker: marks itself ready once its Ctrl-C handler is in, then waits for Ctrl-C (or
# fails with FAIL_CODE when it is worker FAIL_INDEX); on Ctrl-C the chief takes a second
# to "save" (writes saved) and every worker exits 130; a second Ctrl-C aborts at once
WORKER = """
import json, os, signal, sys, time
from pathlib import Path

index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
folder = Path(sys.argv[1])
asked = []
signal.signal(signal.SIGINT, lambda *_: (asked.append(1), len(asked) > 1 and os._exit(131)))
(folder / f"ready{index}").touch()
deadline = time.monotonic() + 60
while not asked and time.monotonic() < deadline:
    if index == int(os.environ.get("FAIL_INDEX", -1)):
        sys.exit(int(os.environ["FAIL_CODE"]))
    time.sleep(0.02)
if index == 0:
    time.sleep(1.0)
    (folder / "saved").touch()
sys.exit(130 if asked else 0)
"""


def launch(tmp_path, count, source=WORKER, **env):
    """The launcher running `count` workers (Python `source`) in its own process group."""
    worker = tmp_path / "worker.py"
    worker.write_text(source)
    (tmp_path / "logs").mkdir()
    return subprocess.Popen(
        ["bash", str(LAUNCHER), str(count), str(worker), str(tmp_path)],
        env={**os.environ, "PYTHON": sys.executable, "WORKER_LOGS": str(tmp_path / "logs"), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def wait_ready(tmp_path, count):
    """Wait until every worker's Ctrl-C handler is in."""
    deadline = time.monotonic() + 30
    while not all((tmp_path / f"ready{i}").exists() for i in range(count)):
        assert time.monotonic() < deadline, "the workers did not start"
        time.sleep(0.02)


def ended(proc):
    """(exit code, output) of the launcher, killed with its workers after 30 seconds."""
    try:
        output = proc.communicate(timeout=30)[0]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode, output


def test_ctrl_c_lets_the_chief_save_before_the_launcher_exits_130(tmp_path):
    """Ctrl-C at the terminal (SIGINT to the process group): the launcher waits for every
    worker instead of killing them, so the chief, the slowest to stop, still saves."""
    proc = launch(tmp_path, 3)
    wait_ready(tmp_path, 3)
    os.killpg(proc.pid, signal.SIGINT)
    code, output = ended(proc)
    assert code == 130, output
    assert (tmp_path / "saved").exists()
    assert "Ctrl-C again stops them now" in output


def test_a_second_ctrl_c_stops_every_worker_at_once(tmp_path):
    proc = launch(tmp_path, 2)
    wait_ready(tmp_path, 2)
    os.killpg(proc.pid, signal.SIGINT)
    time.sleep(0.3)
    os.killpg(proc.pid, signal.SIGINT)
    code, output = ended(proc)
    assert code == 130, output
    assert not (tmp_path / "saved").exists()


@pytest.mark.parametrize("failing", [0, 1])
def test_a_failing_worker_stops_the_others_and_gives_the_exit_code(tmp_path, failing):
    started = time.monotonic()
    proc = launch(tmp_path, 3, FAIL_INDEX=str(failing), FAIL_CODE="3")
    code, output = ended(proc)
    assert code == 3, output
    assert time.monotonic() - started < 20  # the others were stopped, not waited out
    assert not (tmp_path / "saved").exists()


def test_workers_that_all_succeed_give_0_and_their_tf_config(tmp_path):
    """Workers that print their TF_CONFIG and end: each has its own index, the cluster
    lists two loopback addresses."""
    proc = launch(tmp_path, 2, "import os\nprint(os.environ['TF_CONFIG'])\n")
    code, output = ended(proc)
    assert code == 0, output
    logged = (tmp_path / "logs" / "worker1.log").read_text()
    configs = [json.loads(line) for line in (output + logged).splitlines() if line[:1] == "{"]
    assert sorted(c["task"]["index"] for c in configs) == [0, 1]
    hosts = configs[0]["cluster"]["worker"]
    assert len(set(hosts)) == 2 and all(h.startswith("127.0.0.1:") for h in hosts)
