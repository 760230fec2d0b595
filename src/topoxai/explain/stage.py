"""The explain stage's work: a trained model and its data in, a folder of metrics and plots out.

Four parts, each a module whose function returns a `Report` (so a benchmark can time them):
topology through the layers (`layers`), neural persistence of the weights (`weights`), a
Mapper graph of the last hidden layer (`graph`), and the attributions ranked against the
Mapper (`attributions`); `report` writes them into one folder at once.
"""

from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from topoxai.explain.attributions import attribution_report
from topoxai.explain.graph import mapper_report
from topoxai.explain.inputs import in_float64, load_inputs
from topoxai.explain.layers import start_topology
from topoxai.explain.report import Report, write
from topoxai.explain.sample import Sample
from topoxai.explain.uncertainty import uncertainty_report
from topoxai.explain.weights import start_shuffles, weights_report
from topoxai.params import ExplainParams
from topoxai.pool import Pool


def explain(
    params: ExplainParams,
    *,
    seed: int,
    level: float,
    model_dir: Path,
    rows: Sample,
    out: Path,
    pool: Pool | None = None,
    control_diagrams: Iterator[list[list[np.ndarray]]] | None = None,
) -> dict[str, Any]:
    """Run every part on the model in `model_dir` and the rows `sample.draw` drew with
    `params` and `seed`; write the folder `out` all at once and return its metrics.

    Intervals are at `level`; a p-value below 1 - `level` is called significant. The
    persistence computations run on `pool` (by default one of `params.jobs` processes);
    `control_diagrams` are the untrained controls if the caller started them already
    (`controls.start` with these rows, the model card's architecture and `params`).
    """
    threads = torch.get_num_threads()
    try:
        # A fixed thread count, as in training: float sums (and so the outputs) then do not
        # depend on the machine's core count, and DVC sees the same hashes everywhere.
        torch.set_num_threads(params.threads)
        with threadpool_limits(limits=params.threads):
            inputs = in_float64(load_inputs(model_dir, rows))
            with nullcontext(pool) if pool else Pool(params.jobs, params.threads) as workers:
                # Every persistence computation is started now, and the workers run them
                # while this process builds the Mapper graph and the attributions.
                finish_topology = start_topology(
                    inputs,
                    params,
                    seed=seed,
                    level=level,
                    pool=workers,
                    control_diagrams=control_diagrams,
                )
                shuffles = start_shuffles(inputs, params, seed=seed, pool=workers)
                graph = mapper_report(inputs, params, seed=seed, level=level)
                mapper_error = graph.feature_scores["mapper_error"]
                attributions = attribution_report(
                    inputs, params, seed=seed, mapper_error=mapper_error
                )
                reports = [
                    Report(metrics={"sample": inputs.rows.record}),
                    finish_topology(),
                    weights_report(
                        inputs, params, seed=seed, level=level, pool=workers, shuffles=shuffles
                    ),
                    graph,
                    attributions,
                    uncertainty_report(inputs, seed=seed),
                ]
    finally:
        torch.set_num_threads(threads)
    return write(out, reports)
