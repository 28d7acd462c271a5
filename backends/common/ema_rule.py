"""The EMA of the weights as both trainers keep it: its decay and when it updates."""


def ema_decay(ema, batch, epochs):
    """The decay per update: TRAIN["ema"]["decay"], or with adjust=True torchvision's
    reference: 1 - min(1, (1 - decay) * batch * every / epochs) (batch: the global batch)."""
    if not ema["adjust"]:
        return ema["decay"]
    return 1.0 - min(1.0, (1.0 - ema["decay"]) * batch * ema["every"] / epochs)


def warmup_epochs(train):
    """The schedule's warmup epochs, during which the EMA restarts at every update (copies the
    weights), as torchvision's reference resets it while the rate warms up."""
    return train["schedule"].get("warmup", 0)


def updates_after(step, ema):
    """Whether the EMA updates after global optimizer step `step` (counted from 1)."""
    return step % ema["every"] == 0
