"""Seed 000_751a77a00ecdcaf5.txt's Keras functional AlexNet, as the seed builds it.

The only fix: the seed never builds its model (it calls `model.summary()` on an undefined
name), so the last line makes `Model(inputs, predictions)`. Everything else is the seed's
code (formatted, wrapped in build_model()), unused imports included.
"""

import keras  # noqa: F401
from keras.initializers import Ones, RandomNormal, Zeros
from keras.layers import (  # noqa: F401
    BatchNormalization,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    Input,
    MaxPooling2D,
)
from keras.models import Model


def build_model():
    """The seed's network: 224 x 224 x 3 in, 1000-way softmax out."""
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
    predictions = Dense(
        1000,
        activation="softmax",
        kernel_initializer=RandomNormal(mean=0.0, stddev=0.01),
        bias_initializer=Zeros(),
    )(Dropout_2)

    model = Model(inputs=inputs, outputs=predictions)  # fix: the seed never builds it
    return model
