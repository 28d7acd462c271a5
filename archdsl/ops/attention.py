"""Multi-head self-attention over a token sequence (L x D), its tensors laid out as
torch.nn.MultiheadAttention's so that torchvision's weights load unchanged."""

from __future__ import annotations

from typing import Literal

from pydantic import PositiveInt

from archdsl.ir_types import Frozen, Probability, Span
from archdsl.ops.spec import OpSpec, Out, Shape, ShapeError, Tensor, need
from archdsl.params import sig


class Attention(Frozen):
    """softmax(Q K^T / sqrt(D / heads)) V per head, the heads joined and projected back to D;
    Q, K, V are projections of the same tokens. Dropout acts on the attention weights."""

    op: Literal["attention"] = "attention"
    span: Span
    heads: PositiveInt
    dropout: Probability = 0.0
    bias: bool = True


def _attention_shape(op: Attention, inputs: list[Shape]) -> Out:
    """Tokens keep their shape; the heads must divide D."""
    (shape,) = inputs
    need(shape, "tokens", "attention")
    length, dim = shape
    if dim % op.heads:
        divisors = [h for h in range(1, dim + 1) if dim % h == 0]
        raise ShapeError(
            "E008",
            f"attention({op.heads}) cannot split the {dim} features of each token into "
            f"{op.heads} heads",
            f"heads must divide {dim}: try one of {divisors[-6:]}",
        )
    return Out(shape, f"{op.heads} heads of {dim // op.heads} over {length} tokens")


def _attention_tensors(op: Attention, inputs: list[Shape]) -> dict[str, Tensor]:
    """nn.MultiheadAttention's: in_proj_weight (3D, D) (Q, K, V rows), in_proj_bias (3D,),
    out_proj.weight (D, D), out_proj.bias (D,)."""
    dim = inputs[0][1]
    weights = {"in_proj_weight": Tensor((3 * dim, dim)), "out_proj.weight": Tensor((dim, dim))}
    if not op.bias:
        return weights
    return {
        "in_proj_weight": weights["in_proj_weight"],
        "in_proj_bias": Tensor((3 * dim,)),
        "out_proj.weight": weights["out_proj.weight"],
        "out_proj.bias": Tensor((dim,)),
    }


def _attention_macs(op: Attention, inputs: list[Shape], output: Shape) -> int:
    """The Q, K, V and output projections (4 L D^2) and the Q K^T and A V matmuls (L^2 D each,
    summed over the heads); softmax and bias adds excluded."""
    length, dim = inputs[0]
    return 4 * length * dim * dim + 2 * length * length * dim


SPECS = (
    OpSpec(
        "attention",
        Attention,
        sig("heads:count!", "dropout:float", "bias:bool"),
        "multi-head self-attention over the tokens (nn.MultiheadAttention's tensors)",
        _attention_shape,
        tensors=_attention_tensors,
        macs=_attention_macs,
        masked=True,  # given a padding mask, no token attends to padding
    ),
)
