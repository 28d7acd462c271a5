"""The SVG `archdsl diagram` draws, rendered by a real headless browser: every node's name,
every edge's shape and the towers' labels are laid out as visible text."""

from __future__ import annotations

import html
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from dot_reading import read_dot

pytest.importorskip("graphviz")

from archdsl.cli import main  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
BROWSER = next((found for name in BROWSERS if (found := shutil.which(name))), None)
# appended to a copy of the SVG: after layout, list the text of every <text> with a real size
PROBE = """<script><![CDATA[
const drawn = [...document.querySelectorAll("text")]
  .filter((t) => { const box = t.getBBox(); return box.width > 0 && box.height > 0; })
  .map((t) => t.textContent);
const out = document.createElementNS("http://www.w3.org/2000/svg", "desc");
out.setAttribute("id", "rendered");
out.textContent = JSON.stringify(drawn);
document.documentElement.appendChild(out);
]]></script>
</svg>"""


def rendered_texts(svg: Path) -> list[str]:
    """The texts the browser laid out with a non-zero size (None: the SVG failed to parse)."""
    page = svg.with_name("probe.svg")
    body = svg.read_text(encoding="utf-8").rstrip()
    assert body.endswith("</svg>")
    page.write_text(body.removesuffix("</svg>") + PROBE, encoding="utf-8")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", page.as_uri()]
    done = subprocess.run([BROWSER, *flags], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "parsererror" not in done.stdout and "error on line" not in done.stdout
    start = done.stdout.index('<desc id="rendered">') + len('<desc id="rendered">')
    return json.loads(html.unescape(done.stdout[start : done.stdout.index("</desc>", start)]))


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
@pytest.mark.skipif(BROWSER is None, reason="no headless browser (chromium) is installed")
def test_browser_renders_every_node_and_edge_label(tmp_path, capsys):
    spec = ROOT / "specs" / "alexnet_two_tower.arch"
    svg, dot = tmp_path / "net.svg", tmp_path / "net.dot"
    assert main(["diagram", str(spec), "-o", str(svg)]) == 0
    assert main(["diagram", str(spec), "-o", str(dot)]) == 0
    drawn = read_dot(dot.read_text())
    texts = rendered_texts(svg)
    for name in drawn.labels:
        assert name in texts, name
    shown = " ".join(texts)
    for _, _, shape, _ in drawn.edges:
        assert shape in texts, shape
    assert "tower 0" in texts and "tower 1" in texts
    assert "17,472 params, 52,707,600 MACs" in shown  # conv1 of one tower
