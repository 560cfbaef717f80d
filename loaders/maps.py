"""The two trained maps as the loader uses them, and the model-file payloads they live in.

``Map1``: encoder + 20x20 SOM on the embeddings + the settings that must not change between
training and loading (detection, cutout normalisation, fingerprint transform, the usual sky
of each band for the image vector).
``Map2``: a 20x20 SOM on fingerprints.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from caomai_db.errors import UsageError

from . import cutouts, encoder, shape
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
    #: measured shape features beside the embedding (``shape.py``): weight 0 = embedding only
    shape_weight: float = 0.0
    shape_center: np.ndarray | None = None
    shape_scale: np.ndarray | None = None
    #: per-feature factors (``shape.emphasis()`` when trained); None in files from before them
    shape_emphasis: np.ndarray | None = None
    #: the features it was trained on, in order (a Map 1 from before a feature existed keeps
    #: its own list: ``shape.select``)
    shape_names: tuple[str, ...] = shape.NAMES
    #: the usual log10 sky rate (e-/s/px) of each "INSTRUME FILTER" over the training planes
    #: (``image_vector.sky_rate_reference``); empty in files from before it
    sky_rate: dict[str, float] = field(default_factory=dict)

    def sky_reference(self, band: str | None) -> float | None:
        """The usual log sky rate of a plane's band, None where this Map 1 has none."""
        return self.sky_rate.get(band) if band else None

    def inputs(self, embedding: np.ndarray, raw_shape: np.ndarray | None) -> np.ndarray:
        """What the SOM sees for these objects: the embedding, plus the shape features."""
        if self.shape_weight == 0:
            return embedding
        if raw_shape is None or self.shape_center is None or self.shape_scale is None:
            raise UsageError("this Map 1 uses shape features: give the objects' measured columns")
        return shape.combine(
            embedding,
            shape.select(raw_shape, self.shape_names),
            self.shape_center,
            self.shape_scale,
            self.shape_weight,
            self.shape_emphasis,
        )

    def assign(
        self,
        boxes: np.ndarray,
        columns: dict[str, np.ndarray] | None = None,
        batch_size: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Map-1 node and distance of each normalised cutout of one file.

        ``columns`` (the same objects' sep and moments columns, ``objects.COLUMNS``) are needed
        when the model uses shape features; they must be the whole file's sample (``shape.py``).
        """
        z = encoder.encode(self.encoder, boxes, device=self.device, batch_size=batch_size)
        raw = shape.raw_features(columns) if columns is not None and self.shape_weight else None
        return self.som.assign(self.inputs(z, raw))

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
            "shape": {
                "names": list(self.shape_names),
                "weight": self.shape_weight,
                "center": None if self.shape_center is None else self.shape_center.tolist(),
                "scale": None if self.shape_scale is None else self.shape_scale.tolist(),
                "emphasis": None if self.shape_emphasis is None else self.shape_emphasis.tolist(),
            },
            "image": {"sky_rate": dict(self.sky_rate)},
        }

    @classmethod
    def from_payload(cls, payload: dict[str, Any], device: torch.device | None = None) -> Map1:
        if payload.get("kind") != "map1":
            raise UsageError("not a map1 model file")
        cut = payload.get("cutout", {})
        if (cut.get("size"), cut.get("softening"), cut.get("floor")) != (
            cutouts.SIZE,
            cutouts.SOFTENING,
            cutouts.FLOOR,
        ):
            raise UsageError(
                f"the model was trained on cutouts normalised as {cut}, this caomai makes "
                f"size={cutouts.SIZE} softening={cutouts.SOFTENING} floor={cutouts.FLOOR}"
            )
        device = device or torch.device("cpu")
        som = payload["som"]
        feats = payload.get("shape") or {"weight": 0.0}  # files from before shape features
        names = tuple(feats.get("names") or shape.NAMES)
        if feats["weight"] and not set(names) <= set(shape.NAMES):
            raise UsageError(
                f"the model was trained on shape features {list(names)}, this caomai "
                f"computes {list(shape.NAMES)}"
            )
        # files from before the binned trail pass, the line search, its baseline, its spread
        # and its saturated-run test were trained without them
        detect = {
            "segments": False,
            "lines": False,
            "line_baseline": False,
            "line_spread_ref": 0.0,
            "line_saturated_run": False,
            **payload["detect"],
        }
        return cls(
            encoder=encoder.from_state(payload["encoder"], device),
            som=SOM(int(som["rows"]), int(som["cols"]), som["codebook"].numpy()),
            detect=DetectParams(**detect),
            transform=payload["fingerprint"]["transform"],
            background=cut.get("background", "local"),
            device=device,
            shape_weight=float(feats["weight"]),
            shape_center=None if feats.get("center") is None else np.array(feats["center"]),
            shape_scale=None if feats.get("scale") is None else np.array(feats["scale"]),
            shape_emphasis=None if feats.get("emphasis") is None else np.array(feats["emphasis"]),
            shape_names=names,
            sky_rate=dict((payload.get("image") or {}).get("sky_rate") or {}),
        )


#: what Map 2 may be trained on: the image vector (now), or the fingerprint alone (model
#: files from before the image vector, and ``caomai train map2 --input fp``)
MAP2_INPUTS = ("image_vec", "fp")


@dataclass
class Map2:
    som: SOM
    #: the column of caomai.fingerprint it places: "image_vec" or "fp"
    input: str = "image_vec"

    def assign(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Nodes and distances of rows of the vector named by ``input``."""
        return self.som.assign(np.asarray(vectors, np.float32))

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
            "input": self.input,
        }

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> Map2:
        if payload.get("kind") != "map2":
            raise UsageError("not a map2 model file")
        som = payload["som"]
        # files from before the image vector say nothing: they were trained on fp
        which = payload.get("input", "fp")
        if which not in MAP2_INPUTS:
            raise UsageError(f"the Map-2 model was trained on {which!r}, not one of {MAP2_INPUTS}")
        return cls(SOM(int(som["rows"]), int(som["cols"]), som["codebook"].numpy()), which)
