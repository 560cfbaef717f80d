"""Self-organising map on a rows x cols grid (Kohonen's batch algorithm), in torch.

Both maps use it: Map 1 on object embeddings, Map 2 on image fingerprints. The batch
algorithm (each epoch: every sample to its best-matching node, then every node to the
neighbourhood-weighted mean of the samples) is deterministic, has no learning rate to tune,
and runs as a few matrix products per epoch, on the GPU when there is one. Initialisation on
the plane of the first two principal components and a neighbourhood radius shrinking from
half the map to ``sigma_end`` keep the 2-D topology: neighbouring nodes hold similar vectors,
which the interactive maps and ``in_node(..., radius)`` rely on. (MiniSom and friends train
sample by sample in Python, which is far slower at a million cutouts and has no GPU path.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from caomai_db.errors import SetupError


@dataclass
class SOMReport:
    epochs: int
    sigma_start: float
    sigma_end: float
    quantization_error: float
    topographic_error: float
    nodes_used: int

    def to_dict(self) -> dict:
        return self.__dict__.copy()


class SOM:
    def __init__(self, rows: int, cols: int, codebook: np.ndarray | None = None):
        self.rows, self.cols = rows, cols
        self.codebook = None if codebook is None else np.asarray(codebook, np.float32)
        r, c = np.divmod(np.arange(rows * cols), cols)
        self.grid = np.stack([r, c], axis=1).astype(np.float32)

    @property
    def n_nodes(self) -> int:
        return self.rows * self.cols

    def fit(
        self,
        data: np.ndarray,
        *,
        epochs: int = 40,
        sigma_start: float | None = None,
        sigma_end: float = 1.0,
        device: torch.device | None = None,
        seed: int = 0,
    ) -> SOMReport:
        device = device or torch.device("cpu")
        x = torch.as_tensor(np.asarray(data, np.float32), device=device)
        if self.codebook is None:
            self.codebook = pca_init(np.asarray(data, np.float32), self.rows, self.cols, seed)
        w = torch.as_tensor(self.codebook, device=device)
        g = torch.as_tensor(self.grid, device=device)
        grid_d2 = torch.cdist(g, g).pow(2)
        sigma_start = sigma_start or max(self.rows, self.cols) / 2.0
        for epoch in range(epochs):
            frac = epoch / max(1, epochs - 1)
            sigma = sigma_start * (sigma_end / sigma_start) ** frac
            bmu = _bmu(x, w)[0]
            h = torch.exp(-grid_d2 / (2 * sigma * sigma))  # (K, K)
            sums = torch.zeros_like(w).index_add_(0, bmu, x)
            counts = torch.bincount(bmu, minlength=self.n_nodes).to(x.dtype)
            num = h @ sums
            den = (h @ counts).unsqueeze(1)
            w = torch.where(den > 1e-12, num / den.clamp_min(1e-12), w)
        self.codebook = w.cpu().numpy()
        return SOMReport(
            epochs=epochs,
            sigma_start=round(float(sigma_start), 3),
            sigma_end=round(float(sigma_end), 3),
            quantization_error=round(float(self.assign(data)[1].mean()), 5),
            topographic_error=round(self.topographic_error(data), 5),
            nodes_used=int(len(np.unique(self.assign(data)[0]))),
        )

    def assign(
        self, data: np.ndarray, device: torch.device | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Best-matching node and Euclidean distance to it, per row of ``data``."""
        if self.codebook is None:
            raise SetupError("the map is not trained")
        x = torch.as_tensor(np.asarray(data, np.float32), device=device)
        w = torch.as_tensor(self.codebook, device=x.device)
        idx, dist = _bmu(x, w)
        return idx.cpu().numpy().astype(np.int64), dist.cpu().numpy().astype(np.float32)

    def topographic_error(self, data: np.ndarray) -> float:
        """Share of samples whose two best nodes are not grid neighbours (0 = perfect topology)."""
        x = torch.as_tensor(np.asarray(data, np.float32))
        w = torch.as_tensor(self.codebook)
        d = torch.cdist(x, w)
        two = torch.topk(d, 2, largest=False).indices.numpy()
        a, b = self.grid[two[:, 0]], self.grid[two[:, 1]]
        return float(np.mean(np.abs(a - b).max(axis=1) > 1))


def _bmu(x: torch.Tensor, w: torch.Tensor, chunk: int = 65536) -> tuple[torch.Tensor, torch.Tensor]:
    idx, dist = [], []
    w2 = (w * w).sum(1)
    for start in range(0, len(x), chunk):
        xc = x[start : start + chunk]
        d2 = (xc * xc).sum(1, keepdim=True) - 2 * xc @ w.t() + w2
        m, i = d2.min(dim=1)
        idx.append(i)
        dist.append(m.clamp_min(0).sqrt())
    if not idx:
        return torch.zeros(0, dtype=torch.long), torch.zeros(0)
    return torch.cat(idx), torch.cat(dist)


def pca_init(data: np.ndarray, rows: int, cols: int, seed: int = 0) -> np.ndarray:
    """Codebook spread over the plane of the first two principal components (+-2 sigma)."""
    mean = data.mean(axis=0)
    centred = data - mean
    if len(data) >= 2:
        _, s, vt = np.linalg.svd(centred[: min(len(data), 20000)], full_matrices=False)
        std = s[:2] / np.sqrt(max(1, min(len(data), 20000) - 1))
        pcs = vt[:2]
        if len(std) < 2:
            std = np.pad(std, (0, 2 - len(std)))
            pcs = np.vstack([pcs, np.zeros((2 - len(pcs), data.shape[1]))])
    else:
        rng = np.random.default_rng(seed)
        pcs, std = rng.normal(size=(2, data.shape[1])), np.ones(2)
    u = np.linspace(-2, 2, rows)[:, None, None] * std[0] * pcs[0][None, None, :]
    v = np.linspace(-2, 2, cols)[None, :, None] * std[1] * pcs[1][None, None, :]
    return (mean[None, None, :] + u + v).reshape(rows * cols, -1).astype(np.float32)
