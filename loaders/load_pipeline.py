"""The per-plane work of `caomai load` that needs no database: detect and sample a plane's
objects (in worker processes), then encode them, place them on Map 1 and Map 2 and compute the
fingerprint (in the main process)."""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import fingerprint as fpmod
from . import image_vector as ivmod
from . import previews as previews_mod
from .detect import DetectionError, DetectParams
from .images import ImageError
from .objects import FileObjects, NoObjectsError, file_objects

if TYPE_CHECKING:  # the detection workers import this module: torch (2 s a worker) stays out
    from .maps import Map1, Map2

log = logging.getLogger(__name__)


@dataclass
class PlaneResult:
    """Everything one plane writes."""

    objects: FileObjects
    nodes: np.ndarray
    distances: np.ndarray
    counts: np.ndarray
    fp: np.ndarray
    image_vec: np.ndarray | None = None
    """The plane's image vector (``image_vector.py``): fp plus sky, depth and PSF figures."""
    map2_node: int | None = None
    map2_distance: float | None = None
    encode_s: float = 0.0
    cutouts: list[tuple[int, int, float, bytes]] | None = None
    """caomai.object_cutout rows (node, object_id, distance, PNG); None: previews not made."""


def plane_seed(planeid: uuid.UUID) -> int:
    """The sampling seed of a plane: the same sample on every run, process and machine."""
    return planeid.int & 0xFFFFFFFFFFFFFFFF


def detect_plane(job: tuple[Any, ...]) -> tuple[str, Any]:
    """Worker: (planeid, path, max_objects, detect params, cutout background[, previews]) ->
    FileObjects (with the plane's preview PNG unless previews is False) or an error text."""
    planeid, path, max_objects, params, background = job[:5]
    previews = bool(job[5]) if len(job) > 5 else True
    try:
        fo = file_objects(
            Path(path),
            max_objects=max_objects,
            seed=plane_seed(uuid.UUID(planeid)),
            params=DetectParams(**params),
            background=background,
            preview=previews,
        )
        return planeid, fo
    except (ImageError, NoObjectsError, DetectionError) as exc:
        return planeid, str(exc)
    except MemoryError:
        return planeid, f"{Path(path).name}: out of memory while reading or detecting"
    except Exception as exc:  # never let one file end the run; record what happened
        log.exception("unexpected error on %s", path)
        return planeid, f"{Path(path).name}: unexpected {type(exc).__name__}: {exc}"


def finish_plane(
    fo: FileObjects, map1: Map1, map2: Map2 | None, previews: bool = True
) -> PlaneResult:
    """Encode, assign Map-1 nodes, fingerprint, place on Map 2; with ``previews``, the PNG of
    the object nearest each node present (here, since the nodes are known only now; a few
    milliseconds while the detection workers are the bottleneck)."""
    t0 = time.perf_counter()
    nodes, dist = map1.assign(fo.cutouts, fo.columns)
    encode_s = time.perf_counter() - t0
    counts = fpmod.counts_of(nodes, map1.som.n_nodes)
    fp = fpmod.fingerprint(
        counts,
        fo.n_detected,
        fo.n_sampled,
        map1.transform,
        map1.som.rows,
        map1.som.cols,
        pixels=fo.pixels,
    )
    band = fo.sky.get("band")
    stats = ivmod.statistics(
        fo.sky,
        fo.columns,
        fo.n_detected,
        fo.pixels,
        sky_reference=map1.sky_reference(band if isinstance(band, str) else None),
    )
    image_vec = ivmod.image_vector(fp, stats)
    result = PlaneResult(fo, nodes, dist, counts, fp, image_vec, encode_s=encode_s)
    if previews:
        result.cutouts = previews_mod.cutout_pngs(fo.cutouts, nodes, dist)
    if map2 is not None:
        # Map 2 says which vector it was trained on (old model files: the fingerprint)
        x = image_vec if map2.input == "image_vec" else fp
        node2, dist2 = map2.assign(x[None, :])
        result.map2_node, result.map2_distance = int(node2[0]), float(dist2[0])
    return result
