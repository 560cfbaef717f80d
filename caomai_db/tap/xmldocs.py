"""Protocol XML (VOSI, UWS) from Jinja2 templates (``caomai_db/tap/templates/``).

Autoescaping is on, so every value a user or the database gave (a job parameter, a column
description, a note) is escaped for XML text and attributes alike.
"""

from __future__ import annotations

from typing import Any

import jinja2

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("caomai_db.tap", "templates"),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    undefined=jinja2.StrictUndefined,
)


def render(template: str, **context: Any) -> str:
    """The document; the XML declaration comes first (macros above it leave blank lines)."""
    return _ENV.get_template(template).render(**context).lstrip()
