"""Variant B: ModuleList/ModuleDict containers, functional pieces in forward (torch.add, torch.tanh)."""
import torch
import torch.nn.functional as F
from torch import nn


def _activation(name):
    factories = {"prelu": lambda: nn.PReLU(), "leakyrelu": lambda: nn.LeakyReLU(0.2), "tanh": lambda: nn.Tanh()}
    if name is None:
        return None
    try:
        return factories[name]()
    except KeyError:
        raise ValueError(f"no activation called {name}") from None


class ConvolutionalBlock(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, batch_norm=False, activation=None):
        super().__init__()
        act = _activation(activation)
        self.ops = nn.ModuleList([nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2)])
        if batch_norm:
            self.ops.append(nn.BatchNorm2d(out_channels))
        if act is not None:
            self.ops.append(act)

    def forward(self, x):
        for op in self.ops:
            x = op(x)
        return x


class SubPixelConvolutionalBlock(nn.Module):
    def __init__(self, kernel_size=3, n_channels=64, scaling_factor=2):
        super().__init__()
        self.parts = nn.ModuleDict({
            "conv": nn.Conv2d(n_channels, (scaling_factor ** 2) * n_channels, kernel_size, 1, kernel_size // 2),
            "shuffle": nn.PixelShuffle(scaling_factor),
            "prelu": nn.PReLU(),
        })

    def forward(self, x):
        return self.parts["prelu"](self.parts["shuffle"](self.parts["conv"](x)))


class ResidualBlock(nn.Module):
    def __init__(self, kernel_size=3, n_channels=64):
        super().__init__()
        self.pair = nn.ModuleList([
            ConvolutionalBlock(n_channels, n_channels, kernel_size, batch_norm=True, activation="prelu"),
            ConvolutionalBlock(n_channels, n_channels, kernel_size, batch_norm=True),
        ])

    def forward(self, x):
        y = x
        for block in self.pair:
            y = block(y)
        return torch.add(x, y)


class SRResNet(nn.Module):
    def __init__(self, large_kernel_size=9, small_kernel_size=3, n_channels=64, n_blocks=16, scaling_factor=4):
        super().__init__()
        if scaling_factor < 2 or scaling_factor > 8 or scaling_factor & (scaling_factor - 1):
            raise ValueError("scaling_factor must be 2, 4 or 8")
        self.stem = ConvolutionalBlock(3, n_channels, large_kernel_size, activation="prelu")
        self.trunk = nn.ModuleList(ResidualBlock(small_kernel_size, n_channels) for _ in range(n_blocks))
        self.fuse = ConvolutionalBlock(n_channels, n_channels, small_kernel_size, batch_norm=True)
        self.ups = nn.ModuleList()
        s = scaling_factor
        while s > 1:
            self.ups.append(SubPixelConvolutionalBlock(small_kernel_size, n_channels, 2))
            s //= 2
        self.out = ConvolutionalBlock(n_channels, 3, large_kernel_size)  # tanh applied in forward

    def forward(self, lr_imgs):
        skip = self.stem(lr_imgs)
        h = skip
        for block in self.trunk:
            h = block(h)
        h = torch.add(self.fuse(h), skip)
        for up in self.ups:
            h = up(h)
        return torch.tanh(self.out(h))


class Generator(nn.Module):
    def __init__(self, large_kernel_size=9, small_kernel_size=3, n_channels=64, n_blocks=16, scaling_factor=4):
        super().__init__()
        self.srresnet = SRResNet(large_kernel_size=large_kernel_size, small_kernel_size=small_kernel_size,
                                 n_channels=n_channels, n_blocks=n_blocks, scaling_factor=scaling_factor)

    @torch.no_grad()
    def initialize_with_srresnet(self, srresnet_state_dict):
        own = self.srresnet.state_dict()
        for key, tensor in own.items():
            tensor.copy_(srresnet_state_dict[key])

    def forward(self, lr_imgs):
        return self.srresnet(lr_imgs)


class Discriminator(nn.Module):
    def __init__(self, kernel_size=3, n_channels=64, n_blocks=8, fc_size=1024):
        super().__init__()
        self.blocks = nn.ModuleList()
        prev = 3
        for i in range(n_blocks):
            width = n_channels * 2 ** (i // 2)
            self.blocks.append(ConvolutionalBlock(prev, width, kernel_size, stride=2 if i % 2 else 1,
                                                  batch_norm=i > 0, activation="leakyrelu"))
            prev = width
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d((6, 6)), nn.Flatten(), nn.Linear(prev * 6 * 6, fc_size),
                                  nn.LeakyReLU(0.2), nn.Linear(fc_size, 1))

    def forward(self, imgs):
        h = imgs
        for block in self.blocks:
            h = block(h)
        return self.head(h)
