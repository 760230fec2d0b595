"""`python -m topoxai.agent exp run -S ...`: DVC's own CLI, as a ClearML agent must start it.

A ClearML agent runs a task's module with its virtualenv's interpreter but leaves PATH as it
was, so the bare `python` of dvc.yaml's stage commands would be another interpreter, or none
("python: not found"); and its fresh clone has no git identity, without which `dvc exp run`
stops ("Git user name and email must be configured"). This puts the running interpreter's
folder first on PATH, gives git an identity only where none is configured, and hands every
argument to DVC unchanged.
"""

import os
import subprocess
import sys
from pathlib import Path

IDENTITY = {"name": "clearml-agent", "email": "clearml-agent@localhost"}


def main(argv: list[str] | None = None) -> int:
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])
    for key, value in IDENTITY.items():
        variables = [f"GIT_{role}_{key.upper()}" for role in ("AUTHOR", "COMMITTER")]
        configured = subprocess.run(["git", "config", f"user.{key}"], capture_output=True)
        if configured.returncode != 0:  # git config, or GIT_* variables already set, win
            for name in variables:
                os.environ.setdefault(name, value)

    from dvc.cli import main as dvc

    return dvc(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
