"""Configuration lives in one place: every CAOMAI_* variable is read in caomai_db/config.py,
listed in its VARIABLES, and the README's table is generated from that list."""

from __future__ import annotations

import re
from pathlib import Path

from caomai_db import config

ROOT = Path(__file__).resolve().parents[1]
NAME = re.compile(r"\bCAOMAI_[A-Z0-9_]+\b")


def test_every_variable_read_is_listed_and_every_listed_one_is_read() -> None:
    source = (ROOT / "caomai_db" / "config.py").read_text()
    code = source.split("VARIABLES: tuple", 1)[0] + source.split("def _env_int", 1)[1]
    read = set(NAME.findall(code.split('"""', 2)[2]))  # past the module docstring
    listed = {v.name for v in config.VARIABLES}
    assert read == listed, (read - listed, listed - read)


def test_no_other_module_reads_caomai_variables() -> None:
    for folder in ("caomai_db", "loaders"):
        for path in (ROOT / folder).rglob("*.py"):
            if path.name == "config.py":
                continue
            text = path.read_text()
            assert not re.search(r"environ[^\n]*CAOMAI_", text), path


def test_readme_configuration_is_generated_from_the_list() -> None:
    assert config.markdown_reference() in (ROOT / "README.md").read_text(), (
        "paste caomai_db.config.markdown_reference() into the README"
    )
