"""Silence what a framework prints on file descriptors 1 and 2 while it imports or works."""

import contextlib
import os
import sys
import warnings


@contextlib.contextmanager
def quiet():
    """Silence Python's warnings and what native code prints to file descriptors 1 and 2
    (the ONNX exporter's TorchScript graphs, TensorFlow's CUDA probing on a machine without
    a GPU), so that a refusal stays one line."""
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            stream.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        with open(os.devnull, "wb") as null, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            os.dup2(null.fileno(), 1)
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)
