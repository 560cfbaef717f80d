"""Model files and their caomai.model rows: save with a checksum, refuse a file that changed.

A model is a directory ``$CAOMAI_HOME/models/<name>/`` holding ``model.pt`` (torch's
``weights_only`` format: tensors, numbers and strings only, nothing executable) and
``training_planes.txt`` (the planeIDs it was trained on, so evaluation can hold them out). Its
``caomai.model`` row records where the file lies (``artifact_uri``, ``file://``) and its
``sha256:`` checksum; loading recomputes the checksum and refuses a mismatch, because
fingerprints made with a different file than the one registered would silently disagree with
every fingerprint already in the database.

On a cluster of loader nodes, copy the model directory to each node (or share it): a file
that is not at ``artifact_uri`` is looked for under the node's own ``$CAOMAI_HOME/models/<name>/``,
and its checksum decides.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import numpy as np
import psycopg
import torch

from caomai_db.config import Settings
from caomai_db.errors import ModelError

MODEL_FILE = "model.pt"
PLANES_FILE = "training_planes.txt"


@dataclass
class ModelRow:
    model_id: int
    name: str
    kind: str
    parent_id: int | None
    grid_rows: int
    grid_cols: int
    dim: int
    parameters: dict[str, Any]
    artifact_uri: str | None
    artifact_checksum: str | None
    active: bool
    created_at: datetime | None = None
    description: str | None = None


_COLUMNS = (
    "model_id, name, kind, parent_id, grid_rows, grid_cols, dim, parameters, artifact_uri,"
    " artifact_checksum, active, created_at, description"
)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return "sha256:" + digest.hexdigest()


def default_name(kind: str) -> str:
    return f"{kind}-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}"


def model_dir(settings: Settings, name: str) -> Path:
    return settings.models_dir / name


def write_model_file(directory: Path, payload: dict[str, Any]) -> tuple[Path, str]:
    """Write ``model.pt`` atomically; returns its path and checksum."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / MODEL_FILE
    tmp = directory / (MODEL_FILE + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path, sha256_of(path)


def write_training_planes(directory: Path, planeids: list[str]) -> Path:
    path = directory / PLANES_FILE
    path.write_text("".join(f"{p}\n" for p in sorted(planeids)))
    return path


def training_planes(settings: Settings, row: ModelRow) -> set[str]:
    """planeIDs a model was trained on (empty if the file is not there)."""
    for directory in _candidate_dirs(settings, row):
        path = directory / PLANES_FILE
        if path.exists():
            return {line.strip() for line in path.read_text().splitlines() if line.strip()}
    return set()


def insert_model(
    conn: psycopg.Connection,
    *,
    name: str,
    kind: str,
    dim: int,
    parameters: dict[str, Any],
    path: Path,
    checksum: str,
    parent_id: int | None = None,
    rows: int = 20,
    cols: int = 20,
    description: str | None = None,
) -> int:
    exists = conn.execute("SELECT model_id FROM caomai.model WHERE name = %s", (name,)).fetchone()
    if exists:
        raise ModelError(f"a model named {name!r} exists already (model_id {exists[0]})")
    return conn.execute(
        "INSERT INTO caomai.model (name, kind, parent_id, grid_rows, grid_cols, dim, parameters,"
        " artifact_uri, artifact_checksum, active, description)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, false, %s) RETURNING model_id",
        (
            name,
            kind,
            parent_id,
            rows,
            cols,
            dim,
            json.dumps(_jsonable(parameters)),
            path.resolve().as_uri(),
            checksum,
            description,
        ),
    ).fetchone()[0]


def activate(conn: psycopg.Connection, model_id: int) -> ModelRow:
    """Make a model the active one of its kind, in one transaction (readers never see none)."""
    row = get_model(conn, model_id)
    with conn.transaction():
        conn.execute(
            "UPDATE caomai.model SET active = false WHERE kind = %s AND active AND model_id <> %s",
            (row.kind, row.model_id),
        )
        conn.execute("UPDATE caomai.model SET active = true WHERE model_id = %s", (row.model_id,))
    row.active = True
    return row


def get_model(conn: psycopg.Connection, ref: int | str) -> ModelRow:
    """A model by id or name."""
    if isinstance(ref, int) or (isinstance(ref, str) and ref.strip().isdigit()):
        found = conn.execute(
            f"SELECT {_COLUMNS} FROM caomai.model WHERE model_id = %s", (int(ref),)
        ).fetchone()
    else:
        found = conn.execute(
            f"SELECT {_COLUMNS} FROM caomai.model WHERE name = %s", (str(ref),)
        ).fetchone()
    if found is None:
        raise ModelError(f"no model {ref!r}; `caomai model list` shows the models")
    return ModelRow(*found)


def active_model(conn: psycopg.Connection, kind: str, required: bool = True) -> ModelRow | None:
    found = conn.execute(
        f"SELECT {_COLUMNS} FROM caomai.model WHERE kind = %s AND active", (kind,)
    ).fetchone()
    if found is None:
        if required:
            hint = "caomai train map1" if kind == "map1" else "caomai train map2"
            raise ModelError(f"no {kind} model is active; run `{hint}` or `caomai model activate`")
        return None
    return ModelRow(*found)


def active_map2_for(conn: psycopg.Connection, map1: ModelRow) -> ModelRow | None:
    """The active Map 2 if it was trained on this Map 1's fingerprints (else None: images are
    placed on no Map 2)."""
    m2 = active_model(conn, "map2", required=False)
    return m2 if m2 is not None and m2.parent_id == map1.model_id else None


def list_models(conn: psycopg.Connection) -> list[ModelRow]:
    return [
        ModelRow(*r)
        for r in conn.execute(f"SELECT {_COLUMNS} FROM caomai.model ORDER BY model_id").fetchall()
    ]


def _candidate_dirs(settings: Settings, row: ModelRow) -> list[Path]:
    dirs = []
    if row.artifact_uri:
        parts = urlsplit(row.artifact_uri)
        if parts.scheme == "file":
            dirs.append(Path(unquote(parts.path)).parent)
    dirs.append(model_dir(settings, row.name))
    return dirs


def model_path(settings: Settings, row: ModelRow) -> Path:
    for directory in _candidate_dirs(settings, row):
        if (directory / MODEL_FILE).exists():
            return directory / MODEL_FILE
    raise ModelError(
        f"model {row.name!r}: its file is missing (looked at "
        + ", ".join(str(d / MODEL_FILE) for d in _candidate_dirs(settings, row))
        + "); copy the model directory there"
    )


def verify(settings: Settings, row: ModelRow) -> Path:
    """The model's file, after checking its checksum against the database; raises on mismatch."""
    path = model_path(settings, row)
    actual = sha256_of(path)
    if row.artifact_checksum and actual != row.artifact_checksum:
        raise ModelError(
            f"model {row.name!r} (model_id {row.model_id}): the file {path} has checksum "
            f"{actual}, but caomai.model records {row.artifact_checksum}. The file was changed "
            "or replaced since the model was registered; refusing to use it. Restore the "
            "original file or train and register a new model."
        )
    return path


def load_payload(settings: Settings, row: ModelRow) -> dict[str, Any]:
    """The verified model file's content."""
    path = verify(settings, row)
    return torch.load(path, map_location="cpu", weights_only=True)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value
