"""NumPy references of the train section's recipes, shared by both runtimes' tests and the
conformance harness: RMSprop in torch's and TensorFlow's forms, the warmed-up cosine schedule,
gradient clipping by global norm (NumPy only: no framework is imported here)."""

from __future__ import annotations

import math

import numpy as np


def rmsprop_step(rule, w, v, b, g, lr, alpha, eps, momentum, decay):
    """One RMSprop step in place on float64 w, v (square average) and b (momentum buffer).

    torch: g <- g + decay*w ; v <- alpha*v + (1-alpha)*g^2 ; b <- mu*b + g/(sqrt(v) + eps) ;
           w <- w - lr*b                                     (torch.optim.RMSprop)
    tf:    the same v ; b <- mu*b + lr*g/sqrt(v + eps) ; w <- w - b
                                                    (TensorFlow / Keras's RMSprop, v from 0)
    """
    g = np.asarray(g, np.float64)
    if decay:
        g = g + decay * w
    v *= alpha
    v += (1 - alpha) * g * g
    if rule == "torch":
        b *= momentum
        b += g / (np.sqrt(v) + eps)
        w -= lr * b
    elif rule == "tf":
        b *= momentum
        b += lr * g / np.sqrt(v + eps)
        w -= b
    else:
        raise ValueError(f"unknown RMSprop rule {rule!r}")
    return w, v, b


def cosine_lr(base, epoch, epochs, min_lr=0.0, warmup=0, warmup_factor=0.01):
    """The rate of (0-based) epoch `epoch`: linear warmup from base*warmup_factor over `warmup`
    epochs (torch's LinearLR), then half a cosine from base to min_lr over the remaining
    epochs (CosineAnnealingLR with T_max = epochs - warmup); min_lr after the end."""
    if epoch < warmup:
        return base * (warmup_factor + (1 - warmup_factor) * epoch / warmup)
    t = min(epoch - warmup, epochs - warmup) / (epochs - warmup)
    return min_lr + (base - min_lr) * (1 + math.cos(math.pi * t)) / 2


def clip_by_global_norm(grads, max_norm):
    """torch.nn.utils.clip_grad_norm_: every gradient times min(1, max_norm / (norm + 1e-6)),
    norm the L2 norm of all of them together; returns (clipped grads, norm)."""
    norm = math.sqrt(sum(float(np.sum(np.square(np.asarray(g, np.float64)))) for g in grads))
    scale = min(1.0, max_norm / (norm + 1e-6))
    return [np.asarray(g, np.float64) * scale for g in grads], norm


def ema_reference(snapshots, decay, restarts=()):
    """The EMA after each update of torchvision's reference, in NumPy: snapshots is a list of
    {name: array} of the weights at each update; the first update (and the first after an
    update listed in `restarts`, counted from 0) copies, the others take
    a <- decay*a + (1 - decay)*w for floating arrays and copy the others."""
    average, fresh, out = {}, True, []
    for i, weights in enumerate(snapshots):
        for name, w in weights.items():
            w = np.asarray(w)
            floating = np.issubdtype(w.dtype, np.floating)
            if fresh or not floating:
                average[name] = w.astype(np.float64) if floating else w.copy()
            else:
                average[name] = decay * average[name] + (1 - decay) * w
        fresh = i in restarts
        out.append({k: v.copy() for k, v in average.items()})
    return out
