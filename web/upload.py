"""Fingerprint an uploaded image with the active models, exactly as `caomai load` would a file
of the archive: detect, sample, encode, place on Map 1, histogram, place on Map 2.

The upload lives in a temporary file for the length of the request and is never stored."""

from __future__ import annotations

import hashlib
import tempfile
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

from caomai_db.config import Settings
from caomai_db.errors import DetectionError, ImageError, NoObjectsError, UploadError
from caomai_loaders import modelstore
from caomai_loaders.detect import DetectParams
from caomai_loaders.load import LoadOptions
from caomai_loaders.load_pipeline import finish_plane
from caomai_loaders.maps import Map1, Map2
from caomai_loaders.objects import file_objects

#: what an upload may be, by its first bytes (the name a browser sends is not trusted)
MAGIC = {b"SIMPLE  =": ".fits", b"\x89PNG\r\n\x1a\n": ".png", b"\xff\xd8\xff": ".jpg"}


@dataclass
class Fingerprinted:
    fp: list[float]
    map2_node: int | None
    n_detected: int
    n_sampled: int
    objects: list[dict[str, Any]]
    map1_model: str
    map2_model: str | None
    #: the image vector (``image_vector.py``), what "similar images" are ranked by when the
    #: active Map 2 was trained on image vectors; None when it was trained on fp or there is
    #: no Map 2 (the page then ranks by f.fp, and a 416-value reference would not fit it)
    image_vec: list[float] | None = None


def suffix_of(head: bytes) -> str:
    """The file type an upload's first bytes announce, or :class:`UploadError`."""
    if not head:
        raise UploadError("the upload is empty")
    for magic, suffix in MAGIC.items():
        if head.startswith(magic):
            return suffix
    raise UploadError("not an image: caomai takes FITS, PNG or JPEG files")


class ActiveModels:
    """The active Map 1 and Map 2, loaded once per model and reloaded when another becomes
    active (a check per request: one indexed read)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._key: tuple[int, int | None] | None = None
        self._maps: tuple[Map1, Map2 | None, str, str | None] | None = None

    def get(self, conn: psycopg.Connection) -> tuple[Map1, Map2 | None, str, str | None]:
        m1 = modelstore.active_model(conn, "map1", required=False)
        if m1 is None:
            raise UploadError("no Map 1 is active in this archive: nothing to fingerprint with")
        m2 = modelstore.active_map2_for(conn, m1)
        key = (m1.model_id, m2.model_id if m2 else None)
        with self._lock:
            if self._key != key or self._maps is None:
                map1 = Map1.from_payload(modelstore.load_payload(self.settings, m1))
                map2 = Map2.from_payload(modelstore.load_payload(self.settings, m2)) if m2 else None
                self._maps = (map1, map2, m1.name, m2.name if m2 else None)
                self._key = key
            return self._maps


def fingerprint_upload(
    data: bytes, models: ActiveModels, conn: psycopg.Connection
) -> Fingerprinted:
    """The upload's fingerprint, Map-2 node and objects; :class:`UploadError` for a bad file."""
    suffix = suffix_of(data[:16])
    map1, map2, m1_name, m2_name = models.get(conn)
    conn.rollback()
    seed = int.from_bytes(hashlib.sha256(data).digest()[:8], "little")
    with tempfile.TemporaryDirectory(prefix="caomai-upload-") as tmp:
        path = Path(tmp) / f"upload{suffix}"
        path.write_bytes(data)
        try:
            fo = file_objects(
                path,
                max_objects=LoadOptions.max_objects,  # sampled as `caomai load` does by default
                seed=seed,
                params=DetectParams(**asdict(map1.detect)),
                background=map1.background,
            )
        except (ImageError, NoObjectsError, DetectionError) as exc:
            raise UploadError(str(exc).replace(path.name, "the upload")) from exc
    result = finish_plane(fo, map1, map2)
    cols = fo.columns
    objects = [
        {
            "extension": int(cols["extension"][i]),
            "x": round(float(cols["x"][i]), 2),
            "y": round(float(cols["y"][i]), 2),
            "map1_node": int(result.nodes[i]),
        }
        for i in range(fo.n_sampled)
    ]
    return Fingerprinted(
        fp=[float(v) for v in np.asarray(result.fp, dtype=np.float64)],
        map2_node=result.map2_node,
        n_detected=fo.n_detected,
        n_sampled=fo.n_sampled,
        objects=objects,
        map1_model=m1_name,
        map2_model=m2_name,
        image_vec=(
            [float(v) for v in np.asarray(result.image_vec, dtype=np.float64)]
            if result.image_vec is not None and map2 is not None and map2.input == "image_vec"
            else None
        ),
    )
