"""The model folder: safetensors weights, a JSON model card and the JSON preprocessing spec.

Plain data only: nothing in the folder runs code when loaded, so a model pulled from a
shared DVC remote need not be trusted the way a pickle must.
"""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from topoxai.errors import UserError
from topoxai.features import SPEC_FILE, Preprocessor
from topoxai.files import atomic_dir, json_text, sha256_file
from topoxai.model import MLP

FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"
CARD = "model.json"
SPEC = SPEC_FILE


class ModelError(UserError):
    pass


@dataclass(frozen=True)
class Model:
    net: MLP
    spec: Preprocessor
    card: dict[str, Any]


def save_model(folder: Path, net: MLP, spec: Preprocessor, card: dict[str, Any]) -> dict[str, Any]:
    """Write weights, spec and card (with the hashes that tie them together) all at once."""
    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    with atomic_dir(folder) as tmp:
        save_file(state, str(tmp / WEIGHTS))
        (tmp / SPEC).write_text(spec.to_json(), encoding="utf-8")
        files = {name: {"sha256": sha256_file(tmp / name)} for name in (WEIGHTS, SPEC)}
        full = {"format_version": FORMAT_VERSION, **card, "files": files}
        (tmp / CARD).write_text(json_text(full), encoding="utf-8")
    return full


def load_model(folder: Path) -> Model:
    """Load and cross-check a model folder; ModelError names the file that does not fit."""
    card_path = folder / CARD
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError):
        raise ModelError(
            f"{card_path}: not found; is {folder} a model folder from the train stage?"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelError(f"{card_path}: not a readable JSON model card ({err})") from None
    if not isinstance(card, dict) or card.get("format_version") != FORMAT_VERSION:
        raise ModelError(f"{card_path}: not a model card of format_version {FORMAT_VERSION}")
    try:
        return _check_and_build(folder, card)
    except (KeyError, TypeError, ValueError) as err:  # a card edited by hand
        raise ModelError(f"{card_path}: missing or malformed entry ({err!r})") from None


def _check_and_build(folder: Path, card: dict[str, Any]) -> Model:
    for name in (WEIGHTS, SPEC):
        path = folder / name
        if not path.is_file():
            raise ModelError(f"{path}: not found")
        expected = card.get("files", {}).get(name, {}).get("sha256")
        if sha256_file(path) != expected:
            raise ModelError(
                f"{path}: sha256 does not match {CARD}; the files come from different runs"
            )
    try:
        spec = Preprocessor.load(folder / SPEC)
    except UserError as err:
        raise ModelError(str(err)) from None
    arch = card["architecture"]
    if (
        spec.feature_names != card["feature_names"]
        or len(spec.feature_names) != arch["in_features"]
    ):
        raise ModelError(
            f"{folder / SPEC}: its features do not match the model card's feature_names"
        )
    net = MLP.from_architecture(arch)
    try:
        net.load_state_dict(load_file(str(folder / WEIGHTS)))
    except (SafetensorError, RuntimeError) as err:
        raise ModelError(
            f"{folder / WEIGHTS}: does not fit the architecture in {CARD} ({err})"
        ) from None
    net.eval()
    return Model(net, spec, card)


def architecture(net: MLP) -> dict[str, Any]:
    return {
        "type": "mlp",
        "activation": "relu",
        "in_features": net.hidden[0].in_features,
        "hidden": [layer.out_features for layer in net.hidden],
        "out_features": net.output.out_features,
        "dropout": net.dropout.p,
    }
