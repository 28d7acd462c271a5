"""`archdsl compile` deletes only files it wrote, inside its folder, and never follows a link."""

from __future__ import annotations

import hashlib
import json
import stat

import pytest
from cli_harness import archdsl, one_line_error, snapshot, tiny_spec

MANIFEST = ".archdsl-manifest.json"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def compiled(tmp_path):
    """A spec compiled once into tmp_path/out: (spec, out)."""
    spec = tiny_spec(tmp_path)
    out = tmp_path / "out"
    done = archdsl("compile", spec, "-o", out, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return spec, out


def add_entries(out, entries: dict) -> None:
    """Add file entries to the manifest of `out`."""
    manifest = json.loads((out / MANIFEST).read_text())
    manifest["files"].update(entries)
    (out / MANIFEST).write_text(json.dumps(manifest))


@pytest.mark.parametrize("entry", ["../victim.py", "{tmp}/victim.py", "sub/../../victim.py"])
def test_a_manifest_entry_outside_the_folder_deletes_nothing(compiled, tmp_path, entry):
    spec, out = compiled
    victim = tmp_path / "victim.py"
    victim.write_bytes(b"precious = 1\n")
    add_entries(out, {entry.format(tmp=tmp_path): sha(victim.read_bytes())})
    before, outside = snapshot(tmp_path), snapshot(tmp_path, skip=out)
    line = one_line_error(archdsl("compile", spec, "-o", out, cwd=tmp_path))
    assert "unsafe or malformed entry" in line and "--force" in line
    assert snapshot(tmp_path) == before
    forced = archdsl("compile", spec, "-o", out, "--force", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert snapshot(tmp_path, skip=out) == outside


@pytest.mark.parametrize(
    "text, problem",
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "no `files` table"),
        ('{"files": ["model.py"]}', "no `files` table"),
        ('{"files": {"model.py": 3}}', "unsafe or malformed entry 'model.py'"),
        ('{"files": {"model.py": "abc"}}', "unsafe or malformed entry 'model.py'"),
        ('{"files": {"x\\u0000.py": "' + "0" * 64 + '"}}', "unsafe or malformed entry 'x\\x00.py'"),
        ('{"files": {"x\\u001b[2J.py": "' + "0" * 64 + '"}}', "entry 'x\\x1b[2J.py'"),
        ('{"files": {"..": "' + "0" * 64 + '"}}', "unsafe or malformed entry '..'"),
        ("[" * 100_000 + "]" * 100_000, "not JSON"),
        ("\xff\xfe junk", "not JSON"),
    ],
)
def test_a_malformed_manifest_is_one_line_and_force_overrides_it(compiled, tmp_path, text, problem):
    spec, out = compiled
    (out / MANIFEST).write_bytes(text.encode("latin-1") if "\xff" in text else text.encode())
    before = snapshot(tmp_path)
    line = one_line_error(archdsl("compile", spec, "-o", out, cwd=tmp_path))
    assert line.startswith(f"error[usage]: {out / MANIFEST}: ")
    assert problem in line and "not a manifest archdsl wrote" in line and "--force" in line
    assert snapshot(tmp_path) == before
    forced = archdsl("compile", spec, "-o", out, "--force", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert json.loads((out / MANIFEST).read_text())["files"]["model.py"]


def test_a_manifest_that_is_a_link_is_refused_and_never_written_through(compiled, tmp_path):
    spec, out = compiled
    target = tmp_path / "elsewhere.json"
    target.write_bytes((out / MANIFEST).read_bytes())
    (out / MANIFEST).unlink()
    (out / MANIFEST).symlink_to(target)
    before, outside = snapshot(tmp_path), snapshot(tmp_path, skip=out)
    line = one_line_error(archdsl("compile", spec, "-o", out, cwd=tmp_path))
    assert "not a regular file" in line
    assert snapshot(tmp_path) == before
    assert archdsl("compile", spec, "-o", out, "--force", cwd=tmp_path).returncode == 0
    assert not (out / MANIFEST).is_symlink()
    assert snapshot(tmp_path, skip=out) == outside


def test_stale_files_are_removed_but_not_links_or_edited_files(compiled, tmp_path):
    spec, out = compiled
    outside = tmp_path / "outside.py"
    outside.write_bytes(b"x = 1\n")
    (out / "old_module.py").write_bytes(b"y = 2\n")
    (out / "edited.py").write_bytes(b"z = 3\n")
    (out / "linked.py").symlink_to(outside)
    add_entries(
        out,
        {
            "old_module.py": sha(b"y = 2\n"),
            "edited.py": sha(b"z = 0\n"),
            "linked.py": sha(b"x = 1\n"),
        },
    )
    # edited.py and the link are files compile did not write (as they are now): refused
    line = one_line_error(archdsl("compile", spec, "-o", out, cwd=tmp_path))
    assert "edited.py (edited since archdsl wrote it)" in line and "linked.py" in line
    assert (out / "old_module.py").exists()
    forced = archdsl("compile", spec, "-o", out, "--force", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert not (out / "old_module.py").exists()
    assert (out / "edited.py").read_bytes() == b"z = 3\n"
    assert (out / "linked.py").is_symlink() and outside.read_bytes() == b"x = 1\n"


@pytest.mark.parametrize("force", [False, True])
def test_bytecode_cache_keeps_what_compile_did_not_write(compiled, tmp_path, force):
    spec, out = compiled
    cache = out / "__pycache__"
    cache.mkdir()
    for name in ("model.cpython-311.pyc", "train.cpython-311.opt-1.pyc", "mine.txt", "x.pyc"):
        (cache / name).write_bytes(b"data")
    done = archdsl("compile", spec, "-o", out, *(["--force"] if force else []), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in cache.iterdir()) == ["mine.txt", "x.pyc"]


def test_a_bytecode_cache_of_only_compiled_modules_goes(compiled, tmp_path):
    spec, out = compiled
    (out / "__pycache__").mkdir()
    (out / "__pycache__" / "model.cpython-311.pyc").write_bytes(b"data")
    assert archdsl("compile", spec, "-o", out, cwd=tmp_path).returncode == 0
    assert not (out / "__pycache__").exists()


def test_a_bytecode_cache_that_is_a_link_is_not_followed(compiled, tmp_path):
    spec, out = compiled
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "model.cpython-311.pyc").write_bytes(b"data")
    (out / "__pycache__").symlink_to(elsewhere, target_is_directory=True)
    before = snapshot(tmp_path, skip=out)
    for flags in ([], ["--force"]):
        done = archdsl("compile", spec, "-o", out, *flags, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert snapshot(tmp_path, skip=out) == before


def test_a_link_named_like_an_output_file_is_replaced_not_written_through(compiled, tmp_path):
    spec, out = compiled
    target = tmp_path / "target.py"
    target.write_bytes((out / "model.py").read_bytes())  # even with the content compile writes
    (out / "model.py").unlink()
    (out / "model.py").symlink_to(target)
    line = one_line_error(archdsl("compile", spec, "-o", out, cwd=tmp_path))
    assert "refusing to overwrite" in line and "model.py" in line
    target.write_bytes(b"mine = 1\n")
    before = snapshot(tmp_path, skip=out)
    assert archdsl("compile", spec, "-o", out, "--force", cwd=tmp_path).returncode == 0
    assert not (out / "model.py").is_symlink() and "class Tiny" in (out / "model.py").read_text()
    assert snapshot(tmp_path, skip=out) == before


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_files_get_the_mode_the_umask_gives(tmp_path, umask, mode):
    spec = tiny_spec(tmp_path)
    out = tmp_path / "out"
    done = archdsl("compile", spec, "-o", out, cwd=tmp_path, umask=umask)
    assert done.returncode == 0, done.stderr
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in out.iterdir()}
    assert modes and set(modes.values()) == {mode}, modes


@pytest.mark.parametrize(
    "where, message",
    [
        ("afile/out", "Not a directory"),
        ("afile", "exists and is not a directory"),
        ("/proc/archdsl-out", ""),
        ("/proc/self/archdsl-out", ""),
        ("dangling", "File exists"),
    ],
)
def test_an_impossible_output_folder_is_one_line(tmp_path, where, message):
    spec = tiny_spec(tmp_path)
    (tmp_path / "afile").write_text("mine")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    before = snapshot(tmp_path)
    line = one_line_error(archdsl("compile", spec, "-o", where, cwd=tmp_path))
    assert line.startswith(f"error[usage]: {where}: ") and message in line
    assert snapshot(tmp_path) == before


def test_force_into_proc_is_one_line(tmp_path):
    spec = tiny_spec(tmp_path)
    line = one_line_error(archdsl("compile", spec, "-o", "/proc", "--force", cwd=tmp_path))
    assert line.startswith("error[usage]: /proc: cannot write the output here: ")
