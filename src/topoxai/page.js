// The one-patient page (topoxai/page.py): send the form to /predict, show the answer.
// Values are put into the page as text (textContent), never as HTML.
"use strict";
const model = JSON.parse(document.getElementById("model-data").textContent);
const form = document.getElementById("patient");
const $ = (id) => document.getElementById(id);

function record() {
  const row = {};
  for (const name of model.columns) {
    const value = form.elements[name].value.trim();
    if (value === "") row[name] = null;  // not measured
    else if (model.numeric.includes(name)) row[name] = Number(value);
    else row[name] = value;
  }
  return row;
}

function fill(list, items) {
  list.replaceChildren(...items.map((text) => {
    const li = document.createElement("li");
    li.textContent = text;
    return li;
  }));
}

function show(row, reference) {
  const p = row[`P(${model.target}=${model.positive})`];
  $("probability").textContent = `${(100 * p).toFixed(1)}%`;
  $("prediction").textContent = model.names[row.prediction] || String(row.prediction);
  $("set").textContent = "set" in row ? model.sets[row.set] || row.set : "not calibrated";
  $("ood").textContent = "ood_p_value" in row
    ? `${row.ood_p_value.toFixed(3)}${row.ood_flag ? " (below 0.05: unlike the training patients)" : ""}`
    : "not calibrated";
  fill($("flags"), row.domain_flags ? row.domain_flags.split("; ")
    : ["none: every value is inside the training data"]);
  $("reference").textContent = `${(100 * reference).toFixed(1)}%`;
  const rows = [];
  for (let k = 1; `top${k}_feature` in row; k++) {
    const tr = document.createElement("tr");
    const c = row[`top${k}_contribution`];
    for (const text of [row[`top${k}_feature`], String(row[`top${k}_value`]),
                        `${c >= 0 ? "+" : ""}${(100 * c).toFixed(1)} points`]) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.append(td);
    }
    rows.push(tr);
  }
  $("contributions").replaceChildren(...rows);
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  $("error").hidden = true;
  const headers = { "Content-Type": "application/json" };
  const token = $("token");
  if (token && token.value) headers.Authorization = `Bearer ${token.value}`;
  try {
    const response = await fetch("/predict?explain=true", {
      method: "POST", headers, body: JSON.stringify([record()]),
    });
    const answer = await response.json();
    if (!response.ok) throw new Error(answer.error || response.statusText);
    show(answer.predictions[0], answer.reference_probability);
    fill($("notes"), answer.notes);
    $("result").hidden = false;
  } catch (err) {
    $("result").hidden = true;
    $("error").textContent = `Not scored: ${err.message}`;
    $("error").hidden = false;
  }
});
