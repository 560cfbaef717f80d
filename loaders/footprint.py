"""A plane's position on the sky from the corners of its image extensions: the convex hull
(ICRS, DALI polygon, counter-clockwise as seen from inside the sphere), its centroid, spherical
area and size."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _radec_to_xyz(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    ra, dec = np.radians(ra), np.radians(dec)
    return np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)], axis=-1)


def _xyz_to_radec(v: np.ndarray) -> tuple[float, float]:
    v = _unit(v)
    return float(np.degrees(np.arctan2(v[1], v[0])) % 360.0), float(
        np.degrees(np.arcsin(np.clip(v[2], -1, 1)))
    )


@dataclass
class Footprint:
    polygon: list[float]
    centre: tuple[float, float]
    area: float
    size: float


def footprint(ra: np.ndarray, dec: np.ndarray) -> Footprint:
    """Convex hull of sky points: DALI polygon (counter-clockwise seen from inside the
    sphere), centroid, spherical area (deg^2) and size (largest vertex separation, deg)."""
    from scipy.spatial import ConvexHull

    pts = _radec_to_xyz(np.asarray(ra, float), np.asarray(dec, float))
    c = _unit(pts.mean(axis=0))
    # gnomonic projection about c: xi to the east, eta to the north
    north = np.array([0.0, 0.0, 1.0])
    east = np.cross(north, c)
    if np.linalg.norm(east) < 1e-12:  # pointing at a pole
        east = np.array([0.0, 1.0, 0.0])
    east = _unit(east)
    up = np.cross(c, east)
    d = pts @ c
    xy = np.stack([(pts @ east) / d, (pts @ up) / d], axis=1)
    hull = ConvexHull(xy)
    # scipy gives the hull counter-clockwise with east to the right (seen from outside the
    # sphere); seen from inside, east is to the left: reverse
    idx = _drop_collinear(xy, list(hull.vertices[::-1]))
    verts = pts[idx]
    poly: list[float] = []
    for v in verts:
        r, de = _xyz_to_radec(v)
        poly += [round(r, 8), round(de, 8)]
    # area-weighted centroid in the projection, back to the sphere
    hx, hy = xy[idx, 0], xy[idx, 1]
    cross = hx * np.roll(hy, -1) - np.roll(hx, -1) * hy
    a2 = cross.sum()
    cx = ((hx + np.roll(hx, -1)) * cross).sum() / (3 * a2)
    cy = ((hy + np.roll(hy, -1)) * cross).sum() / (3 * a2)
    centre = _xyz_to_radec(c + cx * east + cy * up)
    # spherical area: triangles fanned from the centre (Van Oosterom & Strackee)
    cv = _unit(c + cx * east + cy * up)
    area = 0.0
    for i in range(len(verts)):
        a, b = verts[i], verts[(i + 1) % len(verts)]
        num = abs(np.dot(cv, np.cross(a, b)))
        den = 1 + np.dot(cv, a) + np.dot(a, b) + np.dot(b, cv)
        area += 2 * math.atan2(num, den)
    dots = np.clip(verts @ verts.T, -1, 1)
    size = float(np.degrees(np.arccos(dots.min())))
    return Footprint(
        poly, (round(centre[0], 8), round(centre[1], 8)), area * (180.0 / math.pi) ** 2, size
    )


def _drop_collinear(xy: np.ndarray, idx: list[int]) -> list[int]:
    """Hull vertices without those lying on the line between their neighbours (CCD gaps)."""
    keep = []
    n = len(idx)
    for i in range(n):
        a, b, c = xy[idx[i - 1]], xy[idx[i]], xy[idx[(i + 1) % n]]
        cross = (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
        if abs(cross) > 1e-7 * np.linalg.norm(c - a) ** 2:
            keep.append(idx[i])
    return keep if len(keep) >= 3 else idx
