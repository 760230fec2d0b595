"""The optional ClearML hook of the train stage: one task per run, with its model and data version.

Imported only when `clearml.enabled` is true. Credentials come from the user's ClearML
configuration (clearml.conf or CLEARML_API_* variables); nothing here reads, prints or
stores them.
"""

import dataclasses
import http.client
import importlib.util
import json
import os
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from topoxai.errors import UserError, describe_bad_answer
from topoxai.params import ClearMLParams, TrainParams

PING_TIMEOUT = 5.0
HOW_TO_FIX = (
    "run `clearml-init`, or set CLEARML_API_HOST, CLEARML_API_ACCESS_KEY and "
    "CLEARML_API_SECRET_KEY, or set clearml.offline: true"
)


class ClearMLError(UserError):
    pass


def preflight(cfg: ClearMLParams) -> None:
    """Fail in seconds, before any training, when this run could not be recorded.

    Task.init against an unreachable server retries silently for many minutes, so the
    server is pinged here first.
    """
    if importlib.util.find_spec("clearml") is None:
        raise ClearMLError(
            "clearml.enabled is true but the clearml package is not installed: "
            "pip install -e '.[clearml]' (or set clearml.enabled: false)"
        )
    if cfg.offline:
        return
    host = _configured_api_host()
    if host is None:
        raise ClearMLError(f"ClearML is not configured: {HOW_TO_FIX}")
    reachable, why = _ping(host)
    if not reachable:
        raise ClearMLError(f"ClearML server {host} is not reachable ({why}): {HOW_TO_FIX}")


def _configured_api_host() -> str | None:
    """The API server of the user's configuration, or None when it holds no credentials."""
    from clearml.backend_api.session import Session
    from clearml.backend_api.session.defs import ENV_ACCESS_KEY, ENV_AUTH_TOKEN, ENV_SECRET_KEY
    from clearml.config import config_obj

    # The same lookup as the SDK's own session: environment first, then clearml.conf.
    access = ENV_ACCESS_KEY.get(default=config_obj.get("api.credentials.access_key", None))
    secret = ENV_SECRET_KEY.get(default=config_obj.get("api.credentials.secret_key", None))
    if not ENV_AUTH_TOKEN.get() and not (access and secret):
        return None
    return str(Session.get_api_server_host())


def _ping(host: str) -> tuple[bool, str]:
    """POST <host>/debug.ping; only a ClearML API answer (a JSON object with `meta`) counts."""
    if not host.startswith(("http://", "https://")):  # urllib would say "unknown url type"
        return False, "the address needs http:// or https://"
    try:
        body = _post_ping(host)
    except (OSError, ValueError, http.client.InvalidURL) as err:  # URLError is an OSError
        return False, str(getattr(err, "reason", err))
    except http.client.HTTPException as err:  # whatever answered does not speak HTTP
        return False, describe_bad_answer(err)
    try:
        answer = json.loads(body or b"null")
    except ValueError:
        answer = None
    if isinstance(answer, dict) and "meta" in answer:
        return True, "ok"
    return False, "the answer is not from a ClearML API server"


def _post_ping(host: str) -> bytes:
    request = urllib.request.Request(
        host.rstrip("/") + "/debug.ping",
        data=b"{}",
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=PING_TIMEOUT) as response:
            return response.read(4096)
    except urllib.error.HTTPError as err:  # 401 and friends still come from a ClearML server
        return err.read(4096)


def record(
    cfg: ClearMLParams,
    *,
    train: TrainParams,
    seed: int,
    params_file: Path,
    history: list[dict[str, float]],
    test: dict[str, float],
    baseline: dict[str, dict[str, float]],
    card: dict[str, Any],
    weights: Path,
) -> str:
    """Create a ClearML training task for this run and close it; return where it went."""
    # torch and lightning are imported by now: Task.init must come after them.
    from clearml import OutputModel, Task

    environ = dict(
        os.environ
    )  # set_offline/Task.init export variables; children must not inherit them
    # The default subprocess reporter makes close() take ~10 s offline; in-process it is < 2 s.
    Task._report_subprocess_enabled = False  # type: ignore[assignment]
    Task.set_offline(cfg.offline)
    try:
        task: Any = Task.init(
            project_name=cfg.project,
            task_name=cfg.task,
            task_type=Task.TaskTypes.training,
            tags=list(cfg.tags),
            reuse_last_task_id=False,
            # Only what we register: no torch.save hooks (every checkpoint would become a
            # model), no argparse or console capture, no background repository scan.
            auto_connect_frameworks={
                "detect_repository": False,
                **dict.fromkeys(_FRAMEWORKS, False),
            },
            auto_connect_arg_parser=False,
            auto_connect_streams=False,
            auto_resource_monitoring=False,
        )
        try:
            # Record what trained: on an agent, values edited in the UI must not replace them
            # (overrides reach training through `dvc exp run -S`, not through ClearML).
            train_params = {"seed": seed, **dataclasses.asdict(train)}
            task.connect(train_params, name="train", ignore_remote_overrides=True)
            task.connect_configuration(
                params_file, name="params.yaml", ignore_remote_overrides=True
            )
            # The data version is the model card's (sha256 of the raw and training CSVs): it
            # describes the data this model was trained on, whatever dvc.lock says.
            data = card["data"]
            task.set_user_properties(**data, **git_version())
            task.add_tags([f"data:{data['train_sha256'][:8]}"])

            logger = task.get_logger()
            for epoch, metrics in enumerate(history):
                for name, value in metrics.items():
                    split, metric = name.split("/")
                    logger.report_scalar(title=metric, series=split, value=value, iteration=epoch)
            for name, value in test.items():
                logger.report_single_value(f"test/{name}", value)
            for model_name, scores in baseline.items():
                for name, value in scores.items():
                    logger.report_single_value(f"baseline/{model_name}/{name}", value)

            model = OutputModel(
                task=task,
                name=cfg.task,
                framework="PyTorch",
                label_enumeration={str(label): i for i, label in enumerate(card["classes"])},
                tags=list(cfg.tags),
                config_dict=card,
            )
            # clearml 2.1.12 offline: update_weights fails on a placeholder model ('DummyModel'
            # has no attribute 'locked', clearml issue 1243) unless a model-level report
            # creates the real one first. Online the report is just a useful number.
            model.report_single_value("test/roc_auc", test["roc_auc"])
            model.update_weights(weights_filename=str(weights), auto_delete_file=False)
            # Without the subprocess reporter the model's events are written only after close()
            # has zipped the offline session; flush them first so the zip is complete.
            reporter: Any = model._reporter
            reporter.flush()
            reporter.wait_for_events(timeout=30)
        finally:
            # Also on failure: an open task keeps background threads alive.
            task.close()
        if cfg.offline:
            return f"{task.get_offline_mode_folder()}.zip"
        return str(task.get_output_log_web_page())
    finally:
        os.environ.clear()
        os.environ.update(environ)


_FRAMEWORKS = (
    "pytorch", "tensorboard", "matplotlib", "scikit", "joblib", "tensorflow", "xgboost",
    "lightgbm", "catboost", "fastai", "hydra", "jsonargparse", "megengine", "gradio",
    "tfdefines",
)  # fmt: skip


def git_version() -> dict[str, str]:
    def git(*args: str) -> str:
        try:
            result = subprocess.run(["git", *args], capture_output=True, text=True, check=False)
        except OSError:  # no git on this machine
            return ""
        return result.stdout.strip() if result.returncode == 0 else ""

    commit = git("rev-parse", "HEAD")
    if not commit:
        return {}
    return {"git_commit": commit, "git_dirty": str(bool(git("status", "--porcelain")))}
