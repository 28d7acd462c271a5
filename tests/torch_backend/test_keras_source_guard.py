"""A Keras source of weights is refused, in one line, by a process that holds torch: TensorFlow
is never imported beside it (the two crash together)."""

import sys

import pytest

from archdsl.cli import main

torch = pytest.importorskip("torch")


def test_a_keras_source_is_refused_where_torch_is_loaded(tmp_path, capsys):
    spec = tmp_path / "s.arch"
    spec.write_text("model S\n\ninput image: 3 x 8 x 8\n\nhead = flatten |> dense(2)\n")
    (tmp_path / "m.keras").write_bytes(b"not read")
    npz = tmp_path / "w.npz"
    code = main(["weights", str(spec), "--from", str(tmp_path / "m.keras"), "-o", str(npz)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "a Keras source is read in a process without torch" in err
    assert "tensorflow" not in sys.modules and "keras" not in sys.modules
    assert not npz.exists()
