"""A Keras model as a source of pretrained weights: its tensor layers, flows and arrays.

Only `archdsl weights SPEC --from SOURCE` with a Keras source imports this module, and it imports
Keras (so TensorFlow) inside its functions: never in a process that holds torch.

A source is a `.keras` file (architecture and weights), a `.weights.h5` / `.keras` file of
weights with `--arch keras:NAME`, or `keras:NAME` alone (that builder's random initialisation):
a `keras.applications` builder, built here with `weights=None` (nothing is downloaded) at the
spec's input size, with its defaults otherwise (1000 classes, the top included) but without
the preprocessing layers the builder can leave out.

The model's functional graph (nested models included) gives the pairing module's records (see
archdsl/weight_pairing.py): each layer holding tensors is a TensorLayer, in Keras's
(topological) order; every other layer passes its inputs' flows on, Concatenate shifting them
by the channels before each input. The arrays are converted to the portable layout by the
Keras runtime's own weights module (the conversions save_weights uses), so a dense layer fed by
a Flatten of an H x W x C map gets its input rows in the portable C, H, W order. A batch norm
built without a scale (or shift) has it fixed at 1 (0): it is given as that constant.
Preprocessing layers (Rescaling, Normalization, ...) are refused: a spec has none.
"""

from __future__ import annotations

import inspect
import os
import sys
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from archdsl.emit import runtime_files
from archdsl.generated import import_module_in
from archdsl.quiet import quiet
from archdsl.torch_source import SourceError
from archdsl.weight_import import Source
from archdsl.weight_records import INPUT, Flow, LayerGraph, PairingError, TensorLayer
from archdsl.weight_settings import Settings, window_settings

PREFIX = "keras:"
SUFFIXES = (".keras", ".weights.h5")
# a layer's portable tensors that Keras may leave out, and the constant they then hold
FIXED = {"batchnorm": (("weight", 1.0, "gamma"), ("bias", 0.0, "beta"))}
# builder arguments that leave the preprocessing layers out, where a builder offers them
NO_PREPROCESSING = {"include_preprocessing": False}


@dataclass
class KerasSource(Source):
    """A Keras source, with its tensor layers' settings (archdsl/weight_settings.py)."""

    settings: dict[str, Settings] = field(default_factory=dict)


def is_keras_source(source: str, arch: str | None) -> bool:
    """Whether `--from SOURCE [--arch ARCH]` names a Keras source."""
    return any(name.startswith(PREFIX) for name in (source, arch or "")) or source.endswith(
        SUFFIXES
    )


def read_keras_source(source: str, arch: str | None, input_chw: tuple[int, ...]) -> KerasSource:
    """The records and arrays of a Keras source (its model built or loaded, then read);
    SourceError if it cannot be read or built, PairingError if it holds what no spec can (a
    preprocessing layer, a shared layer, a layer with tensors of no portable kind): one line."""
    if "torch" in sys.modules:  # TensorFlow and torch crash together in one process
        raise SourceError(
            f"{source}: a Keras source is read in a process without torch; this one has "
            "loaded it (run `archdsl weights` as a command of its own)"
        )
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # TensorFlow announces oneDNN at import and the GPU-capable build probes for CUDA at its
    # first op, on stderr whatever the log level: silenced, so a refusal stays one line
    with quiet():
        import keras

        if keras.config.image_data_format() != "channels_last":
            raise SourceError("Keras's image_data_format is not channels_last; set it back")
        runtime = _runtime_weights()  # first: it registers archdsl's Keras layers
        return _Reader(keras, runtime).read(_load(keras, source, arch, input_chw), source)


def _load(keras, source: str, arch: str | None, input_chw):
    """The model with the source's weights: a .keras file, ARCH's builder with its weights,
    or a builder's own initialisation."""
    if source.startswith(PREFIX):
        if arch:
            raise SourceError("--arch goes with a weight file, not with --from keras:NAME")
        return _build(keras, source, input_chw)
    if arch and not arch.startswith(PREFIX):
        raise SourceError(f"--arch {arch}: a Keras file takes --arch keras:NAME")
    path = Path(source)
    if not path.is_file():
        problem = "not a regular file" if path.exists() else "no such file"
        raise SourceError(f"{source}: {problem}")
    if arch is None:
        if not source.endswith(".keras"):
            raise SourceError(
                f"{source}: a weights file holds no architecture; give --arch keras:NAME "
                "(a keras.applications builder) or a .keras file"
            )
        return _guarded(source, lambda: _load_model(keras, path))
    model = _build(keras, arch, input_chw)
    _guarded(source, lambda: model.load_weights(path))
    return model


def _load_model(keras, path: Path):
    """A .keras file's model, loaded without running code from it (safe_mode)."""
    return keras.saving.load_model(path, compile=False, safe_mode=True)


def _guarded(source: str, load):
    """load(), its warnings silenced, any failure of Keras's reader made a one-line
    SourceError."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return load()
    except Exception as exc:  # Keras raises many kinds (ValueError, OSError, KeyError, ...)
        raise SourceError(f"{source}: Keras cannot load it: {_first_line(exc)}") from None


def _first_line(exc: Exception) -> str:
    """The first line of an exception's message, with the second where the first only
    introduces it (Keras's "... for object <Conv2D ...>:"), or its type's name."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    first = " ".join(lines[:2] if lines and lines[0].endswith(":") else lines[:1])
    return first or type(exc).__name__


def _build(keras, arch: str, input_chw):
    """keras.applications' builder ARCH (`keras:VGG16`), with weights=None at the spec's size."""
    name = arch.removeprefix(PREFIX)
    builder = getattr(keras.applications, name, None) if name.isidentifier() else None
    if not callable(builder) or not name[:1].isupper():
        raise SourceError(
            f"{arch}: keras.applications has no builder {name!r} "
            "(e.g. keras:VGG16, keras:ResNet50, keras:MobileNetV2)"
        )
    if len(input_chw) != 3:
        raise SourceError(
            f"{arch}: keras.applications builds image models; the spec's "
            f"input is {' x '.join(map(str, input_chw))}"
        )
    channels, height, width = input_chw
    options = {
        key: value
        for key, value in NO_PREPROCESSING.items()
        if key in inspect.signature(builder).parameters
    }
    try:
        return builder(weights=None, input_shape=(height, width, channels), **options)
    except Exception as exc:  # a builder refuses a size with ValueError, other input otherwise
        raise SourceError(
            f"{arch}: keras.applications cannot build it for the spec's input "
            f"{channels} x {height} x {width}: {_first_line(exc)}"
        ) from None


def _runtime_weights():
    """The Keras runtime's weights module, as copied beside generated models."""
    with tempfile.TemporaryDirectory(prefix="archdsl-keras-runtime-") as folder:
        for name, text in runtime_files("keras").items():
            (Path(folder) / name).write_text(text, encoding="utf-8")
        return import_module_in(Path(folder), "weights")


class _Reader:
    """Walks a Keras model's graph into tensor layers, flows and portable arrays."""

    def __init__(self, keras, runtime):
        self.keras, self.runtime = keras, runtime
        self.layers: list[TensorLayer] = []
        self.flows: list[Flow] = []
        self.arrays: dict = {}
        self.settings: dict[str, Settings] = {}

    def read(self, model, source: str) -> KerasSource:
        """The model's records (its inputs flowing from INPUT) and arrays."""
        if len(model.inputs) != 1:
            raise PairingError(f"{source}: the model has {len(model.inputs)} inputs, not 1")
        self._walk(model, "", [((INPUT, 0),)])
        graph = LayerGraph(self.layers, self.flows, origin=Path(source).name)
        return KerasSource(graph, self.arrays, settings=self.settings)

    def _walk(self, model, prefix: str, feeds: list) -> list:
        """Walk one functional model whose inputs carry `feeds` (their origins, in order);
        returns the origins of its outputs."""
        keras = self.keras
        functional = getattr(model, "_functional", None) or model  # a Sequential's graph
        origins = {id(t): found for t, found in zip(functional.inputs, feeds, strict=True)}
        orders = self._orders(functional, prefix)
        for layer in functional.operations:  # layers and ops (`x + y`), in graph order
            if isinstance(layer, keras.layers.InputLayer):
                continue
            node = self._node(functional, layer, prefix)
            inputs = [origins[id(t)] for t in node.input_tensors]
            outputs = self._layer(layer, prefix, node, inputs, orders.get(layer.name))
            for tensor, found in zip(node.output_tensors, outputs, strict=True):
                origins[id(tensor)] = found
        return [origins[id(t)] for t in functional.outputs]

    def _orders(self, functional, prefix: str) -> dict:
        """The runtime's flatten orders of the model's layers (dense inputs to permute); a
        nested model must not hand a flattened map on (the outer model would not know)."""
        try:
            orders, outputs = self.runtime.flatten_orders(functional), {}
            if prefix:
                outputs = self.runtime.output_orders(functional)
        except self.runtime.WeightsError as exc:
            raise PairingError(f"{prefix}{exc}") from None
        for tensor in functional.outputs:
            if outputs.get(tensor._keras_history.operation.name) is not None:
                raise PairingError(
                    f"nested model {prefix.rstrip('/')} outputs a flattened map, whose "
                    "feature order the model around it does not follow"
                )
        return orders

    def _node(self, functional, layer, prefix: str):
        """The layer's only call in the graph (a shared layer has no place in a spec)."""
        try:
            return self.runtime.layer_node(functional, layer)
        except self.runtime.WeightsError as exc:
            raise PairingError(f"{prefix}{exc}") from None

    def _layer(self, layer, prefix: str, node, inputs: list, order) -> list:
        """Record one layer; the origins of each of its outputs."""
        keras, name = self.keras, f"{prefix}{layer.name}"
        if isinstance(layer, keras.Model):
            return self._walk(layer, f"{name}/", inputs)
        if _is_preprocessing(keras, layer):
            raise PairingError(
                f"layer {name} ({type(layer).__name__}) preprocesses the input, which a spec "
                "cannot hold (the outputs would differ): import from a model built without it"
            )
        if getattr(layer, "weights", None):
            self._tensor_layer(layer, name, node, inputs, order)
            self.settings[name] = _settings(keras, layer, node)
            return [((name, 0),)] * len(node.output_tensors)
        if type(layer).__name__ == "Concatenate":  # the layer or keras.ops.concatenate
            return [self._concatenated(layer, name, node, inputs)]
        merged = tuple(dict.fromkeys(found for each in inputs for found in each))
        return [merged] * len(node.output_tensors)

    def _concatenated(self, layer, name: str, node, inputs: list) -> tuple:
        """The origins of a channel concatenation: each input's, shifted by the channels
        of the inputs before it."""
        rank = len(node.output_tensors[0].shape)
        if layer.axis not in (-1, rank - 1):
            raise PairingError(
                f"layer {name} concatenates along axis {layer.axis}, not the channels"
            )
        found, offset = [], 0
        for tensor, each in zip(node.input_tensors, inputs, strict=True):
            found += [(source, shift + offset) for source, shift in each]
            offset += int(tensor.shape[-1])
        return tuple(dict.fromkeys(found))

    def _tensor_layer(self, layer, name: str, node, inputs: list, order) -> None:
        """Record a layer holding tensors: its kind, its tensors, their arrays, its flows."""
        kind = self._kind(layer, name, node)
        entries = self._entries(layer, name, order)
        roles = {entry.name.rsplit(".", 1)[1]: entry for entry in entries}
        tensors = []
        for role, entry in roles.items():
            key = entry.variable.path
            value = entry.to_portable(self.keras.ops.convert_to_numpy(entry.variable))
            self.arrays[key] = value.astype("float32")
            tensors.append((role, key, tuple(entry.shape)))
        for role, constant, attribute in FIXED.get(kind, ()):
            if role not in roles:
                tensors.append(self._fixed(layer, name, role, constant, attribute))
        self.layers.append(TensorLayer(name, kind, tuple(tensors), len(self.layers)))
        (sources,) = inputs
        self.flows += [Flow(source, name, offset) for source, offset in sources]

    def _fixed(self, layer, name: str, role: str, constant: float, attribute: str):
        """A tensor the layer was built without (a batch norm's scale=False): the constant."""
        import numpy as np

        key = f"{name}/{attribute} (fixed at {constant:g})"
        self.arrays[key] = np.full(self._channels(layer), constant, dtype="float32")
        return (role, key, (self._channels(layer),))

    def _channels(self, layer) -> int:
        """A per-channel layer's channels (its moving mean's length)."""
        return int(layer.moving_mean.shape[0])

    def _entries(self, layer, name: str, order) -> list:
        """The runtime's entries for the layer (its conversions to the portable layout)."""
        if _is_applications_layer_scale(layer):
            return [
                self.runtime.Entry(
                    f"{layer.name}.scale",
                    layer.gamma,
                    lambda value: self.runtime.to_portable_features(value, order),
                    lambda value: self.runtime.from_portable_features(value, order),
                    tuple(layer.gamma.shape),
                )
            ]
        try:
            return self.runtime.layer_entries(layer, order)
        except self.runtime.WeightsError as exc:
            raise PairingError(f"{exc} ({name})") from None

    def _kind(self, layer, name: str, node) -> str:
        """The pairing kind of a layer holding tensors (of one input)."""
        if len(node.input_tensors) != 1:
            raise PairingError(f"layer {name} holds tensors and takes several inputs")
        _check_channels_last(self.keras, layer, name, len(node.input_tensors[0].shape))
        layers = self.keras.layers
        kinds = (
            ((layers.Conv2D, layers.DepthwiseConv2D), "conv"),
            ((layers.Dense,), "dense"),
            ((layers.BatchNormalization,), "batchnorm"),
            ((layers.LayerNormalization,), "layernorm"),
        )
        for classes, kind in kinds:
            if isinstance(layer, classes):
                return kind
        if _is_applications_layer_scale(layer) or type(layer).__name__ == "LayerScale":
            return "layer_scale"
        raise PairingError(
            f"layer {name} ({type(layer).__name__}) holds tensors with no portable layout"
        )


def _settings(keras, layer, node) -> Settings:
    """A conv's stride, dilation and padding (a ZeroPadding2D just before it included), a
    norm's eps; {} for other layers."""
    layers = keras.layers
    if isinstance(layer, (layers.BatchNormalization, layers.LayerNormalization)):
        return {"eps": float(layer.epsilon)}
    if not isinstance(layer, (layers.Conv2D, layers.DepthwiseConv2D)):
        return {}
    source = node.input_tensors[0]
    found = window_settings(
        layer.padding,
        tuple(source.shape[1:3]),
        layer.kernel_size,
        layer.strides,
        layer.dilation_rate,
    )
    before = source._keras_history.operation
    if isinstance(before, layers.ZeroPadding2D):
        found["padding"] = tuple(
            (top + own_top, bottom + own_bottom)
            for (top, bottom), (own_top, own_bottom) in zip(
                before.padding, found["padding"], strict=True
            )
        )
    return found


def _check_channels_last(keras, layer, name: str, rank: int) -> None:
    """PairingError unless the layer (of an input of `rank` axes) works on the channels,
    the last axis."""
    norms = (keras.layers.BatchNormalization, keras.layers.LayerNormalization)
    axes = layer.axis if isinstance(layer, norms) else -1
    axes = set(axes) if isinstance(axes, list | tuple) else {axes}
    last = {-1, rank - 1}
    if getattr(layer, "data_format", "channels_last") != "channels_last" or not axes <= last:
        raise PairingError(f"layer {name} does not work on the channels alone (the last axis)")


def _is_preprocessing(keras, layer) -> bool:
    """Rescaling, Normalization and Keras's other preprocessing layers."""
    module = type(layer).__module__
    return isinstance(layer, (keras.layers.Rescaling, keras.layers.Normalization)) or (
        module.startswith("keras.src.layers.preprocessing")
    )


def _is_applications_layer_scale(layer) -> bool:
    """keras.applications' ConvNeXt LayerScale (a per-channel `gamma`)."""
    return type(layer).__name__ == "LayerScale" and hasattr(layer, "gamma")
