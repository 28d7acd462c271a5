"""`archdsl lsp`: a language server (pygls, stdio) over the front end.

analysis.py checks a document once per version; symbols.py indexes its names; hover.py,
completion.py and context.py answer requests; server.py wires them to pygls. Nothing here
imports torch, tensorflow or numpy.
"""
