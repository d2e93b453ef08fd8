"""The atlas page (HTML + JavaScript, no external resources) served by ``learnact atlas serve``.

The page holds one state object and turns it into a query string (see
:mod:`learnact.viz.atlas_state` for its keys); every image is ``<route>?<query>``, so the
address of an image is the whole description of what it shows. ``window.atlasQuery()`` returns
the current query (the browser tests use it).
"""

from __future__ import annotations

import html
import json

from .atlas_state import LIMITS, MAX_LAYERS

__all__ = ["page"]

# the first page's 2-2-2 network (A0, b0, A1, b1), now explicit parameter values
INITIAL_SETS = {"0.weight@0": 1.0, "0.weight@1": -0.5, "0.weight@2": 0.7, "0.weight@3": 1.2,
                "0.bias@0": 0.0, "0.bias@1": 0.3, "2.weight@0": 1.0, "2.weight@1": -1.0,
                "2.weight@2": 0.5, "2.weight@3": 0.8, "2.bias@0": 0.0, "2.bias@1": -0.2}

_PAGE = r"""<!doctype html><html><head><meta charset="utf-8"><title>learnact atlas</title>
<style>
body{font-family:sans-serif;margin:12px;font-size:13px}
.bar{margin:4px 0} .bar>*{margin-right:10px}
.layer{border-top:1px solid #ddd;padding:6px 0}
.layer h4{margin:2px 0 4px 0;font-size:13px}
.row{display:flex;gap:10px;align-items:flex-start;flex-wrap:wrap}
.params{font-size:11px;max-width:520px}
.params label{display:inline-block;width:250px;white-space:nowrap}
.params input[type=range]{width:110px;vertical-align:middle}
.params input.vec{width:470px;font-size:11px} summary{cursor:pointer}
.d{font-size:10px;padding:0 3px;margin-left:2px;cursor:pointer}
.d.on{background:#fc6}
#err{color:#b00;white-space:pre-wrap} .note{color:#555;font-size:11px}
img{border:1px solid #ccc} body.compact .params{display:none}
</style></head><body>
<h3>learnact atlas: every unit of every layer over the input plane</h3>
<div class="bar">
 <button id="add">+ layer</button><button id="remove">&minus; layer</button>
 <label>seed <input id="seed" type="number" min="0" max="__MAXSEED__" value="0" style="width:70px"></label>
 <label><input id="pc" type="checkbox"> per-channel activation parameters</label>
 <label>zoom <input type="range" id="zoom" min="0.25" max="4" step="0.05" value="1"><span id="zoom_v">1</span></label>
 <label><input id="ui" type="checkbox" checked> parameters</label>
 <label>resolution <select id="res"><option>32</option><option>48</option><option>64</option><option selected>80</option><option>128</option></select></label>
</div>
<div class="bar">
 <label>train on <select id="data"><option value="none">(no dataset)</option><option value="gmm">toy GMM (3 classes, cross-entropy)</option><option value="sines">sine mixture (regression, MSE)</option></select></label>
 <label>lr <input id="lr" type="number" step="0.001" min="0.0001" max="1" value="0.01" style="width:70px"></label>
 <button id="train">train</button><button id="stop">stop</button><button id="reset">reset</button>
 step <span id="steps">0</span> &middot; loss <span id="loss">&ndash;</span>
 <canvas id="losscurve" width="260" height="60" style="vertical-align:middle;border:1px solid #ddd"></canvas>
</div>
<div class="note">rows: pre- and post-activation of each layer (columns: units), RdBu_r, one symmetric
scale per row &middot; under each layer: its activation f, f' (and DiTAC's velocity field) and
its parameters; &part; picks a parameter for the derivative view below.</div>
<div id="err"></div>
<div id="net"></div>
<div class="layer" id="outsec" style="display:none"><h4>readout (out) and the data</h4>
 <div class="row"><img id="img_out" alt="out"><img id="img_data" alt="data"></div>
 <div class="note">left: the readout units (GMM: one logit per class; sines: the prediction);
 right: GMM decision regions with the training points, or the sine-mixture prediction beside
 its target (one scale)</div></div>
<div class="layer" id="deriv"><h4>derivative: d <select id="dlayer"></select> unit <select id="dunit"></select>
 / d <select id="dparam"></select></h4>
 <div class="note">left: the unit; right: d unit / d parameter over the plane (forward-mode
 AD; DiTAC and surrogates: the double-vjp identity), each on its own symmetric scale</div>
 <img id="img_deriv" alt="derivative"></div>
<script>
const ACTS = __ACTS__;
const SLIDER = __SLIDER__, MAXLAYERS = __MAXLAYERS__, CHUNK = 10;
const state = {w: [2, 2], acts: ["relu", "gelu"], pc: false, seed: 0, data: "none", lr: 0.01,
  steps: 0, zoom: 1, res: 80, sets: __SETS__, dparam: "0.weight@0", dlayer: null, dunit: 0};
let last = null, running = false, structure = "", dlayerPicked = false;
const $ = id => document.getElementById(id);

function query(extra) {
  const q = new URLSearchParams();
  q.set("w", state.w.join(","));
  state.acts.forEach((a, k) => q.set("act" + k, a));
  q.set("pc", state.pc ? "1" : "0"); q.set("seed", String(state.seed));
  q.set("data", state.data); q.set("lr", String(state.lr)); q.set("steps", String(state.steps));
  q.set("zoom", String(state.zoom)); q.set("res", String(state.res));
  for (const k of Object.keys(state.sets).sort()) q.set(k, String(state.sets[k]));
  for (const [k, v] of Object.entries(extra || {})) q.set(k, String(v));
  return q.toString();
}
window.atlasQuery = () => query();
function error(text) { $("err").textContent = text || ""; }
function moduleOf(key) { return parseInt(key.split(".")[0]); }
function dropSets(pred) { for (const k of Object.keys(state.sets)) if (pred(moduleOf(k))) delete state.sets[k]; }
function bake() {  // after training: the trained values become the starting point
  if (state.steps === 0 || !last) return;
  for (const m of last.modules) for (const p of m.params)
    p.values.forEach((v, i) => { if (v !== null) state.sets[p.name + "@" + i] = v; });
  state.steps = 0;
}
function structural(fn) { running = false; bake(); fn(); state.steps = 0; refresh(); }

// Load src into img. A newer address for the same img settles the older wait (a replaced
// onload would otherwise leave it pending forever, and the page never idle); a 503 (the
// server's time limit) is asked again; any other failure shows the server's reason.
function loadImg(img, src) {
  if (img.dataset.src === src) return img.loading || Promise.resolve();
  img.dataset.src = src;
  if (img.settle) img.settle(null);
  img.loading = (async () => {
    for (let attempt = 0; ; attempt++) {
      const ok = await new Promise(res => {
        img.settle = res; img.onload = () => res(true); img.onerror = () => res(false);
        img.src = src; });
      if (ok !== false || img.dataset.src !== src) return;  // loaded, or superseded
      const r = await fetch(src);
      if (img.dataset.src !== src) return;
      if (r.status === 503 && attempt < 30) { await new Promise(res => setTimeout(res, 250)); continue; }
      error(await r.text()); return;
    }
  })();
  return img.loading;
}

function buildLayers() {
  const net = $("net"); net.innerHTML = "";
  state.w.forEach((w, k) => {
    const sec = document.createElement("div"); sec.className = "layer"; sec.id = "layer" + k;
    const wopts = [2,3,4,5,6,7,8].map(n => `<option${n === w ? " selected" : ""}>${n}</option>`).join("");
    const aopts = ACTS.map(a => `<option${a === state.acts[k] ? " selected" : ""}>${a}</option>`).join("");
    const custom = ACTS.includes(state.acts[k]) ? "" : `<option selected>${state.acts[k]}</option>`;
    sec.innerHTML = `<h4>layer ${k}: width <select id="w${k}">${wopts}</select>
      activation <select id="act${k}">${custom}${aopts}</select>
      <input id="spec${k}" type="text" placeholder="or a spec, e.g. hermite:degree=4" style="width:200px"></h4>
      <div class="row"><img id="img${k}" alt="layer ${k}"><img id="actimg${k}" alt="activation ${k}">
      <div class="params" id="params${k}"></div></div>`;
    net.appendChild(sec);
    $("w" + k).onchange = e => structural(() => { state.w[k] = parseInt(e.target.value);
      dropSets(m => m >= 2 * k && m <= 2 * k + 2); });
    $("act" + k).onchange = e => structural(() => { state.acts[k] = e.target.value;
      dropSets(m => m === 2 * k + 1); });
    $("spec" + k).onchange = e => { if (e.target.value) structural(() => {
      state.acts[k] = e.target.value.trim(); dropSets(m => m === 2 * k + 1); }); };
  });
}

function setValue(key, v) {
  running = false; bake(); state.sets[key] = v; refresh();
}
function dButton(key) {
  return `<button class="d${state.dparam === key ? " on" : ""}" data-key="${key}" title="derivative with respect to ${key}">&part;</button>`;
}
function buildParams(s) {
  for (const m of s.modules) {
    if (m.label === "out") continue;
    const box = $("params" + m.layer);
    if (m.index % 2 === 0) box.innerHTML = "";
    for (const p of m.params) {
      const n = p.values.length;
      const title = `<b>${p.name}</b> ${m.kind === "activation" ? "(" + m.type + ")" : ""} [${p.shape.join("&times;")}]`;
      if (n <= 16) {  // one slider per entry
        const items = p.values.map((v, i) => { const key = p.name + "@" + i;
          return `<label>${i} <input type="range" id="${key}" min="${-SLIDER}" max="${SLIDER}" step="0.05" value="${v}">` +
                 `<span id="${key}_v">${(+v).toFixed(3)}</span>${dButton(key)}</label>`; }).join("");
        box.insertAdjacentHTML("beforeend", `<details open><summary>${title}</summary>${items}</details>`);
      } else {  // the compact editor: one line of numbers per row (per channel, per output unit)
        const cols = p.shape.length === 2 ? p.shape[1] : n, rows = n / cols;
        const lines = Array.from({length: rows}, (_, r) =>
          `<div>${rows > 1 ? "row " + r + " " : ""}<input type="text" class="vec" id="${p.name}@text${r}" data-name="${p.name}" data-start="${r * cols}" data-count="${cols}"></div>`).join("");
        const picks = p.values.map((v, i) => `<option value="${p.name}@${i}">${i}</option>`).join("");
        box.insertAdjacentHTML("beforeend", `<details open><summary>${title} &middot; &part; entry <select class="dsel" id="${p.name}@d">${picks}</select></summary>${lines}</details>`);
      }
    }
  }
  for (const el of document.querySelectorAll(".params input[type=range]"))
    el.addEventListener("input", e => { $(e.target.id + "_v").textContent = (+e.target.value).toFixed(3);
      setValue(e.target.id, parseFloat(e.target.value)); });
  for (const el of document.querySelectorAll(".params input.vec"))
    el.addEventListener("change", e => {
      const t = e.target, name = t.dataset.name, start = +t.dataset.start;
      const vals = t.value.split(",").map(x => Number(x.trim())), cur = t.dataset.shown.split(",").map(Number);
      if (vals.length !== cur.length || vals.some(v => !isFinite(v))) {
        error(`${name}: give ${cur.length} comma-separated numbers`); return; }
      running = false; bake();  // only the entries edited: the others keep their exact values
      vals.forEach((v, i) => { if (v !== cur[i]) state.sets[name + "@" + (start + i)] = v; });
      refresh(); });
  for (const el of document.querySelectorAll(".params .d"))
    el.addEventListener("click", e => { state.dparam = e.target.dataset.key; refresh(); });
  for (const el of document.querySelectorAll(".params .dsel"))
    el.addEventListener("change", e => { state.dparam = e.target.value; refresh(); });
}
function updateParams(s) {
  for (const m of s.modules) for (const p of m.params) {
    const vecs = document.querySelectorAll(`input.vec[data-name="${p.name}"]`);
    for (const text of vecs) {
      const start = +text.dataset.start, count = +text.dataset.count;
      const shown = p.values.slice(start, start + count).map(v => (+v).toFixed(4));
      text.dataset.shown = shown.join(",");
      if (document.activeElement !== text) text.value = shown.join(", ");
    }
    if (vecs.length) continue;
    p.values.forEach((v, i) => { const el = $(p.name + "@" + i); if (!el) return;
      if (document.activeElement !== el) el.value = v; $(p.name + "@" + i + "_v").textContent = (+v).toFixed(3); });
  }
  for (const el of document.querySelectorAll(".params .d")) el.classList.toggle("on", el.dataset.key === state.dparam);
}
function derivControls(s) {
  const rows = s.modules.map(m => `<option value="${m.index}">${m.label}</option>`).join("");
  const dl = $("dlayer"), lastm = s.modules.length - 1;
  // the output follows the last module unless picked; a parameter after it moves it there
  let keep = state.dlayer === null || !dlayerPicked ? lastm : Math.min(state.dlayer, lastm);
  if (state.dparam && moduleOf(state.dparam) > keep) keep = lastm;
  dl.innerHTML = rows; dl.value = String(keep); state.dlayer = keep;
  let width = 2; for (const m of s.modules.slice(0, keep + 1)) if (m.kind === "linear") width = m.params[0].shape[0];
  $("dunit").innerHTML = Array.from({length: width}, (_, i) => `<option>${i}</option>`).join("");
  state.dunit = Math.min(state.dunit, width - 1); $("dunit").value = String(state.dunit);
  const ps = []; for (const m of s.modules.slice(0, keep + 1)) for (const p of m.params)
    p.values.forEach((_, i) => ps.push(p.name + "@" + i));
  if (!ps.includes(state.dparam)) state.dparam = ps[0];
  $("dparam").innerHTML = ps.map(k => `<option>${k}</option>`).join(""); $("dparam").value = state.dparam;
}
function drawLoss(loss) {
  const c = $("losscurve"), g = c.getContext("2d"); g.clearRect(0, 0, c.width, c.height);
  const v = loss.filter(x => x !== null); if (v.length < 2) return;
  const lo = Math.min(...v), hi = Math.max(...v), span = hi - lo || 1;
  g.beginPath(); v.forEach((y, i) => { const px = i / (v.length - 1) * (c.width - 4) + 2,
    py = c.height - 2 - (y - lo) / span * (c.height - 4); i ? g.lineTo(px, py) : g.moveTo(px, py); });
  g.strokeStyle = "#c33"; g.stroke();
}

function viewQuery() {
  const v = {dparam: state.dparam, dunit: state.dunit};
  if (!$("ui").checked) v.ui = "compact";
  if (state.dlayer !== null) v.dlayer = state.dlayer;
  return query(v);
}
function fromURL() {  // the page's address holds its state: a link reopens the same view
  const q = new URLSearchParams(location.search);
  if (!q.has("w")) return;
  state.w = q.get("w").split(",").map(Number);
  state.acts = state.w.map((_, k) => q.get("act" + k) || "relu");
  state.pc = q.get("pc") === "1";
  state.seed = parseInt(q.get("seed") || "0");
  state.data = q.get("data") || "none";
  state.lr = parseFloat(q.get("lr") || "0.01");
  state.steps = parseInt(q.get("steps") || "0");
  state.zoom = parseFloat(q.get("zoom") || "1");
  state.res = parseInt(q.get("res") || "80");
  state.sets = {};
  for (const [k, v] of q) if (k.includes("@")) state.sets[k] = parseFloat(v);
  if (q.has("dparam")) state.dparam = q.get("dparam");
  if (q.has("dlayer")) { state.dlayer = parseInt(q.get("dlayer")); dlayerPicked = true; }
  if (q.has("dunit")) state.dunit = parseInt(q.get("dunit"));
  $("ui").checked = q.get("ui") !== "compact"; showParams();
  $("seed").value = String(state.seed); $("pc").checked = state.pc; $("data").value = state.data;
  $("lr").value = String(state.lr); $("zoom").value = String(state.zoom);
  $("zoom_v").textContent = String(state.zoom);
  if (![...$("res").options].some(o => o.value === String(state.res)))
    $("res").insertAdjacentHTML("beforeend", `<option>${state.res}</option>`);
  $("res").value = String(state.res);
}

let pending = 0, busy = 0;
async function refresh() {
  const ticket = ++pending;
  busy++;
  try {
    error("");
    const r = await fetch("/state?" + query());
    if (ticket !== pending) return;
    if (!r.ok) { error(await r.text()); return; }
    applyState(await r.json());
    await loadImages();
  } finally { busy--; }
  history.replaceState(null, "", "/?" + viewQuery());
}
window.atlasIdle = () => busy === 0 && !running &&
  [...document.images].every(i => !i.getAttribute("src") || (i.complete && i.naturalWidth > 0));
function applyState(s) {
  last = s;
  const shape = JSON.stringify(s.modules.map(m => [m.label, m.type, m.params.map(p => [p.name, p.shape])]));
  if (shape !== structure) { buildLayers(); buildParams(s); structure = shape; }
  updateParams(s); derivControls(s);
  $("steps").textContent = String(s.steps);
  const v = s.loss.filter(x => x !== null);
  $("loss").textContent = v.length ? `${v[0].toFixed(4)} \u2192 ${v[v.length - 1].toFixed(4)}` : "\u2013";
  drawLoss(s.loss);
  $("outsec").style.display = state.data === "none" ? "none" : "";
}
async function loadImages() {
  const jobs = [];
  state.w.forEach((_, k) => { jobs.push(loadImg($("img" + k), "/render?" + query({layer: k})));
    jobs.push(loadImg($("actimg" + k), "/act?" + query({layer: k}))); });
  if (state.data !== "none") {
    jobs.push(loadImg($("img_out"), "/render?" + query({layer: "out"})));
    jobs.push(loadImg($("img_data"), "/data?" + query()));
  }
  jobs.push(loadImg($("img_deriv"), "/deriv?" + query({dparam: state.dparam, dlayer: state.dlayer, dunit: state.dunit})));
  await Promise.all(jobs);
}

async function train() {
  if (state.data === "none") { error("choose a dataset to train on"); return; }
  if (running) return;
  running = true;
  try {
    while (running && state.steps < __MAXSTEPS__) {
      const goal = Math.min(state.steps + CHUNK, __MAXSTEPS__);
      const r = await fetch("/state?" + query({steps: goal}));
      if (r.status === 503) continue;  // the server's time limit: ask again, it resumes
      if (!r.ok) { error(await r.text()); break; }
      state.steps = goal;
      applyState(await r.json());
      await loadImages();
      history.replaceState(null, "", "/?" + viewQuery());
    }
  } finally { running = false; }
}

$("add").onclick = () => { if (state.w.length < MAXLAYERS) structural(() => {
  dropSets(m => m >= 2 * state.w.length); state.w.push(2); state.acts.push("relu"); }); };
$("remove").onclick = () => { if (state.w.length > 1) structural(() => {
  state.w.pop(); state.acts.pop(); dropSets(m => m >= 2 * state.w.length); }); };
$("seed").onchange = e => structural(() => { state.seed = parseInt(e.target.value) || 0; state.sets = {}; });
$("pc").onchange = e => structural(() => { state.pc = e.target.checked; dropSets(m => m % 2 === 1); });
$("zoom").oninput = e => { state.zoom = parseFloat(e.target.value); $("zoom_v").textContent = e.target.value; refresh(); };
$("res").onchange = e => { state.res = parseInt(e.target.value); refresh(); };
$("data").onchange = e => structural(() => { state.data = e.target.value;
  dropSets(m => m >= 2 * state.w.length);
  if (state.data === "gmm") { state.zoom = 0.6; } else if (state.data === "sines") { state.zoom = 2; }
  $("zoom").value = String(state.zoom); $("zoom_v").textContent = String(state.zoom); });
$("lr").onchange = e => structural(() => { state.lr = parseFloat(e.target.value); });
function showParams() {
  document.body.classList.toggle("compact", !$("ui").checked);
}
$("ui").onchange = () => { showParams(); history.replaceState(null, "", "/?" + viewQuery()); };
$("train").onclick = () => { train(); };
$("stop").onclick = () => { running = false; };
$("reset").onclick = () => { running = false; state.steps = 0; refresh(); };
$("dlayer").onchange = e => { state.dlayer = parseInt(e.target.value); dlayerPicked = true;
  refresh(); };
$("dunit").onchange = e => { state.dunit = parseInt(e.target.value); refresh(); };
$("dparam").onchange = e => { state.dparam = e.target.value; refresh(); };
fromURL();
refresh();
</script></body></html>
"""


def page() -> str:
    """The page's HTML (activation names from the registry)."""
    from ..registry import available

    return (_PAGE.replace("__ACTS__", json.dumps([html.escape(n) for n in available()]))
            .replace("__SLIDER__", json.dumps(LIMITS["legacy_value"]))
            .replace("__MAXLAYERS__", str(MAX_LAYERS))
            .replace("__MAXSTEPS__", str(LIMITS["steps"]))
            .replace("__MAXSEED__", str(LIMITS["seed"][1]))
            .replace("__SETS__", json.dumps(INITIAL_SETS)))
