"""Emitters and runtimes of the archdsl targets."""
