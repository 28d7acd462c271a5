"""`towers N { }`: replication per tower, exchange points, totals equal to the grouped form."""

from __future__ import annotations

from pathlib import Path

from archdsl.compiler import check_source

SPECS = Path(__file__).resolve().parents[2] / "specs"


def checked(text: str):
    """Check a spec given as text."""
    return check_source(text, "t.arch")


def test_two_tower_alexnet_equals_grouped_totals():
    two = checked((SPECS / "alexnet_two_tower.arch").read_text())
    grouped = checked((SPECS / "alexnet.arch").read_text())
    assert two.ok and grouped.ok
    assert two.report.trainable_params == grouped.report.trainable_params == 60_965_224
    assert two.report.total_macs == grouped.report.total_macs == 724_406_816
    per_tower = {
        layer.statement: layer.trainable_params for layer in two.report.layers if layer.op == "conv"
    }
    assert per_tower["conv1_t0"] == per_tower["conv1_t1"] == 48 * 3 * 121 + 48
    assert per_tower["conv3_t0"] == 192 * 256 * 9 + 192  # conv3 reads both towers


def test_towers_read_their_own_tower_and_merge_reads_all():
    graph = checked((SPECS / "alexnet_two_tower.arch").read_text()).graph
    inputs = {s.name: s.inputs for s in graph.statements}
    assert inputs["conv1_t0"] == inputs["conv1_t1"] == ("image",)
    assert inputs["conv2_t1"] == ("conv1_t1",)
    assert inputs["conv3_t0"] == inputs["conv3_t1"] == ("conv2_t0", "conv2_t1")
    assert inputs["conv4_t1"] == ("conv3_t1",)
    assert inputs["conv5"] == ("conv5_t0", "conv5_t1")
    assert inputs["fc6"] == ("conv5",)
    towers = {s.name: s.tower for s in graph.statements}
    assert towers["conv4_t1"] == 1 and towers["conv5"] is None and towers["fc6"] is None


def test_grouped_lrn_gets_a_note_and_towers_do_not():
    grouped = checked((SPECS / "alexnet.arch").read_text())
    assert [d.span.line for d in grouped.diagnostics if d.code == "I202"] == [18]
    two = checked((SPECS / "alexnet_two_tower.arch").read_text())
    assert not [d for d in two.diagnostics if d.code == "I202"]


def test_a_final_towered_statement_is_joined_into_the_output():
    c = checked("model T\ninput x: 4 x 8 x 8\ntowers 2 {\n  a = conv(3, kernel=1)\n}\n")
    assert c.ok and c.graph.output == "a"
    assert c.report.outputs["a"] == (6, 8, 8)


def test_tower_errors():
    def codes(text: str) -> list[str]:
        return [d.code for d in checked(text).diagnostics]

    head = "model T\ninput x: 4 x 8 x 8\n"
    assert codes(head + "a = merge |> conv(3, kernel=1)\n") == ["E004"]
    assert codes(head + "towers 1 {\n a = conv(3, kernel=1)\n}\n") == ["E006"]
    assert codes(head + "towers 2 {\n a = merge |> conv(3, kernel=1)\n}\n") == ["E004"]
    mismatch = (
        head + "towers 2 {\n a = conv(3, kernel=1)\n}\ntowers 3 {\n b = conv(3, kernel=1)\n}\n"
    )
    assert codes(mismatch) == ["E013"]
