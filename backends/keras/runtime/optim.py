"""Keras 3 optimizers with the spec's weight-decay rules, its no_decay parameter groups and
its fine-tuning groups (freeze, lr_scale)."""

import keras
from keras import ops

# the runtime beside this file (isort: split keeps one order wherever ruff runs)
# isort: split
from portable import under

NORM_LAYERS = (
    keras.layers.BatchNormalization,
    keras.layers.LayerNormalization,
    keras.layers.GroupNormalization,
)


def _constant(value, dtype):
    """A Python number as a tensor of `dtype`, exact in float64 (ops.cast goes via float32)."""
    return ops.convert_to_tensor(value, dtype=dtype)


def _summed_over_replicas(grads):
    """The gradients summed over the replicas of a tf.distribute strategy, each replica's
    own without one: the global norm is the norm of that sum, as PyTorch's DDP clips after
    its all-reduce (Keras clips inside each replica, before summing). Other backends
    run no tf.distribute replicas, and must not import TensorFlow."""
    if keras.backend.backend() != "tensorflow":
        return grads
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return grads
    return context.all_reduce(tf.distribute.ReduceOp.SUM, grads)


def _dense(gradient):
    """A gradient as a dense tensor: TensorFlow's sparse one of an embedding (its rows
    that a batch read, IndexedSlices) summed into a whole table."""
    if not hasattr(gradient, "indices"):
        return gradient
    rows = ops.expand_dims(gradient.indices, -1)
    return ops.scatter(rows, gradient.values, tuple(gradient.shape))


class _TorchClipping:
    """global_clipnorm as torch.nn.utils.clip_grad_norm_ clips: every gradient times
    min(1, max_norm / (norm + 1e-6)), norm the L2 norm of all gradients together (Keras's own
    multiplies by max_norm / max(norm, max_norm), without the 1e-6). Every gradient is made
    dense first, as PyTorch's are: TensorFlow's sparse gradient of an embedding would update
    only the rows a batch reads (their moments too), where torch.optim updates every row."""

    def _clip_gradients(self, grads):
        """The gradients, dense, scaled to a global norm of at most global_clipnorm."""
        grads = [None if g is None else _dense(g) for g in grads]
        if not self.global_clipnorm:
            return super()._clip_gradients(grads)
        present = [g for g in grads if g is not None]
        dtype = present[0].dtype
        total = _summed_over_replicas(present)
        norm = ops.sqrt(sum(ops.sum(ops.square(ops.cast(g, dtype))) for g in total))
        limit = _constant(self.global_clipnorm, dtype)
        scale = ops.minimum(limit / (norm + _constant(1e-6, dtype)), 1.0)
        return [None if g is None else g * ops.cast(scale, g.dtype) for g in grads]


class _GroupRates:
    """Each variable's learning rate times its lr_scale factor (set by scale_rates); the
    update rules take their rate from variable_rate."""

    rate_factors = None  # {the optimizer's key of a variable: factor}

    def variable_rate(self, learning_rate, variable):
        """The learning rate of one variable."""
        factor = (self.rate_factors or {}).get(self._var_key(variable), 1.0)
        return learning_rate if factor == 1.0 else learning_rate * factor


class _CoupledDecay:
    """Adds weight_decay * w to the gradient of every decayed variable before the update rule."""

    def __init__(self, *args, weight_decay=0.0, **kwargs):
        """weight_decay: the L2 coefficient lambda; the parent optimizer decays nothing itself."""
        super().__init__(*args, **kwargs)
        self.coupled_decay = float(weight_decay)

    def decayed(self, gradient, variable):
        """The gradient plus the L2 term, unless the variable is excluded from decay."""
        gradient = ops.cast(gradient, variable.dtype)
        if not self.coupled_decay or not self._use_weight_decay(variable):
            return gradient
        return gradient + _constant(self.coupled_decay, variable.dtype) * variable

    def update_step(self, gradient, variable, learning_rate):
        """The parent's update rule on the decayed gradient."""
        super().update_step(self.decayed(gradient, variable), variable, learning_rate)

    def get_config(self):
        """Constructor arguments, for saving."""
        config = super().get_config()
        config["weight_decay"] = self.coupled_decay
        return config


class _DecaySGD(_GroupRates, _TorchClipping, _CoupledDecay, keras.optimizers.SGD):
    """Keras's SGD with coupled weight decay and the spec's defaults."""

    def __init__(
        self,
        learning_rate=0.01,
        momentum=0.9,
        weight_decay=0.0,
        nesterov=False,
        **kwargs,
    ):
        """weight_decay: lambda, added to the gradient before the momentum rule."""
        super().__init__(
            learning_rate=learning_rate,
            momentum=float(momentum),
            nesterov=nesterov,
            weight_decay=weight_decay,
            **kwargs,
        )


@keras.saving.register_keras_serializable(package="archdsl")
class PaperSGD(_DecaySGD):
    """The paper's SGD: v <- mu*v - lambda*lr*w - lr*g ; w <- w + v (decay through the momentum)."""

    # Keras's SGD keeps the velocity as a displacement, so a new lr affects only new gradients;
    # nesterov=True gives w <- w + mu*v_new - lambda*lr*w - lr*g.

    def update_step(self, gradient, variable, learning_rate):
        """Keras's SGD step on the decayed gradient, with mu exact in the variable's dtype."""
        learning_rate = self.variable_rate(learning_rate, variable)
        step = -ops.cast(learning_rate, variable.dtype) * self.decayed(
            gradient, variable
        )
        if self.momentum == 0:
            self.assign_add(variable, step)
            return
        velocity = self.momentums[self._get_variable_index(variable)]
        momentum = _constant(self.momentum, variable.dtype)
        self.assign(velocity, momentum * velocity + step)
        self.assign_add(
            variable, momentum * velocity + step if self.nesterov else velocity
        )


@keras.saving.register_keras_serializable(package="archdsl")
class TorchSGD(_DecaySGD):
    """torch.optim.SGD: b <- mu*b + (g + lambda*w) ; w <- w - lr*b (lr changes rescale steps)."""

    def update_step(self, gradient, variable, learning_rate):
        """One torch-style step; the buffer holds gradients, not displacements."""
        gradient = self.decayed(gradient, variable)
        learning_rate = ops.cast(
            self.variable_rate(learning_rate, variable), variable.dtype
        )
        if self.momentum == 0:
            self.assign_sub(variable, learning_rate * gradient)
            return
        buf = self.momentums[self._get_variable_index(variable)]
        momentum = _constant(self.momentum, variable.dtype)
        self.assign(buf, momentum * buf + gradient)
        step = gradient + momentum * buf if self.nesterov else buf
        self.assign_sub(variable, learning_rate * step)


class _TorchAdamStep:
    """Adam's step as torch.optim.Adam takes it: epsilon added after the bias corrections."""

    def update_step(self, gradient, variable, learning_rate):
        """m, v moving averages; w <- w - lr * m_hat / (sqrt(v_hat) + eps)."""
        dtype = variable.dtype
        gradient = ops.cast(gradient, dtype)
        step = ops.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = _constant(self.beta_1, dtype), _constant(self.beta_2, dtype)
        index = self._get_variable_index(variable)
        m, v = self._momentums[index], self._velocities[index]
        self.assign(m, beta_1 * m + (1 - beta_1) * gradient)
        self.assign(v, beta_2 * v + (1 - beta_2) * ops.square(gradient))
        m_hat = m / (1 - ops.power(beta_1, step))
        v_hat = v / (1 - ops.power(beta_2, step))
        denominator = ops.sqrt(v_hat) + _constant(self.epsilon, dtype)
        learning_rate = ops.cast(self.variable_rate(learning_rate, variable), dtype)
        self.assign_sub(variable, learning_rate * m_hat / denominator)


class _DecoupledDecay:
    """AdamW's decay w <- w - lr*lambda*w in each variable's own step, at its own rate (Keras
    decays every variable at the global rate before the steps: the same without lr_scale)."""

    def _apply_weight_decay(self, variables):
        """Nothing here: update_step decays."""

    def update_step(self, gradient, variable, learning_rate):
        """Decay the variable (unless excluded), then the parent's step."""
        if self.weight_decay and self._use_weight_decay(variable):
            rate = ops.cast(self.variable_rate(learning_rate, variable), variable.dtype)
            decay = ops.cast(self.weight_decay, variable.dtype)
            self.assign(variable, variable - variable * decay * rate)
        super().update_step(gradient, variable, learning_rate)


@keras.saving.register_keras_serializable(package="archdsl")
class L2Adam(
    _GroupRates, _TorchClipping, _CoupledDecay, _TorchAdamStep, keras.optimizers.Adam
):
    """torch.optim.Adam: weight decay as L2 added to the gradient (Keras's Adam decouples it)."""


@keras.saving.register_keras_serializable(package="archdsl")
class TorchAdamW(
    _GroupRates, _TorchClipping, _DecoupledDecay, _TorchAdamStep, keras.optimizers.AdamW
):
    """torch.optim.AdamW: decoupled decay (Keras's), then torch's epsilon placement."""


class _RMSpropStep:
    """RMSprop's step, eps inside the square root (TensorFlow's) or added to it (torch's)."""

    eps_inside = True

    def update_step(self, gradient, variable, learning_rate):
        """v <- alpha*v + (1 - alpha)*g^2, then the rule's momentum step."""
        dtype = variable.dtype
        gradient = ops.cast(gradient, dtype)
        index = self._get_variable_index(variable)
        v = self._velocities[index]
        rho, eps = _constant(self.rho, dtype), _constant(self.epsilon, dtype)
        self.assign(v, rho * v + (1 - rho) * ops.square(gradient))
        learning_rate = ops.cast(self.variable_rate(learning_rate, variable), dtype)
        if self.eps_inside:  # b <- mu*b + lr*g/sqrt(v + eps) ; w <- w - b
            step, after = learning_rate * gradient / ops.sqrt(v + eps), 1
        else:  # b <- mu*b + g/(sqrt(v) + eps) ; w <- w - lr*b
            step, after = gradient / (ops.sqrt(v) + eps), learning_rate
        if self.momentum > 0:
            buf = self._momentums[index]
            self.assign(buf, _constant(self.momentum, dtype) * buf + step)
            step = buf
        self.assign_sub(variable, after * step)


class _DecayRMSprop(
    _GroupRates, _TorchClipping, _CoupledDecay, _RMSpropStep, keras.optimizers.RMSprop
):
    """Keras's RMSprop variables with coupled weight decay and the spec's argument names."""

    def __init__(
        self,
        learning_rate=0.01,
        alpha=0.99,
        epsilon=1e-8,
        momentum=0.0,
        weight_decay=0.0,
        **kwargs,
    ):
        """alpha: the square average's decay (Keras's rho); weight_decay: L2, coupled."""
        super().__init__(
            learning_rate=learning_rate,
            rho=float(alpha),
            momentum=float(momentum),
            epsilon=float(epsilon),
            weight_decay=weight_decay,
            **kwargs,
        )

    def get_config(self):
        """Constructor arguments, for saving."""
        config = super().get_config()
        config["alpha"] = config.pop("rho")
        config.pop("centered", None)
        return config


@keras.saving.register_keras_serializable(package="archdsl")
class TorchRMSprop(_DecayRMSprop):
    """torch.optim.RMSprop: b <- mu*b + g/(sqrt(v) + eps) ; w <- w - lr*b."""

    eps_inside = False


@keras.saving.register_keras_serializable(package="archdsl")
class TFRMSprop(_DecayRMSprop):
    """TensorFlow's RMSprop: b <- mu*b + lr*g/sqrt(v + eps) ; w <- w - b (v starts at 0)."""


def _layers(layer):
    """The layer and every layer nested in it, depth first."""
    yield layer
    for child in getattr(layer, "layers", []):
        yield from _layers(child)


def no_decay_variables(model, no_decay):
    """The trainable variables in the spec's no_decay groups: "bias" (every bias, a norm's shift
    beta included, as PyTorch names it bias) and/or "norm" (a norm's scale and shift)."""
    found = {}
    if "bias" in no_decay:
        found.update(
            (id(v), v) for v in model.trainable_variables if v.path.endswith("bias")
        )
    for layer in _layers(model):
        if not isinstance(layer, NORM_LAYERS):
            continue
        if "norm" in no_decay:
            found.update((id(v), v) for v in layer.trainable_variables)
        elif "bias" in no_decay and layer.center and layer.beta.trainable:
            found[id(layer.beta)] = layer.beta
    return list(found.values())


def exclude_from_decay(optimizer, model, no_decay):
    """Exclude the no_decay groups from the optimizer's weight decay; returns the optimizer."""
    excluded = no_decay_variables(model, no_decay)
    if excluded:
        optimizer.exclude_from_weight_decay(var_list=excluded)
    return optimizer


def freeze_statements(model, prefixes):
    """Make the layers of the named statements not trainable (a batch norm that is not
    trainable normalises with its moving statistics and keeps them, also in training);
    returns the model."""
    for (
        layer
    ) in model.layers:  # the statements' layers (the model's own name is no prefix)
        if under(layer.name, prefixes):
            layer.trainable = False
    return model


def scale_rates(optimizer, model, lr_scale):
    """Multiply the learning rate of the trainable variables of each statement of lr_scale
    {prefix: factor} by its factor; returns the optimizer."""
    factors = {}
    for layer in model.layers:
        for prefix, factor in lr_scale.items():
            if under(layer.name, [prefix]):
                keys = (optimizer._var_key(v) for v in layer.trainable_variables)
                factors.update(dict.fromkeys(keys, float(factor)))
    optimizer.rate_factors = factors
    return optimizer
