"""BiSeNet face parser (face-parsing.PyTorch, as bundled by MuseTalk; spec §1.4).

A ResNet18 context path (``cp.resnet.*``) gives features at strides 8/16/32; two
attention-refinement modules and a global-average branch build the context, which a
feature-fusion module merges with the stride-8 features. Three heads predict the 19
CelebAMask-HQ classes; only the first (fused) one is used for parsing, but the other
two exist so that ``79999_iter.pth`` loads strictly.

Widths come from :class:`BiSeNetConfig`; the defaults are the released ones and a tiny
config keeps tests fast. Parameter names equal the checkpoint's.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class BiSeNetConfig:
    n_classes: int = 19
    base: int = 64          # ResNet18 stem width; stages are base * (1, 2, 4, 8)
    context: int = 128      # ARM / context-path width
    fuse: int = 256         # feature-fusion width (= stride-8 width + context width)
    aux_mid: int = 64       # hidden width of the two auxiliary heads


TINY_BISENET = BiSeNetConfig(n_classes=19, base=8, context=16, fuse=32, aux_mid=8)


class ConvBNReLU(nn.Module):
    def __init__(self, cin: int, cout: int, ks: int = 3, stride: int = 1, padding: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, ks, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if cin != cout or stride != 1:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                            nn.BatchNorm2d(cout))

    def forward(self, x):
        r = F.relu(self.bn1(self.conv1(x)))
        r = self.bn2(self.conv2(r))
        short = x if self.downsample is None else self.downsample(x)
        return F.relu(short + r)


class ResNet18(nn.Module):
    """Torchvision-shaped ResNet18 trunk without the classifier (no ``fc`` keys)."""

    def __init__(self, base: int):
        super().__init__()
        self.conv1 = nn.Conv2d(3, base, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(base)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        widths = [base, base * 2, base * 4, base * 8]
        cin = base
        for i, w in enumerate(widths):
            stride = 1 if i == 0 else 2
            setattr(self, f"layer{i + 1}", nn.Sequential(BasicBlock(cin, w, stride), BasicBlock(w, w)))
            cin = w

    def forward(self, x):
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        x = self.layer1(x)
        feat8 = self.layer2(x)
        feat16 = self.layer3(feat8)
        feat32 = self.layer4(feat16)
        return feat8, feat16, feat32


class AttentionRefinement(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = ConvBNReLU(cin, cout, 3, 1, 1)
        self.conv_atten = nn.Conv2d(cout, cout, 1, bias=False)
        self.bn_atten = nn.BatchNorm2d(cout)

    def forward(self, x):
        feat = self.conv(x)
        atten = torch.sigmoid(self.bn_atten(self.conv_atten(feat.mean((2, 3), keepdim=True))))
        return feat * atten


class ContextPath(nn.Module):
    def __init__(self, cfg: BiSeNetConfig):
        super().__init__()
        c = cfg.context
        self.resnet = ResNet18(cfg.base)
        self.arm16 = AttentionRefinement(cfg.base * 4, c)
        self.arm32 = AttentionRefinement(cfg.base * 8, c)
        self.conv_head32 = ConvBNReLU(c, c, 3, 1, 1)
        self.conv_head16 = ConvBNReLU(c, c, 3, 1, 1)
        self.conv_avg = ConvBNReLU(cfg.base * 8, c, 1, 1, 0)

    def forward(self, x):
        feat8, feat16, feat32 = self.resnet(x)
        avg = self.conv_avg(feat32.mean((2, 3), keepdim=True))
        # the original upsamples with nearest-neighbour here (exact 2x steps at 512 input)
        f32 = self.arm32(feat32) + F.interpolate(avg, size=feat32.shape[2:], mode="nearest")
        f32_up = self.conv_head32(F.interpolate(f32, size=feat16.shape[2:], mode="nearest"))
        f16 = self.arm16(feat16) + f32_up
        f16_up = self.conv_head16(F.interpolate(f16, size=feat8.shape[2:], mode="nearest"))
        return feat8, f16_up, f32_up


class FeatureFusion(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.convblk = ConvBNReLU(cin, cout, 1, 1, 0)
        self.conv1 = nn.Conv2d(cout, cout // 4, 1, bias=False)
        self.conv2 = nn.Conv2d(cout // 4, cout, 1, bias=False)

    def forward(self, fsp, fcp):
        feat = self.convblk(torch.cat([fsp, fcp], dim=1))
        atten = torch.sigmoid(self.conv2(F.relu(self.conv1(feat.mean((2, 3), keepdim=True)))))
        return feat * atten + feat


class BiSeNetOutput(nn.Module):
    def __init__(self, cin: int, mid: int, n_classes: int):
        super().__init__()
        self.conv = ConvBNReLU(cin, mid, 3, 1, 1)
        self.conv_out = nn.Conv2d(mid, n_classes, 1, bias=False)

    def forward(self, x):
        return self.conv_out(self.conv(x))


class BiSeNet(nn.Module):
    def __init__(self, cfg: BiSeNetConfig = BiSeNetConfig()):
        super().__init__()
        self.cfg = cfg
        self.cp = ContextPath(cfg)
        self.ffm = FeatureFusion(cfg.base * 2 + cfg.context, cfg.fuse)
        self.conv_out = BiSeNetOutput(cfg.fuse, cfg.fuse, cfg.n_classes)
        self.conv_out16 = BiSeNetOutput(cfg.context, cfg.aux_mid, cfg.n_classes)
        self.conv_out32 = BiSeNetOutput(cfg.context, cfg.aux_mid, cfg.n_classes)

    def logits_lowres(self, x):
        """Fused-head logits at stride 8, before the final upsample."""
        feat8, cp8, _cp16 = self.cp(x)
        return self.conv_out(self.ffm(feat8, cp8))

    def forward(self, x, aux: bool = False):
        """Class logits at input resolution (bilinear, align_corners=True as trained).

        The auxiliary heads only mattered for training; they run when ``aux`` is set,
        to return the original's three-output tuple.
        """
        size = x.shape[2:]
        feat8, cp8, cp16 = self.cp(x)
        out = F.interpolate(self.conv_out(self.ffm(feat8, cp8)), size=size,
                            mode="bilinear", align_corners=True)
        if not aux:
            return out
        up = lambda t: F.interpolate(t, size=size, mode="bilinear", align_corners=True)  # noqa: E731
        return out, up(self.conv_out16(cp8)), up(self.conv_out32(cp16))
