"""The model folder: trained and initial safetensors weights, a JSON card, the JSON preprocessing.

Plain data only: nothing in the folder runs code when loaded, so a model pulled from a
shared DVC remote need not be trusted the way a pickle must.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from safetensors import SafetensorError

from topoxai.conformal import CONFORMAL_FILE, Conformal
from topoxai.errors import UserError
from topoxai.features import SPEC_FILE, Preprocessor
from topoxai.files import atomic_dir, json_text, sha256_file
from topoxai.ood import OOD_FILE, Distance

if TYPE_CHECKING:  # torch is imported where weights are read or written: `load_card` needs none
    import torch

    from topoxai.model import MLP

FORMAT_VERSION = 1
# safetensors' own limit on its JSON header (100 MB)
MAX_HEADER = 100_000_000
# The dtypes a trained network's weights may have (any of Lightning's precisions), in bytes.
FLOAT_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2}
WEIGHTS = "model.safetensors"
# The weights training started from: explain's untrained control. Saved rather than rebuilt
# from the seed, since any draw from torch's RNG before the network is built would change it.
INITIAL = "initial.safetensors"
CARD = "model.json"
# In every card (`topoxai show`, `GET /model`): what a model of this pipeline is for.
INTENDED_USE = (
    "research and teaching only: not a medical device, not validated for any clinical use, "
    "not for making or supporting decisions about a patient's care; the limits of the data "
    "it learned from: docs/data.md"
)


class ModelError(UserError):
    pass


@dataclass(frozen=True)
class Model:
    net: MLP
    spec: Preprocessor
    card: dict[str, Any]
    conformal: Conformal | None = None  # None: a folder from before conformal sets
    ood: Distance | None = None  # None: a folder from before the ood score


def save_model(
    folder: str | Path,
    net: MLP,
    spec: Preprocessor,
    card: dict[str, Any],
    *,
    initial: Mapping[str, torch.Tensor],
    conformal: Conformal | None = None,
    ood: Distance | None = None,
) -> dict[str, Any]:
    """Write weights, spec and card (with the hashes that tie them together) all at once.

    `initial` is the network's state_dict from before training (see INITIAL); `conformal`
    the calibration of predict's conformal sets; `ood` its out-of-distribution score.
    """
    from safetensors.torch import save_file

    folder = Path(folder)
    state, start = _plain(net.state_dict()), _plain(initial)
    if {k: v.shape for k, v in start.items()} != {k: v.shape for k, v in state.items()}:
        raise ValueError("the initial weights do not fit the network")
    with atomic_dir(folder) as tmp:
        save_file(state, str(tmp / WEIGHTS))
        save_file(start, str(tmp / INITIAL))
        (tmp / SPEC_FILE).write_text(spec.to_json(), encoding="utf-8")
        names = [WEIGHTS, INITIAL, SPEC_FILE]
        if conformal is not None:
            (tmp / CONFORMAL_FILE).write_text(conformal.to_json(), encoding="utf-8")
            names.append(CONFORMAL_FILE)
        if ood is not None:
            (tmp / OOD_FILE).write_text(ood.to_json(), encoding="utf-8")
            names.append(OOD_FILE)
        files = {name: {"sha256": sha256_file(tmp / name)} for name in names}
        full = {"format_version": FORMAT_VERSION, **card, "files": files}
        (tmp / CARD).write_text(json_text(full), encoding="utf-8")
    return full


def load_model(folder: str | Path) -> Model:
    """Load and cross-check a model folder; ModelError names the file that does not fit."""
    folder = Path(folder)
    card = load_card(folder)
    try:
        return _check_and_build(folder, card)
    except (KeyError, TypeError, ValueError) as err:  # a card edited by hand
        raise ModelError(f"{folder / CARD}: missing or malformed entry ({err!r})") from None


def load_card(folder: Path) -> dict[str, Any]:
    """The model card of a model folder, with an architecture entry of the right shape.

    Without torch: the explain stage reads the architecture to start its untrained controls
    before it imports torch. `load_model` checks the rest.
    """
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
    if not all(type(n) is int and n > 0 for n in _layer_sizes(card.get("architecture"))):
        raise ModelError(f"{card_path}: no architecture entry with positive integer layer sizes")
    return card


def _layer_sizes(arch: Any) -> list[Any]:
    if not isinstance(arch, dict) or not isinstance(arch.get("hidden"), list):
        return [None]
    return [arch.get("in_features"), *arch["hidden"], arch.get("out_features")]


def load_initial(folder: str | Path, card: dict[str, Any]) -> MLP:
    """The network as training started, from a folder `load_model` accepted with this card.

    Separate from `load_model`: predicting needs only the trained weights, so model folders
    from before initial weights were saved still predict.
    """
    folder = Path(folder)
    if INITIAL not in card.get("files", {}):
        raise ModelError(
            f"{folder / CARD}: lists no {INITIAL} (a model from an older train stage); "
            "rerun the train stage"
        )
    _check_file(folder, card, INITIAL)
    return _network(folder / INITIAL, card["architecture"])


def _plain(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in state.items()}


def _check_file(folder: Path, card: dict[str, Any], name: str) -> None:
    path = folder / name
    if not path.is_file():
        raise ModelError(f"{path}: not found")
    expected = card.get("files", {}).get(name, {}).get("sha256")
    if sha256_file(path) != expected:
        raise ModelError(
            f"{path}: sha256 does not match {CARD}; the files come from different runs"
        )


def _network(path: Path, arch: dict[str, Any]) -> MLP:
    import torch
    from safetensors.torch import load_file

    from topoxai.model import MLP

    # Before anything is allocated: a card edited to [40000, 40000] would otherwise build a
    # 6.5 GB network only to find that the weights do not fit it.
    check_shapes(path, arch)
    net = MLP.from_architecture(arch)
    try:
        net.load_state_dict(load_file(str(path)))
    except (SafetensorError, RuntimeError) as err:
        raise ModelError(f"{path}: does not fit the architecture in {CARD} ({err})") from None
    if not all(torch.isfinite(p).all() for p in net.parameters()):
        raise ModelError(f"{path}: some weights are NaN or infinite; it cannot score anything")
    return net.eval()


def check_shapes(path: Path, arch: dict[str, Any]) -> None:
    """ModelError unless the safetensors file at `path` holds exactly the tensors, of the
    shapes, that the card's architecture needs. Reads only the file's JSON header."""
    sizes = _layer_sizes(arch)
    names = [f"hidden.{i}" for i in range(len(sizes) - 2)] + ["output"]
    expected = {}
    for name, (n_in, n_out) in zip(names, itertools.pairwise(sizes)):
        expected[f"{name}.weight"], expected[f"{name}.bias"] = [n_out, n_in], [n_out]
    header, data_bytes = _header(path)
    found = {name: entry.get("shape") for name, entry in header.items()}
    if found != expected:
        differ = [n for n in expected if found.get(n) != expected[n]]
        wrong = (differ + sorted(set(found) - set(expected)))[0]
        raise ModelError(
            f"{path}: tensor {wrong} is {found.get(wrong, 'missing')}, but the architecture in "
            f"{CARD} needs {expected.get(wrong, 'no such tensor')}; the files come from "
            "different models"
        )
    # The shapes alone could be forged over a small file: the bytes must be there too.
    ends = []
    for name, entry in header.items():
        size = FLOAT_BYTES.get(entry.get("dtype"))
        offsets = entry.get("data_offsets")
        if size is None or not (isinstance(offsets, list) and len(offsets) == 2):
            raise ModelError(f"{path}: tensor {name} is not a float tensor with data offsets")
        if offsets[1] - offsets[0] != math.prod(entry["shape"]) * size:
            raise ModelError(f"{path}: tensor {name}'s data does not match its shape")
        ends.append(offsets[1])
    if max(ends, default=0) != data_bytes:
        raise ModelError(f"{path}: the tensors' data does not fill the file; it is damaged")


def _header(path: Path) -> tuple[dict[str, Any], int]:
    """The safetensors header's tensor entries, and the bytes of data after the header.

    The format: an 8-byte little-endian length, then that many bytes of JSON, then the data.
    """
    try:
        with path.open("rb") as f:
            length = int.from_bytes(f.read(8), "little")
            if not 0 < length <= min(path.stat().st_size - 8, MAX_HEADER):
                raise ValueError(f"a header of {length} bytes")
            header = json.loads(f.read(length))
        if not isinstance(header, dict):
            raise ValueError("the header is not a JSON object")
    except (OSError, ValueError) as err:
        raise ModelError(f"{path}: not a safetensors file ({err})") from None
    header.pop("__metadata__", None)
    if not all(isinstance(v, dict) for v in header.values()):
        raise ModelError(f"{path}: not a safetensors file (malformed header)")
    return header, path.stat().st_size - 8 - length


def _check_and_build(folder: Path, card: dict[str, Any]) -> Model:
    for name in (WEIGHTS, SPEC_FILE):
        _check_file(folder, card, name)
    try:
        spec = Preprocessor.load(folder / SPEC_FILE)
    except UserError as err:
        raise ModelError(str(err)) from None
    arch = card["architecture"]
    if (
        spec.feature_names != card["feature_names"]
        or len(spec.feature_names) != arch["in_features"]
    ):
        raise ModelError(
            f"{folder / SPEC_FILE}: its features do not match the model card's feature_names"
        )
    conformal, ood = None, None
    try:
        if CONFORMAL_FILE in card.get("files", {}):
            _check_file(folder, card, CONFORMAL_FILE)
            conformal = Conformal.load(folder / CONFORMAL_FILE)
        if OOD_FILE in card.get("files", {}):
            _check_file(folder, card, OOD_FILE)
            ood = Distance.load(folder / OOD_FILE)
            if len(ood.location) != arch["in_features"]:
                raise ModelError(f"{folder / OOD_FILE}: does not match the model's features")
    except ModelError:
        raise
    except UserError as err:
        raise ModelError(str(err)) from None
    return Model(_network(folder / WEIGHTS, arch), spec, card, conformal, ood)


def architecture(net: MLP) -> dict[str, Any]:
    return {
        "type": "mlp",
        "activation": "relu",
        "in_features": net.hidden[0].in_features,
        "hidden": [layer.out_features for layer in net.hidden],
        "out_features": net.output.out_features,
        "dropout": net.dropout.p,
    }
