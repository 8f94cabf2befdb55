"""The page that draws a campaign's report data (:mod:`aid2e.report_data`) with plotly.js: one
self-contained HTML file for ``aid2e report`` (the data and plotly.js inlined, so it opens
offline), and the same page for ``aid2e dashboard``, which fetches the data again every few
seconds. One renderer for both, so the report and the live view cannot differ.

plotly.js comes from the ``plotly`` package's own copy (no network fetch). Every plot is SVG
(no WebGL), so it draws in any browser, headless ones included.
"""

from __future__ import annotations

import functools
import html
import json
from pathlib import Path
from typing import Any


@functools.cache
def plotly_js() -> str:
    """plotly.js as the installed ``plotly`` package ships it (``plotly.min.js``; 4.8 MB, read
    once per process: a dashboard serves it on every page load)."""
    import plotly

    return (Path(plotly.__file__).parent / "package_data" / "plotly.min.js").read_text(encoding="utf-8")


def page(data: dict[str, Any] | None, *, live: dict[str, Any] | None = None, files_base: str = "") -> str:
    """The HTML page. ``data`` is drawn at once (a report); ``live`` (``{"url": ..., "every": ms}``)
    makes the page fetch its data from ``url`` and draw it again every ``every`` ms (a dashboard).
    ``files_base`` prefixes the links to jobs' output files (relative to the campaign directory)."""
    title = html.escape(f"aid2e: {data['name']}" if data else "aid2e dashboard")
    payload = _script_json({"data": data, "live": live, "filesBase": files_base})
    return (f"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<link rel=\"icon\" href=\"data:,\">\n<title>{title}</title>\n"
            f"<style>{STYLE}</style>\n<script>{plotly_js()}</script>\n</head>\n<body>\n{BODY}\n"
            f"<script id=\"aid2e-config\" type=\"application/json\">{payload}</script>\n"
            f"<script>{SCRIPT}</script>\n</body>\n</html>\n")


def _script_json(value: Any) -> str:
    """JSON safe inside a <script> element (no ``</script>`` or ``<!--`` can end it early)."""
    text = json.dumps(value, allow_nan=False, default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
.muted { color: #666; } .plot { width: 100%; min-height: 380px; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(460px, 1fr)); gap: 1em; }
table { border-collapse: collapse; font-size: 0.85em; } th, td { padding: 3px 8px; border-bottom: 1px solid #ddd;
  text-align: left; vertical-align: top; } th { background: #f4f4f4; position: sticky; top: 0; }
tr.job td { color: #555; background: #fafafa; } .FAILED { color: #b00020; } .ABANDONED { color: #8a6d00; }
.RUNNING { color: #0a58ca; } .penalized { color: #c25e00; } .counts span { margin-right: 1.2em; }
.reason { max-width: 40em; white-space: pre-wrap; }
"""

BODY = """
<h1 id="title">aid2e campaign</h1>
<div id="subtitle" class="muted"></div>
<p id="counts" class="counts"></p>
<div id="objectives"></div>
<h2>Best</h2><div id="best"></div>
<h2>Optimization trace</h2><div id="traces" class="grid"></div>
<div id="hypervolume-box"><h2>Hypervolume</h2><div id="hypervolume" class="plot"></div></div>
<div id="pareto-box"><h2>Pareto front</h2><div id="pareto" class="plot"></div></div>
<h2>Parameters</h2><div id="parallel" class="plot"></div>
<div id="sensitivity-box"><h2>Sensitivity (Ax)</h2><div id="sensitivity" class="grid"></div></div>
<h2>Time</h2><div class="grid"><div id="generation" class="plot"></div><div id="jobtimes" class="plot"></div>
<div id="inflight" class="plot"></div></div>
<h2>Trials</h2><div id="table"></div>
"""

SCRIPT = r"""
"use strict";
const CONFIG = JSON.parse(document.getElementById("aid2e-config").textContent);
const COLORS = {completed: "#1f77b4", penalized: "#ff7f0e", failed: "#d62728", best: "#2ca02c", grey: "#b0b0b0"};

function el(id) { return document.getElementById(id); }
function esc(text) {
  return String(text === null || text === undefined ? "" : text).replace(/[&<>"']/g,
    c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
}
function fmt(value) {
  if (value === null || value === undefined) return "";
  if (typeof value === "number") return Number.isInteger(value) ? String(value) : value.toPrecision(5);
  return String(value);
}
function duration(seconds) {
  if (seconds === null || seconds === undefined) return "";
  if (seconds < 60) return seconds.toFixed(seconds < 10 ? 1 : 0) + " s";
  if (seconds < 3600) return Math.floor(seconds / 60) + " min " + Math.floor(seconds % 60) + " s";
  return Math.floor(seconds / 3600) + " h " + Math.floor((seconds % 3600) / 60) + " min";
}
function when(epoch) { return epoch ? new Date(epoch * 1000) : null; }
function plot(id, traces, layout) {
  const base = {margin: {t: 40, r: 20, b: 90, l: 60}, hovermode: "closest",
                legend: {orientation: "h", y: -0.28, yanchor: "top"}};
  Plotly.react(el(id), traces, Object.assign(base, layout), {displaylogo: false, responsive: true});
}
function show(id, visible) { el(id).style.display = visible ? "" : "none"; }

function summary(data) {
  el("title").textContent = "aid2e campaign " + data.name;
  el("subtitle").textContent = data.directory + " \u2014 built " + when(data.built_at).toLocaleString() +
    (data.elapsed !== null ? (data.counts.RUNNING ? ", running for " : ", took ") + duration(data.elapsed) : "");
  const c = data.counts;
  el("counts").innerHTML = ["COMPLETED", "FAILED", "ABANDONED", "RUNNING"].map(s =>
    `<span class="${s}" data-state="${s}">${esc(s.toLowerCase())}: <b>${c[s] || 0}</b></span>`).join(" ") +
    ` <span class="penalized" data-state="PENALIZED">penalized: <b>${c.PENALIZED || 0}</b></span>`;
  el("objectives").innerHTML = "<b>Objectives:</b> " + data.objectives.map(o =>
    esc((o.minimize === null ? "" : (o.minimize ? "minimize " : "maximize ")) + o.name) +
    (o.threshold !== null ? " (threshold " + esc(fmt(o.threshold)) + ")" : "")).join(", ");
  const byIndex = Object.fromEntries(data.trials.map(t => [t.index, t]));
  let rows = [];
  if (data.best) rows = [byIndex[data.best.index]];
  else if (data.pareto.length) rows = data.pareto.map(i => byIndex[i]);
  const names = data.objectives.map(o => o.name);
  el("best").innerHTML = rows.length ? "<p>" + (data.best ? "The best trial" : "The Pareto set: " + rows.length +
    " trial(s) no other beats in every objective") + "</p>" + "<table id=\"best-table\"><tr><th>Trial</th>" +
    names.map(n => `<th>${esc(n)}</th>`).join("") + data.parameters.map(p => `<th>${esc(p)}</th>`).join("") +
    "</tr>" + rows.map(t => `<tr><td>${t.index}</td>` + names.map(n => `<td>${esc(fmt((t.metrics[n] || {}).mean))}` +
    "</td>").join("") + data.parameters.map(p => `<td>${esc(fmt(t.parameters[p]))}</td>`).join("") + "</tr>").join("") +
    "</table>" : "<p class=\"muted\">No completed trial yet.</p>";
}

function traces(data) {
  const box = el("traces");
  data.objectives.forEach((o, i) => {  // every box first: the grid sizes them, then each plot fills its own
    if (!el("trace-" + i)) {
      const div = document.createElement("div"); div.id = "trace-" + i; div.className = "plot"; box.appendChild(div);
    }
  });
  data.objectives.forEach((o, i) => {
    const div = el("trace-" + i);
    const points = data.trace[o.name] || [];
    const group = kind => points.filter(p => p.kind === kind && p.value !== null);
    const done = group("completed"), pen = group("penalized");
    const failed = points.filter(p => p.kind === "failed");
    const values = points.filter(p => p.value !== null).map(p => p.value);
    const floor = values.length ? Math.min(...values) : 0;
    const list = [
      {x: done.map(p => p.index), y: done.map(p => p.value), mode: "markers", name: "completed",
       marker: {color: COLORS.completed}, error_y: {type: "data", array: done.map(p => p.sem || 0), visible: true}},
      {x: points.map(p => p.index), y: points.map(p => p.best), mode: "lines", name: "best so far",
       line: {shape: "hv", color: COLORS.best}},
    ];
    if (pen.length) list.push({x: pen.map(p => p.index), y: pen.map(p => p.value), mode: "markers",
      name: "penalized", marker: {color: COLORS.penalized, symbol: "diamond"}, text: pen.map(p => esc(p.reason))});
    if (failed.length) list.push({x: failed.map(p => p.index), y: failed.map(() => floor), mode: "markers",
      name: "failed", marker: {color: COLORS.failed, symbol: "x", size: 9}, text: failed.map(p => esc(p.reason)),
      hovertemplate: "trial %{x} failed: %{text}<extra></extra>"});
    plot(div.id, list, {title: {text: (o.minimize === false ? "maximize " : o.minimize ? "minimize " : "") + o.name},
      xaxis: {title: {text: "trial"}}, yaxis: {title: {text: o.name}}});
  });
}

function hypervolume(data) {
  const several = data.objectives.length > 1;
  show("hypervolume-box", several);
  if (!several) return;
  const hv = data.hypervolume;
  plot("hypervolume", [{x: hv.map(p => p.index), y: hv.map(p => p.value), mode: "lines+markers", name: "hypervolume",
    line: {shape: "hv"}}], {title: {text: "hypervolume against " + JSON.stringify(data.reference_point)},
    xaxis: {title: {text: "trial"}}, yaxis: {title: {text: "hypervolume"}}});
}

function pareto(data) {
  const n = data.objectives.length;
  show("pareto-box", n === 2 || n === 3);
  if (n !== 2 && n !== 3) return;
  const names = data.objectives.map(o => o.name);
  const onFront = new Set(data.pareto);
  const done = data.trials.filter(t => t.status === "COMPLETED" && names.every(m => t.metrics[m]));
  const pairs = n === 2 ? [[0, 1]] : [[0, 1], [0, 2], [1, 2]];
  const list = [], layout = {grid: {rows: 1, columns: pairs.length, pattern: "independent"}};
  pairs.forEach(([a, b], k) => {
    const axis = k === 0 ? "" : String(k + 1);
    const sets = [["Pareto set", t => onFront.has(t.index), COLORS.completed],
                  ["dominated", t => !onFront.has(t.index) && !t.penalized, COLORS.grey]];
    sets.forEach(([label, test, color]) => {
      const chosen = done.filter(test);
      list.push({x: chosen.map(t => t.metrics[names[a]].mean), y: chosen.map(t => t.metrics[names[b]].mean),
        text: chosen.map(t => "trial " + t.index), mode: "markers", name: label, showlegend: k === 0,
        legendgroup: label, marker: {color: color, size: label === "Pareto set" ? 9 : 7},
        xaxis: "x" + axis, yaxis: "y" + axis});
    });
    layout["xaxis" + axis] = {title: {text: names[a]}};
    layout["yaxis" + axis] = {title: {text: names[b]}};
  });
  const penalized = done.filter(t => t.penalized).length;
  layout.title = {text: data.pareto.length + " trial(s) on the front" + (penalized ? "; " + penalized +
    " penalized trial(s) left out (their values are the penalty)" : "")};
  plot("pareto", list, layout);
}

function parallel(data) {
  const names = data.parameters, objective = data.objectives.length ? data.objectives[0].name : null;
  const done = data.trials.filter(t => t.status === "COMPLETED" && !t.penalized);
  const axes = names.concat(objective ? [objective] : []);
  const value = (t, name, i) => i < names.length ? t.parameters[name] : (t.metrics[name] || {}).mean;
  const scales = axes.map((name, i) => {
    const values = done.map(t => value(t, name, i)).filter(v => v !== undefined && v !== null);
    if (values.every(v => typeof v === "number")) {
      const lo = Math.min(...values), hi = Math.max(...values);
      return {to: v => hi > lo ? (v - lo) / (hi - lo) : 0.5, lo: lo, hi: hi};
    }
    const levels = [...new Set(values.map(String))].sort();
    return {to: v => levels.length > 1 ? levels.indexOf(String(v)) / (levels.length - 1) : 0.5,
            lo: levels[0], hi: levels[levels.length - 1]};
  });
  const bins = 6, groups = Array.from({length: bins}, () => ({x: [], y: [], text: []}));
  const color = scales.length && objective ? scales[scales.length - 1] : null;
  done.forEach(t => {
    const at = color ? Math.min(bins - 1, Math.floor(color.to(value(t, objective, axes.length - 1)) * bins)) : 0;
    axes.forEach((name, i) => { groups[at].x.push(i); groups[at].y.push(scales[i].to(value(t, name, i)));
      groups[at].text.push("trial " + t.index + ": " + name + " = " + fmt(value(t, name, i))); });
    groups[at].x.push(null); groups[at].y.push(null); groups[at].text.push("");
  });
  const palette = ["#440154", "#414487", "#2a788e", "#22a884", "#7ad151", "#fde725"];
  const list = groups.map((g, i) => ({x: g.x, y: g.y, text: g.text, mode: "lines", hoverinfo: "text",
    name: objective ? objective + " bin " + (i + 1) : "trials", line: {color: palette[i], width: 1.5},
    showlegend: false}));
  plot("parallel", list, {title: {text: "parameters of completed trials" + (objective ? ", coloured by " +
    objective + " (dark: low, light: high)" : "")},
    xaxis: {tickvals: axes.map((_, i) => i), ticktext: axes.map((name, i) => esc(name) + "<br>" +
      esc(fmt(scales[i].lo)) + " (bottom) to " + esc(fmt(scales[i].hi)) + " (top)"), zeroline: false,
      range: [-0.4, axes.length - 0.6]},
    yaxis: {showticklabels: false, range: [-0.03, 1.03], zeroline: false}});
}

function sensitivity(data) {
  const found = data.sensitivity;
  show("sensitivity-box", !!found);
  if (!found) return;
  const box = el("sensitivity");
  if (found.skipped) { box.innerHTML = `<p class="muted">${esc(found.skipped)}</p>`; return; }
  found.figures.forEach((f, i) => {
    if (!el("sensitivity-" + i)) {
      const div = document.createElement("div"); div.id = "sensitivity-" + i; div.className = "plot";
      box.appendChild(div);
    }
  });
  found.figures.forEach((f, i) => plot("sensitivity-" + i, f.figure.data,
    Object.assign({}, f.figure.layout, {width: null, height: null, autosize: true,
      title: {text: "Ax: sensitivity of " + f.objective + " (Sobol indices)"}})));
}

function timing(data) {
  const t = data.timing;
  const nodes = [...new Set(t.generations.map(g => g.node || "?"))];
  plot("generation", nodes.map(node => {
    const chosen = t.generations.map((g, i) => [g, i]).filter(([g]) => (g.node || "?") === node);
    return {type: "bar", name: node, x: chosen.map(([, i]) => i + 1), y: chosen.map(([g]) => g.seconds),
      text: chosen.map(([g]) => "trials " + g.trials.join(", ")), hovertemplate: "%{text}: %{y:.3f} s<extra></extra>"};
  }), {title: {text: "generation time per batch"}, xaxis: {title: {text: "batch"}},
       yaxis: {title: {text: "seconds"}}});
  const jobs = t.jobs.filter(j => j.queued !== null && j.ran !== null);
  plot("jobtimes", [{x: jobs.map(j => j.queued), y: jobs.map(j => j.ran), mode: "markers", name: "jobs",
    text: jobs.map(j => "trial " + j.trial + (j.job ? " " + j.job : "") + " on " + (j.backend || "?"))}],
    {title: {text: "each job: queue wait against run time"}, xaxis: {title: {text: "queued (s)"}},
     yaxis: {title: {text: "ran (s)"}}});
  plot("inflight", [{x: t.in_flight.map(s => when(s[0])), y: t.in_flight.map(s => s[1]), mode: "lines",
    line: {shape: "hv"}, name: "trials in flight"}], {title: {text: "trials in flight"},
    yaxis: {title: {text: "trials"}, rangemode: "tozero"}});
}

function links(files) {
  const href = path => CONFIG.filesBase + path.split("/").map(encodeURIComponent).join("/");
  return Object.entries(files || {}).map(([label, path]) => `<a href="${esc(href(path))}">${esc(label)}</a>`).join(" ");
}

function table(data) {
  const names = data.objectives.map(o => o.name);
  const head = "<tr><th>Trial</th><th>State</th>" + data.parameters.map(p => `<th>${esc(p)}</th>`).join("") +
    names.map(n => `<th>${esc(n)}</th>`).join("") +
    "<th>Duration</th><th>Backend / job</th><th>Reason</th><th>Files</th></tr>";
  const rows = data.trials.map(t => {
    const state = t.status + (t.penalized ? " (penalized)" : "");
    const metric = n => { const m = t.metrics[n]; return m ? esc(fmt(m.mean)) + (m.sem !== null ? " \u00b1 " +
      esc(fmt(m.sem)) : "") : ""; };
    let row = `<tr class="trial" data-index="${t.index}"><td>${t.index}</td>` +
      `<td class="${t.penalized ? "penalized" : t.status}">${esc(state)}</td>` +
      data.parameters.map(p => `<td>${esc(fmt(t.parameters[p]))}</td>`).join("") +
      names.map(n => `<td>${metric(n)}</td>`).join("") + `<td>${esc(duration(t.runtime))}</td>` +
      `<td>${esc(t.jobs.length ? t.backends.join(", ") : (t.backend || "") + " " + (t.job_id || ""))}</td>` +
      `<td class="reason">${esc(t.message.split("\n")[0])}</td><td>${links(t.files)}</td></tr>`;
    row += t.jobs.map(j => `<tr class="job"><td></td><td class="${j.status}">${esc(j.status)}</td>` +
      `<td colspan="${data.parameters.length + names.length}">${esc(j.stage + "/" + j.job)}</td>` +
      `<td>${esc(duration(j.ended_at && j.started_at ? j.ended_at - j.started_at : null))}</td>` +
      `<td>${esc((j.backend || "") + " " + (j.job_id || ""))}</td><td class="reason">` +
      `${esc((j.message || "").split("\n")[0])}</td><td>${links(j.files)}</td></tr>`).join("");
    return row;
  });
  el("table").innerHTML = `<table id="trials">${head}${rows.join("")}</table>`;
}

function draw(data) {
  document.body.dataset.format = data.format;
  summary(data); traces(data); hypervolume(data); pareto(data); parallel(data); sensitivity(data); timing(data);
  table(data);
  document.body.dataset.drawn = String(data.built_at);
}

function refresh() {
  fetch(CONFIG.live.url, {cache: "no-store"}).then(r => {
    if (!r.ok) throw new Error("the dashboard answered " + r.status);
    return r.json();
  }).then(draw).catch(e => { el("subtitle").textContent = "cannot read the campaign: " + e.message; });
}

if (CONFIG.data) draw(CONFIG.data);
if (CONFIG.live) { refresh(); setInterval(refresh, CONFIG.live.every); }
"""

__all__ = ["page", "plotly_js"]
