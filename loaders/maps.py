"""The two trained maps as the loader uses them, and the model-file payloads they live in.

``Map1``: encoder + 20x20 SOM on the embeddings + the settings that must not change between
training and loading (detection, cutout normalisation, fingerprint transform).
``Map2``: a 20x20 SOM on fingerprints.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from . import cutouts, encoder
from .detect import DetectParams
from .fingerprint import DEFAULT_TRANSFORM
from .som import SOM

FORMAT = 1


@dataclass
class Map1:
    encoder: encoder.Encoder
    som: SOM
    detect: DetectParams
    transform: str = DEFAULT_TRANSFORM
    background: str = cutouts.DEFAULT_BACKGROUND
    device: torch.device = torch.device("cpu")

    def assign(self, boxes: np.ndarray, batch_size: int = 512) -> tuple[np.ndarray, np.ndarray]:
        """Map-1 node and distance of each normalised cutout."""
        z = encoder.encode(self.encoder, boxes, device=self.device, batch_size=batch_size)
        return self.som.assign(z)

    def to(self, device: torch.device) -> Map1:
        self.encoder = self.encoder.to(device)
        self.device = device
        return self

    def payload(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "kind": "map1",
            "encoder": encoder.state(self.encoder),
            "som": {
                "rows": self.som.rows,
                "cols": self.som.cols,
                "codebook": torch.from_numpy(self.som.codebook),
            },
            "detect": asdict(self.detect),
            "cutout": {
                "size": cutouts.SIZE,
                "softening": cutouts.SOFTENING,
                "floor": cutouts.FLOOR,
                "background": self.background,
            },
            "fingerprint": {"transform": self.transform},
        }

    @classmethod
    def from_payload(cls, payload: dict[str, Any], device: torch.device | None = None) -> Map1:
        if payload.get("kind") != "map1":
            raise ValueError("not a map1 model file")
        cut = payload.get("cutout", {})
        if (cut.get("size"), cut.get("softening"), cut.get("floor")) != (
            cutouts.SIZE,
            cutouts.SOFTENING,
            cutouts.FLOOR,
        ):
            raise ValueError(
                f"the model was trained on cutouts normalised as {cut}, this caomai makes "
                f"size={cutouts.SIZE} softening={cutouts.SOFTENING} floor={cutouts.FLOOR}"
            )
        device = device or torch.device("cpu")
        som = payload["som"]
        return cls(
            encoder=encoder.from_state(payload["encoder"], device),
            som=SOM(int(som["rows"]), int(som["cols"]), som["codebook"].numpy()),
            detect=DetectParams(**payload["detect"]),
            transform=payload["fingerprint"]["transform"],
            background=cut.get("background", "local"),
            device=device,
        )


@dataclass
class Map2:
    som: SOM

    def assign(self, fps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.som.assign(np.asarray(fps, np.float32))

    def payload(self, parent_name: str, parent_checksum: str | None) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "kind": "map2",
            "som": {
                "rows": self.som.rows,
                "cols": self.som.cols,
                "codebook": torch.from_numpy(self.som.codebook),
            },
            "parent": {"name": parent_name, "checksum": parent_checksum or ""},
        }

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> Map2:
        if payload.get("kind") != "map2":
            raise ValueError("not a map2 model file")
        som = payload["som"]
        return cls(SOM(int(som["rows"]), int(som["cols"]), som["codebook"].numpy()))
