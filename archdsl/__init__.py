"""archdsl: a compiler for neural-network architecture specs."""

__version__ = "0.1.0"
