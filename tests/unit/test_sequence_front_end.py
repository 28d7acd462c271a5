"""Token inputs and the sequence ops in the front end: the `tokens L of V` input, E018 where
ids or tokens do not fit, embedding's own checks, and which layers a padding mask reaches."""

import pytest

from archdsl.compiler import check_source
from archdsl.masking import masks
from archdsl.report_format import as_data


def checked(body, source="tokens 16 of 100"):
    return check_source(f"model T\ninput text: {source}\n{body}\n", "t.arch")


def only(result):
    """(code, line, column, message, hint) of the only diagnostic."""
    (d,) = result.diagnostics
    return d.code, d.span.line, d.span.column, d.message, d.hint


def test_token_input_shape_and_json():
    result = checked("e = embedding(100, 8) |> lstm(4)")
    assert result.ok and result.report.outputs["e"] == (4,)
    data = as_data(result.report, result.diagnostics, 1)
    assert data["inputs"] == [{"name": "text", "shape": [16], "vocab": 100}]


@pytest.mark.parametrize(
    ("source", "column", "wanted"),
    [("tokns 16 of 100", 13, "tokens"), ("tokens 16 in 100", 23, "of")],
)
def test_misspelt_token_input_points_at_the_word(source, column, wanted):
    code, line, col, message, hint = only(checked("e = embedding(100, 8)", source))
    assert (code, line, col) == ("E004", 2, column) and f"expected `{wanted}`" in message
    assert "tokens 256 of 20000" in hint


def test_ids_reach_only_an_embedding():
    code, _, _, message, hint = only(checked("f = flatten |> dense(2)"))
    assert code == "E018" and "cannot read the integer ids" in message
    assert hint.startswith("add `embedding(100, D)` before it")


def test_embedding_needs_ids_and_enough_rows():
    code, _, _, message, _ = only(checked("e = embedding(100, 8)", "3 x 8 x 8"))
    assert code == "E018" and message.endswith(
        "needs token ids (an `input NAME: tokens L of V`), got 3 x 8 x 8"
    )
    code, _, _, message, hint = only(checked("e = embedding(50, 8)"))
    assert code == "E018" and "go up to 99" in message and hint == "write `embedding(100, 8)`"
    code, _, _, message, _ = only(checked("e = embedding(100, 8, padding=100)"))
    assert code == "E004" and "padding id 100 is not a row" in message


def test_recurrent_ops_need_tokens():
    code, _, _, message, hint = only(checked("e = embedding(100, 8) |> lstm(4) |> gru(3)"))
    assert code == "E018" and "gru needs an L x D token sequence, got 4" in message


def test_the_mask_follows_positions_and_ends_where_they_move():
    body = "e = embedding(100, 8, padding=0) |> dense(8) |> attention(2)\n"
    body += "r = lstm(4, sequences=true) |> mean_tokens\n"
    body += "c = class_token |> attention(2) |> mean_tokens from e\n"
    body += "out = concat(r, c) |> dense(2)"
    assert masks(checked(body).report) == {
        "e.attention": ("text", 0),
        "r.lstm": ("text", 0),
        "r.mean_tokens": ("text", 0),
    }
    assert masks(checked("e = embedding(100, 8) |> lstm(4)").report) == {}
