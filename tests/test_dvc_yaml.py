"""dvc.yaml stays honest: each stage's code deps are exactly what its script imports."""

import ast
from pathlib import Path

import pytest
import yaml
from helpers import ROOT

PACKAGE = ROOT / "src" / "topoxai"
STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def module_files(name: str) -> list[Path]:
    """The files importing `topoxai.<name>` runs: src/topoxai/<name>.py, or a package's
    <name>/__init__.py, and the __init__.py of every package above it (the top one's is
    added by imported_files). Nothing for a name that is not a module of ours."""
    parts = name.split(".")
    if parts[0] != "topoxai" or len(parts) < 2:
        return []
    module, package = PACKAGE.joinpath(*parts[1:]), PACKAGE.joinpath(*parts[1:]) / "__init__.py"
    found = module.with_suffix(".py") if module.with_suffix(".py").is_file() else package
    if not found.is_file():
        return []
    return [found, *(PACKAGE.joinpath(*parts[1:i], "__init__.py") for i in range(2, len(parts)))]


def imported_files(path: Path) -> set[Path]:
    """The package modules one file imports, lazy imports inside functions included."""
    found: set[Path] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            # `from topoxai import mapper` imports a module; `from topoxai.x import f` does not
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        else:
            continue
        found.update(f for name in names for f in module_files(name))
    if found:
        found.add(PACKAGE / "__init__.py")  # runs on every import of the package
    return found


def closure(script: Path) -> set[Path]:
    seen, todo = {script}, [script]
    while todo:
        for path in imported_files(todo.pop()) - seen:
            seen.add(path)
            todo.append(path)
    return seen


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_code_deps_are_the_scripts_import_closure(stage: str):
    spec = STAGES[stage]
    script = next(word for word in spec["cmd"].split() if word.endswith(".py"))
    expected = {str(p.relative_to(ROOT)) for p in closure(ROOT / script)}
    listed = {d for d in spec["deps"] if d.endswith(".py")}
    assert listed == expected, (
        f"missing: {sorted(expected - listed)}, not imported: {sorted(listed - expected)}"
    )


def test_closure_follows_lazy_and_from_package_imports():
    found = {p.relative_to(ROOT).as_posix() for p in closure(ROOT / "src/stages/explain.py")}
    assert {f"src/topoxai/{name}" for name in ("explain/__init__.py", "explain/layers.py",
            "explain/mapper.py", "explain/topology.py", "errors.py", "__init__.py")} <= found  # fmt: skip
