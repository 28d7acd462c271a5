"""Text using every construct the highlighters tell apart (lexically a spec; it need not
compile), shared by their tests."""

SAMPLE = """\
model Tiny  # a comment
input text: tokens 32 of 1000
init conv.weight = he_normal(mode=fan_out)
block unit(planes: int, project: bool = false) {
  out = conv(planes, kernel=3, pad=same) |> relu  from in  if project and index == 0
}
towers 2 {
  a = merge |> dense(in.channels * 2, bias=true)  expect 64
}
wide = conv(
  16,
  stride=2,  # a comment in the arguments
) |> relu
head = unit(8) * 2 |> dense(max(4, 2)) |> gelu(approximate=tanh)   expect 3 x 7 x 7
train {
  optimizer = sgd(lr=1e-4, rule=torch)
  epochs    = 90
  optimiser = adam
}
"""
