"""One direction (DESIGN.md §2): the database package never imports the loaders, by any means.

`lint-imports` (run by `make test`) checks the import statements against the contracts in
pyproject.toml; these tests cover what it cannot see: imports by name at run time, and the
loaders' subcommands reaching `caomai` through the entry point group instead.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import caomai_db
from caomai_db.cli import COMMANDS_GROUP, build_parser

PACKAGE = Path(caomai_db.__file__).parent


def test_importing_every_database_module_loads_no_loader() -> None:
    code = (
        "import importlib, pkgutil, sys, caomai_db\n"
        "for m in pkgutil.walk_packages(caomai_db.__path__, 'caomai_db.'):\n"
        "    importlib.import_module(m.name)\n"
        "print(sorted(n for n in sys.modules if n.split('.')[0] in ('loaders', 'caomai_loaders')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_no_database_module_names_a_loader_module() -> None:
    # __import__("loaders.x") or importlib.import_module("loaders") escape lint-imports
    named = re.compile(r"""["'](caomai_)?loaders(\.\w+)*["']""")
    offenders = [
        str(path.relative_to(PACKAGE))
        for path in sorted(PACKAGE.rglob("*.py"))
        if named.search(path.read_text())
    ]
    assert offenders == []


def test_the_loaders_commands_come_through_the_entry_point_group() -> None:
    from importlib.metadata import entry_points

    assert [e.name for e in entry_points(group=COMMANDS_GROUP)] == ["loaders"]
    parser = build_parser()
    assert parser.parse_args(["db", "status"]).handler.__module__ == "caomai_db.cli"
    for argv in (["demo"], ["synthetic"], ["simulate", "--out", "x", "--exposures", "1"],
                 ["register", "x"], ["load"]):  # fmt: skip
        handler = parser.parse_args(argv).handler
        assert handler.__module__.split(".")[0] == "caomai_loaders", argv
