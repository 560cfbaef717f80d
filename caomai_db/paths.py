"""Where the project's non-Python parts lie (sql/, alembic/, tap_schema/).

caomai is installed editable (`pip install -e .`) from its checkout, so they sit beside the
package directory.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SQL_DIR = ROOT / "sql"
ALEMBIC_DIR = ROOT / "alembic"
ALEMBIC_INI = ROOT / "alembic.ini"
TAP_SCHEMA_DIR = ROOT / "tap_schema"
