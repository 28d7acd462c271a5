"""`archdsl import MODEL.onnx`: an ONNX graph as a readable spec and its weights as a portable .npz.

Only `archdsl import` loads this package; onnx and numpy are imported inside it, never on the
compile path. The stages, one module each: `loading` reads and checks the file, `folding`
evaluates what only constants and static shapes determine, `patterns` (ops written as several
nodes) and `convert` (one node each, with `windows` for convolutions and pools, `resizing` for
resampling, `tokens` and `attention` for token sequences, `reading` for a node's inputs) turn
the remaining nodes into the language's ops, `statements` groups them and writes the spec's
text, and `importer` checks the result with the compiler before anything is written.
"""
