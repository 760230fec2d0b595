"""params.yaml as typed, frozen objects; every mistake is one line that names the key."""

import dataclasses
import math
import re
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from ruamel.yaml import YAML, YAMLError

from topoxai.errors import UserError

SOURCE_SCHEMES = ("pkg://", "http://", "https://", "file://")


class ParamsError(UserError):
    pass


@dataclass(frozen=True)
class DataParams:
    source: str
    sha256: str | None
    target: str
    # The class whose probability is predicted; None: 1, for a 0/1 target (any other target
    # must name it: features.ordered_classes). A list: the labels that together are the
    # positive class (UCI's num 1-4: disease), every other label the negative one.
    positive_class: str | int | tuple[str | int, ...] | None
    categorical: tuple[str, ...]
    drop: tuple[str, ...]  # columns that are neither features nor the target (an ID, say)
    # The column naming each row's site (hospital): never a feature; the sites stage holds
    # each site out in turn. None: the table has none.
    site: str | None
    not_measured: tuple[str, ...]  # numeric columns where a value <= 0 means "not measured"
    # What training does with a missing value (an empty cell, or <= 0 in a not_measured
    # column): drop the row, impute it (the training rows' median or most frequent
    # category), or impute it and add a 0/1 column saying it was missing.
    missing: Literal["drop", "impute", "indicator"]
    split: tuple[float, float, float]
    # The negative and the positive class as a person reads them ("{heart disease}", not
    # "{1}"); None: the labels themselves.
    class_names: tuple[str, str] | None = None

    @property
    def positive_label(self) -> str | int | None:
        """The positive class as the spec names it: 1 once a list of labels made it 0/1."""
        return 1 if isinstance(self.positive_class, tuple) else self.positive_class

    def __post_init__(self) -> None:
        if isinstance(self.positive_class, tuple) and not self.positive_class:
            raise ParamsError("data.positive_class: an empty list names no label")
        if not self.source.strip():
            raise ParamsError("data.source must not be empty")
        if "://" in self.source and not self.source.startswith(SOURCE_SCHEMES):
            schemes = ", ".join(SOURCE_SCHEMES)
            raise ParamsError(
                f"data.source {self.source!r}: unsupported scheme (use {schemes} or a path)"
            )
        if self.sha256 is not None and not re.fullmatch(r"[0-9a-f]{64}", self.sha256):
            raise ParamsError("data.sha256 must be 64 lowercase hex digits or null")
        for key in ("categorical", "drop", "not_measured"):
            names = getattr(self, key)
            if twice := [name for i, name in enumerate(names) if name in names[:i]]:
                raise ParamsError(f"data.{key}: {twice[0]} is listed twice")
        if self.target in self.categorical or self.target in self.not_measured:
            raise ParamsError(f"data.target {self.target!r} must not be a feature column too")
        if overlap := sorted(set(self.not_measured) & set(self.categorical)):
            raise ParamsError(
                f"data.not_measured: {overlap[0]} is categorical; list numeric columns"
            )
        if self.class_names is not None:
            _check_class_names(self.class_names)
        if self.target in self.drop:
            raise ParamsError(f"data.drop: {self.target} is data.target; it cannot be dropped")
        if self.site is not None and self.site in (
            self.target,
            *self.categorical,
            *self.drop,
            *self.not_measured,
        ):
            raise ParamsError(
                f"data.site: {self.site} is also the target, a feature or dropped; "
                "the site column is none of these"
            )
        for key in ("categorical", "not_measured"):
            if overlap := sorted(set(self.drop) & set(getattr(self, key))):
                raise ParamsError(f"data.drop: {overlap[0]} is also in data.{key}; list it once")
        if any(r <= 0 for r in self.split):
            raise ParamsError(f"data.split ratios must all be > 0 (got {list(self.split)})")
        if not math.isclose(sum(self.split), 1.0, abs_tol=1e-6):
            raise ParamsError(
                f"data.split must sum to 1 (got {list(self.split)}, sum {sum(self.split):g})"
            )


@dataclass(frozen=True)
class TrainParams:
    hidden: tuple[int, ...]
    dropout: float
    optimizer: Literal["sgd", "adam", "adamw"]
    lr: float
    momentum: float
    weight_decay: float
    batch_size: int
    max_epochs: int
    patience: int
    accelerator: str
    devices: int | str | tuple[int, ...]
    # Under ddp Lightning re-runs the stage script per device and rank 0 writes the outputs;
    # spawn/fork strategies would keep the best epoch inside a child process.
    strategy: Literal["auto", "ddp"]
    precision: str
    threads: int
    test_resamples: int  # bootstrap resamples of the test rows for the test metrics' intervals

    def __post_init__(self) -> None:
        if not self.hidden or any(h < 1 for h in self.hidden):
            raise ParamsError(
                f"train.hidden must be a non-empty list of sizes >= 1 (got {list(self.hidden)})"
            )
        _check_range("train.dropout", self.dropout, 0.0, 1.0, hi_open=True)
        if self.lr <= 0:
            raise ParamsError(f"train.lr must be > 0 (got {self.lr:g})")
        _check_range("train.momentum", self.momentum, 0.0, 1.0, hi_open=True)
        if self.weight_decay < 0:
            raise ParamsError(f"train.weight_decay must be >= 0 (got {self.weight_decay:g})")
        _check_minimum(
            self,
            "train",
            dict.fromkeys(("batch_size", "max_epochs", "patience", "threads", "test_resamples"), 1),
        )


@dataclass(frozen=True)
class ClearMLParams:
    enabled: bool
    offline: bool
    project: str
    task: str
    tags: tuple[str, ...]

    def __post_init__(self) -> None:
        for key in ("project", "task"):
            if not getattr(self, key).strip():
                raise ParamsError(f"clearml.{key} must not be empty")


LAYER_NAME = re.compile(r"input|logits|hidden|hidden[1-9]\d*")


@dataclass(frozen=True)
class ExplainParams:
    # input, hidden (every hidden layer), hidden<N> (1-based), logits; input and the last
    # hidden layer are always analysed, since the topology metrics compare them
    layers: tuple[str, ...]
    k: int  # neighbours in the k-NN graph of each class
    # rows per class for the topology (a seeded stratified sample when a class has more),
    # and test rows for Mapper and the attributions (a seeded simple random sample)
    max_points: int
    max_test_rows: int
    resamples: int  # half-samples of each class for the topology's intervals
    controls: int  # untrained networks, and matched random weights, to compare against
    jobs: int  # processes for the persistence computations (outputs do not depend on it)
    hops: int  # the Rips scale, in hops, at which Betti numbers are read
    filtration_max: int  # hops: the persistence diagrams and Betti curves end here
    mapper_cubes: int  # intervals per lens axis
    mapper_overlap: float  # share of each interval that overlaps its neighbour, in [0, 1)
    mapper_eps_quantile: float  # DBSCAN radius: this quantile of the pairwise distances
    mapper_min_samples: int
    ig_steps: int
    permutation_repeats: int
    threads: int  # CPU threads (torch and BLAS); fixed so outputs do not depend on the machine

    def __post_init__(self) -> None:
        bad = [name for name in self.layers if not LAYER_NAME.fullmatch(name)]
        if bad:
            raise ParamsError(
                f"explain.layers: unknown layer {bad[0]!r} (use input, hidden, hidden<N>, logits)"
            )
        if not 0 < self.mapper_eps_quantile <= 1:
            raise ParamsError(
                f"explain.mapper_eps_quantile must be in (0, 1] (got {self.mapper_eps_quantile:g})"
            )
        _check_range("explain.mapper_overlap", self.mapper_overlap, 0.0, 1.0, hi_open=True)
        minimum = {"hops": 1, "k": 1, "mapper_cubes": 1, "mapper_min_samples": 1,
                   "ig_steps": 1, "permutation_repeats": 1, "threads": 1,
                   "max_test_rows": 2, "resamples": 2, "controls": 2, "jobs": 1}  # fmt: skip
        _check_minimum(self, "explain", minimum)
        if self.filtration_max < self.hops:
            raise ParamsError(
                f"explain.filtration_max must be >= explain.hops = {self.hops}: the Betti "
                f"numbers are read at that scale (got {self.filtration_max})"
            )
        if self.max_points < 2 * (self.k + 1):
            raise ParamsError(
                f"explain.max_points must be >= 2 * (explain.k + 1) = {2 * (self.k + 1)}: the "
                f"k-NN graph of half a class needs k + 1 points (got {self.max_points})"
            )


@dataclass(frozen=True)
class EvaluateParams:
    # The folds' draws (and each fold's network): not the top-level seed, whose folds chose
    # the train defaults, so the estimate reported is not the one that selected them.
    seed: int
    folds: int  # k of the repeated stratified k-fold cross-validation
    repeats: int
    max_rows: int  # a larger table is cross-validated on a stratified sample of this many rows
    jobs: int  # processes running folds at once; the outputs are the same for any value
    # Columns whose groups get their own scores, from the out-of-fold probabilities (TRIPOD+AI's
    # fairness item): a categorical column by its categories, a numeric one in bands cut at
    # `bands` ([50, 60]: < 50, 50 to < 60, >= 60).
    subgroups: tuple[str, ...]
    bands: tuple[float, ...]
    resamples: int  # bootstrap resamples of each subgroup's rows for its intervals

    def __post_init__(self) -> None:
        _check_seed(self.seed, "evaluate.seed")
        _check_minimum(
            self,
            "evaluate",
            {"folds": 2, "repeats": 1, "max_rows": 2, "jobs": 1, "resamples": 100},
        )
        if list(self.bands) != sorted(set(self.bands)):
            raise ParamsError(f"evaluate.bands must increase (got {list(self.bands)})")


@dataclass(frozen=True)
class SitesParams:
    seed: int  # each held-out site's network, fit/validation split and bootstrap
    resamples: int  # bootstrap resamples of each held-out site's rows for its intervals
    max_rows: int  # a larger table is validated on a sample stratified by site and class
    # What updating on a held-out site's own rows buys (topoxai.update_effect): n rows drawn
    # for each of these n, update_draws times, the site's other rows scored before and after.
    update_rows: tuple[int, ...]
    update_draws: int
    jobs: int  # processes, one site each; the outputs are the same for any value

    def __post_init__(self) -> None:
        _check_seed(self.seed, "sites.seed")
        _check_minimum(
            self, "sites", {"resamples": 100, "max_rows": 10, "update_draws": 2, "jobs": 1}
        )


@dataclass(frozen=True)
class Params:
    seed: int
    level: float  # confidence level of every interval; 1 - level is every test's significance
    data: DataParams
    train: TrainParams
    evaluate: EvaluateParams
    sites: SitesParams
    clearml: ClearMLParams
    explain: ExplainParams

    def __post_init__(self) -> None:
        _check_seed(self.seed, "seed")
        if not 0 < self.level < 1:
            raise ParamsError(f"level must be in (0, 1) (got {self.level:g})")


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate the whole params file; raise ParamsError naming the bad key."""
    path = Path(path)
    try:
        # Read as DVC reads it (ruamel, YAML 1.2), so the stage checks the values DVC tracks:
        # PyYAML's YAML 1.1 reads `lr: 1e-3` as a string and `yes` as true.
        raw = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ParamsError(f"{path}: file not found") from None
    except YAMLError as err:
        mark, problem = getattr(err, "problem_mark", None), getattr(err, "problem", None)
        where = f"line {mark.line + 1}" if mark else ""
        detail = ": ".join(filter(None, [where, " ".join(str(problem or "").split())]))
        raise ParamsError(f"{path}: not valid YAML" + (f" ({detail})" if detail else "")) from None
    try:
        return parse(Params, raw, "")
    except ParamsError as err:
        raise ParamsError(f"{path}: {err}") from None


def _check_class_names(names: tuple[str, ...]) -> None:
    """Two distinct names, each readable inside a conformal set's braces."""
    for name in names:
        if not name.strip() or any(c in name for c in "{},\r\n"):
            raise ParamsError(
                f"data.class_names: {name!r} must be text without braces, commas or line breaks"
            )
    if names[0] == names[1]:
        raise ParamsError(f"data.class_names: both classes are named {names[0]!r}")


def parse(cls: type, raw: Any, prefix: str) -> Any:
    """Build dataclass `cls` from a mapping, rejecting unknown, missing and mistyped keys."""
    where = prefix.rstrip(".") or "the top level"
    if not isinstance(raw, dict):
        raise ParamsError(f"{where} must be a mapping of keys to values")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ParamsError(f"unknown key {prefix}{unknown[0]} (known: {', '.join(fields)})")
    missing = [name for name in fields if name not in raw]
    if missing:
        raise ParamsError(f"missing key {prefix}{missing[0]}")
    hints = get_type_hints(cls)
    values = {name: _coerce(raw[name], hints[name], prefix + name) for name in fields}
    return cls(**values)


def _coerce(value: Any, hint: Any, key: str) -> Any:
    if dataclasses.is_dataclass(hint):
        return parse(hint, value, key + ".")  # type: ignore[arg-type]
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        for option in get_args(hint):
            try:
                return _coerce(value, option, key)
            except ParamsError:
                continue
        raise ParamsError(f"{key} must be {_describe(hint)} (got {value!r})")
    if origin is Literal:
        if value not in get_args(hint):
            choices = " | ".join(map(str, get_args(hint)))
            raise ParamsError(f"{key} must be one of {choices} (got {value!r})")
        return value
    if origin is tuple:
        args = get_args(hint)
        if not isinstance(value, list):
            raise ParamsError(f"{key} must be a list (got {value!r})")
        if args[-1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ParamsError(f"{key} must be a list of {len(args)} values (got {value!r})")
        return tuple(_coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    return _scalar(value, hint, key)


def _scalar(value: Any, hint: Any, key: str) -> Any:
    # bool is an int in Python; `hidden: [true]` must not pass as [1].
    if hint is type(None) and value is None:
        return None
    if hint is bool and isinstance(value, bool):
        return value
    if hint is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise ParamsError(f"{key} must be a finite number (got {value!r})")
        return float(value)
    if hint is str and isinstance(value, str):
        return value
    raise ParamsError(f"{key} must be {_describe(hint)} (got {value!r})")


def _describe(hint: Any) -> str:
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}
    if get_origin(hint) in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in get_args(hint))
    if get_origin(hint) is tuple:
        return "a list"
    if hint is type(None):
        return "null"
    return names.get(hint, str(hint))


def _check_seed(seed: int, key: str) -> None:
    if not 0 <= seed < 2**32:  # numpy and sklearn take 32-bit seeds
        raise ParamsError(f"{key} must be in [0, 2**32) (got {seed})")


def _check_minimum(section: object, name: str, minimum: dict[str, int]) -> None:
    for key, low in minimum.items():
        if getattr(section, key) < low:
            raise ParamsError(f"{name}.{key} must be >= {low} (got {getattr(section, key)})")


def _check_range(key: str, value: float, lo: float, hi: float, *, hi_open: bool) -> None:
    if value < lo or value > hi or (hi_open and value == hi):
        bracket = ")" if hi_open else "]"
        raise ParamsError(f"{key} must be in [{lo:g}, {hi:g}{bracket} (got {value:g})")
