"""`archdsl diagram`: the DOT source read back against `archdsl shapes` and the IR, the towers'
crossings, block clusters, escaping, and the files it writes or refuses to overwrite."""

from __future__ import annotations

import html
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from dot_reading import read_dot

pytest.importorskip("graphviz")

from archdsl import report_format  # noqa: E402
from archdsl.cli import main  # noqa: E402
from archdsl.compiler import check_source  # noqa: E402
from archdsl.diagnostics import visible  # noqa: E402
from archdsl.diagram import diagram, text  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TWO_TOWER = ROOT / "specs" / "alexnet_two_tower.arch"
RESNET18 = ROOT / "specs" / "zoo" / "resnet18.arch"
DOT_FOUND = shutil.which("dot") is not None


def checked(path: Path, name: str | None = None):
    """The front end's result for a spec file (shown as `name`)."""
    result = check_source(path.read_text(encoding="utf-8"), name or str(path))
    assert result.ok
    return result


def shapes_json(result) -> dict:
    """What `archdsl shapes --format json` prints for the spec."""
    return report_format.as_data(result.report, result.diagnostics, 1)


def statement_outputs(data: dict) -> dict[str, str]:
    """Each input's and statement's output shape, written `a x b x c`, from the shapes report."""
    shapes = {i["name"]: i["shape"] for i in data["inputs"]}
    for layer in data["layers"]:
        shapes[layer["statement"]] = layer["output_shape"]  # the last op's output wins
    return {name: " x ".join(map(str, shape)) for name, shape in shapes.items()}


@pytest.mark.parametrize("spec", [TWO_TOWER, RESNET18], ids=lambda p: p.stem)
def test_edges_are_the_ir_inputs_labelled_with_the_reported_shapes(spec):
    result = checked(spec)
    drawn = read_dot(diagram(result.report).source)
    outputs = statement_outputs(shapes_json(result))
    graph = result.graph
    expected = [(name, s.name, outputs[name]) for s in graph.statements for name in s.inputs]
    expected.append((graph.output, "output", outputs[graph.output]))
    assert [edge[:3] for edge in drawn.edges] == expected


@pytest.mark.parametrize("spec", [TWO_TOWER, RESNET18], ids=lambda p: p.stem)
def test_nodes_show_ops_params_and_macs_of_the_shapes_report(spec):
    result = checked(spec)
    drawn = read_dot(diagram(result.report).source)
    layers = shapes_json(result)["layers"]
    assert set(drawn.labels) == {layer["statement"] for layer in layers} | {"image"}
    for name, label in drawn.labels.items():
        own = [layer for layer in layers if layer["statement"] == name]
        chain = [line for line in label.split("<br/>")[1:] if not line.startswith("<")]
        ops = [op.split(" ")[0] for op in " |> ".join(chain).split(" |> ")]
        assert ops == ([x["op"] for x in own] or ["input"]), name
        params, macs = sum(x["params"] for x in own), sum(x["macs"] for x in own)
        assert (f"{params:,} params" in label) == (params > 0), name
        assert (f"{macs:,} MACs" in label) == (macs > 0), name


def test_two_towers_are_two_columns_with_the_paper_crossings():
    drawn = read_dot(diagram(checked(TWO_TOWER).report).source)
    towers = [drawn.root.find(f"tower {t}") for t in (0, 1)]
    layers = ("conv1", "conv2", "conv3", "conv4", "conv5")
    for t, tower in enumerate(towers):
        assert tower.all_nodes() == {f"{layer}_t{t}" for layer in layers}
    crossings = {(a, b) for a, b, _, crossing in drawn.edges if crossing}
    assert crossings == {
        ("conv2_t1", "conv3_t0"),  # conv3 reads both towers' conv2 (`merge`)
        ("conv2_t0", "conv3_t1"),
        ("conv5_t0", "conv5"),  # fc6 reads both towers' conv5, joined
        ("conv5_t1", "conv5"),
    }
    assert ("conv5", "fc6", "256 x 6 x 6", False) in drawn.edges
    # as the spec writes them: conv(48, kernel=11, stride=4) ... maxpool(3, stride=2)
    assert "conv 48 11x11/4 |> relu |> lrn |> maxpool 3x3/2<br/>" in drawn.labels["conv1_t1"]
    assert "<br/>flatten |> dropout |> dense 4096 |> relu<br/>" in drawn.labels["fc6"]


def test_block_calls_are_nested_clusters():
    drawn = read_dot(diagram(checked(RESNET18).report).source)
    layer2 = drawn.root.find("layer2")
    assert [child.label for child in layer2.children] == ["layer2.0 (basic)", "layer2.1 (basic)"]
    assert layer2.nodes == []
    first = layer2.children[0].nodes
    assert first == ["layer2.0.conv1", "layer2.0.conv2", "layer2.0.downsample", "layer2.0.out"]
    assert drawn.root.nodes == ["image", "stem", "head"]


def test_spec_text_is_escaped_in_the_dot_source(tmp_path):
    hostile = "net <b>\"&'\\N\\n].arch"
    result = checked(TWO_TOWER, hostile)
    source = diagram(result.report).source
    assert hostile not in source
    title = next(line for line in source.splitlines() if "AlexNetTwoTower" in line)
    assert "(net &lt;b&gt;&quot;&amp;&#x27;\\N\\n].arch)" in title
    for raw in ("<", ">", '"', "'", "&", "\x1b", "\u202e", "\n", "\u00e9"):
        escaped = text(f"a{raw}b")
        assert escaped.isascii() and not set(escaped) & set("<>\"'\x1b\n"), escaped
        assert html.unescape(escaped) == f"a{visible(raw)}b"
    if DOT_FOUND:  # the title survives Graphviz as the very text it was
        svg = subprocess.run(["dot", "-Tsvg"], input=source.encode(), capture_output=True)
        assert svg.returncode == 0, svg.stderr
        assert b"(net &lt;b&gt;&quot;&amp;&#39;\\N\\n].arch)" in svg.stdout


def test_unused_statements_are_dashed(tmp_path):
    spec = tmp_path / "unused.arch"
    spec.write_text("model U\ninput x: 8\nspare = dense(3)\nhead = dense(2) from x\n")
    drawn = diagram(check_source(spec.read_text(), "unused.arch").report).source
    line = next(line for line in drawn.splitlines() if "<b>spare</b>" in line)
    assert "unused: not built" in line and "dashed" in line


def test_dot_is_written_without_graphviz_and_svg_fails_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no `dot` program
    assert main(["diagram", str(TWO_TOWER), "-o", str(tmp_path / "net.dot")]) == 0
    said = capsys.readouterr()
    assert said.out.count("\n") == 1 and "apt install graphviz" in said.out
    assert (tmp_path / "net.dot").read_text().startswith("// archdsl diagram\n")
    for suffix in ("svg", "png"):
        assert main(["diagram", str(TWO_TOWER), "-o", str(tmp_path / f"net.{suffix}")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Graphviz's `dot` program" in err, err
        assert not (tmp_path / f"net.{suffix}").exists()


def test_foreign_files_are_kept_unless_forced_and_own_files_replaced(tmp_path, capsys):
    formats = ("dot", "svg", "png") if DOT_FOUND else ("dot",)
    for suffix in formats:
        out = tmp_path / f"net.{suffix}"
        out.write_text("mine")
        assert main(["diagram", str(TWO_TOWER), "-o", str(out)]) == 2
        assert "refusing to overwrite" in capsys.readouterr().err
        assert out.read_text() == "mine"
        assert main(["diagram", str(TWO_TOWER), "-o", str(out), "--force"]) == 0
        first = out.read_bytes()
        assert main(["diagram", str(TWO_TOWER), "-o", str(out)]) == 0  # archdsl's own file
        assert out.read_bytes() == first  # the same bytes again: deterministic
    assert main(["diagram", str(TWO_TOWER), "-o", str(tmp_path / "net.pdf")]) == 2
    assert "end the file name in .svg, .png or .dot" in capsys.readouterr().err
    assert main(["diagram", str(TWO_TOWER), "-o", str(tmp_path)]) == 2
    assert main(["diagram", str(ROOT / "tests"), "-o", str(tmp_path / "x.dot")]) == 2


@pytest.mark.skipif(not DOT_FOUND, reason="Graphviz's dot is not installed")
def test_png_carries_the_mark_in_a_valid_text_chunk(tmp_path, capsys):
    image = pytest.importorskip("PIL.Image")
    out = tmp_path / "net.png"
    assert main(["diagram", str(TWO_TOWER), "-o", str(out)]) == 0
    with image.open(out) as png:
        png.load()  # checks every chunk's CRC
        assert png.info["Software"] == "archdsl diagram"
        assert png.width > 300 and png.height > 600


def test_diagram_imports_no_framework_and_is_the_same_in_every_process(tmp_path, capsys):
    probe = (
        "import sys\nfrom archdsl.cli import main\ncode = main(sys.argv[1:])\n"
        "print(sorted(m for m in ('torch', 'tensorflow', 'keras') if m in sys.modules))"
    )
    there, here = tmp_path / "there.dot", tmp_path / "here.dot"
    done = subprocess.run(
        [sys.executable, "-c", probe, "diagram", str(RESNET18), "-o", str(there)],
        env={**os.environ, "PYTHONHASHSEED": "1"},  # this process hashes strings otherwise
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[]"
    assert main(["diagram", str(RESNET18), "-o", str(here)]) == 0
    assert there.read_text() == here.read_text()


def test_the_committed_drawing_is_of_the_current_spec():
    svg = (ROOT / "docs" / "alexnet_two_tower.svg").read_text(encoding="utf-8")
    assert "<!-- archdsl diagram -->" in svg  # written by archdsl diagram, not by hand
    report = checked(TWO_TOWER).report
    drawn = read_dot(diagram(report).source)
    for name in drawn.labels:
        assert f">{name}</text>" in svg, name
    for _, _, shape, _ in drawn.edges:
        assert f">{shape}</text>" in svg, shape
    assert f">{report.total_params:,} params, {report.total_macs:,} MACs per example<" in svg
