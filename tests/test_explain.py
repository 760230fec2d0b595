"""The explain stage: params, the untrained control, and the whole folder on a tiny model."""

import copy
import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import lightning
import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from helpers import PARAMS

from topoxai.artifacts import ModelError, architecture, save_model
from topoxai.classifier import Classifier
from topoxai.data import split_path, write_split
from topoxai.errors import DataError
from topoxai.explain.inputs import in_float64, layer_names, load_inputs
from topoxai.explain.layers import topology_report
from topoxai.explain.sample import draw, simple, stratified
from topoxai.explain.stage import explain
from topoxai.features import Preprocessor, fit_preprocessor
from topoxai.model import MLP
from topoxai.params import ExplainParams, ParamsError, parse
from topoxai.pool import Pool

ROOT = Path(__file__).resolve().parents[1]
TINY = ExplainParams(
    layers=("input", "hidden", "logits"),
    k=4,
    max_points=400,
    max_test_rows=300,
    hops=2,
    filtration_max=6,
    mapper_cubes=3,
    mapper_overlap=0.5,
    mapper_eps_quantile=0.5,
    mapper_min_samples=1,
    ig_steps=8,
    permutation_repeats=2,
    threads=1,
    resamples=3,
    controls=3,
    jobs=1,
)
OUTPUTS = {
    "metrics.json", "betti.tsv", "layers.tsv", "neural_persistence.tsv", "features.tsv",
    "diagrams.png", "mapper.png", "neural_persistence.png", "mapper.html", "controls.tsv",
}  # fmt: skip


def _rows(data: Path, params: ExplainParams = TINY, seed: int = 0):
    """The rows the stage draws with these params and seed."""
    return draw(data, max_points=params.max_points, max_test_rows=params.max_test_rows, seed=seed)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A processed data folder and a briefly trained (8, 8) model, laid out as the stages do."""
    root = tmp_path_factory.mktemp("explain")
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {"a": rng.normal(size=90), "b": rng.normal(size=90), "c": rng.choice(["x", "y", "z"], 90)}
    )
    frame["t"] = ((frame["a"] + (frame["c"] == "x") + rng.normal(0, 0.5, 90)) > 0.5).astype(int)
    parts = {"train": frame.iloc[:50], "val": frame.iloc[50:70], "test": frame.iloc[70:]}
    spec = fit_preprocessor(parts["train"], target="t", categorical=["c"], source_sha256="s")
    (root / "data").mkdir()
    for name, part in parts.items():
        write_split(split_path(root / "data", name), part, spec)
    (root / "data" / "preprocess.json").write_text(spec.to_json(), encoding="utf-8")

    torch.manual_seed(7)
    net = MLP(len(spec.feature_names), (8, 8), 2)
    initial = copy.deepcopy(net.state_dict())
    x = torch.as_tensor(spec.transform(parts["train"]), dtype=torch.float32)
    y = torch.as_tensor(parts["train"]["t"].to_numpy())
    optimizer = torch.optim.Adam(net.parameters(), lr=0.05)
    for _ in range(30):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        optimizer.step()
    card = {"architecture": architecture(net), "feature_names": spec.feature_names,
            "classes": spec.classes, "training": {"seed": 7}}  # fmt: skip
    save_model(root / "models", net.eval(), spec, card, initial=initial)
    return root


def test_explain_writes_every_output_the_same_way_twice(workspace, tmp_path):
    threads = torch.get_num_threads()
    metrics = explain(
        TINY, seed=0, level=0.95, model_dir=workspace / "models", rows=_rows(workspace / "data"),
        out=tmp_path / "first",
    )  # fmt: skip
    assert torch.get_num_threads() == threads  # restored
    assert {p.name for p in (tmp_path / "first").iterdir()} == OUTPUTS
    assert [p.name for p in tmp_path.iterdir()] == ["first"]  # no temporary folder left

    # The stage script, in a fresh process and with 2 worker processes, writes the very same
    # bytes (DVC's hashes).
    params = _params_file(tmp_path, seed=0, explain={**dataclasses.asdict(TINY), "jobs": 2})
    subprocess.run(
        [sys.executable, str(ROOT / "src/stages/explain.py"), "--params", str(params),
         "--model", str(workspace / "models"), "--data", str(workspace / "data"),
         "--out", str(tmp_path / "second")],
        check=True, capture_output=True,
    )  # fmt: skip
    for name in OUTPUTS:
        first, second = (tmp_path / d / name for d in ("first", "second"))
        assert first.read_bytes() == second.read_bytes(), name

    def no_constants(name: str) -> None:
        raise AssertionError(f"metrics.json holds {name}")

    strict = json.loads((tmp_path / "first/metrics.json").read_text(), parse_constant=no_constants)
    assert strict == metrics
    assert set(metrics) == {"sample", "topology", "neural_persistence", "weight_std", "mapper",
                            "rank_agreement", "neural_persistence_matched",
                            "topological_uncertainty"}  # fmt: skip
    tu = metrics["topological_uncertainty"]
    assert tu["test_mean"] > 0 and tu["reference_rows"] <= 200
    assert tu["errors_auroc"] is None or 0 <= tu["errors_auroc"] <= 1
    # The metrics are the layer table's input and last hidden rows, and the controls' table.
    layers = pd.read_csv(tmp_path / "first/layers.tsv", sep="\t").set_index("layer")
    controls = pd.read_csv(tmp_path / "first/controls.tsv", sep="\t")
    for dim in (0, 1):
        betti = metrics["topology"][f"betti_h{dim}"]
        assert set(betti) == {"input", "input_ci_low", "input_ci_high", "trained", "ci_low",
                              "ci_high", "control", "control_mean", "control_sd", "p", "z"}  # fmt: skip
        column = f"trained_b{dim}"
        assert betti["input"] == layers.loc["input", column]
        assert betti["trained"] == layers.loc["hidden2", column]
        assert betti["control"] == layers.loc["hidden2", f"control_b{dim}"]
        assert (betti["ci_low"], betti["ci_high"]) == pytest.approx(
            (layers.loc["hidden2", f"{column}_low"], layers.loc["hidden2", f"{column}_high"]),
            abs=1e-4,  # metrics.json keeps four decimals
        )
        assert betti["control_mean"] == pytest.approx(controls[f"betti_h{dim}"].mean(), abs=1e-4)
        assert isinstance(betti["trained"], int) and 0 < betti["p"] <= 1
    assert metrics["topology"]["half_sample_rows"] == {"class_0": 24, "class_1": 20}
    assert set(metrics["neural_persistence_matched"]["hidden1"]) == {
        "trained", "control_mean", "control_low", "control_high", "p", "z"
    }  # fmt: skip
    low, high = (metrics["mapper"][f"error_share_impure_{end}"] for end in ("low", "high"))
    assert 0 <= low <= metrics["mapper"]["error_share_impure"] <= high <= 1
    assert 0 < metrics["mapper"]["p_errors_impure"] <= 1
    assert controls.columns.tolist() == ["control", "seed", "betti_h0", "betti_h1"]
    assert len(controls) == 3 and controls["seed"].nunique() == 3
    # Within the caps, every row is analysed.
    assert metrics["sample"] == {
        "seed": 0,
        "topology_rows": metrics["sample"]["topology_rows_available"],
        "topology_rows_available": {"class_0": 49, "class_1": 41},
        "test_rows": 20,
        "test_rows_available": 20,
    }
    assert set(metrics["neural_persistence"]["trained"]) == {"hidden1", "hidden2", "logits", "mean"}
    assert metrics["mapper"]["nodes"] > 0

    layers = pd.read_csv(tmp_path / "first/layers.tsv", sep="\t")
    assert layers["layer"].tolist() == ["input", "hidden1", "hidden2", "logits"]
    # Every row of the tiny data is distinct in the input; a class that collapses is visible.
    distinct = layers[["trained_distinct_class0", "trained_distinct_class1"]].iloc[0]
    assert distinct.tolist() == [49, 41]
    assert layers["depth"].tolist() == [0, 1, 2, 3]
    # The input is the same point cloud for both networks.
    assert (layers["trained_b1"].iloc[0], layers["trained_b0"].iloc[0]) == (
        layers["control_b1"].iloc[0],
        layers["control_b0"].iloc[0],
    )
    betti = pd.read_csv(tmp_path / "first/betti.tsv", sep="\t")
    assert betti.columns.tolist() == ["scale", "input_b0", "input_b1", "trained_b0", "trained_b1",
                                      "control_b0", "control_b1"]  # fmt: skip
    assert betti["scale"].tolist() == list(range(7))  # every hop count to filtration_max
    assert betti.loc[0, "input_b0"] == 90  # scale 0: every (distinct) row its own component
    features = pd.read_csv(tmp_path / "first/features.tsv", sep="\t")
    assert features["feature"].tolist() == ["a", "b", "c"]


def test_control_is_the_saved_initialisation_not_a_replay_of_the_seed(workspace, tmp_path):
    spec = Preprocessor.load(workspace / "data" / "preprocess.json")
    lightning.seed_everything(3, workers=True, verbose=False)  # as topoxai.train does
    torch.rand(1)  # a draw before the network is built: the seed alone no longer rebuilds it
    module = Classifier(len(spec.feature_names), (8, 8), 2)
    started = copy.deepcopy(module.net.state_dict())
    with torch.no_grad():  # stands in for training
        for parameter in module.net.parameters():
            parameter.add_(1.0)
    card = {"architecture": architecture(module.net), "feature_names": spec.feature_names,
            "classes": spec.classes, "training": {"seed": 3}}  # fmt: skip
    save_model(tmp_path / "models", module.net.eval(), spec, card, initial=started)

    control = load_inputs(tmp_path / "models", _rows(workspace / "data")).control
    for name, tensor in started.items():
        assert torch.equal(control.state_dict()[name], tensor), name
    torch.manual_seed(3)
    replayed = MLP(len(spec.feature_names), (8, 8), 2)
    assert not torch.equal(replayed.state_dict()["hidden.0.weight"], started["hidden.0.weight"])


def test_model_without_initial_weights_is_one_error(workspace, tmp_path):
    """A model folder from before the train stage saved initial.safetensors."""
    models = tmp_path / "models"
    shutil.copytree(workspace / "models", models)
    card = json.loads((models / "model.json").read_text())
    del card["files"]["initial.safetensors"]
    (models / "model.json").write_text(json.dumps(card))
    (models / "initial.safetensors").unlink()
    with pytest.raises(ModelError, match="rerun the train stage") as err:
        explain(
            TINY,
            seed=0,
            level=0.95,
            model_dir=models,
            rows=_rows(workspace / "data"),
            out=tmp_path / "o",
        )
    assert "\n" not in str(err.value)
    assert not (tmp_path / "o").exists()


def test_layer_names_expand_hidden_and_follow_depth():
    assert layer_names(("logits", "hidden", "input"), 2) == [
        "input",
        "hidden1",
        "hidden2",
        "logits",
    ]
    assert layer_names(("input", "hidden2", "hidden2"), 3) == ["input", "hidden2"]
    with pytest.raises(ParamsError, match="no layer hidden3"):
        layer_names(("input", "hidden3"), 2)


def test_data_from_another_preprocessing_is_one_error(workspace, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(workspace / "data", data)
    spec = json.loads((data / "preprocess.json").read_text())
    spec["means"][0] += 1.0
    (data / "preprocess.json").write_text(json.dumps(spec))
    with pytest.raises(DataError, match="not the preprocessing"):
        explain(
            TINY,
            seed=0,
            level=0.95,
            model_dir=workspace / "models",
            rows=_rows(data),
            out=tmp_path / "o",
        )
    assert not (tmp_path / "o").exists()


def test_k_larger_than_a_class_is_one_error(workspace, tmp_path):
    params = dataclasses.replace(TINY, k=30)
    with pytest.raises(DataError, match=r"explain.k = 30 needs more than 61 rows per class"):
        explain(params, seed=0, level=0.95, model_dir=workspace / "models", rows=_rows(workspace / "data"),
                out=tmp_path / "o")  # fmt: skip


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"layers": ["input", "hiden1"]}, "explain.layers: unknown layer 'hiden1'"),
        ({"k": 0}, r"explain.k must be >= 1 \(got 0\)"),
        ({"max_points": 9}, r"explain.max_points must be >= 2 \* \(explain.k \+ 1\) = 10: "),
        ({"resamples": 1}, r"explain.resamples must be >= 2 \(got 1\)"),
        ({"controls": 0}, r"explain.controls must be >= 2 \(got 0\)"),
        ({"jobs": 0}, r"explain.jobs must be >= 1 \(got 0\)"),
        ({"max_test_rows": 1}, r"explain.max_test_rows must be >= 2 \(got 1\)"),
        ({"mapper_overlap": 1.0}, r"explain.mapper_overlap must be in \[0, 1\)"),
        ({"mapper_eps_quantile": 0}, r"explain.mapper_eps_quantile must be in \(0, 1\]"),
        ({"hops": 3, "filtration_max": 2}, "explain.filtration_max must be >= explain.hops = 3"),
        ({"hops": 0, "filtration_max": -1}, r"explain.hops must be >= 1 \(got 0\)"),
        ({"filtration_max": 4.0}, "explain.filtration_max must be an integer"),
        ({"ig_steps": "50"}, "explain.ig_steps must be an integer"),
        ({"extra": 1}, "unknown key explain.extra"),
    ],
)
def test_bad_explain_params_are_one_line(change, message):
    raw = {**dataclasses.asdict(TINY), **change}
    raw["layers"] = list(raw["layers"])
    with pytest.raises(ParamsError, match=message) as err:
        parse(ExplainParams, raw, "explain.")
    assert "\n" not in str(err.value)


def _params_file(folder: Path, **sections: object) -> Path:
    """The project's params.yaml with some sections replaced."""
    params = yaml.safe_load(PARAMS.read_text())
    params.update(sections)
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def test_stage_reports_bad_params_before_any_heavy_import(tmp_path):
    params = _params_file(tmp_path, seed=0, explain={**dataclasses.asdict(TINY), "k": 0})
    result = subprocess.run(
        [sys.executable, str(ROOT / "src/stages/explain.py"), "--params", str(params),
         "--model", "m", "--data", "d", "--out", str(tmp_path / "out")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr == f"error: {params}: explain.k must be >= 1 (got 0)\n"
    assert not (tmp_path / "out").exists()


def test_input_and_the_last_hidden_layer_are_always_analysed(workspace, tmp_path):
    """The ratio and Betti curves compare input with the last hidden layer, whatever is listed."""
    params = dataclasses.replace(TINY, layers=("hidden1",))
    metrics = explain(params, seed=0, level=0.95, model_dir=workspace / "models", rows=_rows(workspace / "data"),
                      out=tmp_path / "o")  # fmt: skip
    layers = pd.read_csv(tmp_path / "o/layers.tsv", sep="\t")
    assert layers["layer"].tolist() == ["input", "hidden1", "hidden2"]
    full = explain(TINY, seed=0, level=0.95, model_dir=workspace / "models", rows=_rows(workspace / "data"),
                   out=tmp_path / "full")  # fmt: skip
    assert metrics["topology"] == full["topology"]  # the same two layers compared


def test_stage_names_the_params_file_for_a_layer_the_model_lacks(workspace, tmp_path):
    explain_params = {**dataclasses.asdict(TINY), "layers": ["input", "hidden3"]}
    params = _params_file(tmp_path, seed=0, explain=explain_params)
    result = subprocess.run(
        [sys.executable, str(ROOT / "src/stages/explain.py"), "--params", str(params),
         "--model", str(workspace / "models"), "--data", str(workspace / "data"),
         "--out", str(tmp_path / "out")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        f"error: {params}: explain.layers: the model has no layer hidden3 (it has hidden1..hidden2)"
    )
    assert not (tmp_path / "out").exists()


def test_stratified_sample_takes_exactly_the_capped_count_of_each_class():
    labels = np.repeat([0, 1, 2], [50, 7, 20])
    chosen = stratified(labels, 10, np.random.default_rng(0))
    assert np.bincount(labels[chosen]).tolist() == [10, 7, 10]
    assert (np.diff(chosen) > 0).all()  # sorted, no row twice
    assert (chosen[labels[chosen] == 1] == np.flatnonzero(labels == 1)).all()  # under the cap
    again = stratified(labels, 10, np.random.default_rng(0))
    assert np.array_equal(chosen, again)  # seeded
    assert np.array_equal(stratified(labels, 50, np.random.default_rng(1)), np.arange(77))
    assert simple(5, 9, np.random.default_rng(0)).tolist() == [0, 1, 2, 3, 4]
    some = simple(100, 9, np.random.default_rng(0))
    assert len(some) == len(set(some)) == 9


def test_caps_bound_the_rows_each_part_analyses_and_are_recorded(workspace, tmp_path):
    params = dataclasses.replace(TINY, max_points=30, max_test_rows=12)
    metrics = explain(params, seed=5, level=0.95, model_dir=workspace / "models", rows=_rows(workspace / "data", params, seed=5),
                      out=tmp_path / "o")  # fmt: skip
    assert metrics["sample"] == {
        "seed": 5,
        "topology_rows": {"class_0": 30, "class_1": 30},
        "topology_rows_available": {"class_0": 49, "class_1": 41},
        "test_rows": 12,
        "test_rows_available": 20,
    }
    betti = pd.read_csv(tmp_path / "o/betti.tsv", sep="\t")
    assert betti.loc[0, "input_b0"] == 60  # scale 0: one component per sampled row
    assert "row" in (tmp_path / "o/mapper.html").read_text()
    assert metrics["mapper"]["nodes"] > 0


def test_the_default_data_gives_the_same_betti_numbers_subsampled_within_the_intervals(
    small_run,
):
    """The stage on 400 rows per class and on 250: the subsample's Betti numbers
    fall inside the full run's intervals (the read-out does not grow with the points)."""
    params = dataclasses.replace(TINY, k=14, hops=3, resamples=10, controls=2)

    def betti(max_points: int) -> dict:
        inputs = in_float64(
            load_inputs(
                small_run / "models",
                draw(
                    small_run / "data/processed", max_points=max_points, max_test_rows=300, seed=42
                ),
            )
        )
        with Pool(1, 1) as pool:
            report = topology_report(inputs, params, seed=42, level=0.95, pool=pool)
        return report.metrics["topology"]

    full, sub = betti(400), betti(250)
    assert full["half_sample_rows"] == {"class_0": 200, "class_1": 200}
    assert sub["half_sample_rows"] == {"class_0": 125, "class_1": 125}
    for dim in (0, 1):
        for key, prefix in (("input", "input_"), ("trained", "")):
            full_dim, sub_dim = full[f"betti_h{dim}"], sub[f"betti_h{dim}"]
            low, high = full_dim[f"{prefix}ci_low"], full_dim[f"{prefix}ci_high"]
            assert low <= sub_dim[key] <= high
