"""The self-supervised object encoder of Map 1 (PyTorch).

A small CNN turns a 32x32 normalised cutout (``cutouts.py``) into a ``dim``-vector. It is
trained SimCLR-style: two random *views* of the same cutout must land near each other and far
from the other cutouts of the batch (NT-Xent loss). The views are physically motivated:

- any rotation angle and flips: the tracking direction, the position angle of a galaxy or a
  trail, and the detector orientation carry no meaning for "what kind of object" it is;
- shifts of up to 2 pixels: centroids of faint or blended objects are uncertain;
- scale changes of at most +-10%: enough for the pixel grid to stop mattering, small enough
  that a 1" and a 1.6" star (good vs bad seeing) stay different;
- extra noise: the same object at a slightly lower signal-to-noise is the same kind of object.

The embedding is L2-normalised (Map 1 is fitted on the unit sphere). At encode time the
embedding is averaged over the four 90-degree rotations (exact invariance to them, on top of
the learned invariance to any angle); ``tta`` in the config turns that off.

The GPU path runs the same code on CUDA with pinned host memory, non-blocking copies and
mixed precision (bfloat16 autocast); on the CPU it is plain float32.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class EncoderConfig:
    dim: int = 64
    width: int = 16
    size: int = 32
    #: average the embedding over the four 90-degree rotations at encode time
    tta: bool = True

    def to_dict(self) -> dict:
        return asdict(self)


class Encoder(nn.Module):
    """Small CNN: a strided 4x4 conv, two conv + max-pool stages, a dense embedding.

    Sized for the CPU: no batch normalisation (it doubled the training step time on 2 cores
    for no gain at this depth) and a stride-2 first layer (every pixel is still seen by the
    overlapping 4x4 kernels, so a one-pixel cosmic ray is not lost). About 0.16 M parameters.
    """

    def __init__(self, config: EncoderConfig):
        super().__init__()
        w = config.width
        self.config = config
        self.trunk = nn.Sequential(
            nn.Conv2d(1, w, 4, stride=2, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(w, 2 * w, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(2 * w, 4 * w, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        )
        side = config.size // 8
        self.embed = nn.Sequential(
            nn.Flatten(), nn.Linear(4 * w * side * side, 128), nn.ReLU(inplace=True)
        )
        self.out = nn.Linear(128, config.dim)
        self.head = nn.Sequential(
            nn.Linear(config.dim, 128), nn.ReLU(inplace=True), nn.Linear(128, 64)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Un-normalised embedding of a (N, 1, size, size) batch."""
        return self.out(self.embed(self.trunk(x)))

    def infer(self, x: torch.Tensor) -> torch.Tensor:
        """``forward``'s very numbers (no gradient), computed faster on the CPU: every ReLU
        that a 2x2 max-pool follows runs after the pool, on a quarter of the values, and the
        pool is the maximum of four strided views. Both are exact (max and ReLU commute,
        and a maximum is the same number however it is taken), and the convolutions and
        linear layers are the module's own, so the bits do not change; torch's
        ``max_pool2d`` in NCHW took a third of the encoding time on 2 cores."""
        layers = list(self.trunk)
        i = 0
        while i < len(layers):
            layer = layers[i]
            nxt = layers[i + 1] if i + 1 < len(layers) else None
            if isinstance(layer, nn.ReLU) and _is_pool2(nxt):
                x = torch.relu_(_max_pool2(x))
                i += 2
                continue
            x = _max_pool2(x) if _is_pool2(layer) else layer(x)
            i += 1
        return self.out(self.embed(x))


def _is_pool2(layer: nn.Module | None) -> bool:
    """A plain 2x2, stride-2 max-pool (what ``_max_pool2`` computes)."""
    return (
        isinstance(layer, nn.MaxPool2d)
        and layer.kernel_size in (2, (2, 2))
        and layer.stride in (2, (2, 2))
        and layer.padding in (0, (0, 0))
        and layer.dilation in (1, (1, 1))
        and not layer.ceil_mode
    )


def _max_pool2(x: torch.Tensor) -> torch.Tensor:
    """``max_pool2d(x, 2)`` on an even-sized (N, C, H, W) map as the maximum of its four
    strided views (odd edges dropped, as the pool does)."""
    h, w = x.shape[-2] // 2 * 2, x.shape[-1] // 2 * 2
    x = x[..., :h, :w]
    return torch.maximum(
        torch.maximum(x[..., 0::2, 0::2], x[..., 0::2, 1::2]),
        torch.maximum(x[..., 1::2, 0::2], x[..., 1::2, 1::2]),
    )


# -- augmentations ---------------------------------------------------------------------------


def augment(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One random view of each cutout in a (N, 1, S, S) batch (see the module docstring)."""
    n, _, s, _ = x.shape
    dev = x.device

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator, device="cpu").to(dev)

    angle = rand(n) * 2 * math.pi
    scale = 0.9 + 0.2 * rand(n)
    flip = torch.where(rand(n) < 0.5, -1.0, 1.0).to(dev)
    shift = (rand(n, 2) * 2 - 1) * (2.0 / (s / 2))  # +-2 pixels in normalised coordinates
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [
            torch.stack([cos * flip, -sin, shift[:, 0]], dim=1),
            torch.stack([sin * flip, cos, shift[:, 1]], dim=1),
        ],
        dim=1,
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    noise = rand(n, 1, 1, 1) * 0.05
    gauss = torch.randn(x.shape, generator=generator, device="cpu").to(dev)
    return out + noise * gauss


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.2) -> torch.Tensor:
    """SimCLR's normalised-temperature cross entropy over the 2N views of a batch."""
    z = F.normalize(torch.cat([z1, z2]), dim=1).float()
    sim = z @ z.t() / temperature
    n = z1.shape[0]
    sim.fill_diagonal_(-1e9)
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(sim, target)


# -- training and encoding --------------------------------------------------------------------


@dataclass
class TrainReport:
    epochs: int
    steps: int
    pairs: int
    seconds: float
    loss_first: float
    loss_last: float
    pairs_per_s: float

    def to_dict(self) -> dict:
        return asdict(self)


def train_encoder(
    cutouts: np.ndarray,
    *,
    config: EncoderConfig | None = None,
    epochs: int = 10,
    batch_size: int = 256,
    lr: float = 2e-3,
    device: torch.device | None = None,
    seed: int = 0,
    progress: Callable[[int, int, float], None] | None = None,
) -> tuple[Encoder, TrainReport]:
    """Train an encoder on (N, S, S) cutouts; ``progress(step, steps, loss)`` after each step."""
    config = config or EncoderConfig(size=cutouts.shape[-1])
    device = device or torch.device("cpu")
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = Encoder(config).to(device)
    n = len(cutouts)
    batch_size = max(2, min(batch_size, n))
    steps_per_epoch = max(1, n // batch_size)
    steps = steps_per_epoch * epochs
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    warmup = max(1, steps // 10)

    def schedule(step: int) -> float:
        """Linear warm-up over the first 10% of the steps, then a cosine decay to 0."""
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
    data = torch.from_numpy(np.ascontiguousarray(cutouts, dtype=np.float32)).unsqueeze(1)
    if device.type == "cuda":
        data = data.pin_memory()
    use_amp = device.type == "cuda"
    losses: list[float] = []
    t0 = time.perf_counter()
    step = 0
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(n, generator=gen)
        for b in range(steps_per_epoch):
            idx = perm[b * batch_size : (b + 1) * batch_size]
            x = data[idx].to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                v1, v2 = augment(x, gen), augment(x, gen)
                z1 = model.head(model(v1))
                z2 = model.head(model(v2))
            loss = nt_xent(z1, z2)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
            step += 1
            if progress:
                progress(step, steps, losses[-1])
    seconds = time.perf_counter() - t0
    model.eval()
    k = max(1, min(len(losses) // 10, 20))
    report = TrainReport(
        epochs=epochs,
        steps=steps,
        pairs=steps * batch_size,
        seconds=round(seconds, 2),
        loss_first=round(float(np.mean(losses[:k])), 4),
        loss_last=round(float(np.mean(losses[-k:])), 4),
        pairs_per_s=round(steps * batch_size / max(seconds, 1e-9), 1),
    )
    return model, report


#: rows of one encoding batch on the CPU. Batches have a fixed size (see ``encode``); 64 pads a
#: plane of a few hundred objects by at most 63 rows (512 padded the demo's 230-object planes
#: 2.2x), and above 16 rows the CPU kernels give each row the same bits whatever the batch
#: size, so 64 and 512 give the same embeddings (tests/test_encoder_speed.py).
CPU_BATCH = 64
#: rows of one encoding batch on CUDA (where big batches are what makes it fast)
CUDA_BATCH = 512


@torch.inference_mode()
def encode(
    model: Encoder,
    cutouts: np.ndarray,
    *,
    device: torch.device | None = None,
    batch_size: int | None = None,
) -> np.ndarray:
    """Unit-length embeddings (N, dim) float32 of normalised cutouts.

    Batches have a fixed size (the last one is padded) so an object's embedding does not
    depend on which other objects share its batch: re-loading a plane gives the same bits.
    The size is ``CPU_BATCH`` or ``CUDA_BATCH`` unless given.
    """
    device = device or next(model.parameters()).device
    model.eval()
    if batch_size is None:
        batch_size = CUDA_BATCH if device.type == "cuda" else CPU_BATCH
    n = len(cutouts)
    out = np.zeros((n, model.config.dim), np.float32)
    if n == 0:
        return out
    use_amp = device.type == "cuda"
    # the exact fast path (``Encoder.infer``) where torch's own pool is the slow part
    net = model if device.type == "cuda" else model.infer
    host = torch.from_numpy(np.ascontiguousarray(cutouts, dtype=np.float32)).unsqueeze(1)
    for start in range(0, n, batch_size):
        chunk = host[start : start + batch_size]
        m = len(chunk)
        if m < batch_size:
            chunk = torch.cat([chunk, chunk.new_zeros((batch_size - m, *chunk.shape[1:]))])
        if device.type == "cuda":
            chunk = chunk.pin_memory()
        x = chunk.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
            if model.config.tta:
                z = sum(
                    F.normalize(net(torch.rot90(x, k, dims=(2, 3))).float(), dim=1)
                    for k in range(4)
                )
            else:
                z = net(x).float()
        z = F.normalize(z.float(), dim=1)
        out[start : start + m] = z[:m].cpu().numpy()
    return out


def state(model: Encoder) -> dict:
    """What a model file keeps of an encoder."""
    return {"config": model.config.to_dict(), "weights": model.state_dict()}


def from_state(saved: dict, device: torch.device | None = None) -> Encoder:
    model = Encoder(EncoderConfig(**saved["config"]))
    model.load_state_dict(saved["weights"])
    model.eval()
    return model.to(device or torch.device("cpu"))
