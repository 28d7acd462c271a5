"""metrics.csv, metrics.png, atomic writes and the progress bar."""

import importlib.util

import numpy as np
import pytest

pytest.importorskip("torch")


@pytest.fixture
def mlog(load):
    """The metrics_log module."""
    return load("metrics_log")


def row(epoch):
    """A full metrics row."""
    return dict(
        epoch=epoch,
        step=10 * epoch,
        lr=0.01,
        train_loss=2.0 / epoch,
        val_loss=2.5 / epoch,
        val_error=0.5 / epoch,
        val_top5_error=0.1 / epoch,
        images_per_s=123.4,
        seconds=1.5,
    )


def test_atomic_write_replaces_or_keeps_the_old_file(mlog, tmp_path):
    path = tmp_path / "f.txt"
    mlog.atomic_write(path, lambda f: f.write("old"), binary=False)

    def broken(f):
        f.write("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        mlog.atomic_write(path, broken, binary=False)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]
    mlog.atomic_write(path, lambda f: f.write(b"new"))
    assert path.read_bytes() == b"new"


def test_csv_round_trip_with_full_precision(mlog, tmp_path):
    log = mlog.MetricsLog(tmp_path)
    log.append(**row(1))
    log.append(**row(3))
    log.write()
    rows = mlog.read_csv(tmp_path / "metrics.csv")
    assert list(rows[0]) == list(mlog.FIELDS)
    assert float(rows[1]["train_loss"]) == 2.0 / 3 and rows[1]["epoch"] == "3"
    again = mlog.MetricsLog(tmp_path, [row(1)])
    again.write([row(2)])
    assert [r["epoch"] for r in mlog.read_csv(tmp_path / "metrics.csv")] == ["2"]


def test_rows_reject_unknown_fields_and_allow_missing_ones(mlog, tmp_path):
    log = mlog.MetricsLog(tmp_path)
    with pytest.raises(ValueError, match="unknown"):
        log.append(epoch=1, accuracy=0.5)
    log.append(epoch=1, val_error=0.25)
    log.write()
    assert mlog.read_csv(tmp_path / "metrics.csv")[0]["train_loss"] == ""
    log.plot()  # the missing curves are left out
    assert (tmp_path / "metrics.png").stat().st_size > 1000


def test_remove_stale_temps_removes_only_unfinished_saves_of_the_given_names(mlog, tmp_path):
    stale = [".last.pt.abcd1234.tmp", ".metrics.csv.k2_j9xq1.tmp", ".metrics.png.x.tmp"]
    kept = [".last.pt.keep", "last.pt.abcd1234.tmp", ".other.abcd1234.tmp", ".last.pt..tmp"]
    for name in stale + kept:
        (tmp_path / name).write_text("x")
    (tmp_path / ".last.pt.folder12.tmp").mkdir()
    outside = tmp_path.parent / f"{tmp_path.name}-target"
    outside.write_text("mine")
    (tmp_path / ".last.pt.linked12.tmp").symlink_to(outside)
    mlog.remove_stale_temps(tmp_path, ("last.pt", "metrics.csv", "metrics.png"))
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted([*kept, ".last.pt.folder12.tmp", ".last.pt.linked12.tmp"])
    assert outside.read_text() == "mine"


def test_remove_stale_temps_removes_what_temp_file_leaves(mlog, tmp_path):
    fd, name = mlog.temp_file(tmp_path / "last.pt")  # as a save killed before its rename
    with open(fd, "w") as f:
        f.write("half a checkpoint")
    mlog.remove_stale_temps(tmp_path, ("last.pt",))
    assert list(tmp_path.iterdir()) == []


def test_plot_writes_a_png(mlog, tmp_path):
    log = mlog.MetricsLog(tmp_path, [row(1), row(2), row(3)])
    log.plot()
    assert (tmp_path / "metrics.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    log.plot(tmp_path / "other.png")
    assert (tmp_path / "other.png").stat().st_size > 1000


def test_portable_weights_are_written_atomically(outdir, tmp_path, monkeypatch):
    """save_weights replaces its file whole: a write that fails half-way leaves the old file
    and no temporary file beside it."""
    monkeypatch.syspath_prepend(str(outdir))
    spec = importlib.util.spec_from_file_location("torch_rt_portable", outdir / "portable.py")
    portable = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(portable)
    path = tmp_path / "w.npz"
    portable.write_npz(path, {"a.weight": np.ones((2, 3))})
    before = path.read_bytes()

    def broken(f, **arrays):
        f.write(b"PK half a file")
        raise OSError("disk full")

    monkeypatch.setattr(portable.np, "savez", broken)
    with pytest.raises(OSError, match="disk full"):
        portable.write_npz(path, {"a.weight": np.zeros((2, 3))})
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.npz"]
