"""`archdsl ir`: the printed JSON loads back into the same graph; `--schema` describes every op."""

from __future__ import annotations

import json

import pytest
from core_helpers import (
    BAD_DIR,
    SHIPPED_SPECS,
    SPECS_DIR,
    relative,
    run_inprocess,
    run_subprocess,
)

from archdsl import ir
from archdsl.compiler import check_source
from archdsl.signatures import OPS

IDS = [str(p.relative_to(SPECS_DIR)) for p in SHIPPED_SPECS]


@pytest.mark.parametrize("path", SHIPPED_SPECS, ids=IDS)
def test_ir_json_round_trips(path, capsys):
    code, out, err = run_inprocess(capsys, "ir", str(path))
    assert code == 0, err
    loaded = ir.Graph.model_validate_json(out)
    original = check_source(path.read_text(encoding="utf-8"), str(path)).graph
    assert loaded == original
    # and printing the loaded graph again gives the same text
    assert loaded.model_dump_json(indent=2, by_alias=True) == out.rstrip("\n")
    assert loaded.name and loaded.output in {s.name for s in loaded.statements}


def test_ir_round_trip_through_a_fresh_process():
    path = SPECS_DIR / "zoo" / "resnet18.arch"
    code, out, err = run_subprocess("ir", relative(path))
    assert code == 0, err
    loaded = ir.Graph.model_validate_json(out)
    assert loaded == check_source(path.read_text(encoding="utf-8"), relative(path)).graph


def test_ir_of_a_bad_spec_prints_diagnostics_and_no_json(capsys):
    path = BAD_DIR / "09_e002_unknown_op_cnov.arch"
    code, out, err = run_inprocess(capsys, "ir", str(path))
    assert code == 1
    assert out == ""
    assert f"{path}:6:5: error[E002]" in err


def test_ir_without_a_file_or_schema_is_a_usage_error(capsys):
    code, out, err = run_inprocess(capsys, "ir")
    assert code == 2 and out == "" and "--schema" in err


def _schema(capsys) -> dict:
    code, out, err = run_inprocess(capsys, "ir", "--schema")
    assert code == 0, err
    return json.loads(out)


def _op_names(defs: dict) -> set[str]:
    """The `op` values a schema definition admits (a const or an enum)."""
    names = set()
    for definition in defs.values():
        op = definition.get("properties", {}).get("op")
        if op is None:
            continue
        if "const" in op:
            names.add(op["const"])
        names.update(op.get("enum", ()))
    return names


def test_schema_is_json_with_defs_for_every_op(capsys):
    schema = _schema(capsys)
    defs = schema["$defs"]
    assert _op_names(defs) == set(OPS)
    for cls in ("Conv", "MaxPool", "AvgPool", "Dense", "Activation", "Concat", "Add"):
        assert cls in defs
    assert schema["title"] == "Graph"
    assert {"name", "inputs", "statements", "output"} <= set(schema["required"])


def test_schema_from_a_fresh_process_matches():
    code, out, err = run_subprocess("ir", "--schema")
    assert code == 0, err
    assert json.loads(out) == ir.Graph.model_json_schema(by_alias=True)


def test_every_op_of_the_shipped_specs_is_in_the_schema(capsys):
    admitted = _op_names(_schema(capsys)["$defs"])
    used = {
        op.op
        for path in SHIPPED_SPECS
        for stmt in check_source(path.read_text(encoding="utf-8"), path.name).graph.statements
        for op in stmt.ops
    }
    assert used <= admitted
