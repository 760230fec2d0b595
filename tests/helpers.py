"""What tests share that is not a fixture: project paths, tiny settings, a git + DVC repo
driver, a umask block and a loopback server that answers with fixed bytes."""

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dvc.utils.serialize import modify_yaml

ROOT = Path(__file__).resolve().parents[1]
# The params tests are written against; users edit the live params.yaml, tests must not care.
PARAMS = ROOT / "tests" / "params.yaml"
RUN_LIMIT = 15 * 60  # seconds for one command in a test repo; the longest takes about 2 min
TINY = {"hidden": [16, 16], "max_epochs": 4, "patience": 2}
# The in-process small_run fixture's network (conftest.py).
SMALL = {"hidden": (8,), "max_epochs": 3, "patience": 2}


@contextmanager
def process_state_kept() -> Iterator[None]:
    """Training sets process-wide state (torch threads and RNG, PL_GLOBAL_SEED): put it back."""
    import torch

    threads, env = torch.get_num_threads(), dict(os.environ)
    try:
        with torch.random.fork_rng(devices=[]):
            yield
    finally:
        torch.set_num_threads(threads)
        os.environ.clear()
        os.environ.update(env)


def isolated_env(home: Path) -> dict[str, str]:
    """For commands in a test repo: this venv's tools first, a private HOME, a fixed git author."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["DVC_NO_ANALYTICS"] = "1"
    env["HOME"] = str(home)  # no user-level git or DVC config leaks in
    # Under `make test`, a `make` run by a test would see itself as a sub-make and print
    # "Entering directory" lines into the output the test reads.
    for name in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS"):
        env.pop(name, None)
    for role in ("AUTHOR", "COMMITTER"):
        env[f"GIT_{role}_NAME"] = "test"
        env[f"GIT_{role}_EMAIL"] = "test@example.invalid"
    return env


class Repo:
    """A git + DVC repository in a temporary folder, and the commands tests run in it."""

    def __init__(self, path: Path, env: dict[str, str]) -> None:
        self.path, self.env = path, env

    @classmethod
    def of_project(cls, path: Path, params: Path = PARAMS) -> "Repo":
        """This project's files (tracked and not ignored, so no outputs), in a new git repo,
        with `params` as its params.yaml."""
        repo = cls(path, isolated_env(path.parent))
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT, capture_output=True, check=True,
        ).stdout.decode().split("\0")  # fmt: skip
        for name in filter(None, listed):
            if (ROOT / name).is_file():
                (path / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / name, path / name)
        shutil.copy2(params, path / "params.yaml")
        repo.run("git", "init", "-q", "-b", "main")
        repo.commit("copy")
        return repo

    @classmethod
    def clone(cls, origin: "Repo", path: Path) -> "Repo":
        """A `git clone` of `origin`, as a new user would get it."""
        subprocess.run(
            ["git", "clone", "-q", str(origin.path), str(path)], check=True, env=origin.env
        )
        return cls(path, origin.env)

    def run(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        # A bound, so that a command that never returns (or a daemon it left holding the
        # output pipes) fails its test instead of stalling the suite until CI's limit.
        result = subprocess.run(
            cmd, cwd=self.path, env=self.env, capture_output=True, text=True, timeout=RUN_LIMIT
        )
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def dvc(self, *args: str, check: bool = True) -> str:
        result = self.run("dvc", *args, check=check)
        return result.stdout + result.stderr

    def commit(self, message: str) -> None:
        self.run("git", "add", "-A")
        self.run("git", "commit", "-q", "--allow-empty", "-m", message)

    def set_params(self, **train: object) -> None:
        # DVC's own writer, as `dvc exp run -S` uses it: the file keeps its form.
        with modify_yaml(self.path / "params.yaml") as params:
            params["train"].update(train)

    def metrics(self) -> dict:
        return json.loads((self.path / "reports/train/metrics.json").read_text())


@contextmanager
def umask(mask: int) -> Iterator[None]:
    """A known umask for a block; safe only because the tests create files from one thread."""
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


class RawServer:
    """A loopback TCP server answering every connection with fixed bytes, valid HTTP or not."""

    def __init__(self, reply: bytes) -> None:
        self.reply = reply
        self.hits = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def __enter__(self) -> "RawServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._listener.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            self.hits += 1
            with conn:
                conn.settimeout(2)
                try:
                    request = b""
                    while b"\r\n\r\n" not in request and (data := conn.recv(1 << 16)):
                        request += data
                    conn.sendall(self.reply)
                    conn.shutdown(socket.SHUT_WR)
                    # Read until the client closes: closing with its data unread would send a
                    # reset, which can overtake the reply.
                    while conn.recv(1 << 16):
                        pass
                except OSError:
                    pass  # the client gave up half-way through the reply, as it may
