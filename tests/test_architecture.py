"""The house rules of docs/architecture.md, as tests."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parent.parent / "app"
# A domain imports only domains below it; the same tier may not import each other either.
# audit sits lowest of all: every domain records into it and it imports none of them.
LAYERS: list[set[str]] = [
    {"audit"},
    {"accounts", "jobs"},
    {"projects"},
    {"guidelines", "gold"},
    {"assignment", "generation"},
    {"annotation"},
    {"export", "agreement"},
    {"arena"},
    {"training"},
]
TIER = {domain: level for level, domains in enumerate(LAYERS) for domain in domains}
PROCESS_MODULES = {"worker", "trainer", "generator"}


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def _python_files() -> list[Path]:
    return sorted(APP.rglob("*.py"))


def test_web_process_never_imports_the_ml_stack() -> None:
    probe = "import sys, app.main; bad = {'torch', 'transformers'} & sys.modules.keys(); assert not bad, bad"
    subprocess.run([sys.executable, "-c", probe], check=True)


def test_routes_never_import_sqlalchemy() -> None:
    offenders = [
        str(p.relative_to(APP))
        for p in APP.rglob("routes.py")
        if any(name.split(".")[0] == "sqlalchemy" for name in _imports(p))
    ]
    assert offenders == []


def test_nothing_in_app_commits_by_hand() -> None:
    offenders = [str(p.relative_to(APP)) for p in _python_files() if ".commit(" in p.read_text()]
    assert offenders == []


@pytest.mark.parametrize("path", _python_files(), ids=lambda p: str(p.relative_to(APP)))
def test_domains_import_only_domains_below_them(path: Path) -> None:
    parts = path.relative_to(APP).parts
    if len(parts) < 2 or parts[0] not in TIER:
        return
    own = TIER[parts[0]]
    for name in _imports(path):
        pieces = name.split(".")
        if pieces[0] != "app" or len(pieces) < 2 or pieces[1] not in TIER or pieces[1] == parts[0]:
            continue
        assert TIER[pieces[1]] < own, f"{'/'.join(parts)} imports {name}: only lower domains are allowed"


def test_app_main_imports_no_process_module() -> None:
    probe = (
        "import sys, app.main; bad = [m for m in sys.modules if m.startswith('app.') and "
        "m.rsplit('.', 1)[-1] in {'worker', 'trainer', 'generator'}]; assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", probe], check=True)


def test_nothing_imports_app_main() -> None:
    offenders = [
        str(p.relative_to(APP)) for p in _python_files() if p.name != "cli.py" and "app.main" in _imports(p)
    ]
    assert offenders == []


def test_no_grab_bag_modules() -> None:
    banned = {"utils.py", "helpers.py", "common"}
    assert not [p for p in APP.rglob("*") if p.name in banned]
