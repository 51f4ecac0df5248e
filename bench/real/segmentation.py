"""Segmentation programs rebuilt from public threads: U-Nets, FCNs and SegNets that paint every pixel one class.

Each case is a user's program as the thread showed it (model, loss, optimizer, batch size, mask handling), with the
widths scaled down for the CPU and the data replaced by `shapes()` from bench.real.standins: noisy images of discs,
squares and rings whose masks hold class ids. A case transforms the masks the way the user's pipeline did (0/255
images, masks divided by 255, labels shifted) and keeps the held-out masks as the user's files had them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from itertools import pairwise

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from bench.cases.registry import Setup, case
from bench.data import Split, tensor
from bench.real.standins import loaders, shapes

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


# ---------------------------------------------------------------------------------------------------------------
# Data helpers
# ---------------------------------------------------------------------------------------------------------------


def _train_masks(d: Split, fn: Callable[[np.ndarray], np.ndarray]) -> Split:
    """The split with `fn` applied to the training masks only: a loader bug the held-out files never went through."""
    return replace(d, y_train=fn(d.y_train))


def _channel(y: np.ndarray) -> np.ndarray:
    """(N, H, W) class-id masks as float (N, 1, H, W) masks, the shape of a one-logit model's output."""
    return y[:, None].astype(np.float32)


def _imagenet_normalized(x: np.ndarray) -> np.ndarray:
    """albumentations' Normalize() with its ImageNet defaults on images already scaled to [0, 1]."""
    mean = np.array([0.485, 0.456, 0.406], dtype=np.float32)[:, None, None]
    std = np.array([0.229, 0.224, 0.225], dtype=np.float32)[:, None, None]
    return ((x - mean) / std).astype(np.float32)


def _threshold(p: float) -> Callable[[torch.Tensor], torch.Tensor]:
    """Predictions of a model that already outputs probabilities, thresholded at `p` as the user's script did."""

    def predict(out: torch.Tensor) -> torch.Tensor:
        return (out > p).long()

    return predict


def _argmax(out: torch.Tensor) -> torch.Tensor:
    """Per-pixel argmax over the class channels, also for a one-channel output (as Caffe's ArgMax layer does)."""
    return out.argmax(dim=1)


# ---------------------------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------------------------


def _double_conv(n_in: int, n_out: int, mid: int | None = None, *, bn: bool = True, bias: bool = True) -> nn.Sequential:
    """Two 3x3 'same' convolutions, each followed by (optional) BatchNorm and ReLU: the U-Net building block."""
    mid = mid or n_out
    layers: list[nn.Module] = [nn.Conv2d(n_in, mid, 3, padding=1, bias=bias)]
    layers += [nn.BatchNorm2d(mid)] if bn else []
    layers += [nn.ReLU(inplace=True), nn.Conv2d(mid, n_out, 3, padding=1, bias=bias)]
    layers += [nn.BatchNorm2d(n_out)] if bn else []
    layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class MilesialUp(nn.Module):
    """milesial/Pytorch-UNet's Up: bilinear upsampling (or a 2x2 transposed conv), concat the skip, double conv."""

    def __init__(self, n_in: int, n_out: int, *, bilinear: bool, bias: bool) -> None:
        super().__init__()
        if bilinear:
            self.up: nn.Module = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
            self.conv = _double_conv(n_in, n_out, n_in // 2, bias=bias)
        else:
            self.up = nn.ConvTranspose2d(n_in, n_in // 2, 2, stride=2)
            self.conv = _double_conv(n_in, n_out, bias=bias)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([skip, self.up(x)], dim=1))  # (B, C, H, W)


class MilesialUNet(nn.Module):
    """milesial/Pytorch-UNet's UNet: 4 downsamplings of BN double convs, 4 Up blocks, a 1x1 OutConv to the logits.

    `width` is the first level's channels (64 in the repository); `bias` is False in the 2021+ code."""

    def __init__(self, n_classes: int, *, bilinear: bool, width: int = 8, bias: bool = True) -> None:
        super().__init__()
        w, factor = width, 2 if bilinear else 1
        self.inc = _double_conv(3, w, bias=bias)
        sizes = [(w, 2 * w), (2 * w, 4 * w), (4 * w, 8 * w), (8 * w, 16 * w // factor)]
        self.downs = nn.ModuleList(nn.Sequential(nn.MaxPool2d(2), _double_conv(a, b, bias=bias)) for a, b in sizes)
        ups = [(16 * w, 8 * w // factor), (8 * w, 4 * w // factor), (4 * w, 2 * w // factor), (2 * w, w)]
        self.ups = nn.ModuleList(MilesialUp(a, b, bilinear=bilinear, bias=bias) for a, b in ups)
        self.outc = nn.Conv2d(w, n_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = [self.inc(x)]  # (B, w, H, W)
        for down in self.downs:
            skips.append(down(skips[-1]))
        x = skips.pop()  # (B, 16w / factor, H/16, W/16)
        for up in self.ups:
            x = up(x, skips.pop())
        return self.outc(x)  # (B, n_classes, H, W)


class TutorialUNet(nn.Module):
    """The Medium tutorial's U-Net for brain MRI: BN-free double convs, 3 max-pools, bilinear upsampling, 1x1 conv
    and a sigmoid in forward (the loss is BCELoss + Dice on probabilities)."""

    def __init__(self, width: int = 4) -> None:
        super().__init__()
        w = width
        self.down1, self.down2 = _double_conv(3, w, bn=False), _double_conv(w, 2 * w, bn=False)
        self.down3, self.down4 = _double_conv(2 * w, 4 * w, bn=False), _double_conv(4 * w, 8 * w, bn=False)
        self.up3, self.up2 = _double_conv(12 * w, 4 * w, bn=False), _double_conv(6 * w, 2 * w, bn=False)
        self.up1 = _double_conv(3 * w, w, bn=False)
        self.last = nn.Conv2d(w, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        def up(t: torch.Tensor) -> torch.Tensor:
            return F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=True)

        c1 = self.down1(x)  # (B, w, H, W)
        c2 = self.down2(F.max_pool2d(c1, 2))
        c3 = self.down3(F.max_pool2d(c2, 2))
        x = self.down4(F.max_pool2d(c3, 2))  # (B, 8w, H/8, W/8)
        x = self.up3(torch.cat([up(x), c3], dim=1))
        x = self.up2(torch.cat([up(x), c2], dim=1))
        x = self.up1(torch.cat([up(x), c1], dim=1))
        return torch.sigmoid(self.last(x))  # (B, 1, H, W) probabilities


def _bce_dice(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The tutorial's bce_dice_loss: BCELoss on the probabilities plus 1 - Dice (smooth 1) over the whole batch."""
    dice = (2.0 * (y * out).sum() + 1.0) / (y.sum() + out.sum() + 1.0)
    return F.binary_cross_entropy(out, y) + 1 - dice


def _cbr(n_in: int, n_out: int) -> nn.Sequential:
    """3x3 conv, BatchNorm, ReLU: the unit every UNet 3+ path is made of."""
    return nn.Sequential(nn.Conv2d(n_in, n_out, 3, padding=1), nn.BatchNorm2d(n_out), nn.ReLU(inplace=True))


class UNet3Plus(nn.Module):
    """avBuffer's UNet 3+: five encoder levels; each decoder level fuses every encoder level (max-pooled or as is) and
    every deeper decoder level (bilinearly upsampled), each through conv-BN-ReLU to `filters[0]` channels; a 3x3
    conv to one map, then F.sigmoid in forward. Kaiming-normal convs, BatchNorm weights N(1, 0.02)."""

    def __init__(self, filters: Sequence[int] = (8, 16, 32, 64, 128)) -> None:
        super().__init__()
        f = list(filters)
        pairs = zip([3, *f[:-1]], f, strict=True)
        self.encoders = nn.ModuleList(nn.Sequential(_cbr(a, b), _cbr(b, b)) for a, b in pairs)
        cat, fused = f[0], 5 * f[0]
        self.paths = nn.ModuleDict()
        self.fusions = nn.ModuleDict()
        for level in (4, 3, 2, 1):
            sources = [f[s - 1] if s <= level or s == 5 else fused for s in range(1, 6)]
            self.paths[str(level)] = nn.ModuleList(_cbr(c, cat) for c in sources)
            self.fusions[str(level)] = _cbr(fused, fused)
        self.outconv = nn.Conv2d(fused, 1, 3, padding=1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.normal_(m.weight, 1.0, 0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = []
        for i, encoder in enumerate(self.encoders):
            x = encoder(x if i == 0 else F.max_pool2d(x, 2))
            h.append(x)  # h[i]: (B, f[i], H/2^i, W/2^i)
        decoded = {5: h[4]}
        for level in (4, 3, 2, 1):
            parts = []
            for source, path in zip(range(1, 6), self.paths[str(level)], strict=True):
                if source < level:
                    t = F.max_pool2d(h[source - 1], 2 ** (level - source), ceil_mode=True)
                elif source == level:
                    t = h[level - 1]
                else:
                    t = F.interpolate(decoded[source], scale_factor=2 ** (source - level), mode="bilinear")
                parts.append(path(t))
            decoded[level] = self.fusions[str(level)](torch.cat(parts, dim=1))  # (B, 5 f[0], H_l, W_l)
        return torch.sigmoid(self.outconv(decoded[1]))  # (B, 1, H, W), already probabilities


class DefectSegmentNet(nn.Module):
    """The Kolektor surface-defect SegmentNet: three stages of 5x5 conv-BN-ReLU with max-pooling (2, 3, 4 convs), a
    squeeze-excitation gate, a 15x15 conv to `big` channels, and a 1x1 conv to one map followed by ReLU. The output
    is 1/8 of the input side. Convs N(0, 0.02), BatchNorm weights N(1, 0.02), as weights_init_normal does."""

    def __init__(self, widths: Sequence[int] = (8, 16, 16), big: int = 64) -> None:
        super().__init__()

        def stage(n_in: int, n_out: int, n: int) -> nn.Sequential:
            layers: list[nn.Module] = []
            for i in range(n):
                layers += [nn.Conv2d(n_in if i == 0 else n_out, n_out, 5, padding=2), nn.BatchNorm2d(n_out)]
                layers.append(nn.ReLU(inplace=True))
            return nn.Sequential(*layers, nn.MaxPool2d(2))

        a, b, c = widths
        self.layer1, self.layer2, self.layer3 = stage(3, a, 2), stage(a, b, 3), stage(b, c, 4)
        self.fc1, self.fc2 = nn.Conv2d(c, max(c // 16, 1), 1), nn.Conv2d(max(c // 16, 1), c, 1)
        self.layer4 = nn.Sequential(nn.Conv2d(c, big, 15, padding=7), nn.BatchNorm2d(big), nn.ReLU(inplace=True))
        self.layer5 = nn.Sequential(nn.Conv2d(big, 1, 1), nn.ReLU(inplace=True))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0.0, 0.02)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.normal_(m.weight, 1.0, 0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer3(self.layer2(self.layer1(x)))  # (B, c, H/8, W/8)
        gate = torch.sigmoid(self.fc2(F.relu(self.fc1(F.avg_pool2d(x, x.shape[-1])))))  # (B, c, 1, 1)
        return self.layer5(self.layer4(x * gate))  # (B, 1, H/8, W/8), >= 0 after the ReLU


class BNUNet(nn.Module):
    """A textbook U-Net: BN double convs, max-pooling, 2x2 transposed convs, concatenated skips, 1x1 conv to logits."""

    def __init__(self, n_classes: int, widths: Sequence[int] = (8, 16, 32, 64), n_channels: int = 3) -> None:
        super().__init__()
        w = list(widths)
        self.downs = nn.ModuleList(_double_conv(a, b) for a, b in zip([n_channels, *w[:-1]], w, strict=True))
        pairs = list(pairwise(w))[::-1]
        self.ups = nn.ModuleList(nn.ConvTranspose2d(b, a, 2, stride=2) for a, b in pairs)
        self.convs = nn.ModuleList(_double_conv(2 * a, a) for a, _ in pairs)
        self.out = nn.Conv2d(w[0], n_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, down in enumerate(self.downs):
            x = down(x)
            if i < len(self.downs) - 1:
                skips.append(x)
                x = F.max_pool2d(x, 2)
        for up, conv in zip(self.ups, self.convs, strict=True):
            x = conv(torch.cat([up(x), skips.pop()], dim=1))  # (B, w_l, H_l, W_l)
        return self.out(x)  # (B, n_classes, H, W)


class MMSegUNetFCN(nn.Module):
    """mmsegmentation's fcn_unet_s5-d16 EncoderDecoder: a five-stage UNet backbone and an FCNHead (3x3 conv-BN-ReLU,
    dropout 0.1, 1x1 conv_seg to the class logits); the auxiliary head is left out."""

    def __init__(self, n_classes: int, widths: Sequence[int] = (4, 8, 16, 32, 64)) -> None:
        super().__init__()
        self.backbone = BNUNet(widths[0], widths)
        self.backbone.out = nn.Identity()  # the backbone returns its last decoder features
        c = widths[0]
        self.decode_head = nn.Sequential(
            nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU(inplace=True), nn.Dropout2d(0.1)
        )
        self.conv_seg = nn.Conv2d(c, n_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_seg(self.decode_head(self.backbone(x)))  # (B, n_classes, H, W)


def _variance_scaling(model: nn.Module) -> nn.Module:
    """tf.contrib.layers.variance_scaling_initializer() (factor 2, fan-in, truncated normal) and zero biases."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            fan_in = m.weight[0].numel() if isinstance(m, nn.Conv2d) else m.weight[:, 0].numel()
            std = float(np.sqrt(1.3 * 2.0 / fan_in))
            nn.init.trunc_normal_(m.weight, std=std, a=-2 * std, b=2 * std)
            nn.init.zeros_(m.bias)
    return model


class FCDenseNet(nn.Module):
    """HasnainRaz's FC-DenseNet (Tiramisu) in TensorFlow, translated: a 3x3 first conv, dense blocks of
    BN-ReLU-conv3x3-dropout(0.2) layers that each add `growth` maps, transition down (BN-ReLU-1x1 conv-dropout-pool),
    transition up (3x3 stride-2 transposed conv) with the encoder concatenations, and a 1x1 conv to the logits."""

    def __init__(self, n_classes: int = 2, first: int = 12, growth: int = 4, blocks: Sequence[int] = (2, 3, 3)) -> None:
        super().__init__()

        def layer(c: int) -> nn.Sequential:
            return nn.Sequential(
                nn.BatchNorm2d(c, eps=1e-3), nn.ReLU(inplace=True), nn.Conv2d(c, growth, 3, padding=1), nn.Dropout(0.2)
            )

        self.first = nn.Conv2d(3, first, 3, padding=1)
        c, skips = first, []
        self.down_blocks, self.transitions_down = nn.ModuleList(), nn.ModuleList()
        for i, n in enumerate(blocks):
            self.down_blocks.append(nn.ModuleList(layer(c + j * growth) for j in range(n)))
            if i < len(blocks) - 1:
                c += n * growth
                skips.append(c)
                self.transitions_down.append(
                    nn.Sequential(
                        nn.BatchNorm2d(c, eps=1e-3), nn.ReLU(inplace=True), nn.Conv2d(c, c, 1), nn.Dropout(0.2),
                        nn.MaxPool2d(2),
                    )
                )  # fmt: skip
        c = blocks[-1] * growth
        self.transitions_up, self.up_blocks = nn.ModuleList(), nn.ModuleList()
        for i in reversed(range(len(blocks) - 1)):
            self.transitions_up.append(nn.ConvTranspose2d(c, c, 3, stride=2, padding=1, output_padding=1))
            self.up_blocks.append(nn.ModuleList(layer(c + skips[i] + j * growth) for j in range(blocks[i])))
            c = blocks[i] * growth
        self.last = nn.Conv2d(c, n_classes, 1)
        _variance_scaling(self)

    @staticmethod
    def _dense(layers: nn.ModuleList, x: torch.Tensor) -> torch.Tensor:
        """Each layer sees all maps so far; the block returns only the maps its layers added."""
        new = []
        for layer in layers:
            y = layer(x)
            x = torch.cat([y, x], dim=1)
            new.append(y)
        return torch.cat(new, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.first(x)
        skips = []
        dense = x
        for i, layers in enumerate(self.down_blocks):
            dense = self._dense(layers, x)
            if i < len(self.transitions_down):
                x = torch.cat([x, dense], dim=1)
                skips.append(x)
                x = self.transitions_down[i](x)
        x = dense  # the bottleneck block's new maps
        for up, layers in zip(self.transitions_up, self.up_blocks, strict=True):
            x = self._dense(layers, torch.cat([up(x), skips.pop()], dim=1))
        return self.last(x)  # (B, n_classes, H, W)


class SegNetBasic(nn.Module):
    """SegNet-Basic from the SegNet tutorial's Caffe prototxt: LRN on the input, four encoders (7x7 conv, BN, ReLU,
    2x2 max-pool keeping the indices), four decoders (unpool with those indices, 7x7 conv, BN, no ReLU) and a 1x1
    classifier; MSRA-initialised convs, BN shift 0.001."""

    def __init__(self, n_classes: int, width: int = 8) -> None:
        super().__init__()
        w = width
        self.norm = nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75)
        self.encoders = nn.ModuleList(
            nn.Sequential(nn.Conv2d(3 if i == 0 else w, w, 7, padding=3), nn.BatchNorm2d(w)) for i in range(4)
        )
        self.decoders = nn.ModuleList(nn.Sequential(nn.Conv2d(w, w, 7, padding=3), nn.BatchNorm2d(w)) for _ in range(4))
        self.classifier = nn.Conv2d(w, n_classes, 1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.constant_(m.bias, 0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(x)
        indices = []
        for encoder in self.encoders:
            x, idx = F.max_pool2d(F.relu(encoder(x)), 2, 2, return_indices=True)
            indices.append(idx)  # x: (B, w, H/2^k, W/2^k)
        for decoder in self.decoders:
            x = decoder(F.max_unpool2d(x, indices.pop(), 2, 2))
        return self.classifier(x)  # (B, n_classes, H, W)


class SegNetVGG(nn.Module):
    """say4n/pytorch-segnet's SegNet: a VGG16 encoder of conv+BN blocks (2, 2, 3, 3, 3) with ReLU and indexed
    max-pooling, a mirrored decoder of unpool + conv+BN + ReLU, a last conv to the classes; forward returns the
    logits and F.softmax of them."""

    def __init__(self, n_classes: int, widths: Sequence[int] = (4, 8, 16, 32, 32)) -> None:
        super().__init__()
        reps = (2, 2, 3, 3, 3)
        self.encoder = nn.ModuleList()
        n_in = 3
        for w, r in zip(widths, reps, strict=True):
            self.encoder.append(
                nn.ModuleList(nn.Sequential(nn.Conv2d(n_in if j == 0 else w, w, 3, padding=1), nn.BatchNorm2d(w))
                              for j in range(r))
            )  # fmt: skip
            n_in = w
        self.decoder = nn.ModuleList()
        rev = list(widths)[::-1]
        for i, (w, r) in enumerate(zip(rev, reps[::-1], strict=True)):
            last_stage = i == len(rev) - 1
            convs: list[nn.Module] = []
            for j in range(r):
                if j < r - 1:
                    convs.append(nn.Sequential(nn.Conv2d(w, w, 3, padding=1), nn.BatchNorm2d(w)))
                elif last_stage:
                    convs.append(nn.Conv2d(w, n_classes, 3, padding=1))  # decoder_convtr_00: the logits
                else:
                    convs.append(nn.Sequential(nn.Conv2d(w, rev[i + 1], 3, padding=1), nn.BatchNorm2d(rev[i + 1])))
            self.decoder.append(nn.ModuleList(convs))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        indices, sizes = [], []
        for stage in self.encoder:
            for conv in stage:
                x = F.relu(conv(x))
            sizes.append(x.size())
            x, idx = F.max_pool2d(x, 2, 2, return_indices=True)
            indices.append(idx)
        for s, stage in enumerate(self.decoder):
            x = F.max_unpool2d(x, indices.pop(), 2, 2, output_size=sizes.pop())
            for j, conv in enumerate(stage):
                x = conv(x)
                if s < len(self.decoder) - 1 or j < len(stage) - 1:
                    x = F.relu(x)
        return x, F.softmax(x, dim=1)  # (B, n_classes, H, W) twice: logits, probabilities


# ---------------------------------------------------------------------------------------------------------------
# Datasets
# ---------------------------------------------------------------------------------------------------------------


class CropFlipDataset(Dataset):
    """Random 32x32 crops of 64x64 images with random horizontal and vertical flips. With `shared=False` the image and
    the mask each draw their own crop offset and flips: the spatial transform called once for each of them."""

    def __init__(self, x: np.ndarray, y: np.ndarray, *, shared: bool, crop: int = 32) -> None:
        self.x, self.y, self.shared, self.crop = tensor(x), tensor(y), shared, crop

    def __len__(self) -> int:
        return len(self.x)

    def _draw(self) -> tuple[list[int], list[float]]:
        offsets = torch.randint(0, self.x.shape[-1] - self.crop + 1, (2,)).tolist()
        return offsets, torch.rand(2).tolist()

    def _apply(self, t: torch.Tensor, params: tuple[list[int], list[float]]) -> torch.Tensor:
        (dy, dx), (p_h, p_v) = params
        t = t[..., dy : dy + self.crop, dx : dx + self.crop]
        t = t.flip(-1) if p_h < 0.5 else t
        return t.flip(-2) if p_v < 0.5 else t

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        params = self._draw()
        image = self._apply(self.x[i], params)  # (3, crop, crop)
        mask = self._apply(self.y[i], params if self.shared else self._draw())  # (crop, crop)
        return image, mask


# ---------------------------------------------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------------------------------------------


def _milesial_ce_dice(n_classes: int) -> Loss:
    """milesial's 2022 training loss: CrossEntropyLoss plus the multiclass Dice loss on softmax vs one-hot masks."""
    ce = nn.CrossEntropyLoss()

    def loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        cross_entropy = ce(out, y)
        probs = F.softmax(out, dim=1)  # (B, C, H, W)
        onehot = F.one_hot(y, n_classes).permute(0, 3, 1, 2).float()  # (B, C, H, W)
        inter = (probs * onehot).sum(dim=(0, 2, 3))
        sums = probs.sum(dim=(0, 2, 3)) + onehot.sum(dim=(0, 2, 3))
        return cross_entropy + 1 - ((2 * inter + 1e-6) / (sums + 1e-6)).mean()

    return loss


@case("loss.task_mismatch", steps=150, source="https://github.com/milesial/Pytorch-UNet/issues/341")
def seg_unet_mask_255_cross_entropy() -> Setup:
    """milesial's U-Net (2 classes, transposed convs) on the user's own binary masks, saved as 0/255 PNGs: the loader
    passes masks on untouched, so CrossEntropyLoss gets class 255 ("Target 255 is out of bounds"); the fix is class
    ids 0/1. Widths 64..1024 divided by 8, RMSprop lr=1e-5 as in the repo; 32x32 shapes for the user's images."""
    d = shapes(classes=2).map_y(lambda y: y * 255)
    model = MilesialUNet(2, bilinear=False, bias=False)
    optimizer = torch.optim.RMSprop(model.parameters(), lr=1e-5, weight_decay=1e-8, momentum=0.9)
    train, held = loaders(d, batch_size=1)
    return Setup(model, train, _milesial_ce_dice(2), optimizer, held, task="segmentation")


@case("data.class_imbalance", steps=200, source="https://github.com/milesial/Pytorch-UNet/issues/228")
def seg_unet_class_ids_divided_by_255() -> Setup:
    """Multi-class masks of class ids (KITTI, values 0..18) through milesial's 2020 BasicDataset, which divides any
    array whose max exceeds 1 by 255, then casts to long: every target pixel becomes class 0 and the U-Net predicts 0
    everywhere. Widths divided by 8; 4-class shapes for KITTI; RMSprop lr=1e-4, batch 1 as in the repo."""
    d = _train_masks(shapes(classes=4), lambda y: (y / 255).astype(np.int64))
    model = MilesialUNet(4, bilinear=True)
    optimizer = torch.optim.RMSprop(model.parameters(), lr=1e-4, weight_decay=1e-8, momentum=0.9)
    train, held = loaders(d, batch_size=1)
    return Setup(model, train, nn.CrossEntropyLoss(), optimizer, held, task="segmentation")


@case(split="dev", steps=150, source="https://github.com/FrancoisPorcher/awesome-ai-tutorials/issues/3")
def seg_fixed_unet_sigmoid_bce_dice_masks_scaled() -> Setup:
    """The brain-MRI tutorial U-Net (sigmoid in forward, BCELoss + Dice, Adamax lr=1e-3, batch 32) with the thread's
    fix: the 0/255 masks divided by 255 after augmentation, images normalized. Learns. Widths 64..512 divided by 16,
    128x128 MRI patches replaced by 32x32 shapes; augmentation left out."""
    d = shapes(classes=2).map_x(_imagenet_normalized).map_y(lambda y: _channel(y * 255) / 255)
    model = TutorialUNet()
    optimizer = torch.optim.Adamax(model.parameters(), lr=1e-3)
    train, held = loaders(d, batch_size=32)
    return Setup(model, train, _bce_dice, optimizer, held, task="segmentation", predict=_threshold(0.5))


@case("loss.task_mismatch", steps=100, source="https://github.com/FrancoisPorcher/awesome-ai-tutorials/issues/3")
def seg_unet_bce_dice_mask_255() -> Setup:
    """The same tutorial U-Net as the user first ran it: masks read with cv2 as 0/255 and fed to BCELoss + Dice, which
    stops with "all elements of target should be between 0 and 1"; the reply: targets must be 0/1, divide by 255.
    Widths divided by 16, 32x32 shapes for the MRI patches."""
    d = shapes(classes=2).map_x(_imagenet_normalized).map_y(lambda y: _channel(y * 255))
    model = TutorialUNet()
    optimizer = torch.optim.Adamax(model.parameters(), lr=1e-3)
    train, held = loaders(d, batch_size=32)
    return Setup(model, train, _bce_dice, optimizer, held, task="segmentation", predict=_threshold(0.5))


@case("arch.output_activation", steps=80, source="https://github.com/avBuffer/UNet3plus_pth/issues/23")
def seg_unet3plus_sigmoid_then_bce_with_logits() -> Setup:
    """UNet 3+ returns F.sigmoid(d1) while train.py uses BCEWithLogitsLoss, so the loss sees 'logits' in [0, 1] and
    sticks at ln 2; predict.py's sigmoid > 0.5 then marks (almost) every pixel. The fix: return d1. Filters 64..1024
    divided by 8, RMSprop lr=0.1 and batch 2 (the repo's defaults), portrait masks replaced by 32x32 shapes."""
    d = shapes(classes=2).map_y(_channel)
    model = UNet3Plus()
    optimizer = torch.optim.RMSprop(model.parameters(), lr=0.1, weight_decay=1e-8)
    train, held = loaders(d, batch_size=2)
    return Setup(model, train, nn.BCEWithLogitsLoss(), optimizer, held, task="segmentation")


@case("arch.output_activation", split="dev", steps=150,
      source="https://github.com/mengcius/Surface-Defect-Detection/issues/3")  # fmt: skip
def seg_defect_net_relu_before_bce_with_logits() -> Setup:
    """The Kolektor defect SegmentNet ends in Conv2d(1024, 1, 1) + ReLU; trained with BCEWithLogitsLoss it does not
    converge (the repo switched to MSELoss): the ReLU clips every background logit to 0, the gradient there is 0, and
    the map goes flat. Adam lr=1e-3, betas (0.5, 0.999), batch 2 as in train_segment.py; widths divided by 4 (the
    1024-channel layer by 16); 64x64 shapes with small defects, masks average-pooled to 1/8 like the repo's resize."""
    d = shapes(side=64, classes=2, radius=(0.06, 0.1))
    d = d.map_y(lambda y: F.avg_pool2d(torch.from_numpy(_channel(y)), 8).numpy())  # (N, 1, 8, 8) soft masks
    model = DefectSegmentNet()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.5, 0.999))
    train, held = loaders(d, batch_size=2)
    return Setup(model, train, nn.BCEWithLogitsLoss(), optimizer, held, task="segmentation")


@case("loss.task_mismatch", steps=150, source="https://github.com/open-mmlab/mmsegmentation/issues/1609")
def seg_mmseg_unet_mask_255_ignored() -> Setup:
    """Two-class mmsegmentation config on annotations saved as 0 (background) / 255 (target): mmseg ignores label 255,
    so CrossEntropyLoss(ignore_index=255) only ever sees background, the target IoU stays 0 and the loss cannot fall;
    the answer: label the target 1. UNet backbone widths 64..1024 divided by 16, SGD lr=0.01 momentum 0.9 wd 5e-4,
    batch 4 from the schedule; 32x32 shapes for the user's images."""
    d = shapes(classes=2).map_y(lambda y: y * 255)
    model = MMSegUNetFCN(2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    train, held = loaders(d, batch_size=4)
    return Setup(model, train, nn.CrossEntropyLoss(ignore_index=255), optimizer, held, task="segmentation")


@case(steps=150, source="https://github.com/open-mmlab/mmsegmentation/issues/1609")
def seg_fixed_mmseg_unet_mask_01() -> Setup:
    """The mmsegmentation UNet + FCNHead setup after the reply's fix: target pixels labelled 1, background 0, the loss
    still with ignore_index=255 (now matching nothing). Learns. Same scaling as the 0/255 case."""
    d = shapes(classes=2)
    model = MMSegUNetFCN(2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    train, held = loaders(d, batch_size=4)
    return Setup(model, train, nn.CrossEntropyLoss(ignore_index=255), optimizer, held, task="segmentation")


@case("data.labels_unrelated", split="dev", steps=200,
      source="https://github.com/albumentations-team/albumentations/issues/397")  # fmt: skip
def seg_unet_crop_flip_drawn_separately() -> Setup:
    """The user calls the spatial Compose (RandomCrop, flips, elastic) once on the image and once on the mask, so each
    draws its own random parameters and the masks no longer sit on the objects; the U-Net learns background. The fix
    is one call with image= and mask=. Elastic transform left out; a BN U-Net, Adam lr=1e-3, batch 8 for the user's
    unstated model; 32x32 crops of 64x64 shapes, evaluated on the full images."""
    d = shapes(classes=2, side=64)
    model = BNUNet(2)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    train = DataLoader(CropFlipDataset(d.x_train, d.y_train, shared=False), 8, shuffle=True, generator=generator)
    _, held = loaders(d, batch_size=8)
    return Setup(model, train, nn.CrossEntropyLoss(), optimizer, held, task="segmentation")


@case(steps=150, source="https://discuss.pytorch.org/t/choosing-weights-for-weighted-cross-entropy-loss/102240")
def seg_fixed_unet_weighted_cross_entropy() -> Setup:
    """A U-Net on masks where the background holds ~96% of the pixels and each object class ~1.5%, trained with the
    reply's remedy: CrossEntropyLoss weighted by total pixels / pixels of the class. Learns all classes. 80x80
    images with 11 classes replaced by 32x32 shapes with 3 small object classes; Adam lr=1e-3, batch 16."""
    d = shapes(classes=4, radius=(0.06, 0.12))
    counts = np.bincount(d.y_train.ravel(), minlength=4)
    weight = torch.tensor(counts.sum() / counts, dtype=torch.float32)
    model = BNUNet(4)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    train, held = loaders(d, batch_size=16)
    return Setup(model, train, nn.CrossEntropyLoss(weight=weight), optimizer, held, task="segmentation")


@case("data.class_imbalance", steps=110, source="https://github.com/HasnainRaz/FC-DenseNet-TensorFlow/issues/16")
def seg_fc_densenet_binary_mask_divided_by_255() -> Setup:
    """FC-DenseNet with the repo's data pipeline, which divides masks by 255 (written for 0/255 masks), on the user's
    0/1 masks: 1/255 casts to 0, every label is background and the IoU sits at 0.5. TF graph translated layer by
    layer (variance-scaling init, Adam lr=1e-4, batch 8, blocks 2-3-3); first conv 48 and growth 16 divided by 4;
    256x256 images replaced by 32x32 shapes."""
    d = _train_masks(shapes(classes=2), lambda y: (y / 255).astype(np.int64))
    model = FCDenseNet()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, eps=1e-8)
    train, held = loaders(d, batch_size=8)
    return Setup(model, train, nn.CrossEntropyLoss(), optimizer, held, task="segmentation")


@case("arch.softmax_single_unit", split="dev", steps=150,
      source="https://github.com/alexgkendall/caffe-segnet/issues/31")  # fmt: skip
def seg_segnet_single_class_softmax() -> Setup:
    """SegNet-Basic set up for one object class: num_output 1 in the classifier, object labelled 0, background 1 and
    ignored. Softmax over a single channel is 1 everywhere, the loss is 0 from the first step and every pixel is the
    object; the answer: two outputs, background not ignored. Caffe's SoftmaxWithLoss as CrossEntropyLoss; 64 filters
    divided by 8, SGD lr=0.1 momentum 0.9 wd 5e-4, batch 4 from the tutorial solver; 32x32 shapes."""
    d = shapes(classes=2).map_y(lambda y: 1 - y)  # object 0, background 1
    model = SegNetBasic(1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    train, held = loaders(d, batch_size=4)
    return Setup(model, train, nn.CrossEntropyLoss(ignore_index=1), optimizer, held, "segmentation", predict=_argmax)


@case(steps=110, source="https://github.com/HasnainRaz/FC-DenseNet-TensorFlow/issues/16")
def seg_fixed_fc_densenet_mask_01() -> Setup:
    """The FC-DenseNet program after the maintainer's fix: the mask normalization commented out, so the 0/1 masks
    reach the loss as they are. Learns. Same translation and scaling as the divided-by-255 case."""
    d = shapes(classes=2)
    model = FCDenseNet()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, eps=1e-8)
    train, held = loaders(d, batch_size=8)
    return Setup(model, train, nn.CrossEntropyLoss(), optimizer, held, task="segmentation")


@case("loss.double_softmax", "lr.too_low", steps=150, source="https://github.com/say4n/pytorch-segnet/issues/5")
def seg_segnet_vgg_softmax_cross_entropy() -> Setup:
    """say4n's SegNet returns (logits, softmax) and train.py passes the softmaxed tensor to a class-weighted
    CrossEntropyLoss, which applies softmax again (the maintainer confirmed it should get the logits); train.py also
    uses Adam lr=1e-6. VGG16 widths divided by 16 with random init (no pretrained VGG), batch 16, weights 1/class
    frequency; Pascal VOC replaced by 4-class 32x32 shapes."""
    d = shapes(classes=4)
    frequency = np.bincount(d.y_train.ravel(), minlength=4) / d.y_train.size
    criterion = nn.CrossEntropyLoss(weight=torch.tensor(1.0 / frequency, dtype=torch.float32))
    model = SegNetVGG(4)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-6)
    train, held = loaders(d, batch_size=16)

    def loss(out: tuple[torch.Tensor, torch.Tensor], y: torch.Tensor) -> torch.Tensor:
        _, softmaxed = out
        return criterion(softmaxed, y)

    return Setup(model, train, loss, optimizer, held, task="segmentation")
