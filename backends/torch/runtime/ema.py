"""The EMA of the weights: torch.optim.swa_utils.AveragedModel, as torchvision's reference."""

import torch
from torch.optim.swa_utils import AveragedModel


def ema_model(net, decay):
    """An AveragedModel of net's parameters and buffers: a <- decay*a + (1 - decay)*w for
    floating tensors, integer buffers (batch counts) copied; the first update copies."""

    def average(averaged, current, n_averaged):
        """One tensor's update."""
        if not torch.is_floating_point(current):
            return current
        return decay * averaged + (1.0 - decay) * current

    return AveragedModel(net, avg_fn=average, use_buffers=True)


def update(ema, net, restart):
    """Fold net's weights into the average; restart: the next update copies instead."""
    ema.update_parameters(net)
    if restart:
        ema.n_averaged.fill_(0)
