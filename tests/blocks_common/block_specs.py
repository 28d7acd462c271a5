"""A spec whose block calls differ in which statements they have, for both backends' tests of
blocks as classes and builder functions."""

# `wide` only where the width changes, `gate` and `g` only where asked, so `body` and each
# call's output read a different statement call by call; `pair` calls `unit` from inside a block
CONDITIONAL = """model Conditional
input image: 3 x 8 x 8
block unit(w: int, gated: bool = false) {
  wide = conv(w, kernel=1) |> relu                         if in.channels != w
  body = conv(w, kernel=3, pad=1)
  gate = global_avgpool |> conv(w, kernel=1) |> sigmoid    if gated
  g    = mul(body, gate)                                   if gated
}
block pair(w: int) {
  inner = unit(w) * 2
  merge = add(inner, in)
}
s = unit(4) |> unit(4, gated=true) |> unit(6) |> unit(6)
p = pair(6)
head = global_avgpool |> flatten |> dense(3)
"""
