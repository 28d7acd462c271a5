"""Seed 002_3c4d59d8cc971dbc.txt's Keras Sequential AlexNet with batch norm, as the seed builds it.

The only fix: `from keras.layers.normalization import BatchNormalization` (Keras 2's module
path, gone in Keras 3) becomes `from keras.layers import BatchNormalization`. Everything else
is the seed's code (formatted, wrapped in build_model()), including `input_shape=` on the
first layer, which Keras 3 still accepts (with a warning).
"""

import keras  # noqa: F401
import numpy as np  # noqa: F401
from keras.layers import (  # noqa: F401
    Activation,
    BatchNormalization,  # fix: was keras.layers.normalization
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    MaxPooling2D,
)
from keras.models import Sequential


def build_model():
    """The seed's network: 224 x 224 x 3 in, 1000-way softmax out."""
    print("[INFO] Model architecture ... ")
    # Instantiate an empty model
    model = Sequential()

    # 1st Convolutional Layer
    model.add(
        Conv2D(
            filters=96,
            kernel_size=(11, 11),
            strides=(4, 4),
            padding="valid",
            activation="relu",
            kernel_initializer="he_normal",
            input_shape=(224, 224, 3),
        )
    )
    # Max Pooling
    model.add(MaxPooling2D(pool_size=(3, 3), strides=(2, 2), padding="valid"))
    # Batch Normalisation before passing it to the next layer
    model.add(BatchNormalization())

    # 2nd Convolutional Layer
    model.add(
        Conv2D(
            filters=256,
            kernel_size=(5, 5),
            strides=(1, 1),
            padding="valid",
            activation="relu",
            kernel_initializer="he_normal",
        )
    )
    # Max Pooling
    model.add(MaxPooling2D(pool_size=(3, 3), strides=(2, 2), padding="valid"))
    # Batch Normalisation before passing it to the next layer
    model.add(BatchNormalization())

    # 3rd Convolutional Layer
    model.add(
        Conv2D(
            filters=384,
            kernel_size=(3, 3),
            strides=(1, 1),
            padding="valid",
            activation="relu",
            kernel_initializer="he_normal",
        )
    )
    # Batch Normalisation before passing it to the next layer
    model.add(BatchNormalization())

    # 4th Convolutional Layer
    model.add(
        Conv2D(
            filters=384,
            kernel_size=(3, 3),
            strides=(1, 1),
            padding="valid",
            activation="relu",
            kernel_initializer="he_normal",
        )
    )
    # Batch Normalisation before passing it to the next layer
    model.add(BatchNormalization())

    # 5th Convolutional Layer
    model.add(
        Conv2D(
            filters=256,
            kernel_size=(3, 3),
            strides=(1, 1),
            padding="valid",
            activation="relu",
            kernel_initializer="he_normal",
        )
    )
    # Max Pooling
    model.add(MaxPooling2D(pool_size=(3, 3), strides=(2, 2), padding="valid"))
    # Batch Normalisation before passing it to the next layer
    model.add(BatchNormalization())

    # Passing it to a Fully Connected layer
    model.add(Flatten())

    # 1st Fully Connected Layer
    model.add(Dense(units=9216, activation="relu", kernel_initializer="he_normal"))
    # Add Dropout to prevent overfitting
    model.add(Dropout(0.4))

    # 2nd Fully Connected Layer
    model.add(Dense(units=4096, activation="relu", kernel_initializer="he_normal"))
    # Add Dropout to prevent overfitting
    model.add(Dropout(0.4))

    # 3rd Fully Connected Layer
    model.add(Dense(units=4096, activation="relu", kernel_initializer="he_normal"))
    # Add Dropout to prevent overfitting
    model.add(Dropout(0.4))

    # Output Layer
    model.add(Dense(units=1000, activation="softmax"))
    return model
