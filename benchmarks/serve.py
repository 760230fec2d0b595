"""`topoxai serve` under load, on this machine's loopback only, against a floor.

Needs a trained model folder and the raw table (run `make run`). Starts, each in its own
process on a free 127.0.0.1 port:
- the server as users run it (`topoxai serve`), and
- the floor: a FastAPI app on uvicorn, the same stack, that only runs the network's forward
  pass on the features it is sent (no parsing, flags, sets, ood, or checks);
- with --litserve, LitServe's (Lightning's serving engine) app of the same forward pass, if
  it is installed (it is not a dependency): the comparison that chose the stack.

Then measures, with an asyncio client (httpx) that stops by itself:
- one row per request at 1, 8 and 32 concurrent clients, --seconds each: requests/s, p50
  and p99 latency, errors;
- 1,000- and 10,000-row CSV requests: rows/s, against `topoxai predict` on the same rows;
- predict's cost for one row in-process (the budget: <= 2 ms);
- a --soak of valid and bad requests mixed at 8 clients: 5xx answers and the server's
  resident memory at its start and end.

    python benchmarks/serve.py [--seconds 30] [--soak 300] [--litserve]
"""

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from topoxai.artifacts import load_model  # noqa: E402
from topoxai.predict import table_columns  # noqa: E402

COLUMNS = ["Age", "Sex", "ChestPainType", "RestingBP", "Cholesterol", "FastingBS",
           "RestingECG", "MaxHR", "ExerciseAngina", "Oldpeak", "ST_Slope"]  # fmt: skip
# Bad requests of the soak, one of each kind the tests send.
BAD = [
    (b'[{"Age": 4', "application/json"),
    (b"[]", "application/json"),
    (b'[{"Age": NaN}]', "application/json"),
    (b"[" * 50_000 + b"]" * 50_000, "application/json"),
    (b'[{"age": 1}]', "application/json"),
    (b"Age\n1\n", "text/csv"),
    (b"{}", "text/plain"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "models")
    parser.add_argument("--raw", type=Path, default=ROOT / "data/raw/heart.csv")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--soak", type=float, default=300.0, help="seconds; 0 skips it")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--litserve", action="store_true")
    parser.add_argument("--floor-app", choices=["fastapi", "litserve"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.floor_app:  # the child process that serves a floor
        return serve_floor(args.model, args.floor_app, args.port)
    raw = pd.read_csv(args.raw)[COLUMNS]
    one = json.loads(raw.head(1).to_json(orient="records"))
    model = load_model(args.model)
    features = {"rows": model.spec.transform(raw.head(1)).astype("float32").tolist()}

    print(f"predict, one row in-process: {in_process_ms(model, raw.head(1)):.2f} ms median")
    print("\none row per request (loopback):")
    print(f"{'server':<10} {'clients':>7} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    apps = [("topoxai", topoxai_server, one), ("floor", floor_server("fastapi"), features)]
    if args.litserve:
        apps.append(("litserve", floor_server("litserve"), features))
    for name, launch, body in apps:
        with launch(args.model) as url:
            for clients in args.clients:
                r = asyncio.run(load(url, [body], clients, args.seconds))
                print(
                    f"{name:<10} {clients:>7} {r['rate']:>8.0f} {r['p50']:>8.2f} "
                    f"{r['p99']:>8.2f} {r['errors']:>7}"
                )

    print("\nmany rows per request (CSV in, JSON out) against `topoxai predict`:")
    with topoxai_server(args.model) as url, tempfile.TemporaryDirectory() as tmp:
        for n in (1_000, 10_000):
            rows = raw.sample(n, replace=True, random_state=0)
            csv = Path(tmp) / f"{n}.csv"
            rows.to_csv(csv, index=False)
            served = rows_per_second(url, csv.read_bytes(), n)
            start = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "topoxai.cli", "predict", "--model", str(args.model),
                 "--input", str(csv), "--output", str(Path(tmp) / "out.csv")],
                check=True, capture_output=True,
            )  # fmt: skip
            command = n / (time.perf_counter() - start)
            print(
                f"{n:>6} rows: served {served:,.0f} rows/s, the command {command:,.0f} rows/s "
                f"({served / command:.1f}x)"
            )

    if args.soak:
        with topoxai_server(args.model) as url:
            pid = SERVER_PID[0]
            asyncio.run(load(url, [one], 8, 5))  # warm, then measure
            before = rss_mb(pid)
            r = asyncio.run(load(url, [one, *BAD], 8, args.soak))
            after = rss_mb(pid)
            print(
                f"\nsoak, {args.soak:.0f} s at 8 clients, valid and bad requests mixed: "
                f"{r['count']:,} requests, {r['5xx']} answered 5xx, {r['errors']} failed; "
                f"resident memory {before:.0f} MB -> {after:.0f} MB "
                f"({100 * (after / before - 1):+.1f}%)"
            )


def in_process_ms(model, row: pd.DataFrame) -> float:  # type: ignore[no-untyped-def]
    for _ in range(50):
        table_columns(model, row, notes=[])
    times = []
    for _ in range(1000):
        start = time.perf_counter()
        table_columns(model, row, notes=[])
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


async def load(url: str, bodies: list, clients: int, seconds: float) -> dict:  # type: ignore[type-arg]
    """`clients` loops posting bodies in turn until `seconds` pass (bad ones are bytes)."""
    latencies: list[float] = []
    counts = {"errors": 0, "5xx": 0}
    stop = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30, trust_env=False) as c:

        async def client(k: int) -> None:
            i = k
            while time.perf_counter() < stop:
                body = bodies[i % len(bodies)]
                i += 1
                start = time.perf_counter()
                try:
                    if isinstance(body, tuple):
                        r = await c.post("/predict", content=body[0],
                                         headers={"content-type": body[1]})  # fmt: skip
                    else:
                        r = await c.post("/predict", json=body)
                except httpx.HTTPError:
                    counts["errors"] += 1
                    continue
                if r.status_code >= 500:
                    counts["5xx"] += 1
                elif r.status_code >= 400 and not isinstance(body, tuple):
                    counts["errors"] += 1  # a valid request refused
                else:
                    latencies.append(time.perf_counter() - start)

        began = time.perf_counter()
        await asyncio.gather(*(client(k) for k in range(clients)))
        elapsed = time.perf_counter() - began
    ordered = sorted(latencies) or [float("nan")]
    return {
        "rate": len(latencies) / elapsed,
        "p50": 1000 * ordered[len(ordered) // 2],
        "p99": 1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
        "count": len(latencies) + counts["errors"] + counts["5xx"],
        **counts,
    }


def rows_per_second(url: str, body: bytes, n: int) -> float:
    times = []
    with httpx.Client(base_url=url, timeout=120, trust_env=False) as c:
        for _ in range(4):
            start = time.perf_counter()
            r = c.post("/predict", content=body, headers={"content-type": "text/csv"})
            r.raise_for_status()
            assert len(r.json()["predictions"]) == n
            times.append(time.perf_counter() - start)
    return n / statistics.median(times[1:])  # the first warms the caches


SERVER_PID = [0]


def ready(url: str) -> None:
    """Wait for GET /health to answer 200: LitServe listens before its workers are up."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", trust_env=False).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url}: not ready after 120 s")


@contextmanager
def launched(cmd: list[str], pattern: str) -> Iterator[str]:
    """A server process, until its log names its URL; stopped on the way out."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("TOPOXAI_TOKEN", None)
    # A session of its own: LitServe's worker processes are stopped with it.
    process = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        start_new_session=True,
    )  # fmt: skip
    assert process.stdout is not None
    deadline = time.monotonic() + 120
    for line in process.stdout:
        if found := re.search(pattern, line):
            break
        if time.monotonic() > deadline:
            break
    else:
        found = None
    if not found:
        process.kill()
        raise SystemExit(f"{cmd[:4]}: the server did not start")
    SERVER_PID[0] = process.pid
    ready(found.group(1))
    # The access log, a line per request, is read and dropped: a full pipe would stop it.
    drain = subprocess.Popen(["cat"], stdin=process.stdout, stdout=subprocess.DEVNULL)
    try:
        yield found.group(1)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # any worker left behind
        drain.wait(timeout=30)


@contextmanager
def topoxai_server(model: Path) -> Iterator[str]:
    cmd = [sys.executable, "-m", "topoxai.cli", "serve", "--model", str(model), "--port", "0"]
    with launched(cmd, r"on (http://127\.0\.0\.1:\d+)") as url:
        yield url


def floor_server(kind: str):  # type: ignore[no-untyped-def]
    @contextmanager
    def launch(model: Path) -> Iterator[str]:
        port = free_port()
        cmd = [sys.executable, __file__, "--floor-app", kind, "--model", str(model),
               "--port", str(port)]  # fmt: skip
        with launched(cmd, r"on (http://127\.0\.0\.1:\d+)") as url:
            yield url

    return launch


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_floor(model_dir: Path, kind: str, port: int) -> None:
    """The forward pass alone, behind the same stack: features in, probabilities out."""
    if kind == "litserve":
        server = litserve.LitServer(LitForward(model_dir), accelerator="cpu")
        server.run(port=port, host="127.0.0.1", generate_client_file=False)
        return
    import uvicorn
    from fastapi import FastAPI, Request
    from starlette.concurrency import run_in_threadpool

    net = load_model(model_dir).net
    app = FastAPI()

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/predict")
    async def predict(request: Request) -> dict[str, list[float]]:
        rows = json.loads(await request.body())["rows"]
        return {"probability": await run_in_threadpool(forward, net, rows)}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="info", access_log=False)


def forward(net, rows: list[list[float]]) -> list[float]:  # type: ignore[no-untyped-def]
    import torch

    with torch.no_grad():
        logits = net(torch.tensor(rows, dtype=torch.float32))
        return torch.softmax(logits.double(), dim=1)[:, 1].tolist()


try:  # LitServe is not a dependency: --litserve compares with it where it is installed
    import litserve

    class LitForward(litserve.LitAPI):  # type: ignore[misc]
        """The forward pass as a LitServe API (module level: its workers are spawned)."""

        def __init__(self, model_dir: Path) -> None:
            super().__init__()
            self.model_dir = model_dir

        def setup(self, device: str) -> None:
            self.net = load_model(self.model_dir).net

        def decode_request(self, request: dict) -> list[list[float]]:  # type: ignore[type-arg]
            return request["rows"]

        def predict(self, rows: list[list[float]]) -> list[float]:
            return forward(self.net, rows)

        def encode_response(self, output: list[float]) -> dict[str, list[float]]:
            return {"probability": output}

except ImportError:
    litserve = None


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024  # type: ignore[union-attr]


if __name__ == "__main__":
    main()
