"""Variant A: explicit layers, attributes set to None when absent, a table-driven Discriminator."""
import torch
from torch import nn

_ACTIVATIONS = ("prelu", "leakyrelu", "tanh")


class ConvolutionalBlock(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, batch_norm=False, activation=None):
        super().__init__()
        if activation is not None and activation not in _ACTIVATIONS:
            raise ValueError("activation must be None, 'prelu', 'leakyrelu' or 'tanh'")
        pad = (kernel_size - 1) // 2
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=kernel_size, stride=stride, padding=pad)
        self.bn = nn.BatchNorm2d(out_channels) if batch_norm else None
        if activation == "prelu":
            self.act = nn.PReLU(num_parameters=1)
        elif activation == "leakyrelu":
            self.act = nn.LeakyReLU(negative_slope=0.2)
        elif activation == "tanh":
            self.act = nn.Tanh()
        else:
            self.act = None

    def forward(self, x):
        y = self.conv(x)
        if self.bn is not None:
            y = self.bn(y)
        if self.act is not None:
            y = self.act(y)
        return y


class SubPixelConvolutionalBlock(nn.Module):
    def __init__(self, kernel_size=3, n_channels=64, scaling_factor=2):
        super().__init__()
        self.expand = nn.Conv2d(n_channels, n_channels * scaling_factor * scaling_factor, kernel_size,
                                padding=(kernel_size - 1) // 2)
        self.shuffle = nn.PixelShuffle(upscale_factor=scaling_factor)
        self.act = nn.PReLU()

    def forward(self, x):
        y = self.expand(x)
        y = self.shuffle(y)
        return self.act(y)


class ResidualBlock(nn.Module):
    def __init__(self, kernel_size=3, n_channels=64):
        super().__init__()
        pad = kernel_size // 2
        self.conv_a = nn.Conv2d(n_channels, n_channels, kernel_size, padding=pad)
        self.bn_a = nn.BatchNorm2d(n_channels)
        self.act = nn.PReLU()
        self.conv_b = nn.Conv2d(n_channels, n_channels, kernel_size, padding=pad)
        self.bn_b = nn.BatchNorm2d(n_channels)

    def forward(self, x):
        h = self.act(self.bn_a(self.conv_a(x)))
        h = self.bn_b(self.conv_b(h))
        return h + x


class SRResNet(nn.Module):
    def __init__(self, large_kernel_size=9, small_kernel_size=3, n_channels=64, n_blocks=16, scaling_factor=4):
        super().__init__()
        n_up = {2: 1, 4: 2, 8: 3}.get(scaling_factor)
        if n_up is None:
            raise ValueError("scaling_factor must be one of 2, 4, 8")
        self.head = ConvolutionalBlock(3, n_channels, large_kernel_size, activation="prelu")
        self.body = nn.Sequential()
        for i in range(n_blocks):
            self.body.add_module(f"res{i}", ResidualBlock(small_kernel_size, n_channels))
        self.body_end = ConvolutionalBlock(n_channels, n_channels, small_kernel_size, batch_norm=True)
        self.upsample = nn.Sequential()
        for i in range(n_up):
            self.upsample.add_module(f"up{i}", SubPixelConvolutionalBlock(small_kernel_size, n_channels, 2))
        self.tail = ConvolutionalBlock(n_channels, 3, large_kernel_size, activation="tanh")

    def forward(self, lr_imgs):
        feat = self.head(lr_imgs)
        deep = self.body_end(self.body(feat))
        return self.tail(self.upsample(deep + feat))


class Generator(SRResNet):
    """An SRResNet subclass: the state dict keys are the SRResNet's own."""

    def initialize_with_srresnet(self, srresnet_state_dict):
        missing, unexpected = self.load_state_dict(srresnet_state_dict, strict=True)
        assert not missing and not unexpected


class Discriminator(nn.Module):
    def __init__(self, kernel_size=3, n_channels=64, n_blocks=8, fc_size=1024):
        super().__init__()
        # (channel multiplier, stride, batch-norm) of each block
        table = [(1, 1, False), (1, 2, True), (2, 1, True), (2, 2, True),
                 (4, 1, True), (4, 2, True), (8, 1, True), (8, 2, True)][:n_blocks]
        blocks = []
        c_in = 3
        for mult, stride, bn in table:
            c_out = n_channels * mult
            blocks.append(ConvolutionalBlock(c_in, c_out, kernel_size, stride=stride, batch_norm=bn,
                                             activation="leakyrelu"))
            c_in = c_out
        self.features = nn.ModuleList(blocks)
        self.pool = nn.AdaptiveAvgPool2d(6)
        self.dense = nn.Linear(c_in * 36, fc_size)
        self.dense_act = nn.LeakyReLU(0.2)
        self.logit = nn.Linear(fc_size, 1)

    def forward(self, imgs):
        x = imgs
        for block in self.features:
            x = block(x)
        x = torch.flatten(self.pool(x), start_dim=1)
        return self.logit(self.dense_act(self.dense(x)))
