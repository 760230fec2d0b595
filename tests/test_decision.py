"""Decision curves: known answers, and dcurves' numbers on the same probabilities."""

import dcurves
import numpy as np
import pandas as pd
import pytest

from topoxai.decision import THRESHOLDS, net_benefit, treat_all, useful_range


def test_net_benefit_by_hand():
    y = np.array([1, 1, 0, 0])
    p = np.array([0.9, 0.4, 0.6, 0.1])
    # t = 0.5 treats rows 0 and 2: 1/4 true positives - 1/4 false positives x 1 = 0
    # t = 0.2 treats rows 0, 1, 2: 2/4 - 1/4 x 0.25 = 0.4375
    assert net_benefit(y, p, np.array([0.5, 0.2])) == pytest.approx([0.0, 0.4375])
    # treat-all: prevalence - (1 - prevalence) x t / (1 - t)
    assert treat_all(y, np.array([0.2, 0.5])) == pytest.approx([0.5 - 0.5 * 0.25, 0.0])


def test_net_benefit_matches_dcurves_to_1e9():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    p = np.clip(0.5 * y + rng.normal(0.25, 0.2, 500), 0, 1)
    p[:5] = [0.3, 0.05, 0.8, 0.42, 0.1]  # scores exactly at thresholds: treated (>=)
    frame = pd.DataFrame({"y": y, "model": p})
    theirs = dcurves.dca(data=frame, outcome="y", modelnames=["model"], thresholds=THRESHOLDS)
    for name, ours in (("model", net_benefit(y, p)), ("all", treat_all(y))):
        rows = theirs[theirs["model"] == name].sort_values("threshold")
        np.testing.assert_allclose(rows["threshold"], THRESHOLDS)
        np.testing.assert_allclose(ours, rows["net_benefit"], rtol=0, atol=1e-9)
    none = theirs[theirs["model"] == "none"]["net_benefit"]
    assert (none == 0).all()


def test_the_thresholds_run_from_005_to_080():
    assert THRESHOLDS[0] == 0.05 and THRESHOLDS[-1] == 0.8 and len(THRESHOLDS) == 76
    assert {0.1, 0.3, 0.5} <= set(THRESHOLDS.tolist())


def test_useful_range_is_the_longest_run_beating_both_defaults():
    t = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    model = np.array([0.30, 0.20, 0.25, 0.20, 0.10, -0.01])
    everyone = np.array([0.35, 0.15, 0.10, 0.05, -0.1, -0.3])
    # beats treat-all from 0.2 on, and treat-none up to 0.5: 0.2 to 0.5
    assert useful_range(model, everyone, t) == (0.2, 0.5)
    assert useful_range(np.array([0.2, -1, 0.2, 0.2]), np.zeros(4), t[:4]) == (0.3, 0.4)
    assert useful_range(-np.ones(6), everyone, t) is None
