"""The ClearML hook against the real SDK in offline mode, and its fail-fast checks."""

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import yaml
from helpers import ROOT, TINY, RawServer, Repo

from topoxai.tracking import _ping

pytest.importorskip("clearml")


def _clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """No ClearML config or state from the user or from other tests."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLEARML_", "TRAINS_"))}
    env["HOME"] = str(tmp_path / "home")
    env["CLEARML_CACHE_DIR"] = str(tmp_path / "clearml")
    env.update(extra)
    return env


def run_train(
    trained: Repo, tmp_path: Path, env: dict[str, str], **clearml: object
) -> subprocess.CompletedProcess[str]:
    """The train stage on the tiny pipeline's data, writing into tmp_path only."""
    params = yaml.safe_load((trained.path / "params.yaml").read_text())
    params["train"].update(TINY, max_epochs=3, patience=5)
    params["clearml"].update(clearml)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    cmd = [
        sys.executable, str(ROOT / "src/stages/train.py"), "--params", str(tmp_path / "params.yaml"),
        "--data", str(trained.path / "data/processed"),
        "--model", str(tmp_path / "models"), "--live", str(tmp_path / "live"),
    ]  # fmt: skip
    return subprocess.run(
        cmd, cwd=trained.path, env=env, capture_output=True, text=True, check=False
    )


def test_offline_session_records_params_scalars_model_and_data(trained, tmp_path):
    result = run_train(
        trained, tmp_path, _clean_env(tmp_path), enabled=True, offline=True, tags=["ci"]
    )
    assert result.returncode == 0, result.stderr
    sessions = list((tmp_path / "clearml/offline").glob("*.zip"))
    assert len(sessions) == 1
    assert f"clearml: recorded {sessions[0]}" in result.stdout
    # The zip is what `clearml-task --import-offline-session` uploads: assert on it.
    session = zipfile.ZipFile(sessions[0])
    assert {"task.json", "metrics.jsonl", "models/model.safetensors"} <= set(session.namelist())
    task = json.loads(session.read("task.json"))

    assert task["project_name"] == "Heart Disease Classification" and task["type"] == "training"
    hyper = task["hyperparams"]["train"]
    assert (hyper["lr"]["value"], hyper["lr"]["type"]) == ("0.01", "float")
    assert hyper["seed"]["value"] == "42" and hyper["hidden"]["value"] == "[16, 16]"
    assert "seed: 42" in task["configuration"]["params.yaml"]["value"]

    # The data version comes from the model card: the sha256 of the very files trained on.
    props = {k: v["value"] for k, v in task["hyperparams"]["properties"].items()}
    raw = hashlib.sha256((trained.path / "data/raw/heart.csv").read_bytes()).hexdigest()
    train = hashlib.sha256((trained.path / "data/processed/train.parquet").read_bytes()).hexdigest()
    assert (props["raw_sha256"], props["train_sha256"]) == (raw, train)
    assert len(props["git_commit"]) == 40
    assert set(task["tags"]) == {"ci", f"data:{train[:8]}"}

    events = [e for line in session.read("metrics.jsonl").splitlines() for e in json.loads(line)]
    curves = {(e["metric"], e["variant"], e["iter"]) for e in events if e["metric"] != "Summary"}
    assert curves == {
        (m, s, i) for m, s in [("loss", "train"), ("loss", "val"), ("f1", "val")] for i in range(3)
    }
    summary = {
        e["variant"]: e["value"]
        for e in events
        if e["metric"] == "Summary" and not e.get("model_event")
    }
    metrics = json.loads((tmp_path / "live/metrics.json").read_text())
    assert summary["test/f1"] == metrics["test"]["f1"]
    assert summary["baseline/logreg/roc_auc"] == metrics["baseline"]["logreg"]["roc_auc"]

    [model] = task["offline_output_models"]
    assert model["init"]["framework"] == "PyTorch"
    assert model["init"]["label_enumeration"] == {"0": 0, "1": 1}
    card = json.loads((tmp_path / "models/model.json").read_text())
    assert model["init"]["config_dict"] == card
    assert Path(model["weights"]["weights_filename"]).name == "model.safetensors"
    weights = session.read("models/model.safetensors")
    assert weights == (tmp_path / "models/model.safetensors").read_bytes()
    model_events = [e for e in events if e.get("model_event")]
    assert [(e["variant"], e["value"]) for e in model_events] == [
        ("test/roc_auc", metrics["test"]["roc_auc"])
    ]


def _assert_failed_fast(
    result: subprocess.CompletedProcess[str], seconds: float, limit: float, tmp_path: Path
) -> None:
    assert result.returncode == 1
    assert seconds < limit, seconds
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "clearml.offline: true" in result.stderr and "clearml-init" in result.stderr
    assert not (tmp_path / "models").exists() and not (tmp_path / "live").exists()


def test_no_configuration_fails_in_seconds(trained, tmp_path):
    start = time.perf_counter()
    result = run_train(trained, tmp_path, _clean_env(tmp_path), enabled=True, offline=False)
    _assert_failed_fast(result, time.perf_counter() - start, 5, tmp_path)
    assert result.stderr.startswith("error: ClearML is not configured")


def test_unreachable_server_fails_in_seconds(trained, tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = _clean_env(
        tmp_path,
        CLEARML_API_HOST=f"http://127.0.0.1:{port}",
        CLEARML_WEB_HOST=f"http://127.0.0.1:{port}",
        CLEARML_FILES_HOST=f"http://127.0.0.1:{port}",
        CLEARML_API_ACCESS_KEY="key",
        CLEARML_API_SECRET_KEY="secret-not-to-be-printed",
    )
    start = time.perf_counter()
    result = run_train(trained, tmp_path, env, enabled=True, offline=False)
    _assert_failed_fast(result, time.perf_counter() - start, 30, tmp_path)
    assert f"ClearML server http://127.0.0.1:{port} is not reachable" in result.stderr
    assert "secret-not-to-be-printed" not in result.stderr + result.stdout


def test_disabled_hook_never_imports_clearml(trained, tmp_path):
    code = (
        "import runpy, sys\n"
        "sys.argv = sys.argv[1:]\n"
        "try:\n    runpy.run_path(sys.argv[0], run_name='__main__')\n"
        "finally:\n    print('clearml' in sys.modules, file=sys.stderr)\n"
    )
    params = yaml.safe_load((trained.path / "params.yaml").read_text())
    params["train"].update(max_epochs=1)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    cmd = [
        sys.executable, "-c", code, str(ROOT / "src/stages/train.py"), "--params", str(tmp_path / "params.yaml"),
        "--data", str(trained.path / "data/processed"),
        "--model", str(tmp_path / "models"), "--live", str(tmp_path / "live"),
    ]  # fmt: skip
    result = subprocess.run(
        cmd, cwd=trained.path, capture_output=True, text=True, check=False, env=_clean_env(tmp_path)
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip().splitlines()[-1] == "False"


# --- _ping, against raw loopback servers -----------------------------------------------

LONG_HEADER = b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 70_000 + b"\r\n\r\n"


def _http_reply(body: bytes, status: bytes = b"200 OK") -> bytes:
    head = b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
    return b"HTTP/1.1 " + status + b"\r\n" + head + body


@pytest.mark.usefixtures("no_proxy")
@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        pytest.param(_http_reply(b'{"meta": {"result_code": 200}}'), (True, "ok"), id="clearml"),
        pytest.param(
            _http_reply(b'{"meta": {"result_code": 401}}', b"401 Unauthorized"),
            (True, "ok"),
            id="clearml-401",
        ),
        pytest.param(
            _http_reply(b"[]"), (False, "the answer is not from a ClearML API server"), id="json"
        ),
        pytest.param(
            b"SSH-2.0-OpenSSH_9.6\r\n",
            (False, "the answer is not valid HTTP (BadStatusLine: 'SSH-2.0-OpenSSH_9.6\\r\\n')"),
            id="not-http",
        ),
        pytest.param(
            LONG_HEADER,
            (
                False,
                "the answer is not valid HTTP "
                "(LineTooLong: 'got more than 65536 bytes when reading header line')",
            ),
            id="header-line-too-long",
        ),
    ],
)
def test_ping_against_a_loopback_server(reply, expected):
    with RawServer(reply) as srv:
        assert _ping(srv.url) == expected
        assert srv.hits == 1


@pytest.mark.parametrize(
    ("host", "why"),
    [
        ("localhost:8008", "the address needs http:// or https://"),
        ("api.clear.ml", "the address needs http:// or https://"),
        ("http://127.0.0.1:abc", "nonnumeric port: 'abc'"),
    ],
)
def test_ping_a_malformed_host_is_not_reachable(host, why):
    assert _ping(host) == (False, why)
