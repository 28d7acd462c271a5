"""Epoch learning-rate schedules that set optimizer.learning_rate after each validation."""

import math

import keras


def _lr(optimizer):
    """The optimizer's current learning rate as a float."""
    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))


class _Schedule:
    """Counts epochs from the optimizer's initial learning rate; subclasses pick the next rate."""

    def __init__(self, optimizer):
        """Remember the optimizer and its initial learning rate."""
        self.optimizer = optimizer
        self.base_lr = _lr(optimizer)
        self.epoch = 0

    def step_epoch(self, metrics):
        """Advance one epoch, given that epoch's validation metrics, and set the new rate."""
        self.epoch += 1
        self.optimizer.learning_rate = self.next_lr(metrics)

    def next_lr(self, metrics):
        """The rate for the next epoch."""
        raise NotImplementedError

    def state_dict(self):
        """Plain-data state for a checkpoint, including the rate in force."""
        state = {k: v for k, v in vars(self).items() if k != "optimizer"}
        return {**state, "lr": _lr(self.optimizer)}

    def load_state_dict(self, state):
        """Restore a state_dict() and the rate it was taken at."""
        state = dict(state)
        self.optimizer.learning_rate = state.pop("lr")
        vars(self).update(state)


class OnPlateau(_Schedule):
    """Multiply the rate by `factor` when `metric` has not improved for `patience` epochs.

    The paper's rule ("divide by 10 when the validation error stops improving", three times) is
    OnPlateau(opt, factor=0.1, patience=1, metric="val_error", max_drops=3). An epoch improves
    when metric < best - min_delta; patience=1 drops at the first epoch that does not improve.
    After a drop the count of bad epochs restarts; the best value is kept.
    """

    def __init__(
        self,
        optimizer,
        factor=0.1,
        patience=1,
        metric="val_error",
        max_drops=None,
        min_delta=0.0,
    ):
        """max_drops=None allows any number of drops."""
        super().__init__(optimizer)
        if not 0 < factor < 1 or patience < 1:
            raise ValueError(
                f"need 0 < factor < 1 and patience >= 1, got {factor}, {patience}"
            )
        self.factor, self.patience, self.metric = factor, patience, metric
        self.max_drops, self.min_delta = max_drops, min_delta
        self.best, self.bad_epochs, self.drops = math.inf, 0, 0

    def next_lr(self, metrics):
        """Track the best value; drop the rate after `patience` epochs without improvement."""
        lr, value = _lr(self.optimizer), metrics[self.metric]
        if value < self.best - self.min_delta:
            self.best, self.bad_epochs = value, 0
            return lr
        self.bad_epochs += 1
        if self.bad_epochs < self.patience or not self.can_drop():
            return lr
        self.bad_epochs, self.drops = 0, self.drops + 1
        return lr * self.factor

    def can_drop(self):
        """Whether drops remain."""
        return self.max_drops is None or self.drops < self.max_drops


class StepDecay(_Schedule):
    """base_lr * gamma ** (epoch // step_size) (torch's StepLR)."""

    def __init__(self, optimizer, step_size, gamma=0.1):
        """step_size in epochs."""
        super().__init__(optimizer)
        self.step_size, self.gamma = step_size, gamma

    def next_lr(self, metrics):
        """Closed form in the epoch count."""
        return self.base_lr * self.gamma ** (self.epoch // self.step_size)


class MultiStep(_Schedule):
    """base_lr * gamma ** (milestones passed) (torch's MultiStepLR)."""

    def __init__(self, optimizer, milestones, gamma=0.1):
        """milestones: epochs after which the rate drops."""
        super().__init__(optimizer)
        self.milestones, self.gamma = sorted(milestones), gamma

    def next_lr(self, metrics):
        """Closed form in the epoch count."""
        return self.base_lr * self.gamma ** sum(
            m <= self.epoch for m in self.milestones
        )


class Cosine(_Schedule):
    """Linear warmup, then half a cosine to min_lr (torchvision's recipe: LinearLR for
    `warmup` epochs from base_lr * warmup_factor, then CosineAnnealingLR with T_max = epochs -
    warmup, one step per epoch)."""

    def __init__(self, optimizer, epochs, min_lr=0.0, warmup=0, warmup_factor=0.01):
        """epochs: the whole run; the rate stays at min_lr after it."""
        if not 0 <= warmup < epochs or not 0 < warmup_factor <= 1:
            raise ValueError(
                f"need 0 <= warmup < epochs and 0 < warmup_factor <= 1, got "
                f"warmup={warmup}, epochs={epochs}, warmup_factor={warmup_factor}"
            )
        super().__init__(optimizer)
        self.epochs, self.min_lr = epochs, min_lr
        self.warmup, self.warmup_factor = warmup, warmup_factor
        self.optimizer.learning_rate = self.next_lr(None)

    def next_lr(self, metrics):
        """Closed form in the epoch count."""
        if self.epoch < self.warmup:
            f = self.warmup_factor
            return self.base_lr * (f + (1 - f) * self.epoch / self.warmup)
        span = self.epochs - self.warmup
        cos = math.cos(math.pi * min(self.epoch - self.warmup, span) / span)
        return self.min_lr + (self.base_lr - self.min_lr) * (1 + cos) / 2
