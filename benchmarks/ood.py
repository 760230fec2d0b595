"""Which out-of-distribution score separates patients unlike the training data? A measurement.

    python benchmarks/ood.py [--folds 5] [--k 10] [--resamples 1000]

On the default table (run `make run` first, or it reads the pinned package's CSV). In each
of `--folds` stratified folds of the kept rows, the train stage's procedure trains the
network on the fold's fit rows (early stopping on its validation rows), and four scores
are fitted on the fit rows:

- msp: 1 - the maximum softmax probability (Hendrycks & Gimpel 2017), the naive baseline;
- mahalanobis: the Mahalanobis distance in the standardized input space (Ledoit-Wolf
  covariance: the one-hot columns make the plain one singular);
- knn: the distance to the k-th nearest fit row in the last hidden layer, activations
  L2-normalised (Sun, Ming, Zhu & Li, ICML 2022);
- tu: Topological Uncertainty (Lacombe et al., IJCAI 2021; topoxai/explain/topological_uncertainty.py).

Each score must separate the fold's held-out test rows (in distribution) from:

- real: the rows whose Cholesterol was not measured (0), most of them from another
  hospital's cohort, with Cholesterol set to the fit rows' median so that the
  not-measured rule cannot catch them (rows with RestingBP 0 left out: the rule would);
- noise 0.5/1/2: the test rows with Gaussian noise of that many fit-row SDs added to every
  numeric feature;
- units: the test rows with Cholesterol in mmol/L instead of mg/dL (divided by 38.67).

AUROC is the mean over folds, with a percentile interval from resampling the rows of each
group within each fold (`--resamples`). The false-flag rate is the share of in-distribution
test rows whose conformal p-value against the fold's validation rows is below 0.05; the
power, the share of shifted rows flagged so.
"""

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import rankdata

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from topoxai import ood  # noqa: E402
from topoxai.classifier import fit_network  # noqa: E402
from topoxai.conformal import p_values  # noqa: E402
from topoxai.data import read_table_of  # noqa: E402
from topoxai.download import resolve_local  # noqa: E402
from topoxai.evaluate import make_folds  # noqa: E402
from topoxai.explain.topological_uncertainty import TopologicalUncertainty  # noqa: E402
from topoxai.features import fit_preprocessor  # noqa: E402
from topoxai.params import load_params  # noqa: E402

METHODS = ("msp", "mahalanobis", "knn", "tu")
SHIFTS = ("real", "noise 0.5", "noise 1", "noise 2", "units")
MMOL = 38.67  # mg/dL of cholesterol per mmol/L


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--k", type=int, default=10, help="neighbours of the knn score")
    parser.add_argument("--resamples", type=int, default=1000)
    args = parser.parse_args()
    params = load_params(ROOT / "params.yaml")
    # The in-distribution rows are those with every value measured (data.missing: drop);
    # the real shift, the patients whose cholesterol was not measured.
    params = dataclasses.replace(params, data=dataclasses.replace(params.data, missing="drop"))
    data = params.data
    raw = ROOT / "data/raw/heart.csv"
    if not raw.exists():  # the package's table: no hospital column, none needed here
        raw, data = resolve_local(data.source), dataclasses.replace(data, site=None)
    table = read_table_of(raw, data)
    frame, kept = table.frame, table.learned("drop")
    unmeasured = frame[(frame["Cholesterol"] <= 0) & (frame["RestingBP"] > 0)]
    labels = kept[data.target].to_numpy()
    val_share = data.split[1] / (data.split[0] + data.split[1])
    folds = make_folds(
        labels, folds=args.folds, repeats=1, val_share=val_share, seed=params.evaluate.seed
    )
    torch.set_num_threads(params.train.threads)
    results = []  # per fold: {method: {"id": scores, "val": scores, shift: scores}}
    start = time.perf_counter()
    for fold in folds:
        results.append(score_fold(kept, unmeasured, fold, params, k=args.k))
        print(f"fold {fold.fold}: {time.perf_counter() - start:.0f} s", file=sys.stderr)
    report(results, resamples=args.resamples, seed=params.evaluate.seed)
    print(f"{len(kept)} in-distribution rows, {len(unmeasured)} real-shift rows; "
          f"{time.perf_counter() - start:.0f} s")  # fmt: skip


def score_fold(kept, unmeasured, fold, params, *, k: int) -> dict[str, dict[str, np.ndarray]]:
    data = params.data
    fit, val, test = (kept.take(rows) for rows in (fold.fit, fold.val, fold.test))
    spec = fit_preprocessor(
        fit, target=data.target, categorical=list(data.categorical), source_sha256="",
        positive_class=data.positive_label, not_measured=data.not_measured, missing="drop",
    )  # fmt: skip
    numeric = fit[spec.numeric].to_numpy(dtype=float)
    sd = numeric.std(axis=0)
    rng = np.random.default_rng(fold.seed)
    groups = {"fit": fit, "val": val, "id": test}
    groups["real"] = unmeasured.assign(Cholesterol=float(np.median(fit["Cholesterol"])))
    for scale in (0.5, 1, 2):
        noisy = test.copy()
        noisy[spec.numeric] = (
            test[spec.numeric].to_numpy(dtype=float)
            + rng.normal(0, 1, (len(test), len(sd))) * sd * scale
        )
        groups[f"noise {scale:g}"] = noisy
    groups["units"] = test.assign(Cholesterol=test["Cholesterol"] / MMOL)
    x = {name: spec.transform(g, np.float32) for name, g in groups.items()}
    y = {name: spec.encode_target(groups[name]) for name in ("fit", "val")}
    fitted = fit_network(
        params.train, seed=fold.seed,
        train=(torch.from_numpy(x["fit"]), torch.from_numpy(y["fit"])),
        val=(torch.from_numpy(x["val"]), torch.from_numpy(y["val"])),
        classes=2, one_device=True,
    )  # fmt: skip
    net = fitted.net.eval()
    layers, proba = {}, {}
    with torch.no_grad():
        for name, features in x.items():
            inputs = torch.from_numpy(features)
            acts = net.activations(inputs)
            # Each dense layer's (weights, the activations entering it).
            entering = [features, *(a.numpy() for a in acts[:-1])]
            weights = [m.weight.numpy() for m in (*net.hidden, net.output)]
            layers[name] = list(zip(weights, entering))
            proba[name] = torch.softmax(acts[-1].double(), dim=1).numpy()
    predicted = {name: p.argmax(axis=1) for name, p in proba.items()}
    scores: dict[str, dict[str, np.ndarray]] = {m: {} for m in METHODS}
    for name in x:
        scores["msp"][name] = 1 - proba[name].max(axis=1)
    distance = ood.fit(x["fit"], x["val"])  # what the train stage ships
    for name in x:
        scores["mahalanobis"][name] = distance.score(x[name])
    from sklearn.neighbors import NearestNeighbors

    def last_hidden(name: str) -> np.ndarray:
        h = layers[name][-1][1].astype(np.float64)
        return h / np.maximum(np.linalg.norm(h, axis=1, keepdims=True), 1e-12)

    knn = NearestNeighbors(n_neighbors=k + 1).fit(last_hidden("fit"))
    for name in x:
        distances, _ = knn.kneighbors(last_hidden(name))
        # A fit row is its own nearest neighbour: skip it there, as a new row has none.
        scores["knn"][name] = distances[:, k] if name == "fit" else distances[:, k - 1]
    tu = TopologicalUncertainty.fit(layers["fit"], predicted["fit"])
    for name in x:
        if name != "fit":
            scores["tu"][name] = tu.score(layers[name], predicted[name])
    return scores


def auroc(inside: np.ndarray, outside: np.ndarray) -> np.ndarray:
    """ROC-AUC of telling `outside` (label 1) from `inside` by a higher score, along the
    last axis (Mann-Whitney U, ties half)."""
    both = np.concatenate([inside, outside], axis=-1)
    ranks = rankdata(both, axis=-1)
    n_in, n_out = inside.shape[-1], outside.shape[-1]
    u = ranks[..., n_in:].sum(axis=-1) - n_out * (n_out + 1) / 2
    return u / (n_in * n_out)


def report(results, *, resamples: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    lines = [f"{'AUROC':12s}" + "".join(f"{s:>22s}" for s in SHIFTS)]
    flags = [f"{'flagged':12s}" + f"{'in-dist':>10s}" + "".join(f"{s:>10s}" for s in SHIFTS)]
    winners = {}
    for method in METHODS:
        cells, flag_cells = [], []
        for shift in SHIFTS:
            point = np.mean([auroc(r[method]["id"], r[method][shift]) for r in results])
            draws = np.zeros(resamples)
            for r in results:
                a, b = r[method]["id"], r[method][shift]
                ia = rng.integers(0, len(a), (resamples, len(a)))
                ib = rng.integers(0, len(b), (resamples, len(b)))
                draws += auroc(a[ia], b[ib]) / len(results)
            low, high = np.percentile(draws, [2.5, 97.5])
            cells.append(f"{point:.3f} [{low:.3f}, {high:.3f}]")
            winners.setdefault(shift, []).append((point, low, high, method))

        # Conformal p-values against the validation rows; flagged below 0.05.
        def flagged(name: str, method: str = method) -> float:
            shares = []
            for r in results:
                p = p_values(np.sort(r[method]["val"]).tolist(), r[method][name])
                shares.append(np.mean(p < 0.05))
            return float(np.mean(shares))

        flag_cells = [f"{flagged('id'):10.3f}"] + [f"{flagged(s):10.3f}" for s in SHIFTS]
        lines.append(f"{method:12s}" + "".join(f"{c:>22s}" for c in cells))
        flags.append(f"{method:12s}" + "".join(flag_cells))
    print("\n".join(lines))
    print("\n".join(flags))
    best = max(winners["real"])
    within = [m for p, lo, hi, m in winners["real"] if hi >= best[0]]
    print(f"real shift: best {best[3]} AUROC {best[0]:.3f} [{best[1]:.3f}, {best[2]:.3f}]; "
          f"within its interval: {', '.join(within)}")  # fmt: skip


if __name__ == "__main__":
    main()
