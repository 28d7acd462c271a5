"""Hostile and careless command lines: one line on stderr, exit 2, nothing read that is not a spec."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from cli_harness import TINY, archdsl, one_line_error, snapshot, tiny_spec

from archdsl.cli import main

# ----------------------------------------------------------------------------- spec files


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: "/dev/zero", "not a regular file (a device, FIFO or socket?)"),
        (lambda d: os.mkfifo(d / "fifo.arch") or d / "fifo.arch", "not a regular file"),
        (lambda d: (d / "folder.arch").mkdir() or d / "folder.arch", "is a directory"),
        (lambda d: d / "absent.arch", "no such file"),
        (lambda d: (d / "dangling.arch").symlink_to(d / "x") or d / "dangling.arch", "no such"),
        (lambda d: (d / "f").write_text("") or d / "f" / "x.arch", "Not a directory"),
    ],
    ids=["dev-zero", "fifo", "directory", "absent", "dangling-link", "under-a-file"],
)
def test_what_is_not_a_readable_regular_file_is_refused_unread(tmp_path, make, message):
    path = make(tmp_path)
    before = snapshot(tmp_path)
    for command in (["check"], ["shapes"], ["ir"], ["compile"], ["weights"]):
        line = one_line_error(archdsl(*command, path, cwd=tmp_path, timeout=20))
        assert line == f"error[usage]: {path}: {line.split(': ', 2)[2]}" and message in line
    assert snapshot(tmp_path) == before


def test_a_socket_is_refused(tmp_path):
    path = tmp_path / "s.arch"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        line = one_line_error(archdsl("check", path, cwd=tmp_path, timeout=20))
    assert line.endswith("not a regular file (a device, FIFO or socket?), expected a .arch file")


def test_a_spec_over_one_mib_is_refused_and_one_of_exactly_one_mib_is_read(tmp_path):
    spec = tmp_path / "big.arch"
    spec.write_text(TINY + "#" * ((1 << 20) - len(TINY) - 1) + "\n")
    assert spec.stat().st_size == 1 << 20
    done = archdsl("check", spec, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    spec.write_text(TINY + "#" * (1 << 20) + "\n")
    line = one_line_error(archdsl("check", spec, cwd=tmp_path))
    assert line == f"error[usage]: {spec}: larger than 1 MiB, the limit for a spec file"


def test_a_file_whose_size_is_not_known_in_advance_is_read_up_to_the_limit(tmp_path):
    # /proc files say size 0: reading stops at the limit instead of trusting st_size
    done = archdsl("check", "/proc/self/status", cwd=tmp_path, timeout=20)
    assert done.returncode == 1 and b"error[E001]" in done.stderr
    assert b"Traceback" not in done.stderr


@pytest.mark.parametrize("end", ["\r\n", "\r"], ids=["CRLF", "CR"])
def test_other_line_ends_are_read_as_newlines(tmp_path, end):
    spec = tmp_path / "ends.arch"
    spec.write_bytes(TINY.replace("\n", end).replace("dense(2)", "dnse(2)").encode())
    done = archdsl("check", spec, cwd=tmp_path)
    assert done.returncode == 1 and f"{spec}:3:21: error[E002]".encode() in done.stderr
    assert b" 3 | logits = flatten |> dnse(2)\n" in done.stderr


# ----------------------------------------------------------------------------- flags


@pytest.mark.parametrize(
    "argv, key",
    [
        ([], "the following arguments are required: COMMAND"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["check"], "the following arguments are required: FILE"),
        (["shapes", "x.arch", "--batch", "0"], "expected a positive whole number, got 0"),
        (["shapes", "x.arch", "--batch", "9" * 5000], "expected a positive whole number"),
        (["shapes", "x.arch", "--format", "html"], "argument --format: invalid choice"),
        (["compile", "x.arch", "--backend", "jax"], "argument --backend: invalid choice"),
        (["compile", "x.arch", "--build-dir", "b"], "unrecognized arguments: --build-dir b"),
        (["compile", "x.arch", "--run-dir", "r"], "unrecognized arguments: --run-dir r"),
        (["ir"], "ir: give a spec file, or --schema"),
    ],
)
def test_a_bad_command_line_is_one_line_exit_2(tmp_path, argv, key):
    line = one_line_error(archdsl(*argv, cwd=tmp_path))
    assert line.startswith("error[usage]: ") and key in line


@pytest.mark.parametrize(
    "flags", [["-o", "d"], ["-od"], ["--out", "d"], ["--out=d"], ["--ou", "d"], ["--o=d"]]
)
def test_train_refuses_out_and_names_the_two_folders(tmp_path, flags):
    spec = tiny_spec(tmp_path)
    before = snapshot(tmp_path)
    line = one_line_error(archdsl("train", spec, "--max-steps", "1", *flags, cwd=tmp_path))
    assert "is ambiguous here" in line and "--build-dir DIR" in line and "--run-dir DIR" in line
    assert snapshot(tmp_path) == before


def test_a_closed_pipe_is_quiet(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "archdsl", "ir", "--schema"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.close()  # the reader goes away before anything is written
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and err == b""


def test_a_full_disk_under_stdout_is_one_line(tmp_path):
    spec = tiny_spec(tmp_path)
    with open("/dev/full", "wb") as full:
        done = subprocess.run(
            [sys.executable, "-m", "archdsl", "check", "--format", "json", str(spec)],
            cwd=tmp_path,
            stdout=full,
            stderr=subprocess.PIPE,
            timeout=60,
        )
    assert one_line_error(done) == "error[usage]: writing the output: No space left on device"


# ----------------------------------------------------------------------------- train folders

TRAIN_FLAGS = [
    "--max-steps",
    "1",
    "--epochs",
    "1",
    "--synthetic-per-class",
    "2",
    "--batch-size",
    "2",
    "--workers",
    "0",
]


def test_two_specs_trained_with_defaults_use_their_own_folders(tmp_path):
    specs = [tiny_spec(tmp_path, "one.arch"), tiny_spec(tmp_path, "two.arch")]
    for spec in specs:
        done = archdsl("train", spec, *TRAIN_FLAGS, cwd=tmp_path, timeout=300)
        assert done.returncode == 0, done.stderr
    for stem in ("one", "two"):
        assert (tmp_path / "build" / f"{stem}-torch" / "model.py").is_file()
        assert (tmp_path / "runs" / f"{stem}-torch" / "last.pt").is_file()
        assert (tmp_path / "runs" / f"{stem}-torch" / "metrics.csv").is_file()
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["one-torch", "two-torch"]


def test_train_compiles_into_build_dir_and_gives_run_dir_to_the_trainer(
    tmp_path, monkeypatch, capsys
):
    calls = []
    monkeypatch.setattr(subprocess, "call", lambda cmd: calls.append(cmd) or 0)
    monkeypatch.chdir(tmp_path)
    spec = tiny_spec(tmp_path)
    argv = ["train", str(spec), "--build-dir", "code dir", "--run-dir", "my run", "--lr", "-1"]
    assert main([*argv, "--run", "x", "--bu", "--epochs", "1"]) == 0
    trainer = str(Path("code dir") / "train.py")
    assert calls == [
        [
            sys.executable,
            trainer,
            "--out",
            "my run",
            "--lr",
            "-1",
            "--run",
            "x",
            "--bu",
            "--epochs",
            "1",
        ]
    ]
    assert (tmp_path / "code dir" / "model.py").is_file()
    assert not (tmp_path / "build").exists()
    assert f"$ {sys.executable} '{trainer}' --out 'my run' --lr -1" in capsys.readouterr().err
