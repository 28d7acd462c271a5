"""The EMA of the weights: torch.optim.swa_utils.AveragedModel, as torchvision's reference,
updated in a few multi-tensor ops that never wait for the device."""

import torch
from torch.optim.swa_utils import AveragedModel


def ema_model(net, decay):
    """An AveragedModel of net's parameters and buffers: a <- decay*a + (1 - decay)*w for
    floating tensors, integer buffers (batch counts) copied; the first update copies. Its
    update count (n_averaged) stays on the host."""
    ema = AveragedModel(net, use_buffers=True)
    ema.decay = decay
    return ema


def tensors(module):
    """A module's parameters, then its buffers (detached)."""
    return [t.detach() for t in (*module.parameters(), *module.buffers())]


def update(ema, net, restart):
    """Fold net's weights into the average; restart: the next update copies instead."""
    averaged, current = tensors(ema.module), tensors(net)
    if ema.n_averaged.numpy() == 0:  # a host tensor: no wait for the device
        torch._foreach_copy_(averaged, current)
    else:
        pairs = list(zip(averaged, current, strict=True))
        floats = [(a, w) for a, w in pairs if a.is_floating_point()]
        means, weights = [a for a, _ in floats], [w for _, w in floats]
        torch._foreach_mul_(means, ema.decay)
        torch._foreach_add_(means, torch._foreach_mul(weights, 1.0 - ema.decay))
        for a, w in pairs:
            if not a.is_floating_point():
                a.copy_(w)  # counts
    ema.n_averaged += 1
    if restart:
        ema.n_averaged.fill_(0)
