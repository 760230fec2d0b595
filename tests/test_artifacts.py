"""The model folder: round trip, hashes, initial weights, malformed cards."""

import json

import pandas as pd
import pytest
import torch

from topoxai.artifacts import (
    ModelError,
    architecture,
    load_card,
    load_initial,
    load_model,
    save_model,
)
from topoxai.features import fit_preprocessor
from topoxai.model import MLP


def test_model_folder_round_trip_and_tamper_checks(tmp_path):
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0], "c": ["x", "y", "x"], "t": [0, 1, 0]})
    spec = fit_preprocessor(frame, target="t", categorical=["c"], source_sha256="s")
    start = MLP(len(spec.feature_names), (5,), 2)
    net = MLP(len(spec.feature_names), (5,), 2).eval()
    card = {"architecture": architecture(net), "feature_names": spec.feature_names}
    save_model(tmp_path / "m", net, spec, card, initial=start.state_dict())

    model = load_model(tmp_path / "m")
    x = torch.as_tensor(spec.transform(frame), dtype=torch.float32)
    assert torch.equal(model.net(x), net(x))
    assert model.spec == spec
    initial = load_initial(tmp_path / "m", model.card)
    assert torch.equal(initial(x), start(x))
    assert not initial.training
    assert {p.name for p in (tmp_path / "m").iterdir()} == {
        "model.json",
        "model.safetensors",
        "initial.safetensors",
        "preprocess.json",
    }

    # Another run's (valid) initial weights: refused by the hash, but predicting is unaffected.
    other = tmp_path / "other"
    save_model(other, net, spec, card, initial=MLP(len(spec.feature_names), (5,), 2).state_dict())
    (tmp_path / "m" / "initial.safetensors").write_bytes(
        (other / "initial.safetensors").read_bytes()
    )
    with pytest.raises(ModelError, match=r"initial.safetensors: sha256 does not match"):
        load_initial(tmp_path / "m", load_model(tmp_path / "m").card)

    (tmp_path / "m" / "model.safetensors").write_bytes(b"junk")
    with pytest.raises(ModelError, match=r"model.safetensors: sha256 does not match"):
        load_model(tmp_path / "m")
    with pytest.raises(ModelError, match="not found"):
        load_model(tmp_path / "nowhere")


def test_model_folder_without_initial_weights_still_predicts(tmp_path):
    """A folder from before initial.safetensors: load_model works, load_initial says rerun."""
    frame = pd.DataFrame({"a": [1.0, 2.0], "t": [0, 1]})
    spec = fit_preprocessor(frame, target="t", categorical=[], source_sha256="s")
    net = MLP(1, (2,), 2)
    card = {"architecture": architecture(net), "feature_names": ["a"]}
    folder = tmp_path / "m"
    full = save_model(folder, net, spec, card, initial=net.state_dict())
    del full["files"]["initial.safetensors"]
    (folder / "model.json").write_text(json.dumps(full))
    (folder / "initial.safetensors").unlink()

    model = load_model(folder)
    with pytest.raises(ModelError, match=r"model.json: lists no initial.safetensors") as err:
        load_initial(folder, model.card)
    assert "rerun the train stage" in str(err.value) and "\n" not in str(err.value)


def test_initial_weights_must_fit_the_network(tmp_path):
    frame = pd.DataFrame({"a": [1.0, 2.0], "t": [0, 1]})
    spec = fit_preprocessor(frame, target="t", categorical=[], source_sha256="s")
    net = MLP(1, (2,), 2)
    card = {"architecture": architecture(net), "feature_names": ["a"]}
    with pytest.raises(ValueError, match="initial weights do not fit"):
        save_model(tmp_path / "m", net, spec, card, initial=MLP(1, (3,), 2).state_dict())
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize(
    "card",
    ["[1]", '{"format_version": 1}', "\udcff".encode("utf-8", "surrogateescape").decode("latin-1")],
)
def test_malformed_card_is_a_model_error(tmp_path, card):
    frame = pd.DataFrame({"a": [1.0, 2.0], "t": [0, 1]})
    spec = fit_preprocessor(frame, target="t", categorical=[], source_sha256="s")
    net = MLP(1, (2,), 2)
    good = {"architecture": architecture(net), "feature_names": ["a"]}
    save_model(tmp_path / "m", net, spec, good, initial=net.state_dict())
    (tmp_path / "m" / "model.json").write_bytes(card.encode("latin-1"))
    with pytest.raises(ModelError, match=r"model\.json"):
        load_model(tmp_path / "m")


@pytest.mark.parametrize(
    "arch",
    [None, {"in_features": 1, "hidden": [2, "x"], "out_features": 2},
     {"in_features": 0, "hidden": [2], "out_features": 2}, {"in_features": 1, "out_features": 2},
     {"in_features": True, "hidden": [2], "out_features": 2}],
)  # fmt: skip
def test_a_card_without_a_usable_architecture_is_one_model_error(tmp_path, arch):
    """load_card, which the explain stage reads before importing torch, checks the layer
    sizes it starts the untrained controls with."""
    frame = pd.DataFrame({"a": [1.0, 2.0], "t": [0, 1]})
    spec = fit_preprocessor(frame, target="t", categorical=[], source_sha256="s")
    net = MLP(1, (2,), 2)
    card = save_model(tmp_path / "m", net, spec, {"architecture": architecture(net),
                      "feature_names": ["a"]}, initial=net.state_dict())  # fmt: skip
    assert load_card(tmp_path / "m") == card
    card["architecture"] = arch
    (tmp_path / "m" / "model.json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match=r"model\.json: no architecture entry") as err:
        load_card(tmp_path / "m")
    assert "\n" not in str(err.value)
