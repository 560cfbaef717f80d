"""Every error caomai raises on purpose, in one tree.

Each carries the HTTP status a service answers it with, so the TAP layer and the CLI need no
table of their own: a bad request is 4xx, a busy or absent database 503. The message is always
for a person: what is wrong and what to do. Anything else that escapes is a bug (a 500 that is
logged with its traceback).

The loaders' errors live here too (``loaders`` imports ``caomai_db``, never the reverse).
"""

from __future__ import annotations


class CaomaiError(Exception):
    """Base of caomai's errors; ``status`` is the HTTP status a service answers it with."""

    status: int = 400

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status


# -- the TAP service --------------------------------------------------------------------------


class ADQLError(CaomaiError, ValueError):
    """A query the service cannot run, with a message a person can act on."""


class QueryFailed(CaomaiError):
    """A query the database refused or cancelled (400), or could not run at all (503)."""


class BadRequest(CaomaiError):
    """A request the service cannot read (body too large or malformed, NUL characters): a 400
    VOTable error on every route."""


class JobError(CaomaiError):
    """A UWS request that cannot be honoured (HTTP status and message)."""


class Busy(CaomaiError):
    """No query slot came free in time; the client should retry later (503, Retry-After)."""

    status = 503

    def __init__(self, lane: str, waited_s: float) -> None:
        super().__init__(
            f"the service is busy: no {lane} query slot came free within {waited_s:g} s;"
            " try again in a moment, or use the asynchronous endpoint (/async)"
        )
        self.retry_after_s = max(1, int(waited_s // 6))


# -- commands ---------------------------------------------------------------------------------


class UsageError(CaomaiError, ValueError):
    """A command was given something it cannot use (options, a selection, a node, a file); the
    message says what to change."""


class SetupError(CaomaiError, RuntimeError):
    """Something a command needs is missing or broken (the database, a model, a GPU, training
    data); the message says what to do."""


# -- the loaders ------------------------------------------------------------------------------


class ImageError(CaomaiError):
    """A file that cannot be read as images; the message says why."""


class DetectionError(CaomaiError):
    """An image on which detection cannot run (all invalid, constant, ...); the message says why."""


class NoObjectsError(CaomaiError):
    """A file that was read but gave nothing to fingerprint; the message says why."""


class ModelError(CaomaiError, RuntimeError):
    """A model that cannot be used; the message says why and what to do."""


class LostPlane(CaomaiError):
    """The plane is no longer ours (another loader reclaimed it); its rows were not written."""


# -- the web API ------------------------------------------------------------------------------


class UploadError(CaomaiError):
    """An uploaded image that cannot be fingerprinted (empty, not an image, truncated, too
    large, nothing detected); the message says why (a 4xx answer)."""
