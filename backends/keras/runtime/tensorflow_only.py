"""Exit 2 with one line unless Keras runs on TensorFlow (train.py imports this first).

The trainer steps with tf.GradientTape and spreads replicas with tf.distribute, so it runs
on Keras's TensorFlow backend only; the model (model.py) runs on every Keras backend. The
check comes before TensorFlow is imported, which must never share a process with torch.
"""

import sys

import keras


def require_tensorflow():
    """Exit 2 with a one-line message when Keras's backend is not TensorFlow."""
    backend = keras.backend.backend()
    if backend != "tensorflow":
        print(
            f"error: train.py needs Keras's TensorFlow backend, not {backend}: run it with "
            "KERAS_BACKEND=tensorflow (model.py runs on any backend)",
            file=sys.stderr,
        )
        raise SystemExit(2)


require_tensorflow()
