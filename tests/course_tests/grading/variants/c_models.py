"""Variant C: nn.Sequential subclasses with named children (OrderedDict); the Discriminator is one Sequential."""
from collections import OrderedDict

import torch
from torch import nn


class ConvolutionalBlock(nn.Sequential):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, batch_norm=False, activation=None):
        parts = OrderedDict(conv=nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride,
                                           padding=kernel_size // 2))
        if batch_norm:
            parts["norm"] = nn.BatchNorm2d(out_channels)
        if activation == "prelu":
            parts["act"] = nn.PReLU()
        elif activation == "leakyrelu":
            parts["act"] = nn.LeakyReLU(0.2, inplace=True)
        elif activation == "tanh":
            parts["act"] = nn.Tanh()
        elif activation is not None:
            raise ValueError(activation)
        super().__init__(parts)


class SubPixelConvolutionalBlock(nn.Sequential):
    def __init__(self, kernel_size=3, n_channels=64, scaling_factor=2):
        super().__init__(OrderedDict(
            conv=nn.Conv2d(n_channels, n_channels * scaling_factor ** 2, kernel_size, padding=kernel_size // 2),
            shuffle=nn.PixelShuffle(scaling_factor),
            act=nn.PReLU(),
        ))


class ResidualBlock(nn.Module):
    def __init__(self, kernel_size=3, n_channels=64):
        super().__init__()
        self.body = nn.Sequential(
            ConvolutionalBlock(n_channels, n_channels, kernel_size, batch_norm=True, activation="prelu"),
            ConvolutionalBlock(n_channels, n_channels, kernel_size, batch_norm=True),
        )

    def forward(self, x):
        out = self.body(x)
        out += x
        return out


class SRResNet(nn.Module):
    def __init__(self, large_kernel_size=9, small_kernel_size=3, n_channels=64, n_blocks=16, scaling_factor=4):
        super().__init__()
        if scaling_factor not in {2, 4, 8}:
            raise ValueError("only x2, x4 and x8 are supported")
        n_up = scaling_factor.bit_length() - 1
        self.entry = ConvolutionalBlock(3, n_channels, large_kernel_size, activation="prelu")
        self.residuals = nn.Sequential(OrderedDict(
            (f"block{i + 1}", ResidualBlock(small_kernel_size, n_channels)) for i in range(n_blocks)))
        self.post_residual = ConvolutionalBlock(n_channels, n_channels, small_kernel_size, batch_norm=True)
        self.upscale = nn.Sequential(*(SubPixelConvolutionalBlock(small_kernel_size, n_channels) for _ in range(n_up)))
        self.exit = ConvolutionalBlock(n_channels, 3, large_kernel_size, activation="tanh")

    def forward(self, lr_imgs):
        first = self.entry(lr_imgs)
        x = self.post_residual(self.residuals(first))
        x = x + first
        return self.exit(self.upscale(x))


class Generator(nn.Module):
    def __init__(self, *args, **kwargs):
        super().__init__()
        self.model = SRResNet(*args, **kwargs)

    def initialize_with_srresnet(self, srresnet_state_dict):
        self.model.load_state_dict(OrderedDict(srresnet_state_dict.items()))
        return self

    def forward(self, lr_imgs):
        return self.model.forward(lr_imgs)


class Discriminator(nn.Sequential):
    def __init__(self, kernel_size=3, n_channels=64, n_blocks=8, fc_size=1024):
        layers, channels = [], 3
        for i in range(n_blocks):
            if i % 2 == 0:
                width, stride = (n_channels if i == 0 else channels * 2), 1
            else:
                width, stride = channels, 2
            layers.append(ConvolutionalBlock(channels, width, kernel_size, stride, batch_norm=bool(i),
                                             activation="leakyrelu"))
            channels = width
        layers += [nn.AdaptiveAvgPool2d(6), nn.Flatten(1), nn.Linear(channels * 36, fc_size),
                   nn.LeakyReLU(0.2), nn.Linear(fc_size, 1)]
        super().__init__(*layers)
