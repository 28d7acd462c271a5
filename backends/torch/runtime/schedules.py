"""Epoch learning-rate schedules that set param_group["lr"] directly (any torch optimizer)."""

import math


class EpochSchedule:
    """Base: lr = f(completed epochs) from each group's lr at construction."""

    def __init__(self, optimizer):
        """Remember the optimizer and its initial learning rates."""
        self.optimizer = optimizer
        self.base_lrs = [g["lr"] for g in optimizer.param_groups]
        self.epoch = 0

    def step_epoch(self, metrics=None):
        """Call once after each epoch's validation; sets the lr for the next epoch."""
        self.epoch += 1
        for group, base in zip(self.optimizer.param_groups, self.base_lrs, strict=True):
            group["lr"] = self.lr_at(base, self.epoch)

    def lr_at(self, base, epoch):
        """The lr after `epoch` completed epochs for a group that started at base."""
        raise NotImplementedError

    def state_dict(self):
        """Everything but the optimizer."""
        return {k: v for k, v in vars(self).items() if k != "optimizer"}

    def load_state_dict(self, state):
        """Restore from state_dict()."""
        vars(self).update(state)


class StepDecay(EpochSchedule):
    """Multiply the lr by gamma every step_size epochs."""

    def __init__(self, optimizer, step_size, gamma=0.1):
        """step_size in epochs."""
        super().__init__(optimizer)
        self.step_size, self.gamma = step_size, gamma

    def lr_at(self, base, epoch):
        """base * gamma^(epoch // step_size)."""
        return base * self.gamma ** (epoch // self.step_size)


class MultiStep(EpochSchedule):
    """Multiply the lr by gamma at each milestone epoch."""

    def __init__(self, optimizer, milestones, gamma=0.1):
        """milestones: epochs after which the lr drops."""
        super().__init__(optimizer)
        self.milestones, self.gamma = sorted(milestones), gamma

    def lr_at(self, base, epoch):
        """base * gamma^(milestones passed)."""
        return base * self.gamma ** sum(m <= epoch for m in self.milestones)


class Cosine(EpochSchedule):
    """Linear warmup, then cosine annealing to min_lr (torchvision's recipe: LinearLR for
    `warmup` epochs from lr * warmup_factor, then CosineAnnealingLR with T_max = epochs -
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
        for group, base in zip(optimizer.param_groups, self.base_lrs, strict=True):
            group["lr"] = self.lr_at(base, 0)

    def lr_at(self, base, epoch):
        """base * (f + (1 - f) * epoch / warmup) while warming up, then min_lr + (base -
        min_lr) * (1 + cos(pi * t)) / 2 with t = (epoch - warmup) / (epochs - warmup) <= 1."""
        if epoch < self.warmup:
            f = self.warmup_factor
            return base * (f + (1 - f) * epoch / self.warmup)
        t = min(epoch - self.warmup, self.epochs - self.warmup) / (
            self.epochs - self.warmup
        )
        return self.min_lr + (base - self.min_lr) * (1.0 + math.cos(math.pi * t)) / 2.0


class OnPlateau:
    """Multiply the lr by factor when `metric` has not improved for `patience` epochs.

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
        if not 0 < factor < 1 or patience < 1:
            raise ValueError(
                f"need 0 < factor < 1 and patience >= 1, got {factor}, {patience}"
            )
        self.optimizer, self.factor, self.patience = optimizer, factor, patience
        self.metric, self.max_drops, self.min_delta = metric, max_drops, min_delta
        self.best, self.bad_epochs, self.drops = math.inf, 0, 0

    def step_epoch(self, metrics):
        """Call once after each epoch's validation with the epoch's metrics."""
        value = metrics[self.metric]
        if value < self.best - self.min_delta:
            self.best, self.bad_epochs = value, 0
            return
        self.bad_epochs += 1
        if self.bad_epochs >= self.patience and self.can_drop():
            for group in self.optimizer.param_groups:
                group["lr"] *= self.factor
            self.drops += 1
            self.bad_epochs = 0

    def can_drop(self):
        """Whether drops remain."""
        return self.max_drops is None or self.drops < self.max_drops

    def state_dict(self):
        """Counters and the best value (the lr itself lives in the optimizer's state)."""
        return {"best": self.best, "bad_epochs": self.bad_epochs, "drops": self.drops}

    def load_state_dict(self, state):
        """Restore from state_dict()."""
        self.best, self.bad_epochs, self.drops = (
            state["best"],
            state["bad_epochs"],
            state["drops"],
        )
