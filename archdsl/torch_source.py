"""PyTorch sources of weights as pairing records: a traced torchvision model, or a bare state_dict.

Only `archdsl weights --from` imports this module, and torch loads inside its functions: the
compile path never imports it. A torchvision builder is built with `weights=None` (nothing is
downloaded) and run once in eval mode on zeros of the spec's input shape, under a
TorchFunctionMode and forward hooks that follow which layers feed which (archdsl/weight_pairing.py
says how flows are built): every torch function passes on the union of what reaches its tensor
inputs, `torch.cat` along channels shifts each input by the channels before it, and a layer
holding tensors starts a new flow. Layers that never run in eval mode (GoogLeNet's auxiliary
classifiers) are no part of the graph; their tensors are reported as unused.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

from archdsl.weight_records import INPUT, Flow, LayerGraph, PairingError, TensorLayer

SKIP = "num_batches_tracked"
# the torch functions by which a free parameter scales its input (a layer scale)
MULTIPLY = {"mul", "__mul__", "__rmul__", "mul_", "__imul__"}
# ... is added to its input (a position embedding), or expanded over the batch (a class token,
# which a torch.cat then puts before the tokens)
ADD = {"add", "__add__", "__radd__", "add_", "__iadd__"}
EXPAND = {"expand"}
# nn.MultiheadAttention's tensors, named as its portable roles
ATTENTION_ROLES = ("in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias")
# a torch module's tensor name -> its portable role
ROLES = {
    "weight": "weight",
    "bias": "bias",
    "running_mean": "running_mean",
    "running_var": "running_var",
}


class SourceError(Exception):
    """A source of weights cannot be read or built (a one-line message, exit 2)."""


@dataclass
class Traced:
    """A torch model's records, its state (key -> tensor) and the tensors that never ran."""

    graph: LayerGraph
    state: dict = field(default_factory=dict)
    unused: list[str] = field(default_factory=list)


def _kind(module) -> str | None:
    """Our kind for a torch module class that holds tensors (None: not one we know)."""
    from torch import nn

    kinds = (
        (nn.Conv2d, "conv"),
        (nn.ConvTranspose2d, "conv_transpose"),
        (nn.Linear, "dense"),
        (nn.BatchNorm2d | nn.BatchNorm1d, "batchnorm"),
        (nn.LayerNorm, "layernorm"),
        (nn.MultiheadAttention, "attention"),
    )
    return next((kind for cls, kind in kinds if isinstance(module, cls)), None)


def _atomic(module) -> bool:
    """A module recorded as one layer with its children's tensors (nn.MultiheadAttention
    holds in_proj_weight itself and out_proj in a child), named by their paths inside it."""
    from torch import nn

    return isinstance(module, nn.MultiheadAttention)


def _layer_tensors(name: str, module) -> dict:
    """{key: (role, tensor)} of a leaf or atomic module: the portable role of each tensor."""
    if _atomic(module):
        held = [*module.named_parameters(), *module.named_buffers()]
        return {f"{name}.{n}": (n, t) for n, t in held if t is not None}
    return {f"{name}.{n}": (ROLES[n], t) for n, t in _own_tensors(module) if n in ROLES}


def build_torchvision(name: str):
    """torchvision's model `name`, built with weights=None, in eval mode."""
    try:
        import torch
        import torchvision
    except ImportError as exc:
        raise SourceError(f"torchvision:{name} needs torch and torchvision ({exc})") from None
    try:
        builder = torchvision.models.get_model_builder(name)
    except ValueError:
        raise SourceError(
            f"torchvision has no model {name!r} (torchvision.models.list_models() lists them)"
        ) from None
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # GoogLeNet's and Inception's init_weights notice
        return builder(weights=None).eval()


def trace(model, input_shape: tuple[int, ...], origin: str) -> Traced:
    """Run `model` on zeros of `input_shape` (one example) and record its tensor layers."""
    import torch

    tracer = _Tracer(model, origin)
    handles = []
    for name, module in tracer.leaves.items():
        handles.append(module.register_forward_pre_hook(tracer.enter(name)))
        handles.append(module.register_forward_hook(tracer.leave(name)))
    x = torch.zeros(1, *input_shape)
    tracer.reach[id(x)] = frozenset({(INPUT, 0)})
    try:
        with torch.no_grad(), tracer:
            model(x)
    except SourceError:
        raise
    except Exception as exc:  # a model that cannot take the spec's input
        raise SourceError(
            f"{origin} does not run on an input of {' x '.join(map(str, input_shape))}: "
            f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        ) from None
    finally:
        for handle in handles:
            handle.remove()
    return tracer.result(model)


def _tensor_layer(name: str, kind: str, tensors: dict, order: int) -> TensorLayer:
    """A record of a module's (or a free parameter's) tensors."""
    roles = tuple((role, key, tuple(t.shape)) for key, (role, t) in tensors.items())
    return TensorLayer(name, kind, roles, order)


class _Tracer:
    """Follows which tensor layers reach each tensor while a model runs (a TorchFunctionMode)."""

    def __init__(self, model, origin: str):
        """Find the modules that hold tensors and the parameters outside them."""
        from torch.overrides import TorchFunctionMode

        self.origin = origin
        self.leaves, self.free = {}, {}
        atoms: list[str] = []
        for name, module in model.named_modules():
            if any(name.startswith(f"{atom}.") for atom in atoms):
                continue  # a child of an atomic module: its tensors are the module's
            own = _own_tensors(module)
            if _atomic(module):
                atoms.append(name)
                self.leaves[name] = module
            elif own and not list(module.children()):
                self.leaves[name] = module
            for n, tensor in own if list(module.children()) and not _atomic(module) else ():
                self.free[id(tensor)] = (f"{name}.{n}" if name else n, tensor)
        self.class_tokens: set[int] = set()  # ids of expanded class tokens, for torch.cat
        self.reach: dict[int, frozenset] = {}
        self.keep: list = []  # every tensor seen stays alive, so that no id is reused
        self.flows: set[Flow] = set()
        self.layers: dict[str, TensorLayer] = {}
        self.inside = 0
        tracer = self

        class Mode(TorchFunctionMode):
            def __torch_function__(self, func, types, args=(), kwargs=None):
                """Run the function; outside a leaf module, pass on what reaches it."""
                out = func(*args, **(kwargs or {}))
                if not tracer.inside:
                    tracer.follow(func, args, kwargs or {}, out)
                return out

        self.mode = Mode()

    def __enter__(self):
        """Start following torch functions."""
        self.mode.__enter__()
        return self

    def __exit__(self, *exc):
        """Stop following torch functions."""
        return self.mode.__exit__(*exc)

    def sources(self, values) -> frozenset:
        """The union of what reaches the tensors among `values` (nested in lists and tuples)."""
        found = frozenset()
        for tensor in _tensors(values):
            found |= self.reach.get(id(tensor), frozenset())
        return found

    def follow(self, func, args, kwargs, out) -> None:
        """Pass what reaches a torch function's inputs on to its outputs."""
        import torch

        free = [t for t in _tensors((args, kwargs)) if id(t) in self.free]
        joined = [t for t in _tensors((args, kwargs)) if id(t) in self.class_tokens]
        if free:
            reaching = self._free_parameter(free[0], func, (args, kwargs))
        elif joined and func in (torch.cat, torch.concat, torch.concatenate):
            reaching = self._class_token_joined(joined[0], (args, kwargs))
        elif func in (torch.cat, torch.concat, torch.concatenate) and _channel_dim(args, kwargs):
            reaching = self._concatenated(args[0] if args else kwargs["tensors"])
        else:
            reaching = self.sources((args, kwargs))
        if reaching:
            for tensor in _tensors(out):
                self.reach[id(tensor)] = reaching
                self.keep.append(tensor)
        if free and self.layers[self.free[id(free[0])][0]].kind == "class_token":
            self.class_tokens.update(id(tensor) for tensor in _tensors(out))

    def _concatenated(self, tensors) -> frozenset:
        """What reaches a channel concat: each input shifted by the channels before it."""
        found, offset = set(), 0
        for tensor in tensors:
            found.update((s, k + offset) for s, k in self.reach.get(id(tensor), ()))
            offset += tensor.shape[1]
        return frozenset(found)

    def _free_parameter(self, tensor, func, values) -> frozenset:
        """A parameter used outside a leaf module is a layer of its own, named by its key: a
        `layer_scale` when it multiplies (ConvNeXt's), a `position_embedding` when a (1, L, D)
        one is added to (N, L, D) tokens, a `class_token` when a (1, 1, D) one is expanded
        over the batch (a torch.cat then puts it before the tokens); fed by the function's
        other inputs. SourceError for a parameter used otherwise."""
        key, _ = self.free[id(tensor)]
        name = getattr(func, "__name__", str(func))
        others = [t for t in _tensors(values) if t is not tensor]
        kind, role = _free_kind(name, tuple(tensor.shape), [tuple(t.shape) for t in others])
        if kind is None:
            raise SourceError(
                f"{self.origin}: parameter {key} is used by {name}, not as a per-channel "
                "scale, a position embedding or a class token: weight pairing does not know it"
            )
        if key not in self.layers:
            self.layers[key] = _tensor_layer(key, kind, {key: (role, tensor)}, len(self.layers))
        if kind == "class_token":
            return frozenset({(key, 0)})  # fed by the tokens it is joined to (torch.cat)
        reaching = frozenset().union(*(self.reach.get(id(t), frozenset()) for t in others))
        self.flows.update(Flow(s, key, k) for s, k in reaching)
        return frozenset({(key, 0)})

    def _class_token_joined(self, token, values) -> frozenset:
        """A torch.cat of an expanded class token and the tokens: the class token layer, fed
        by what reaches the tokens (as the spec's `class_token` reads them)."""
        (key, _), *_ = self.reach[id(token)]
        others = frozenset().union(
            *(self.reach.get(id(t), frozenset()) for t in _tensors(values) if t is not token)
        )
        self.flows.update(Flow(s, key, k) for s, k in others)
        return frozenset({(key, 0)})

    def enter(self, name: str):
        """The pre-hook of a leaf module: record what reaches it; stop following inside."""

        def hook(module, args):
            kind = _kind(module)
            if kind is None:
                raise SourceError(
                    f"{self.origin}: layer {name} is a {type(module).__name__}, which weight "
                    "pairing does not know"
                )
            if name not in self.layers:
                tensors = _layer_tensors(name, module)
                self.layers[name] = _tensor_layer(name, kind, tensors, len(self.layers))
            self.flows.update(Flow(s, name, k) for s, k in self.sources(args))
            self.inside += 1

        return hook

    def leave(self, name: str):
        """The forward hook of a leaf module: its output starts a flow of its own."""

        def hook(module, args, output):
            self.inside -= 1
            for tensor in _tensors(output):
                self.reach[id(tensor)] = frozenset({(name, 0)})
                self.keep.append(tensor)

        return hook

    def result(self, model) -> Traced:
        """The records of the layers that ran, the model's state and the tensors that did not."""
        state = {k: v for k, v in model.state_dict().items() if not k.endswith(SKIP)}
        ran = {key for layer in self.layers.values() for _, key, _ in layer.tensors}
        graph = LayerGraph(list(self.layers.values()), sorted(self.flows, key=_key), self.origin)
        return Traced(graph, state, [k for k in state if k not in ran])


def _free_kind(func: str, shape: tuple, others: list[tuple]) -> tuple[str | None, str]:
    """(kind, role) of a free parameter of `shape` used by the torch function `func` with
    tensors of the shapes `others` (batch first); (None, "") for a use weight pairing does
    not know."""
    if func in MULTIPLY:
        return "layer_scale", "scale"
    tokens = len(shape) == 3 and shape[0] == 1
    if func in ADD and tokens and any(len(o) == 3 and o[1:] == shape[1:] for o in others):
        return "position_embedding", "embedding"
    if func in EXPAND and tokens and shape[1] == 1:
        return "class_token", "token"
    return None, ""


def _key(flow: Flow) -> tuple:
    """A flow's sort key."""
    return (flow.source, flow.target, flow.offset)


def _own_tensors(module):
    """A module's own parameters and buffers (not its children's), counters left out."""
    own = [*module.named_parameters(recurse=False), *module.named_buffers(recurse=False)]
    return [(n, t) for n, t in own if t is not None and n != SKIP]


def _tensors(values):
    """The torch tensors in a value, or nested in its lists, tuples and dicts."""
    import torch

    if isinstance(values, torch.Tensor):
        yield values
    elif isinstance(values, list | tuple):
        for value in values:
            yield from _tensors(value)
    elif isinstance(values, dict):
        for value in values.values():
            yield from _tensors(value)


def _channel_dim(args, kwargs) -> bool:
    """Whether a torch.cat joins its tensors along dimension 1 (channels)."""
    tensors = args[0] if args else kwargs.get("tensors", ())
    dim = args[1] if len(args) > 1 else kwargs.get("dim", 0)
    ndim = tensors[0].dim() if tensors else 0
    return ndim > 1 and dim % ndim == 1


# ----------------------------------------------------------------------------- bare state_dicts


def state_dict_graph(state: dict, origin: str) -> LayerGraph:
    """A bare state_dict's layers in key (registration) order, kinds read off tensor names and
    ranks; no flows: it can only be paired in order."""
    groups: dict[str, dict] = {}
    for key, value in state.items():
        if key.endswith(SKIP):
            continue
        module, _, tensor = key.rpartition(".")
        owner, _, child = module.rpartition(".")
        if child == "out_proj" and "in_proj_weight" in groups.get(owner, {}):
            module, tensor = owner, f"out_proj.{tensor}"  # nn.MultiheadAttention's projection
        groups.setdefault(module, {})[tensor] = (key, tuple(value.shape))
    layers = [_bare_layer(m, held, i, origin) for i, (m, held) in enumerate(groups.items())]
    return LayerGraph(layers, None, origin)


def _bare_free_kind(shape: tuple) -> tuple[str, str]:
    """(kind, role) of a lone tensor of a bare state_dict, read off its shape: (1, 1, D) a
    class token, (1, L, D) a position embedding, else a per-channel layer scale."""
    if len(shape) == 3 and shape[0] == 1:
        return ("class_token", "token") if shape[1] == 1 else ("position_embedding", "embedding")
    return "layer_scale", "scale"


def _bare_layer(module: str, held: dict, order: int, origin: str) -> TensorLayer:
    """One module's tensors as a layer, its kind read off their names and ranks."""
    names = set(held)
    weight = held.get("weight", (None, ()))[1]
    if names <= set(ATTENTION_ROLES) and "in_proj_weight" in names:
        return TensorLayer(
            module, "attention", tuple((n, key, shape) for n, (key, shape) in held.items()), order
        )
    if names == {"weight", "bias", "running_mean", "running_var"}:
        kind = "batchnorm"
    elif names in ({"weight"}, {"weight", "bias"}) and len(weight) == 4:
        kind = "conv"
    elif names in ({"weight"}, {"weight", "bias"}) and len(weight) == 2:
        kind = "dense"
    elif names == {"weight", "bias"} and len(weight) == 1:
        kind = "layernorm"
    elif len(names) == 1 and not names & set(ROLES):
        key, shape = next(iter(held.values()))
        kind, role = _bare_free_kind(shape)
        return TensorLayer(key, kind, ((role, key, shape),), order)
    else:
        raise PairingError(
            f"{origin}: cannot tell what layer {module or '(top level)'} is from its tensors "
            f"{', '.join(sorted(names))} (give --arch to trace the model)"
        )
    return TensorLayer(
        module, kind, tuple((ROLES[n], key, shape) for n, (key, shape) in held.items()), order
    )
