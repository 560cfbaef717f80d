"""Where the project's non-Python parts lie (sql/, alembic/, alembic.ini, tap_schema/).

In the checkout they are top-level folders beside the package, where DESIGN.md puts them; the
wheel carries them inside the package as ``caomai_db/_data/`` (pyproject.toml maps the folders
there), so a caomai installed from the wheel migrates and serves without any checkout.
``importlib.resources`` finds the package wherever it was installed from.
"""

from importlib.resources import files
from pathlib import Path

_PACKAGE = files(__package__)
#: ``caomai_db/_data`` in an installed wheel, the checkout's root in an editable install
ROOT = (
    Path(str(_PACKAGE / "_data")) if (_PACKAGE / "_data").is_dir() else Path(str(_PACKAGE)).parent
)
SQL_DIR = ROOT / "sql"
ALEMBIC_DIR = ROOT / "alembic"
ALEMBIC_INI = ROOT / "alembic.ini"
TAP_SCHEMA_DIR = ROOT / "tap_schema"
