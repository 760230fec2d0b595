"""Topological Uncertainty of the test rows (Lacombe et al., IJCAI 2021; the method is in
topological_uncertainty).

benchmarks/ood.py measured it as an out-of-distribution score, where it lost on the real
cohort shift (AUROC 0.54 against the Mahalanobis distance's 0.63) and won on a column in
the wrong units (0.99); predict ships the Mahalanobis distance. Here it answers a question
of this stage: are the rows the network gets wrong the ones whose activation graphs are
unlike its training rows'? The AUROC of the score for telling the sampled test rows it
misclassifies from those it gets right (0.5: no relation).
"""

import numpy as np
import torch

from topoxai.data import read_split, split_path
from topoxai.explain.inputs import Inputs
from topoxai.explain.report import Report, rounded
from topoxai.explain.topological_uncertainty import TopologicalUncertainty
from topoxai.model import MLP

# Training rows per predicted class for the mean diagrams: the score's cost is linear in
# rows (about 30 ms a row for the default 2x1000 network), and 100 rows average the
# diagrams to within a few percent of all of them.
REFERENCE = 100
# Training rows the reference rows are chosen from, a seeded sample: with every training
# row, the 2x1000 network's float64 activations took 14 GB at 1M rows. 2,000 hold 100 of
# each predicted class unless one is rarer than 5%; the default train split (514 rows) is
# taken whole, as before.
CANDIDATES = 2000


def uncertainty_report(inputs: Inputs, *, seed: int) -> Report:
    net = inputs.trained
    train, _, _ = read_split(split_path(inputs.rows.folder, "train"), inputs.rows.spec)
    rng = np.random.default_rng(seed)
    if len(train) > CANDIDATES:  # a seeded sample first: the forward pass is then bounded
        train = train[np.sort(rng.choice(len(train), CANDIDATES, replace=False))]
    train = train.astype(np.float64)
    predicted = _predict(net, train)
    chosen = np.concatenate(
        [rng.permutation(np.flatnonzero(predicted == c))[:REFERENCE] for c in (0, 1)]
    )
    chosen.sort()
    tu = TopologicalUncertainty.fit(_layers(net, train[chosen]), predicted[chosen])
    test, truth = inputs.rows.test, inputs.rows.test_labels
    guess = _predict(net, test)
    score = tu.score(_layers(net, test), guess)
    wrong = guess != truth
    metrics: dict[str, float | int | None] = {
        "reference_rows": len(chosen),
        "test_rows": len(test),
        "errors": int(wrong.sum()),
        "test_mean": rounded(score.mean()),
        # None when every test row is right (or wrong): nothing to tell apart
        "errors_auroc": rounded(_auroc(score[~wrong], score[wrong]))
        if wrong.any() and (~wrong).any()
        else None,
    }
    return Report(metrics={"topological_uncertainty": metrics})


@torch.no_grad()
def _layers(net: MLP, x: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    acts = net.activations(torch.as_tensor(x))
    entering = [x, *(a.numpy() for a in acts[:-1])]
    weights = [m.weight.detach().numpy() for m in (*net.hidden, net.output)]
    return list(zip(weights, entering))


@torch.no_grad()
def _predict(net: MLP, x: np.ndarray) -> np.ndarray:
    return net(torch.as_tensor(x)).argmax(dim=1).numpy()


def _auroc(inside: np.ndarray, outside: np.ndarray) -> float:
    from scipy.stats import mannwhitneyu

    return float(mannwhitneyu(outside, inside).statistic / (len(inside) * len(outside)))
