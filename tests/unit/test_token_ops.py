"""Token sequences (L x D) in the front end: the conversions, the token ops and attention:
shape rules, counts, MACs, the `shapes` table, and the diagnostics that name the conversion."""

from __future__ import annotations

import pytest

from archdsl.cli import main
from archdsl.compiler import check_source


def check(body: str, input_shape: str = "8 x 3 x 4"):
    return check_source(f"model T\ninput x: {input_shape}\n{body}\n", "t.arch")


def layers(body: str, input_shape: str = "8 x 3 x 4"):
    """{op: layer} of a spec that checks without errors."""
    checked = check(body, input_shape)
    assert checked.ok, checked.diagnostics
    return {layer.op: layer for layer in checked.report.layers}


def error(body: str, input_shape: str = "8 x 3 x 4"):
    """The only error of a spec: (code, message, hint)."""
    (found,) = [d for d in check(body, input_shape).diagnostics if d.severity == "error"]
    return found.code, found.message, found.hint


@pytest.mark.parametrize(
    ("body", "out"),
    [
        ("y = to_tokens", (12, 8)),  # H*W tokens of C
        ("y = to_tokens |> to_map(3, 4)", (8, 3, 4)),
        ("y = to_tokens |> to_map(2, 6)", (8, 2, 6)),  # any H x W of H*W tokens
        ("y = to_tokens |> token(11)", (8,)),
        ("y = to_tokens |> mean_tokens", (8,)),
        ("y = to_tokens |> class_token", (13, 8)),
        ("y = to_tokens |> position_embedding", (12, 8)),
        ("y = to_tokens |> attention(4)", (12, 8)),
        ("y = to_tokens |> dense(5)", (12, 5)),  # each token's features
        ("y = to_tokens |> layernorm |> gelu |> dropout |> stochastic_depth(0.1)", (12, 8)),
        ("y = to_tokens |> flatten", (96,)),
        ("t = to_tokens\ny = add(t, t)", (12, 8)),
    ],
)
def test_output_shapes(body, out):
    checked = check(body)
    assert checked.ok, checked.diagnostics
    assert checked.report.layers[-1].output_shape == out


def test_learned_tensors_and_their_counts():
    found = layers("y = to_tokens |> class_token |> position_embedding |> layernorm |> dense(6)")
    assert found["class_token"].params == 8  # token (1, 1, D)
    assert found["position_embedding"].params == 13 * 8  # embedding (1, L + 1, D)
    assert found["layernorm"].params == 2 * 8  # over D, not L
    assert found["dense"].params == 8 * 6 + 6
    assert found["dense"].macs == 13 * 8 * 6  # every token through the weights


@pytest.mark.parametrize(("bias", "params"), [("true", 4 * 8 * 8 + 4 * 8), ("false", 4 * 8 * 8)])
def test_attention_counts_and_macs(bias, params):
    """nn.MultiheadAttention's tensors; MACs: the Q, K, V and output projections (4 L D^2)
    and Q K^T and A V (L^2 D each)."""
    found = layers(f"y = to_tokens |> attention(2, bias={bias})")["attention"]
    assert found.params == params
    assert found.macs == 4 * 12 * 8 * 8 + 2 * 12 * 12 * 8
    assert found.formula == "2 heads of 4 over 12 tokens"


@pytest.mark.parametrize(
    ("body", "code", "message", "hint"),
    [
        (
            "y = to_tokens |> conv(4, kernel=1)",
            "E018",
            "conv needs a C x H x W map, got 12 x 8",
            "add `to_map(H, W)`",
        ),
        (
            "y = attention(2)",
            "E018",
            "attention needs an L x D token sequence, got 8 x 3 x 4",
            "add `to_tokens`",
        ),
        (
            "y = flatten |> mean_tokens",
            "E018",
            "mean_tokens needs an L x D token sequence",
            "move it before `token` or `mean_tokens`",
        ),
        (
            "y = to_tokens |> global_avgpool",
            "E018",
            "global_avgpool needs a C x H x W map",
            "add `to_map(H, W)`",
        ),
        (
            "y = to_tokens |> batchnorm",
            "E018",
            "batchnorm needs a C x H x W map or a flat vector",
            "add `to_map(H, W)`",
        ),
        (
            "y = to_tokens |> softmax",
            "E018",
            "softmax needs a C x H x W map or a flat vector",
            "add `to_map(H, W)`",
        ),
        ("y = to_tokens |> chunk(2, part=0)", "E018", "chunk needs", "add `to_map(H, W)`"),
        ("y = to_tokens |> layer_scale", "E018", "layer_scale needs", ""),
        ("t = to_tokens\ny = concat(t, t)", "E018", "concat needs", "add `to_map(H, W)`"),
        (
            "y = to_tokens |> to_map(4, 4)",
            "E013",
            "to_map(4, 4) needs 16 tokens, got 12",
            "height * width must equal the number of tokens",
        ),
        (
            "y = to_tokens |> token(12)",
            "E013",
            "token(12) selects past the 12 tokens",
            "from 0 to 11",
        ),
        ("y = to_tokens |> attention(3)", "E008", "cannot split the 8 features", "[1, 2, 4, 8]"),
        ("y = to_tokens\nz = dense(3) from x", "E012", "dense(3) receives the spatial tensor", ""),
    ],
)
def test_errors_name_the_conversion(body, code, message, hint):
    found = error(body)
    assert found[0] == code and message in found[1] and hint in found[2], found


def test_shapes_shows_token_sequences_as_such(tmp_path, capsys):
    spec = tmp_path / "t.arch"
    spec.write_text("model T\ninput x: 8 x 3 x 4\ny = to_tokens |> mean_tokens\n")
    assert main(["shapes", str(spec)]) == 0
    rows = {line.split()[0]: line.split()[2:] for line in capsys.readouterr().out.splitlines()}
    assert rows["y.to_tokens"][:4] == ["12", "x", "8", "tokens"]
    assert rows["y.mean_tokens"][:2] == ["8", "-"]  # a vector
    assert rows["x"][:6] == ["8", "x", "3", "x", "4", "-"]  # a map


def test_a_block_reads_the_length_and_dim_of_its_tokens():
    block = "block mlp() {\n  y = dense(in.dim * 2 + in.length) |> dense(in.dim)\n}\n"
    checked = check(block + "t = to_tokens\nm = mlp()")
    assert checked.ok, checked.diagnostics
    assert [layer.output_shape for layer in checked.report.layers][-2:] == [(12, 28), (12, 8)]


@pytest.mark.parametrize(
    ("read", "message", "hint"),
    [
        ("in.channels", "`in` is an L x D token sequence (12 x 8)", "`in.length`, `in.dim`"),
        ("in.width", "`in` is an L x D token sequence (12 x 8)", "`in.length`, `in.dim`"),
    ],
)
def test_a_size_tokens_lack_is_refused(read, message, hint):
    code, found, found_hint = error(
        f"block b() {{\n  y = dense({read})\n}}\nt = to_tokens\nm = b()"
    )
    assert code == "E018" and message in found and hint in found_hint


def test_a_map_has_no_dim():
    code, found, hint = error("block b() {\n  y = conv(in.dim, kernel=1)\n}\nm = b()")
    assert code == "E018" and "`in` is a C x H x W map (8 x 3 x 4)" in found
    assert "`in.channels`, `in.height`, `in.width` read its sizes" in hint


def test_a_token_output_with_a_train_section_is_w105():
    checked = check("y = to_tokens |> attention(2)\ntrain {\n  epochs = 1\n}")
    (found,) = [d for d in checked.diagnostics if d.code == "W105"]
    assert "is a 12 x 8 token sequence, not a vector of class scores" in found.message
    assert "token(0) |> dense(N)" in found.hint
