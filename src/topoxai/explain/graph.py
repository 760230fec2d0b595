"""Mapper: the graph of the last hidden layer on the test rows, and where the errors sit."""

from typing import Any

import numpy as np
from scipy.special import softmax

from topoxai import attribution, stats
from topoxai.errors import DataError
from topoxai.explain import mapper
from topoxai.explain.inputs import Inputs, representations
from topoxai.explain.report import Report, rounded
from topoxai.params import ExplainParams


def mapper_report(inputs: Inputs, params: ExplainParams, *, seed: int, level: float) -> Report:
    """Mapper graph of the trained network's last hidden layer on the (sampled) test rows."""
    x, y = inputs.rows.test, inputs.rows.test_labels
    reps = representations(inputs.trained, x)
    activations = reps[f"hidden{len(inputs.trained.hidden)}"]
    probability = softmax(reps["logits"], axis=1)[:, -1]
    errors = reps["logits"].argmax(axis=1) != y
    lens = mapper.lens(activations, probability, random_state=seed)
    graph = mapper.build(
        activations,
        lens,
        cubes=params.mapper_cubes,
        overlap=params.mapper_overlap,
        eps_quantile=params.mapper_eps_quantile,
        min_samples=params.mapper_min_samples,
    )
    if not graph.nodes:
        raise DataError("explain: the Mapper graph has no nodes; lower explain.mapper_min_samples")
    report = Report()
    report.metrics["mapper"] = _mapper_metrics(mapper.summary(graph, y, errors), len(y), level)
    labels = [inputs.rows.spec.classes[i] for i in y]
    report.texts["mapper.html"] = mapper.html(
        graph,
        probability=probability,
        errors=errors,
        features=x.astype(np.float64),
        feature_names=inputs.rows.spec.feature_names,
        lens=lens,
        tooltips=[
            f"row {r}: label {label}, p = {p:.3f}"
            for r, label, p in zip(inputs.rows.test_rows, labels, probability)
        ],
        title="Mapper of the last hidden layer (test split)",
    )
    report.figures["mapper.png"] = mapper.plot(graph, lens, probability, errors)
    groups = list(attribution.feature_groups(inputs.rows.spec).values())
    inside = mapper.error_rows(graph, errors)
    report.feature_scores["mapper_error"] = mapper.over_representation(x, inside, groups)
    return report


def _mapper_metrics(summary: dict[str, Any], rows: int, level: float) -> dict[str, Any]:
    """Mapper's summary with Wilson intervals for the two shares in impure nodes, and
    Fisher's exact test of "errors sit in impure nodes more often than correct rows do"."""
    errors = summary["errors"]
    errors_in = round(summary["error_share_impure"] * errors)  # shares are counts / totals
    rows_in = round(summary["row_share_impure"] * rows)
    error_ci = stats.proportion_interval(errors_in, errors, level=level) if errors else (0, 1)
    row_ci = stats.proportion_interval(rows_in, rows, level=level)
    table = [
        [errors_in, errors - errors_in],
        [rows_in - errors_in, rows - rows_in - errors + errors_in],
    ]
    metrics = {k: rounded(v) for k, v in summary.items()}
    metrics |= {
        "error_share_impure_low": rounded(error_ci[0]),
        "error_share_impure_high": rounded(error_ci[1]),
        "row_share_impure_low": rounded(row_ci[0]),
        "row_share_impure_high": rounded(row_ci[1]),
        "p_errors_impure": rounded(stats.fisher_p(np.array(table), alternative="greater")),
    }
    return metrics
