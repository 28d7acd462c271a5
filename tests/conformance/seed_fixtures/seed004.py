"""Seed 004_94d6eb242bc771ce.txt's TensorFlow Keras AlexNet for 32 x 32 images, as the seed
builds it.

The fixes, only what stops it running under Keras 3: `layers.experimental.preprocessing.Resizing`
is `layers.Resizing`, and the seed's `model.build(input_shape=(32,32,3))`, which Keras 3 refuses
on a model its first layer's `input_shape=` already built, is dropped. The LRN stays the seed's
`Lambda(tf.nn.local_response_normalization)` with TensorFlow's defaults (depth_radius=5, bias=1,
alpha=1, beta=0.5): the seed's behaviour, which specs/variants/seed004_cifar_resize.arch
transcribes as lrn(size=11, alpha=1, beta=0.5, k=1).
"""

import tensorflow as tf
import tensorflow.keras.layers as layers


def build_model():
    """The seed's network: 32 x 32 x 3 in, resized to 224 x 224, 10-way softmax out."""
    model = tf.keras.Sequential()
    model.add(
        layers.Resizing(  # fix: was layers.experimental.preprocessing.Resizing
            224, 224, interpolation="bilinear", input_shape=[32, 32, 3]
        )
    )
    model.add(layers.Conv2D(96, 11, strides=4, padding="same"))
    model.add(layers.Lambda(tf.nn.local_response_normalization))
    model.add(layers.Activation("relu"))
    model.add(layers.MaxPooling2D(3, strides=2))
    model.add(layers.Conv2D(256, 5, strides=4, padding="same"))
    model.add(layers.Lambda(tf.nn.local_response_normalization))
    model.add(layers.Activation("relu"))
    model.add(layers.MaxPooling2D(3, strides=2))
    model.add(layers.Conv2D(384, 3, strides=4, padding="same"))
    model.add(layers.Activation("relu"))
    model.add(layers.Conv2D(384, 3, strides=4, padding="same"))
    model.add(layers.Activation("relu"))
    model.add(layers.Conv2D(256, 3, strides=4, padding="same"))
    model.add(layers.Activation("relu"))
    model.add(layers.Flatten())
    model.add(layers.Dense(4096, activation="relu"))
    model.add(layers.Dropout(0.5))
    model.add(layers.Dense(4096, activation="relu"))
    model.add(layers.Dropout(0.5))
    model.add(layers.Dense(10, activation="softmax"))
    # fix: the seed's model.build(input_shape=(32,32,3)) is dropped (see the docstring)
    return model
