"""The paper's AlexNet (Krizhevsky et al. 2012) written by hand in torchvision's style.

The reference for bench/torch_vs_reference.py's pair (b): the network of specs/alexnet.arch as a
person would write it after torchvision.models.AlexNet, a `features` stack, a flatten and a
`classifier` stack. The paper's sizes: 227 x 227 input, 96/256/384/384/256 channels, LRN after
conv1 and conv2 (size 5, alpha 1e-4, beta 0.75, k 2; PyTorch divides alpha by the window size, so
it gets alpha * 5), groups=2 on conv2, conv4 and conv5 (the two-GPU split), dropout before fc6 and
fc7. No adaptive average pool: at 227 the last max pool already gives 6 x 6, and the paper has
none. Weights N(0, 0.01); biases 1 on conv2, conv4, conv5, fc6 and fc7, else 0. 60,965,224
parameters (`python bench/handwritten_alexnet.py` checks it).
"""

from __future__ import annotations

import torch
from torch import nn

PARAMETERS = 60_965_224


class AlexNet(nn.Module):
    """AlexNet as in the paper: (N, 3, 227, 227) images to (N, num_classes) logits."""

    def __init__(self, num_classes: int = 1000, dropout: float = 0.5) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 96, kernel_size=11, stride=4),
            nn.ReLU(inplace=True),
            nn.LocalResponseNorm(5, alpha=5 * 1e-4, beta=0.75, k=2.0),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(96, 256, kernel_size=5, padding=2, groups=2),
            nn.ReLU(inplace=True),
            nn.LocalResponseNorm(5, alpha=5 * 1e-4, beta=0.75, k=2.0),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(256, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 384, kernel_size=3, padding=1, groups=2),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1, groups=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout),
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )
        self._initialize_weights()

    def _initialize_weights(self) -> None:
        """N(0, 0.01) weights; bias 1 on conv2, conv4, conv5, fc6 and fc7, else 0."""
        ones = {self.features[4], self.features[10], self.features[12]}
        ones |= {self.classifier[1], self.classifier[4]}
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.normal_(m.weight, mean=0.0, std=0.01)
                nn.init.constant_(m.bias, 1.0 if m in ones else 0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = torch.flatten(x, 1)
        x = self.classifier(x)
        return x


def parameter_count(model: nn.Module) -> int:
    """The number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


if __name__ == "__main__":
    count = parameter_count(AlexNet())
    assert count == PARAMETERS, f"{count:,} parameters, expected {PARAMETERS:,}"
    out = AlexNet()(torch.zeros(1, 3, 227, 227))
    print(f"AlexNet: {count:,} parameters, (1, 3, 227, 227) -> {tuple(out.shape)}")
