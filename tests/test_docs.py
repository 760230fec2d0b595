"""The README and the docs/ pages: every relative link lands on a file and a heading, and
the first screen's commands run as written."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from helpers import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lowercase, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    headings = re.findall(r"^#{1,6} (.+)$", text, flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_resolve(page: Path):
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    for target in LINK.findall(text):
        if re.match(r"[a-z]+://", target):
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        assert linked.is_file(), f"{page.name}: {target}"
        if anchor and linked.suffix == ".md":
            assert anchor in anchors(linked), f"{page.name}: {target}"


def test_the_readme_is_a_front_door():
    """What it is, the two commands, the results, the pipeline, where to read on: short."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 300
    for page in PAGES[1:]:
        assert f"(docs/{page.name})" in text, f"README does not link {page.name}"


def test_the_first_screens_scoring_runs_as_written(trained, tmp_path):
    """The README's first commands after `make run`, on a run's outputs (`.venv/bin/` is this
    test's venv): three patients scored, no file that the clone lacks."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(r"Then score three patients.*?```bash\n(.*?)```", text, flags=re.S)
    assert found, "the README's scoring snippet is gone"
    (tmp_path / "data/raw").mkdir(parents=True)
    shutil.copy2(trained.path / "data/raw/heart.csv", tmp_path / "data/raw/heart.csv")
    (tmp_path / "models").symlink_to(trained.path / "models")
    script = "set -euo pipefail\n" + found.group(1).replace(".venv/bin/", "")
    result = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, env=trained.env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("row,P(HeartDisease=1),prediction,set,")
    assert [line.split(",")[0] for line in lines[1:]] == ["1", "2", "3"]


def test_the_layout_lists_every_module():
    """docs/pipeline.md's Layout names each module and package of src/topoxai."""
    text = (ROOT / "docs/pipeline.md").read_text(encoding="utf-8")
    block = text.split("## Layout", 1)[1].split("```")[1]
    package = ROOT / "src/topoxai"
    modules = [p.stem for p in package.glob("*.py") if p.name != "__init__.py"]
    modules += [p.name for p in package.iterdir() if (p / "__init__.py").is_file()]
    unlisted = [m for m in sorted(modules) if not re.search(rf"\b{m}(\.py|/)", block)]
    assert not unlisted, f"docs/pipeline.md's Layout lacks {unlisted}"
