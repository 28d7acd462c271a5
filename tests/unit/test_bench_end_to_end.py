"""bench/end_to_end.py's parts: the step tracer around a trainer, the JPEG folder it writes,
and (slow) a two-step run of the whole bench on both backends."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from bench_modules import BENCH, import_bench
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
end_to_end = import_bench("end_to_end")

FAKE_TRAINER = """
import sys, time
from progress import StepProgress

bar = StepProgress(3, "epoch 1/1", {"loss": lambda: 1.0}, "step", 8, enabled=False)
check = StepProgress(2, "validate", {}, "batch", 8, enabled=False)
for step in (1, 2, 3):
    time.sleep(0.05 * step)
    bar.update(step)
    check.update(1)  # a validation batch: not a step
print("main" if __name__ == "__main__" else __name__, sys.argv[1:])
sys.exit(3)
"""


def test_the_tracer_times_each_step_of_an_untouched_trainer_and_keeps_its_exit_status(tmp_path):
    shutil.copy(ROOT / "backends" / "common" / "progress_lines.py", tmp_path)
    shutil.copy(ROOT / "backends" / "torch" / "runtime" / "progress.py", tmp_path)
    (tmp_path / "train.py").write_text(FAKE_TRAINER)
    times = tmp_path / "times.json"
    tracer = [sys.executable, str(BENCH / "e2e_trace.py"), "--times", str(times)]
    done = subprocess.run(
        [*tracer, str(tmp_path / "train.py"), "--max-steps", "3"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert done.returncode == 3, done.stderr
    assert done.stdout.strip() == "main ['--max-steps', '3']"
    marks = json.loads(times.read_text())["marks"]
    assert [m[0] for m in marks] == [1, 2, 3]
    gaps = [b[1] - a[1] for a, b in zip(marks, marks[1:], strict=False)]
    assert gaps[0] >= 0.1 and gaps[1] >= 0.15  # the sleeps between the updates


def test_the_jpeg_folder_has_the_imagefolder_layout_and_size(tmp_path):
    end_to_end.write_jpeg_folder(tmp_path, 3, 2)
    for split, count in (("train", 2), ("val", end_to_end.VAL_PER_CLASS)):
        classes = sorted(p.name for p in (tmp_path / split).iterdir())
        assert classes == ["class0000", "class0001", "class0002"]
        for name in classes:
            files = sorted((tmp_path / split / name).glob("*.jpg"))
            assert len(files) == count
            with Image.open(files[0]) as image:
                assert (image.format, image.mode, image.size) == ("JPEG", "RGB", (160, 120))


@pytest.mark.slow
def test_a_two_step_run_of_the_bench_prints_a_row_per_backend_with_ratios():
    done = subprocess.run(
        [sys.executable, str(BENCH / "end_to_end.py"), "--cases", "mini-jpeg", "--steps", "1", "2"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    for backend in ("torch", "keras"):
        row = re.search(
            rf"^\| mini-jpeg \| JPEG folder \| {backend} \| 64 \| 1\.\.2 \|.*$", done.stdout, re.M
        )
        assert row is not None, done.stdout
        cells = [c.strip("* ") for c in row.group(0).strip("|").split("|")]
        trainer, bare, overhead, reference, versus = (float(cells[i]) for i in (5, 8, 9, 10, 11))
        assert trainer > 0 and bare > 0 and reference > 0
        assert overhead == pytest.approx(trainer / bare, rel=0.1, abs=0.01)
        assert versus == pytest.approx(trainer / reference, rel=0.1, abs=0.01)
