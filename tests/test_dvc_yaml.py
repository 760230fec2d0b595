"""dvc.yaml stays honest: each stage's code deps are exactly what its script imports."""

import ast
from pathlib import Path

import pytest
import yaml
from helpers import ROOT

PACKAGE = ROOT / "src" / "topoxai"
STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def module_file(name: str) -> Path | None:
    """src/topoxai/<name>.py for a `topoxai.<name>` module, None for anything else."""
    parts = name.split(".")
    if parts[0] != "topoxai":
        return None
    path = PACKAGE.joinpath(*parts[1:]).with_suffix(".py")
    return path if len(parts) > 1 and path.is_file() else None


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
        found.update(f for f in map(module_file, names) if f is not None)
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
    found = {p.name for p in closure(ROOT / "src/stages/explain.py")}
    assert {"explain.py", "mapper.py", "topology.py", "errors.py", "__init__.py"} <= found
