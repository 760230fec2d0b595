"""`topoxai verify`: does this workspace's pipeline run reproduce a committed revision's?

Across machines bytes are not the test. Float32 training goes through the BLAS, and MKL picks
its GEMM code path from the CPU, so the weights (and all that is computed from them) may
differ in their last bits (docs/reproducibility.md). What must hold is checked here:
- the run's dvc.lock differs from the revision's in output hashes only: same code, params
  and data;
- outputs of stages that train no network keep their bytes unless an input moved;
- every metric agrees with the revision's within its tolerance (`tolerance`).

The revision's metrics come from EXPECTED, committed beside dvc.lock: on another CPU the
revision's train outputs are in no cache, so `dvc metrics diff` could not read them.
"""

import json
import re
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from topoxai.errors import UserError
from topoxai.files import write_json

EXPECTED = Path("metrics.expected.json")
LOCK = Path("dvc.lock")
# The stages that fit networks in float32: only their outputs (and what is computed from
# them) may differ in bytes on another CPU. tests/test_verify.py checks this against dvc.yaml.
TRAINING_STAGES = ("train", "evaluate", "sites")

# (pattern on the metric's dotted name, absolute tolerance, relative tolerance): a float
# metric agrees if |new - expected| <= absolute + relative * |expected|; first match wins.
# Integers (counts, epochs, seeds) and strings must be equal. Metrics are written to 4
# decimals (losses 6), and another CPU moves the weights in their last float32 bits, so a
# metric moves by one unit of its last decimal when a rounding boundary lies between the
# two runs: 5e-4 allows that with room and still catches any change of substance
# (docs/reproducibility.md has the measurements).
TOLERANCES: tuple[tuple[str, float, float], ...] = (
    # A z-score divides by a spread that can be tiny (the shuffles of a layer's weights have
    # sd ~3e-5), so the weights' last bits move it in its 6th significant digit.
    (r".*\.z", 5e-4, 1e-5),
    # A p-value is its test's difference over a small standard error: the difference and
    # its interval are checked at 5e-4 (below), and the p-value derived from them moved by
    # up to 0.009 when they moved within that, on make test-slow's other code paths
    # (decision_curve.mlp_vs_logreg.at_30.p: 0.7923 to 0.8009; a net benefit at one
    # threshold moves when one patient's probability crosses it). An empirical p moves in
    # steps of 1/(controls + 1) = 0.025, which this still catches.
    (r".*\.p(_heterogeneity)?", 0.02, 0.0),
    (r".*", 5e-4, 0.0),
)


def tolerance(name: str) -> tuple[float, float]:
    """The (absolute, relative) tolerance of the metric with dotted name `name`."""
    return next((a, r) for pattern, a, r in TOLERANCES if re.fullmatch(pattern, name))


@dataclass
class Verdict:
    """What differs between a revision's run and this workspace's."""

    metrics: int = 0  # metrics compared
    moved_outputs: list[str] = field(default_factory=list)  # expected on another CPU
    problems: list[str] = field(default_factory=list)  # each one makes the run not reproduce

    def lines(self, rev: str) -> list[str]:
        if self.problems:
            return [f"not reproduced: {len(self.problems)} difference(s) from {rev}:"] + [
                f"  {p}" for p in self.problems
            ]
        hashes = (
            f"{len(self.moved_outputs)} output hash(es) differ, as expected on another CPU "
            f"({', '.join(self.moved_outputs)})"
            if self.moved_outputs
            else f"every output hash as in {rev}"
        )
        return [f"reproduced: {self.metrics} metrics within tolerance of {rev}; {hashes}"]


def verify(root: Path, rev: str = "HEAD") -> Verdict:
    """Compare the workspace's dvc.lock and metrics with revision `rev`'s."""
    old_lock = _load_yaml(_git_show(root, rev, LOCK), f"{rev}:{LOCK}")
    expected = _load_expected(root, rev, old_lock)
    _require_in_sync(root)
    new_lock = _load_yaml((root / LOCK).read_text(encoding="utf-8"), str(LOCK))
    verdict = Verdict()
    verdict.moved_outputs, verdict.problems = lock_changes(old_lock, new_lock)
    actual = {name: _read_metrics(root / name) for name in expected["metrics"]}
    for name in metrics_files(root):
        if name not in expected["metrics"]:
            verdict.problems.append(f"{name}: not in {rev}'s {EXPECTED}")
    compared, moved = compare_metrics(expected["metrics"], actual)
    verdict.metrics = compared
    verdict.problems += moved
    return verdict


def record(root: Path) -> Path:
    """Write EXPECTED from the workspace's metrics: commit it with dvc.lock."""
    _require_in_sync(root)
    lock = _load_yaml((root / LOCK).read_text(encoding="utf-8"), str(LOCK))
    files = metrics_files(root)
    write_json(
        root / EXPECTED,
        {
            "lock": _holding_outputs(lock, files),
            "metrics": {name: _read_metrics(root / name) for name in files},
        },
    )
    return root / EXPECTED


def lock_changes(old: dict[str, Any], new: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(outputs whose hash moved as another CPU moves them, every other difference)."""
    old_stages, new_stages = old.get("stages", {}), new.get("stages", {})
    problems = [f"stage {s}: not in both runs" for s in sorted(set(old_stages) ^ set(new_stages))]
    common = [s for s in new_stages if s in old_stages]
    moved: dict[str, str] = {}  # output -> its stage
    for name in common:
        before, after = old_stages[name], new_stages[name]
        if before.get("cmd") != after.get("cmd"):
            problems.append(f"stage {name}: its command changed")
        problems += _param_changes(before.get("params", {}), after.get("params", {}))
        for kind in ("outs", "deps"):
            once = set(_hashes(before.get(kind))) ^ set(_hashes(after.get(kind)))
            problems += [f"{path}: in one run's {kind} of {name} only" for path in sorted(once)]
        old_outs, new_outs = _hashes(before.get("outs")), _hashes(after.get("outs"))
        moved |= {p: name for p, h in new_outs.items() if p in old_outs and old_outs[p] != h}
    outputs = _outputs(new)
    for name in common:
        old_deps, new_deps = (
            _hashes(old_stages[name].get("deps")),
            _hashes(new_stages[name].get("deps")),
        )
        for path, digest in new_deps.items():
            # Inside an output of another stage that moved: that stage's difference.
            if (
                path in old_deps
                and old_deps[path] != digest
                and _holder(path, outputs) not in moved
            ):
                problems.append(f"{path}: changed (a dependency of {name})")
    # An output may move if its stage trains, or if one of its inputs moved as it may.
    allowed = {path for path, stage in moved.items() if stage in TRAINING_STAGES}
    grew = True
    while grew:
        inputs_moved = {
            name
            for name, stage in new_stages.items()
            if any(_holder(dep, outputs) in allowed for dep in _hashes(stage.get("deps")))
        }
        more = {path for path, stage in moved.items() if stage in inputs_moved} - allowed
        allowed |= more
        grew = bool(more)
    for path in sorted(set(moved) - allowed):
        problems.append(f"{path}: bytes differ, though {moved[path]} trains no network")
    return sorted(allowed), list(dict.fromkeys(problems))  # a param read by two stages once


def compare_metrics(
    expected: Mapping[str, Any], actual: Mapping[str, Any]
) -> tuple[int, list[str]]:
    """(number of metrics compared, one line per metric outside its tolerance)."""
    compared, problems = 0, []
    for file, values in expected.items():
        if actual.get(file) is None:
            problems.append(f"{file}: missing")
            continue
        old, new = _flatten(values), _flatten(actual[file])
        for name in sorted(set(old) | set(new)):
            compared += 1
            if name not in new or name not in old:
                problems.append(f"{file} {name}: {'missing' if name not in new else 'new'}")
            elif not _within(old[name], new[name], *tolerance(name)):
                problems.append(
                    f"{file} {name}: {old[name]} -> {new[name]} ({_allowed(old[name], name)})"
                )
    return compared, problems


def metrics_files(root: Path) -> list[str]:
    """The metrics files dvc.yaml declares, top-level and per stage, in its order."""
    pipeline = _load_yaml((root / "dvc.yaml").read_text(encoding="utf-8"), "dvc.yaml")
    declared = list(pipeline.get("metrics", []))
    for stage in pipeline.get("stages", {}).values():
        declared += [m if isinstance(m, str) else next(iter(m)) for m in stage.get("metrics", [])]
    return list(dict.fromkeys(declared))


def _allowed(expected: object, name: str) -> str:
    if not isinstance(expected, float):
        return "must be equal"
    atol, rtol = tolerance(name)
    return f"tolerance {atol:g}" + (f" + {rtol:g} x |expected|" if rtol else "")


def _within(old: object, new: object, atol: float, rtol: float) -> bool:
    if isinstance(old, float) and isinstance(new, float):
        return abs(new - old) <= atol + rtol * abs(old)
    return type(old) is type(new) and old == new


def _flatten(values: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(values, dict):
        return {prefix.rstrip("."): values}
    flat: dict[str, Any] = {}
    for key, value in values.items():
        flat |= _flatten(value, f"{prefix}{key}.")
    return flat


def _param_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    # A stage may list a whole section (train): compare its keys one by one.
    before = {k: v for values in old.values() for k, v in _flatten(values).items()}
    after = {k: v for values in new.values() for k, v in _flatten(values).items()}
    return [
        f"param {key}: {_shown(before, key)} -> {_shown(after, key)}"
        for key in sorted(set(before) | set(after))
        # Read in one run only (null too: a stage that starts reading data.site: null), or
        # changed: 1 and 1.0 (or True) are equal in Python, not in params.yaml.
        if key not in before
        or key not in after
        or (type(before[key]), before[key]) != (type(after[key]), after[key])
    ]


def _shown(params: dict[str, Any], key: str) -> str:
    return repr(params[key]) if key in params else "(not read)"


def _hashes(entries: list[dict[str, Any]] | None) -> dict[str, str | None]:
    return {e["path"]: e.get("md5") for e in entries or []}


def _outputs(lock: dict[str, Any]) -> dict[str, str | None]:
    """Every stage's outputs in a dvc.lock, with their hashes."""
    return {
        p: h for s in lock.get("stages", {}).values() for p, h in _hashes(s.get("outs")).items()
    }


def _holder(path: str, outputs: Mapping[str, Any]) -> str | None:
    """The output that is `path` or the folder holding it, if any."""
    return next((o for o in outputs if path == o or path.startswith(o.rstrip("/") + "/")), None)


def _holding_outputs(lock: dict[str, Any], files: list[str]) -> dict[str, str | None]:
    """The dvc.lock hash of each output that holds one of `files` (itself or its folder)."""
    outputs = _outputs(lock)
    holding = {}
    for file in files:
        owner = _holder(file, outputs)
        if owner is None:
            raise UserError(f"{file}: no stage in {LOCK} writes it; run `dvc repro` first")
        holding[owner] = outputs[owner]
    return dict(sorted(holding.items()))


def _load_expected(root: Path, rev: str, lock: dict[str, Any]) -> dict[str, Any]:
    text = _git_show(root, rev, EXPECTED)
    try:
        expected = json.loads(text)
        recorded = expected["lock"]
        if not isinstance(recorded, dict) or not isinstance(expected["metrics"], dict):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise UserError(f"{rev}:{EXPECTED}: not a file `topoxai verify --record` wrote") from None
    outputs = _outputs(lock)
    if stale := [p for p, digest in recorded.items() if outputs.get(p) != digest]:
        raise UserError(
            f"{rev}:{EXPECTED} was not recorded from {rev}'s {LOCK} ({', '.join(stale)} differ): "
            f"where that lock was made, run `topoxai verify --record` and commit both"
        )
    return expected


def _read_metrics(path: Path) -> Any | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except ValueError as err:
        raise UserError(f"{path}: not JSON ({err})") from None


def _require_in_sync(root: Path) -> None:
    """The outputs must be what dvc.lock records, or the lock says nothing about them."""
    status = subprocess.run(
        [sys.executable, "-m", "dvc", "status", "--json"],
        cwd=root, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if status.returncode != 0:
        raise UserError(f"dvc status failed: {(status.stderr or status.stdout).strip()}")
    try:
        changed = json.loads(status.stdout or "{}")
    except ValueError:
        raise UserError(f"dvc status --json: not JSON ({status.stdout[:80]!r})") from None
    if changed:
        raise UserError(
            "the workspace is not what dvc.lock records (`dvc status` lists what changed): "
            "run `make run` (dvc repro) first"
        )


def _git_show(root: Path, rev: str, path: Path) -> str:
    shown = subprocess.run(
        ["git", "show", f"{rev}:./{path.as_posix()}"],  # ./: the project may be a subfolder
        cwd=root, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if shown.returncode != 0:
        raise UserError(f"{rev}:{path}: cannot read it from git ({shown.stderr.strip()})")
    return shown.stdout


def _load_yaml(text: str, name: str) -> dict[str, Any]:
    try:
        loaded = YAML(typ="safe", pure=True).load(text)
    except Exception as err:  # ruamel's errors share no public base class worth naming
        raise UserError(f"{name}: not YAML ({err})") from None
    return loaded if isinstance(loaded, dict) else {}
