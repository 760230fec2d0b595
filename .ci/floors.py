"""Print pip constraints that pin every runtime requirement of pyproject.toml to its floor.

`make test-floors` installs the project with them and runs the fast tests, so a floor that
no longer works with the code (an API it lacks, a wheel that no longer builds) fails CI.
torch is the exception: its floor from the registry is a multi-GB CUDA build, so the CPU
build pinned in constraints.txt stands in for it.
"""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
extras = project["optional-dependencies"]
requirements = project["dependencies"] + extras["pipeline"] + extras["serve"] + extras["clearml"]
pinned = dict(
    re.findall(r"^([A-Za-z0-9_.\-]+)==(\S+)", (ROOT / "constraints.txt").read_text(), re.M)
)
for requirement in requirements:
    name, floor = re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*(?:>=\s*([^,;\s]+))?.*", requirement).groups()
    if name == "torch":
        print(f"torch=={pinned['torch']}")
    elif floor:
        print(f"{name}=={floor}")
