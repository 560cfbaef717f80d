"""One file -> its detected objects: detection on every image, a uniform sample, cutouts.

Sampling: an exposure can hold hundreds of thousands of detections; the loader encodes at
most ``max_objects`` of them and records the total, so that the fingerprint can be weighted by
``n_detected / n_sampled`` (the paper's histo-vector counts all detections). The sample is a
*bottom-k* sample: every detection gets a pseudo-random key (seeded by the plane and the HDU
index, so a re-run draws the same sample) and the ``max_objects`` smallest keys over the whole
file win. That is exactly a uniform sample without replacement over all CCDs, computed one CCD
at a time, so a 36-CCD mosaic never sits in memory and at most ``2 * max_objects`` cutouts do.
The cutouts travel through the merge in signal-to-noise units; their adaptive moments
(``moments.py``) and the stretch (``cutouts.normalise``) are computed once, on the final sample.

A CCD that cannot be used (dead amplifier, all NaN) is skipped with a note; the file fails only
when none of its images gives a detection.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from caomai_db.errors import NoObjectsError

from . import cutouts, moments, previews
from .detect import DetectionError, DetectParams, detect
from .image_vector import SkyStats
from .images import ImageError, primary_header, read_images

#: Per-object columns of a FileObjects sample (besides the cutouts): sep's catalogue, then the
#: adaptive moments of the cutout (``moments.NAMES``).
CATALOGUE = (
    "extension",
    "x",
    "y",
    "ra",
    "dec",
    "flux",
    "a",
    "b",
    "theta",
    "peak",
    "flag",
    "npix",
)
COLUMNS = CATALOGUE + moments.NAMES


@dataclass
class FileObjects:
    """The sampled objects of one file."""

    n_detected: int
    n_images: int
    pixels: int
    """valid (finite) pixels searched"""
    columns: dict[str, np.ndarray]
    extnames: list[str | None]
    """EXTNAME per object (None when the HDU has none)."""
    cutouts: np.ndarray
    """(n_sampled, 32, 32) float32, normalised (cutouts.py)."""
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    preview: bytes | None = None
    """PNG of the whole file (``previews.Mosaic``), made here while the pixels are in memory;
    None when not asked for or when it could not be made (a note says why)."""
    sky: dict[str, float | None] = field(default_factory=dict)
    """The plane's sky figures for its image vector (``image_vector.SkyStats.to_dict``)."""

    @property
    def n_sampled(self) -> int:
        return len(self.cutouts)


def file_objects(
    path: Path,
    *,
    max_objects: int = 1000,
    seed: int = 0,
    params: DetectParams | None = None,
    background: str = cutouts.DEFAULT_BACKGROUND,
    preview: bool = True,
) -> FileObjects:
    """Detect, sample and cut out, and make the file's preview when ``preview``. Raises
    ImageError / NoObjectsError with a clear message; a preview that fails is only a note."""
    params = params or DetectParams()
    t_read = t_detect = t_cut = t_preview = 0.0
    mosaic = previews.Mosaic() if preview else None
    n_detected = n_images = pixels = 0
    notes: list[str] = []
    keep_keys = np.zeros(0)
    keep_cols: dict[str, np.ndarray] = {
        c: np.zeros(0, np.int32 if c in ("extension", "flag", "npix") else np.float64)
        for c in CATALOGUE
    }
    keep_ext: list[str | None] = []
    # the sample's boxes in signal-to-noise units; moments and the stretch come once, at the end
    keep_snr = np.zeros((0, cutouts.SIZE, cutouts.SIZE), np.float32)
    sky = SkyStats()

    t0 = time.perf_counter()
    images = read_images(Path(path))
    while True:
        try:
            image = next(images)
        except StopIteration:
            break
        t1 = time.perf_counter()
        t_read += t1 - t0
        n_images += 1
        pixels += int(np.count_nonzero(np.isfinite(image.data)))
        name = image.extname or f"HDU {image.index}"
        if mosaic is not None:
            # before detection, which may not leave the pixels as read
            try:
                mosaic.add(image)
            except Exception as exc:  # a preview is never worth failing the plane
                notes.append(f"{name}: no preview ({exc})")
                mosaic = None
            t_mid = time.perf_counter()
            t_preview += t_mid - t1
            t1 = t_mid
        try:
            det = detect(image, params)
        except DetectionError as exc:
            notes.append(f"{name}: {exc}")
            t0 = time.perf_counter()
            t_detect += t0 - t1
            continue
        sky.add(image, det)
        t2 = time.perf_counter()
        t_detect += t2 - t1
        n_here = int(det.extra.get("n_total", det.n))
        n_detected += n_here
        if det.n:
            rng = np.random.default_rng([seed & 0xFFFFFFFF, seed >> 32 & 0xFFFFFFFF, image.index])
            keys = rng.random(det.n)
            # only this image's max_objects smallest keys can be in the file's sample
            local = np.argsort(keys, kind="stable")[:max_objects]
            local.sort()
            cat = det.catalog
            snr, cut_flags = cutouts.snr_boxes(
                det.data_sub,
                det.rms,
                cat["x"][local],
                cat["y"][local],
                offset=det.back_offset if background == "image" else None,
            )
            ra = np.full(len(local), np.nan)
            dec = np.full(len(local), np.nan)
            if image.wcs is not None:
                try:
                    w_ra, w_dec = image.wcs.pixel_to_world_values(cat["x"][local], cat["y"][local])
                    ra, dec = np.asarray(w_ra, float), np.asarray(w_dec, float)
                except Exception as exc:  # a WCS that breaks on some pixels
                    notes.append(f"{name}: WCS failed ({exc}); objects kept without ra/dec")
            new_cols = {
                "extension": np.full(len(local), image.index, np.int32),
                "x": cat["x"][local],
                "y": cat["y"][local],
                "ra": ra,
                "dec": dec,
                "flux": cat["flux"][local],
                "a": cat["a"][local],
                "b": cat["b"][local],
                "theta": cat["theta"][local],
                "peak": cat["peak"][local],
                "flag": cat["flag"][local] | cut_flags,
                "npix": cat["npix"][local],
            }
            all_keys = np.concatenate([keep_keys, keys[local]])
            order = np.argsort(all_keys, kind="stable")[:max_objects]
            keep_keys = all_keys[order]
            keep_cols = {c: np.concatenate([keep_cols[c], new_cols[c]])[order] for c in CATALOGUE}
            keep_ext = [(keep_ext + [image.extname] * len(local))[i] for i in order]
            keep_snr = np.concatenate([keep_snr, snr])[order]
        del det, image
        t0 = time.perf_counter()
        t_cut += t0 - t2
    if n_images == 0:
        raise ImageError(f"{Path(path).name}: no 2-D image in this file")
    if n_detected == 0 or len(keep_keys) == 0:
        why = "; ".join(notes) if notes else "no sources above the detection threshold"
        raise NoObjectsError(f"{Path(path).name}: nothing detected ({why})")
    if sky.exptime is None:
        t = primary_header(Path(path)).get("EXPTIME")
        if isinstance(t, int | float) and t > 0:
            sky.exptime = float(t)
    # a stable object order: by HDU, then position (object_id = row number)
    order = np.lexsort((keep_cols["x"], keep_cols["y"], keep_cols["extension"]))
    t2 = time.perf_counter()
    snr = keep_snr[order]
    columns = {c: keep_cols[c][order] for c in CATALOGUE} | moments.measure(snr)
    boxes = cutouts.normalise(snr)
    t3 = time.perf_counter()
    t_cut += t3 - t2
    png = None
    if mosaic is not None:
        try:
            png = mosaic.png()
        except Exception as exc:
            notes.append(f"no preview ({exc})")
        t_preview += time.perf_counter() - t3
    return FileObjects(
        n_detected=n_detected,
        n_images=n_images,
        pixels=pixels,
        columns=columns,
        extnames=[keep_ext[i] for i in order],
        cutouts=np.ascontiguousarray(boxes),
        notes=notes,
        timings={"read": t_read, "detect": t_detect, "cutout": t_cut, "preview": t_preview},
        preview=png,
        sky=sky.to_dict(),
    )
