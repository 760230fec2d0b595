"""The one-patient page that `topoxai serve` shows at /: a form built from the model's spec.

The form is HTML written here, from the spec (a label per field, the training range as a
hint, the known categories as choices), so that it reads the same to a screen reader and
without script; page.js only sends it to /predict and shows the answer. The page runs no
inline script (HEADERS' Content-Security-Policy allows none) and names no patient in a URL.
"""

import json
from html import escape
from importlib import resources
from typing import Any

import numpy as np

from topoxai.artifacts import Model
from topoxai.conformal import describe
from topoxai.features import Preprocessor

HEADERS = {
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
    "frame-ancestors 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
SCRIPT = resources.files("topoxai").joinpath("page.js").read_text(encoding="utf-8")
STYLE = """
body { font: 16px/1.5 system-ui, sans-serif; margin: 0 auto; max-width: 46rem; padding: 1rem; }
.field { display: grid; grid-template-columns: 11rem 1fr; gap: 0 1rem; margin: .4rem 0; }
.field small { grid-column: 2; color: #555; }
input, select { font: inherit; padding: .2rem; }
button { font: inherit; margin-top: 1rem; padding: .4rem 1.2rem; }
#error { color: #a00; }
table { border-collapse: collapse; } td, th { padding: .15rem .6rem; text-align: left; }
"""


def inputs(spec: Preprocessor) -> list[dict[str, Any]]:
    """What the model reads, per raw column: a number with its training range and median, or
    a category with its choices and most frequent one."""
    out: list[dict[str, Any]] = [
        {
            "name": name,
            "kind": "number",
            "low": low,
            "high": high,
            "median": median,
            "zero_is_not_measured": name in spec.not_measured,
        }
        for name, low, high, median in zip(spec.numeric, spec.lows, spec.highs, spec.medians)
    ]
    out += [
        {"name": name, "kind": "category", "choices": choices, "most_frequent": mode}
        for name, choices, mode in zip(spec.categorical, spec.categories, spec.modes)
    ]
    return out


def html(model: Model, *, token_wanted: bool) -> str:
    spec = model.spec
    positive = str(spec.positive_class)
    negative_name, positive_name = spec.names
    columns = inputs(spec)
    fields = "\n".join(_field(i) for i in columns)
    if token_wanted:
        fields += "\n" + _row(
            "token",
            "Access token",
            '<input id="token" type="password" autocomplete="off" aria-describedby="token-hint">',
            "this server scores only for holders of its token",
        )
    level = (model.card.get("conformal") or {}).get("level")
    # What each conformal set means, in words, keyed by predict's text for it.
    sets = describe(np.array([[0, 0], [0, 1], [1, 0], [1, 1]]), spec.names).tolist()
    words = [
        "neither class: this patient is unlike those the set was calibrated on",
        f"{positive_name} only",
        f"{negative_name} only",
        "either class: the model cannot tell which at this level",
    ]
    data = {
        "target": spec.target,
        "positive": positive,
        "level": level,
        "sets": dict(zip(sets, words)),
        "names": {str(c): name for c, name in zip(spec.classes, spec.names)},
        "columns": [i["name"] for i in columns],
        "numeric": spec.numeric,
    }
    # JSON inside <script type="application/json">: "<" escaped, so no text can close it.
    blob = json.dumps(data).replace("<", "\\u003c")
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>topoxai: score one patient</title>
<style>{STYLE}</style>
</head>
<body>
<main>
<h1>Score one patient</h1>
<p>The probability of {escape(positive_name)} ({escape(spec.target)}={escape(positive)})
from a research model
(topoxai); not a diagnosis. Leave a value empty if it was not measured.</p>
<form id="patient" novalidate>
{fields}
<button type="submit">Score</button>
</form>
<p id="error" role="alert" hidden></p>
<section id="result" aria-live="polite" hidden>
<h2>Result</h2>
<p>Probability: <strong id="probability"></strong></p>
<p>Prediction at 0.5: <span id="prediction"></span></p>
<p>Conformal set{f" at {level:.0%}" if level else ""}: <span id="set"></span></p>
<p>Out-of-distribution p-value: <span id="ood"></span></p>
<h3>Flags</h3>
<ul id="flags"></ul>
<h3>What moved the probability most</h3>
<p>From <span id="reference"></span> for the reference patient (numbers at their training
means, categories an even mix):</p>
<table><thead><tr><th scope="col">Feature</th><th scope="col">Value</th>
<th scope="col">Contribution</th></tr></thead><tbody id="contributions"></tbody></table>
<ul id="notes"></ul>
</section>
</main>
<script type="application/json" id="model-data">{blob}</script>
<script src="/page.js"></script>
</body>
</html>
"""


def _field(spec: dict[str, Any]) -> str:
    name = spec["name"]
    key = escape(name, quote=True)
    if spec["kind"] == "number":
        hint = f"training range {spec['low']:g} to {spec['high']:g}"
        if spec["zero_is_not_measured"]:
            hint += "; 0 means not measured"
        control = (
            f'<input id="f-{key}" name="{key}" type="number" step="any" inputmode="decimal" '
            f'aria-describedby="h-{key}">'
        )
    else:
        hint = f"most frequent in training: {spec['most_frequent']}"
        options = "".join(f"<option>{escape(c)}</option>" for c in spec["choices"])
        control = (
            f'<select id="f-{key}" name="{key}" aria-describedby="h-{key}">'
            f'<option value="">not measured</option>{options}</select>'
        )
    return _row(f"f-{key}", escape(name), control, escape(hint), hint_id=f"h-{key}")


def _row(target: str, label: str, control: str, hint: str, *, hint_id: str = "") -> str:
    hint_id = hint_id or f"{target}-hint"
    return (
        f'<div class="field"><label for="{target}">{label}</label>{control}'
        f'<small id="{hint_id}">{hint}</small></div>'
    )
