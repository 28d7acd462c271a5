"""Importing Keras's weights: the TensorFlow backend, quiet; kerasgen from tests/keras_backend."""

import os
import sys
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# kerasgen lives beside the Keras backend tests; make it importable when this folder runs alone
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "keras_backend"))
