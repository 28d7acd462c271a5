"""Seed 000's Keras AlexNet as its author wrote it: the peer of bench/keras_vs_seed.py.

From ../shared/seeds/000_751a77a00ecdcaf5.txt: the functional API, one Conv2D / MaxPooling2D /
Dense call per line with the activation inside the layer, RandomNormal(0, 0.01) kernels and
Ones / Zeros biases, 224 x 224 x 3 input, conv4 and conv5 with 5 x 5 kernels. Changed only where
the seed's code does not run or would not be a fair peer:
- the seed calls model.summary() on a name it never defines; here the model is built,
  `Model(inputs, predictions)`;
- the last Dense has no softmax (it outputs logits, as the generated model does), and the
  bench trains both with SparseCategoricalCrossentropy(from_logits=True);
- the unused BatchNormalization import is dropped, and the code is wrapped in build_model().
specs/variants/seed000_keras_functional.arch transcribes the same network.
"""

from __future__ import annotations

from keras.initializers import Ones, RandomNormal, Zeros
from keras.layers import Conv2D, Dense, Dropout, Flatten, Input, MaxPooling2D
from keras.models import Model


def build_model() -> Model:
    """The seed's network, built; it outputs logits."""
    # First, define the vision modules
    inputs = Input(shape=(224, 224, 3))
    Conv2D_1 = Conv2D(
        96,
        (11, 11),
        strides=(4, 4),
        activation="relu",
        kernel_initializer=RandomNormal(mean=0.0, stddev=0.01),
        bias_initializer=Zeros(),
    )(inputs)
    MaxPooling2D_1 = MaxPooling2D((3, 3), strides=2)(Conv2D_1)
    Conv2D_2 = Conv2D(
        256,
        (5, 5),
        activation="relu",
        padding="same",
        kernel_initializer=RandomNormal(mean=0.0, stddev=0.01),
        bias_initializer=Ones(),
    )(MaxPooling2D_1)
    MaxPooling2D_2 = MaxPooling2D((3, 3), strides=2)(Conv2D_2)
    Conv2D_3 = Conv2D(
        384,
        (3, 3),
        activation="relu",
        padding="same",
        kernel_initializer=RandomNormal(mean=0.0, stddev=0.01),
        bias_initializer=Zeros(),
    )(MaxPooling2D_2)
    Conv2D_4 = Conv2D(
        384,
        (5, 5),
        activation="relu",
        padding="same",
        kernel_initializer=RandomNormal(mean=0.0, stddev=0.01),
        bias_initializer=Ones(),
    )(Conv2D_3)
    Conv2D_5 = Conv2D(
        256,
        (5, 5),
        activation="relu",
        padding="same",
        kernel_initializer=RandomNormal(mean=0.0, stddev=0.01),
        bias_initializer=Ones(),
    )(Conv2D_4)
    MaxPooling2D_3 = MaxPooling2D((3, 3), strides=2)(Conv2D_5)
    Flatten_1 = Flatten()(MaxPooling2D_3)
    # a layer instance is callable on a tensor, and returns a tensor
    Dense_1 = Dense(
        4096,
        activation="relu",
        kernel_initializer=RandomNormal(mean=0.0, stddev=0.01),
        bias_initializer=Zeros(),
    )(Flatten_1)
    Dropout_1 = Dropout(0.5)(Dense_1)
    Dense_2 = Dense(
        4096,
        activation="relu",
        kernel_initializer=RandomNormal(mean=0.0, stddev=0.01),
        bias_initializer=Zeros(),
    )(Dropout_1)
    Dropout_2 = Dropout(0.5)(Dense_2)
    # The seed has activation='softmax' here; logits instead (the loss takes from_logits=True).
    predictions = Dense(
        1000,
        kernel_initializer=RandomNormal(mean=0.0, stddev=0.01),
        bias_initializer=Zeros(),
    )(Dropout_2)

    model = Model(inputs, predictions)
    return model


if __name__ == "__main__":
    build_model().summary()
