"""Attributions: integrated gradients and permutation importance per raw feature, ranked
against the features over-represented among Mapper's errors."""

import itertools

import numpy as np
import pandas as pd

from topoxai import attribution
from topoxai.explain.inputs import Inputs
from topoxai.explain.report import Report, rounded
from topoxai.params import ExplainParams


def attribution_report(
    inputs: Inputs, params: ExplainParams, *, seed: int, mapper_error: np.ndarray
) -> Report:
    """Integrated gradients and permutation importance per raw feature, ranked against Mapper."""
    groups = attribution.feature_groups(inputs.rows.spec)
    columns = list(groups.values())
    x, y = inputs.rows.test, inputs.rows.test_labels
    # Baseline: the average training row (a plausible "typical patient"; all zeros would
    # be a patient with no category at all in every one-hot group).
    model = attribution.positive_probability(inputs.trained)
    # integrated_gradients takes the rows in chunks itself: memory stays bounded.
    ig = attribution.integrated_gradients(model, x, inputs.rows.reference, params.ig_steps)
    scores = {
        "integrated_gradients": attribution.group_attributions(ig, columns),
        "permutation": attribution.permutation_importance(
            inputs.trained, x, y, columns, params.permutation_repeats, np.random.default_rng(seed)
        ),
        "mapper_error": mapper_error,
    }
    report = Report()
    report.tables["features.tsv"] = pd.DataFrame({"feature": list(groups), **scores})
    short = {"integrated_gradients": "ig", "permutation": "permutation", "mapper_error": "mapper"}
    report.metrics["rank_agreement"] = {
        f"{short[a]}_vs_{short[b]}": rounded(attribution.rank_agreement(scores[a], scores[b]))
        for a, b in itertools.combinations(short, 2)
    }
    return report
