"""`caomai train map1` and `caomai train map2`.

Map 1: detect objects on the selected planes' files (in parallel worker processes), take up to
``per_plane`` cutouts from each so that no single crowded field dominates, train the encoder
(``encoder.py``), fit the 20x20 SOM on the embeddings (``som.py``), and register the model with
a prototype thumbnail and shape statistics per node.

Map 2: fit a 20x20 SOM on the fingerprints the active Map 1 produced for the selected planes,
register it with the codebook (the node's prototype fingerprint), member counts and a preview
of the member image nearest each node, then place *every* fingerprint of that Map 1 on it.

Both maps train on public planes only (metaRelease NULL or passed): their codebooks, thumbnails
and node statistics are published in ``caomai.map_node``, and a codebook fitted on a hidden
image approximates it. Proprietary planes are still placed on the maps; the view publishes
their nodes' member figures from public planes only (migration 0004).
"""

from __future__ import annotations

import json
import logging
import math
import multiprocessing as mp
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import psycopg
import torch
from tqdm import tqdm

from caomai_db import access, database
from caomai_db.config import GRID_COLS, GRID_ROWS, Settings
from caomai_db.errors import SetupError, UsageError

from . import cutouts as cutout_mod
from . import encoder as encoder_mod
from . import image_vector, modelstore, moments, rare, shape
from .detect import FLAG_EDGE, FLAG_SATURATED, DetectParams
from .device import cpu_threads, pick_device
from .fingerprint import DEFAULT_TRANSFORM, TRANSFORMS
from .images import ImageError, read_images
from .maps import MAP2_INPUTS, Map1, Map2
from .objects import file_objects
from .selection import PlaneFile, select_planes
from .simulate import ignore_sigint
from .som import SOM

log = logging.getLogger(__name__)


# -- sampling cutouts for Map 1 ---------------------------------------------------------------


def _sample_one(job: tuple[str, str, int, int, dict, str]) -> tuple[str, Any]:
    """Worker: (planeid, path, per_plane, seed, detect params, background) -> sample or error."""
    planeid, path, per_plane, seed, params, background = job
    try:
        fo = file_objects(
            Path(path),
            max_objects=per_plane,
            seed=seed,
            params=DetectParams(**params),
            background=background,
        )
    except Exception as exc:  # recorded and skipped: a training set survives a bad file
        return planeid, f"{type(exc).__name__}: {exc}"
    keep = ("a", "b", "flux", "peak", "flag", "npix", "x", "y", "extension", *moments.NAMES)
    cols = {k: fo.columns[k] for k in keep}
    # per file: the common direction of the "aligned" feature is the file's own (shape.py)
    cols["shape"] = shape.raw_features(fo.columns)
    return planeid, (fo.cutouts, cols, fo.sky)


def _pool_map(func, jobs: list, workers: int) -> Iterator:
    """imap_unordered over worker processes, or in-process for a single worker."""
    if workers <= 1 or len(jobs) <= 1:
        yield from map(func, jobs)
        return
    # spawn: the parent may hold torch/OpenMP threads, which forked children must not inherit
    ctx = mp.get_context("spawn")
    with ctx.Pool(workers, initializer=ignore_sigint) as pool:
        yield from pool.imap_unordered(func, jobs, chunksize=1)


class Sample(NamedTuple):
    """Map 1's training sample: the cutouts and their objects' columns, and per plane used
    its sky figures (``image_vector.SkyStats.to_dict``, for the bands' usual sky)."""

    boxes: np.ndarray
    columns: dict[str, np.ndarray]
    skies: list[dict[str, Any]]
    used: list[str]
    failed: list[str]


def sample_cutouts(
    planes: list[PlaneFile],
    *,
    n_cutouts: int,
    params: DetectParams,
    workers: int,
    seed: int,
    background: str = cutout_mod.DEFAULT_BACKGROUND,
    progress: bool = True,
    rare_mix: float = rare.DEFAULT_MIX,
) -> Sample:
    """Up to n_cutouts normalised cutouts drawn over the planes: each plane offers a uniform
    sample of its detections (``POOL`` times its even share when ``rare_mix`` > 0, so that
    rare kinds are in the pool), and the cutouts are drawn from the pool by ``rare.pick``."""
    per_plane = max(16, math.ceil(n_cutouts / max(1, len(planes))))
    if rare_mix > 0:
        per_plane *= POOL
    jobs = [
        (str(p.planeid), str(p.path), per_plane, seed + i, asdict(params), background)
        for i, p in enumerate(planes)
    ]
    boxes, cols, skies, used, failed = [], [], [], [], []
    bar = tqdm(total=len(jobs), desc="detect", unit="plane", disable=not progress, file=sys.stderr)
    for planeid, result in _pool_map(_sample_one, jobs, workers):
        bar.update()
        if isinstance(result, str):
            failed.append(f"{planeid}: {result}")
            continue
        b, c, sky = result
        boxes.append(b)
        cols.append(c)
        skies.append(sky)
        used.append(planeid)
    bar.close()
    if not boxes:
        raise SetupError(
            "no cutouts: none of the selected planes gave detections"
            + (f" ({failed[0]})" if failed else "")
        )
    # deterministic order regardless of which worker finished first
    order = np.argsort(used)
    boxes = [boxes[i] for i in order]
    cols = [cols[i] for i in order]
    skies = [skies[i] for i in order]
    used = [used[i] for i in order]
    all_boxes = np.concatenate(boxes)
    all_cols = {k: np.concatenate([c[k] for c in cols]) for k in cols[0]}
    # which plane each cutout came from (a thumbnail names its plane: see migration 0004)
    all_cols["plane"] = np.concatenate(
        [np.full(len(b), i, dtype=np.int32) for i, b in enumerate(boxes)]
    )
    if len(all_boxes) > n_cutouts:
        pick = rare.pick(all_cols["shape"], n_cutouts, seed, mix=rare_mix)
        all_boxes = all_boxes[pick]
        all_cols = {k: v[pick] for k, v in all_cols.items()}
    return Sample(all_boxes, all_cols, skies, used, failed)


#: with rare-aware sampling each plane offers this many times its even share of objects
POOL = 4


def _median(values: np.ndarray, digits: int = 3) -> float | None:
    """Median over the finite values, None when there is none: sep gives NaN shapes for some
    degenerate objects, and JSON (jsonb) has no NaN."""
    finite = values[np.isfinite(values)]
    return round(float(np.median(finite)), digits) if len(finite) else None


def _node_stats(nodes: np.ndarray, dist: np.ndarray, cols: dict[str, np.ndarray], k: int) -> list:
    """Shape statistics of each Map-1 node's training members (None where nothing is finite)."""
    stats: list[dict[str, Any]] = []
    a, b = cols["a"].astype(float), cols["b"].astype(float)
    elong = a / np.maximum(b, 1e-3)
    sigma = cols["m_sigma"].astype(float)
    ellip = np.hypot(cols["m_e1"].astype(float), cols["m_e2"].astype(float))
    for node in range(k):
        m = nodes == node
        n = int(m.sum())
        if n == 0:
            stats.append({"members": 0})
            continue
        stats.append(
            {
                "members": n,
                "a_median": _median(a[m]),
                "b_median": _median(b[m]),
                "elongation_median": _median(elong[m]),
                "flux_median": _median(cols["flux"][m].astype(float)),
                "peak_median": _median(cols["peak"][m].astype(float)),
                "saturated_fraction": round(
                    float(np.mean(cols["flag"][m] & FLAG_SATURATED > 0)), 4
                ),
                "edge_fraction": round(float(np.mean(cols["flag"][m] & FLAG_EDGE > 0)), 4),
                "distance_mean": round(float(np.mean(dist[m])), 4),
                # adaptive moments (moments.py); "unmeasured": HSM found no shape
                "m_sigma_median": _median(sigma[m]),
                "m_ellipticity_median": _median(ellip[m]),
                "m_rho4_median": _median(cols["m_rho4"][m].astype(float)),
                "snr_median": _median(cols["snr"][m].astype(float)),
                "unmeasured_fraction": round(float(np.mean(~np.isfinite(sigma[m]))), 4),
            }
        )
    return stats


def _write_nodes(
    conn: psycopg.Connection,
    model_id: int,
    som: SOM,
    counts: np.ndarray,
    thumbnails: dict[int, tuple[bytes, Any]],
    stats: list[dict[str, Any]],
) -> None:
    """The nodes as training saw them; ``caomai.map_node`` publishes them (public planes only).

    ``thumbnails``: node -> (PNG, planeID it was cut from).
    """
    rows = []
    for node in range(som.n_nodes):
        r, c = divmod(node, som.cols)
        rows.append(
            (
                model_id,
                node,
                r,
                c,
                int(counts[node]),
                [float(v) for v in som.codebook[node]],
                thumbnails[node][0] if node in thumbnails else None,
                json.dumps(stats[node], allow_nan=False),
                thumbnails[node][1] if node in thumbnails else None,
            )
        )
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO caomai.map_node_store (model_id, node_id, grid_row, grid_col,"
            " member_count, codebook, thumbnail, stats, thumbnail_planeid)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            rows,
        )


def train_map1(
    settings: Settings,
    *,
    planes: str | None = None,
    files: list[str] | None = None,
    n_cutouts: int = 20000,
    max_planes: int | None = None,
    epochs: int = 10,
    batch_size: int = 256,
    dim: int = 64,
    width: int = 16,
    lr: float = 2e-3,
    som_epochs: int = 40,
    shape_weight: float = shape.DEFAULT_WEIGHT,
    transform: str = DEFAULT_TRANSFORM,
    background: str = cutout_mod.DEFAULT_BACKGROUND,
    device: str = "auto",
    workers: int | None = None,
    threads: int | None = None,
    seed: int = 0,
    name: str | None = None,
    activate: bool = True,
    detect: DetectParams | None = None,
    progress: bool = True,
    description: str | None = None,
    rare_mix: float = rare.DEFAULT_MIX,
    say: Callable[[str], None] | None = None,
) -> modelstore.ModelRow:
    """Train and register a Map-1 model; returns its row. What it did (cutouts, training
    figures) is reported through ``say`` (the CLI prints it; default: the log)."""
    say = say or log.info
    if transform not in TRANSFORMS:
        raise UsageError(f"--transform must be one of {', '.join(TRANSFORMS)}")
    if background not in cutout_mod.BACKGROUNDS:
        raise UsageError(f"--background must be one of {', '.join(cutout_mod.BACKGROUNDS)}")
    dev = pick_device(device)
    torch.set_num_threads(cpu_threads(threads))
    workers = workers if workers is not None else max(1, cpu_threads() - 1)
    params = detect or DetectParams()
    name = name or modelstore.default_name("map1")
    dsn = database.resolve_dsn(settings)
    timings: dict[str, float] = {}
    with database.connect(dsn) as conn:
        if conn.execute("SELECT 1 FROM caomai.model WHERE name = %s", (name,)).fetchone():
            raise modelstore.ModelError(f"a model named {name!r} exists already")
        chosen = select_planes(conn, planes, files)
        conn.rollback()
    if not chosen:
        raise SetupError("no planes selected for training (check --planes/--files)")
    chosen, hidden = _public(chosen)
    if not chosen:
        raise SetupError(
            f"no public planes selected for training: the {hidden} selected are proprietary,"
            " and a map publishes what it is trained on"
        )
    if max_planes and len(chosen) > max_planes:
        pick = np.sort(np.random.default_rng(seed).choice(len(chosen), max_planes, replace=False))
        chosen = [chosen[i] for i in pick]
    t0 = time.perf_counter()
    boxes, cols, skies, used, failed = sample_cutouts(
        chosen,
        n_cutouts=n_cutouts,
        params=params,
        workers=workers,
        seed=seed,
        background=background,
        progress=progress,
        rare_mix=rare_mix,
    )
    timings["sample_s"] = round(time.perf_counter() - t0, 2)
    say(
        f"map1: {len(boxes)} cutouts from {len(used)} planes"
        + (f" ({len(failed)} planes failed)" if failed else "")
        + (f"; {hidden} proprietary planes left out" if hidden else "")
    )

    bar = tqdm(total=1, desc="encoder", unit="step", disable=not progress, file=sys.stderr)

    def on_step(step: int, steps: int, loss: float) -> None:
        bar.total = steps
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.3f}", refresh=False)

    config = encoder_mod.EncoderConfig(dim=dim, width=width, size=cutout_mod.SIZE)
    model, report = encoder_mod.train_encoder(
        boxes,
        config=config,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        device=dev,
        seed=seed,
        progress=on_step,
    )
    bar.close()
    t1 = time.perf_counter()
    z = encoder_mod.encode(model, boxes, device=dev)
    timings["embed_s"] = round(time.perf_counter() - t1, 2)
    t2 = time.perf_counter()
    som = SOM(GRID_ROWS, GRID_COLS)
    map1 = Map1(
        encoder=model.cpu(),
        som=som,
        detect=params,
        transform=transform,
        background=background,
        shape_weight=shape_weight,
        sky_rate=image_vector.sky_rate_reference(skies),
    )
    if shape_weight:
        map1.shape_center, map1.shape_scale = shape.fit_scaling(cols["shape"])
        map1.shape_emphasis = shape.emphasis()
    som_input = map1.inputs(z, cols["shape"])
    som_report = som.fit(som_input, epochs=som_epochs, device=dev, seed=seed)
    nodes, dist = som.assign(som_input)
    timings["som_s"] = round(time.perf_counter() - t2, 2)

    counts = np.bincount(nodes, minlength=som.n_nodes)
    thumbs: dict[int, tuple[bytes, Any]] = {}
    for node in np.flatnonzero(counts):
        members = np.flatnonzero(nodes == node)
        nearest = members[np.argmin(dist[members])]
        plane = used[int(cols["plane"][nearest])]
        thumbs[int(node)] = (cutout_mod.to_png(boxes[nearest]), plane)
    stats = _node_stats(nodes, dist, cols, som.n_nodes)

    directory = modelstore.model_dir(settings, name)
    path, checksum = modelstore.write_model_file(directory, map1.payload())
    modelstore.write_training_planes(directory, used)
    parameters = {
        "cutouts": int(len(boxes)),
        "cutouts_requested": n_cutouts,
        "planes": len(used),
        "planes_failed": len(failed),
        "failures": failed[:20],
        "selection": {"planes": planes, "files": len(files or []), "max_planes": max_planes},
        "encoder": {**config.to_dict(), "epochs": epochs, "batch_size": batch_size, "lr": lr},
        "training": report.to_dict(),
        "som": som_report.to_dict(),
        "detect": asdict(params),
        "cutout": {
            "size": cutout_mod.SIZE,
            "softening": cutout_mod.SOFTENING,
            "floor": cutout_mod.FLOOR,
            "background": background,
        },
        "fingerprint_transform": transform,
        "shape_features": {"names": list(shape.NAMES), "weight": shape_weight},
        "sky_rate": map1.sky_rate,
        "sampling": {"rare_mix": rare_mix, "cap": rare.DEFAULT_CAP, "pool": POOL},
        "timings": timings,
        "device": str(dev),
        "torch": torch.__version__,
        "seed": seed,
    }
    with database.connect(dsn) as conn:
        with conn.transaction():
            model_id = modelstore.insert_model(
                conn,
                name=name,
                kind="map1",
                dim=dim,
                parameters=parameters,
                path=path,
                checksum=checksum,
                description=description,
            )
            _write_nodes(conn, model_id, som, counts, thumbs, stats)
        row = (
            modelstore.activate(conn, model_id)
            if activate
            else modelstore.get_model(conn, model_id)
        )
    say(
        f"map1 model {name!r} (model_id {row.model_id}): {len(boxes)} cutouts, "
        f"{report.epochs} epochs in {report.seconds:.0f} s ({report.pairs_per_s:.0f} pairs/s on "
        f"{dev}), loss {report.loss_first:.3f} -> {report.loss_last:.3f}; SOM: "
        f"{som_report.nodes_used} nodes used, topographic error {som_report.topographic_error:.3f}"
        f"; usual sky known for {len(map1.sky_rate)} bands" + ("; active" if row.active else "")
    )
    return row


# -- Map 2 ------------------------------------------------------------------------------------


def _preview(path: str) -> bytes | None:
    try:
        image = next(read_images(Path(path)))
    except (ImageError, StopIteration, OSError):
        return None
    return cutout_mod.image_png(image.data)


def train_map2(
    settings: Settings,
    *,
    planes: str | None = None,
    files: list[str] | None = None,
    map1: str | None = None,
    epochs: int = 60,
    sigma_end: float = 0.8,
    device: str = "auto",
    seed: int = 0,
    name: str | None = None,
    activate: bool = True,
    thumbnails: bool = True,
    description: str | None = None,
    input: str | None = None,
    say: Callable[[str], None] | None = None,
) -> modelstore.ModelRow:
    """Fit Map 2 on the ``input`` vectors (``image_vec``, the image vector, or ``fp``, the
    fingerprint alone; None: the image vector when any loaded plane has one, else the
    fingerprint, so an archive loaded before image vectors existed still trains) of the
    selected planes and place every plane that has one on it; a plane without an image
    vector (loaded before they existed) is left off an image-vector map until it is loaded
    again. What it did is reported through ``say`` (the CLI prints it; default: the log)."""
    say = say or log.info
    if input is not None and input not in MAP2_INPUTS:
        raise UsageError(f"Map 2 is trained on one of {MAP2_INPUTS}, not {input!r}")
    dev = pick_device(device)
    name = name or modelstore.default_name("map2")
    dsn = database.resolve_dsn(settings)
    with database.connect(dsn) as conn:
        parent = modelstore.get_model(conn, map1) if map1 else modelstore.active_model(conn, "map1")
        if parent.kind != "map1":
            raise modelstore.ModelError(f"{parent.name!r} is a {parent.kind} model, not map1")
        if conn.execute("SELECT 1 FROM caomai.model WHERE name = %s", (name,)).fetchone():
            raise modelstore.ModelError(f"a model named {name!r} exists already")
        if input is None:
            has = conn.execute(
                "SELECT EXISTS (SELECT 1 FROM caomai.fingerprint WHERE model_id = %s"
                " AND image_vec IS NOT NULL)",
                (parent.model_id,),
            ).fetchone()[0]
            input = "image_vec" if has else "fp"
            if not has:
                say("no loaded plane has an image vector yet: Map 2 is trained on fp")
        # input is one of MAP2_INPUTS, a column name
        all_rows = conn.execute(
            f"SELECT f.planeid, f.{input}, {access.public('f')}"
            f" FROM caomai.fingerprint AS f WHERE f.model_id = %s AND f.{input} IS NOT NULL"
            " ORDER BY f.planeid",
            (parent.model_id,),
        ).fetchall()
        unplaced = conn.execute(
            f"SELECT count(*) FROM caomai.fingerprint AS f WHERE f.model_id = %s"
            f" AND f.{input} IS NULL",
            (parent.model_id,),
        ).fetchone()[0]
        if planes or files:
            wanted = {p.planeid for p in select_planes(conn, planes, files)}
        else:
            wanted = {r[0] for r in all_rows}
        conn.rollback()
    if not all_rows:
        raise SetupError(
            f"no {input} vectors of map1 model {parent.name!r}; run `caomai load` first"
            + (
                f" ({unplaced} fingerprints were loaded before image vectors existed: "
                "`caomai load --reload`, or `caomai train map2 --input fp`)"
                if unplaced
                else ""
            )
        )
    ids = [r[0] for r in all_rows]
    fps = np.stack([np.asarray(r[1].to_numpy(), np.float32) for r in all_rows])
    public = np.array([bool(r[2]) for r in all_rows])
    wanted_mask = np.array([pid in wanted for pid in ids])
    train_mask = wanted_mask & public
    hidden = int((wanted_mask & ~public).sum())
    if train_mask.sum() < 2:
        raise SetupError(
            "fewer than 2 public fingerprints selected to train Map 2"
            + (f" ({hidden} proprietary ones are never used for training)" if hidden else "")
        )
    t0 = time.perf_counter()
    som = SOM(GRID_ROWS, GRID_COLS)
    report = som.fit(fps[train_mask], epochs=epochs, sigma_end=sigma_end, device=dev, seed=seed)
    seconds = round(time.perf_counter() - t0, 2)
    nodes, dist = som.assign(fps)
    train_counts = np.bincount(nodes[train_mask], minlength=som.n_nodes)

    paths: dict[Any, str] = {}
    if thumbnails:
        with database.connect(dsn) as conn:
            for pid, uri in conn.execute(
                "SELECT a.planeid, min(a.uri) FROM caom2.artifact AS a WHERE a.planeid = ANY(%s)"
                " AND a.producttype = 'science' GROUP BY a.planeid",
                ([ids[i] for i in np.flatnonzero(train_mask)],),
            ).fetchall():
                if uri.startswith("file://"):
                    paths[pid] = uri[len("file://") :]
    # what is stored per node comes from the training (public) members only; the member
    # figures TAP users see are recomputed over public planes by the caomai.map_node view
    thumbs: dict[int, tuple[bytes, Any]] = {}
    stats: list[dict[str, Any]] = []
    for node in range(som.n_nodes):
        members = np.flatnonzero((nodes == node) & train_mask)
        stats.append({"training_members": int(train_counts[node])})
        if len(members) == 0 or not thumbnails:
            continue
        order = members[np.argsort(dist[members])]
        for i in order[:3]:
            if ids[i] in paths:
                png = _preview(paths[ids[i]])
                if png:
                    thumbs[node] = (png, ids[i])
                    break

    map2 = Map2(som, input)
    directory = modelstore.model_dir(settings, name)
    path, checksum = modelstore.write_model_file(
        directory, map2.payload(parent.name, parent.artifact_checksum)
    )
    modelstore.write_training_planes(directory, [str(ids[i]) for i in np.flatnonzero(train_mask)])
    parameters = {
        "fingerprints": int(train_mask.sum()),
        "parent": parent.name,
        "selection": {"planes": planes, "files": len(files or [])},
        "som": report.to_dict(),
        "seconds": seconds,
        "device": str(dev),
        "seed": seed,
        "input": input,
        "unplaced": int(unplaced),
    }
    with database.connect(dsn) as conn:
        with conn.transaction():
            model_id = modelstore.insert_model(
                conn,
                name=name,
                kind="map2",
                dim=fps.shape[1],
                parameters=parameters,
                path=path,
                checksum=checksum,
                parent_id=parent.model_id,
                description=description,
            )
            _write_nodes(conn, model_id, som, train_counts, thumbs, stats)
            place_fingerprints(conn, parent.model_id, model_id, ids, nodes, dist)
            if unplaced:
                # no vector to place: off this map (not left on an older Map 2's node)
                conn.execute(
                    "UPDATE caomai.fingerprint SET map2_model_id = NULL, map2_node = NULL,"
                    f" map2_distance = NULL WHERE model_id = %s AND {input} IS NULL",
                    (parent.model_id,),
                )
        row = (
            modelstore.activate(conn, model_id)
            if activate
            else modelstore.get_model(conn, model_id)
        )
    say(
        f"map2 model {name!r} (model_id {row.model_id}): trained on {int(train_mask.sum())} "
        f"public {input} vectors in {seconds:.1f} s"
        + (f" ({hidden} proprietary left out)" if hidden else "")
        + f", {len(ids)} placed"
        + (f" ({unplaced} without an image vector left off)" if unplaced else "")
        + f", {report.nodes_used} nodes used, "
        f"topographic error {report.topographic_error:.3f}" + ("; active" if row.active else "")
    )
    return row


def _public(chosen: list[PlaneFile]) -> tuple[list[PlaneFile], int]:
    """The public planes of a selection, and how many proprietary ones were left out."""
    public = [p for p in chosen if p.public]
    return public, len(chosen) - len(public)


def place_all_on_map2(settings: Settings, name: str) -> int:
    """Place every fingerprint of Map 2 ``name``'s Map 1 on it again, in one batch, as
    ``train_map2`` placed them: the demo loads its held-out half after Map 2 exists, and a
    node computed one plane at a time could differ in the last bit of a near tie from the
    batch's. Returns the fingerprints placed."""
    dsn = database.resolve_dsn(settings)
    with database.connect(dsn) as conn:
        row = modelstore.get_model(conn, name)
        map2 = Map2.from_payload(modelstore.load_payload(settings, row))
        # the vector the map was trained on (a column name: one of MAP2_INPUTS)
        rows = conn.execute(
            f"SELECT f.planeid, f.{map2.input} FROM caomai.fingerprint AS f"
            f" WHERE f.model_id = %s AND f.{map2.input} IS NOT NULL ORDER BY f.planeid",
            (row.parent_id,),
        ).fetchall()
        conn.rollback()
        if not rows:
            return 0
        fps = np.stack([np.asarray(r[1].to_numpy(), np.float32) for r in rows])
        nodes, dist = map2.assign(fps)
        with conn.transaction():
            return place_fingerprints(
                conn, row.parent_id, row.model_id, [r[0] for r in rows], nodes, dist
            )


def place_fingerprints(
    conn: psycopg.Connection,
    map1_id: int,
    map2_id: int,
    ids: list,
    nodes: np.ndarray,
    dist: np.ndarray,
) -> int:
    """Set map2_model_id/map2_node/map2_distance of fingerprints in one statement."""
    cur = conn.execute(
        "UPDATE caomai.fingerprint AS f SET map2_model_id = %s, map2_node = u.node,"
        " map2_distance = u.dist"
        " FROM unnest(%s::uuid[], %s::smallint[], %s::real[]) AS u(planeid, node, dist)"
        " WHERE f.planeid = u.planeid AND f.model_id = %s",
        (map2_id, ids, [int(n) for n in nodes], [float(d) for d in dist], map1_id),
    )
    return cur.rowcount
