"""A correct models.py whose layers are registered in another order than forward calls them, under other names:
the state_dict lists the last layers first, and tensors of one shape out of call order."""
import torch
from torch import nn


class ConvolutionalBlock(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, batch_norm=False, activation=None):
        super().__init__()
        makers = {None: nn.Identity, "prelu": nn.PReLU, "leakyrelu": lambda: nn.LeakyReLU(0.2), "tanh": nn.Tanh}
        if activation not in makers:
            raise ValueError(f"unknown activation {activation!r}")
        self.post = makers[activation]()                       # registered first, called last
        self.norm = nn.BatchNorm2d(out_channels) if batch_norm else nn.Identity()
        self.weighting = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2)

    def forward(self, x):
        return self.post(self.norm(self.weighting(x)))


class SubPixelConvolutionalBlock(nn.Module):
    def __init__(self, kernel_size=3, n_channels=64, scaling_factor=2):
        super().__init__()
        self.slope = nn.PReLU()
        self.rearrange = nn.PixelShuffle(scaling_factor)
        self.spread = nn.Conv2d(n_channels, n_channels * scaling_factor ** 2, kernel_size, padding=kernel_size // 2)

    def forward(self, x):
        return self.slope(self.rearrange(self.spread(x)))


class ResidualBlock(nn.Module):
    def __init__(self, kernel_size=3, n_channels=64):
        super().__init__()
        self.second = ConvolutionalBlock(n_channels, n_channels, kernel_size, batch_norm=True)
        self.first = ConvolutionalBlock(n_channels, n_channels, kernel_size, batch_norm=True, activation="prelu")

    def forward(self, x):
        return x + self.second(self.first(x))


class SRResNet(nn.Module):
    def __init__(self, large_kernel_size=9, small_kernel_size=3, n_channels=64, n_blocks=16, scaling_factor=4):
        super().__init__()
        if scaling_factor not in (2, 4, 8):
            raise ValueError("scaling_factor: 2, 4 or 8")
        self.out = ConvolutionalBlock(n_channels, 3, large_kernel_size, activation="tanh")
        self.ups = nn.ModuleList(SubPixelConvolutionalBlock(small_kernel_size, n_channels, 2)
                                 for _ in range(scaling_factor.bit_length() - 1))
        self.trunk_end = ConvolutionalBlock(n_channels, n_channels, small_kernel_size, batch_norm=True)
        self.trunk = nn.ModuleList(ResidualBlock(small_kernel_size, n_channels) for _ in range(n_blocks))
        self.into = ConvolutionalBlock(3, n_channels, large_kernel_size, activation="prelu")

    def forward(self, lr_imgs):
        skip = h = self.into(lr_imgs)
        for block in self.trunk:
            h = block(h)
        h = self.trunk_end(h) + skip
        for up in self.ups:
            h = up(h)
        return self.out(h)


class Generator(nn.Module):
    def __init__(self, large_kernel_size=9, small_kernel_size=3, n_channels=64, n_blocks=16, scaling_factor=4):
        super().__init__()
        self.body = SRResNet(large_kernel_size, small_kernel_size, n_channels, n_blocks, scaling_factor)

    def initialize_with_srresnet(self, srresnet_state_dict):
        self.body.load_state_dict(srresnet_state_dict)

    def forward(self, lr_imgs):
        return self.body(lr_imgs)


class Discriminator(nn.Module):
    def __init__(self, kernel_size=3, n_channels=64, n_blocks=8, fc_size=1024):
        super().__init__()
        width = [n_channels * 2 ** (i // 2) for i in range(n_blocks)]
        self.score = nn.Linear(fc_size, 1)
        self.squash = nn.LeakyReLU(0.2)
        self.pool = nn.AdaptiveAvgPool2d(6)
        self.dense = nn.Linear(width[-1] * 36, fc_size)
        self.features = nn.ModuleList(
            ConvolutionalBlock(3 if i == 0 else width[i - 1], width[i], kernel_size, stride=1 + i % 2,
                               batch_norm=i > 0, activation="leakyrelu") for i in range(n_blocks))

    def forward(self, imgs):
        h = imgs
        for block in self.features:
            h = block(h)
        return self.score(self.squash(self.dense(self.pool(h).flatten(1))))
