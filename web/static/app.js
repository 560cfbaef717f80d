// The page of the interactive maps: Map 1 (objects) and Map 2 (images) as grids, marks that
// become ADQL, results through /tap/sync, refine, quick-select, upload, export, sky.
import { buildQuery } from "./adql.js";
import { kmeans } from "./kmeans.js";
import { drawFootprints } from "./sky.js";
import { sendTable } from "./samp.js";
import { records, runQuery, syncUrl } from "./tap.js";

const $ = (sel) => document.querySelector(sel);
const state = {
  maps: {},                            // map -> {model, nodes}
  marks: { map1: new Map(), map2: new Map() },
  nodeCache: new Map(),                // "map/node" -> node JSON
  mode: { kind: "plain" },             // plain | similar {refs} | node {ref, radius} | group {ids}
  rows: [],                            // current result records
  checked: new Set(),                  // publisherIDs
  upload: null,
  adql: "",
  running: null,
};
window.caomai = state;                 // for the browser tests and the curious

// -- maps -------------------------------------------------------------------------------------

const PALETTE = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666",
  "#1f78b4", "#b2df8a", "#fb9a99", "#cab2d6"];

function viridis(t) {
  const stops = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  t = Math.max(0, Math.min(1, t)) * (stops.length - 1);
  const i = Math.min(Math.floor(t), stops.length - 2), f = t - i;
  const c = stops[i].map((v, k) => Math.round(v + f * (stops[i + 1][k] - v)));
  return `rgb(${c.join(",")})`;
}

function categorical(values) {
  const keys = [...new Set(values.filter((v) => v != null))].sort();
  return new Map(keys.map((k, i) => [k, PALETTE[i % PALETTE.length]]));
}

async function loadMap(map) {
  const grid = $(`#grid-${map}`);
  const reply = await fetch(`/api/maps/${map}`);
  if (!reply.ok) {
    grid.innerHTML = `<p class="hint">${(await reply.json()).error}</p>`;
    return;
  }
  const data = await reply.json();
  state.maps[map] = data;
  grid.style.gridTemplateColumns = `repeat(${data.model.cols}, 1fr)`;
  grid.innerHTML = "";
  for (const n of data.nodes) {
    const cell = document.createElement("div");
    cell.className = "node";
    cell.dataset.node = n.node;
    cell.dataset.map = map;
    cell.title = `${map} node ${n.node} (row ${n.row}, col ${n.col}): ${n.members} members${n.label ? `, ${n.label}` : ""}`;
    cell.addEventListener("mouseenter", () => showNode(map, n.node));
    cell.addEventListener("click", () => toggleMark(map, n.node));
    grid.appendChild(cell);
  }
  colourMaps();
}

function colourMaps() {
  const by = $("#colour-by").value;
  const legend = [];
  for (const [map, data] of Object.entries(state.maps)) {
    const cells = document.querySelectorAll(`#grid-${map} .node`);
    const max = Math.max(1, ...data.nodes.map((n) => Math.log1p(n.members)));
    const labels = categorical(data.nodes.map((n) => n.label));
    let filterOf = null, filters = null;
    if (by === "filter" && map === "map2") {
      const count = new Map();
      for (const r of state.rows) {
        if (r.map2_node == null) continue;
        const m = count.get(r.map2_node) || new Map();
        m.set(r.energy_bandpassname, (m.get(r.energy_bandpassname) || 0) + 1);
        count.set(r.map2_node, m);
      }
      filterOf = new Map([...count].map(([node, m]) => [node, [...m].sort((a, b) => b[1] - a[1])[0][0]]));
      filters = categorical([...filterOf.values()]);
      for (const [k, c] of filters) legend.push([`filter ${k}`, c]);
    }
    if (by === "label") for (const [k, c] of labels) legend.push([k, c]);
    cells.forEach((cell, i) => {
      const n = data.nodes[i];
      cell.innerHTML = "";
      cell.style.background = "";
      if (by === "label") cell.style.background = n.label ? labels.get(n.label) : "#222";
      else if (by === "filter" && filterOf) cell.style.background = filterOf.has(n.node) ? filters.get(filterOf.get(n.node)) : "#222";
      else if (by === "prototype" && n.prototype) {
        const img = document.createElement("img");
        img.src = n.prototype;
        img.alt = "";
        img.loading = "lazy";
        cell.appendChild(img);
      } else cell.style.background = n.members ? viridis(Math.log1p(n.members) / max) : "#111";
      cell.classList.toggle("include", state.marks[map].get(n.node) === "in");
      cell.classList.toggle("exclude", state.marks[map].get(n.node) === "out");
    });
  }
  if (by === "members") legend.push(["few members", viridis(0.1)], ["many members", viridis(1)]);
  $("#legend").innerHTML = legend.map(([k, c]) => `<span><i style="background:${c}"></i>${escapeHtml(k)}</span>`).join("");
  markUpload();
}

async function nodeInfo(map, node) {
  const key = `${map}/${node}`;
  if (!state.nodeCache.has(key)) {
    state.nodeCache.set(key, fetch(`/api/maps/${map}/${node}`).then((r) => r.json()));
  }
  return state.nodeCache.get(key);
}

async function showNode(map, node) {
  const info = await nodeInfo(map, node);
  const box = $("#hover");
  if (info.error) { box.textContent = info.error; return; }
  const samples = info.samples.map((s) =>
    s.url ? `<img class="sample" src="${s.url}" alt="member of node ${node}" title="${escapeHtml(s.publisherID || s.planeid)}">`
      : `<span class="sample none">no preview</span>`).join("");
  const stats = Object.entries(info.stats || {}).filter(([, v]) => typeof v !== "object")
    .map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${typeof v === "number" ? +v.toFixed(4) : escapeHtml(String(v))}</td></tr>`).join("");
  // shares: filters and instruments of a Map-2 node's images; any share table in the statistics
  // (e.g. label_shares written by labelling) shows the same way
  const shareTables = { ...(info.shares || {}) };
  for (const [k, v] of Object.entries(info.stats || {})) if (v && typeof v === "object" && !Array.isArray(v)) shareTables[k] = v;
  const shares = Object.entries(shareTables).map(([what, m]) =>
    `<tr><th>${escapeHtml(what)}</th><td>${Object.entries(m).map(([k, v]) => `${escapeHtml(k)} ${(100 * v).toFixed(0)}%`).join(", ")}</td></tr>`).join("");
  box.innerHTML = `<h3>${map === "map1" ? "Map 1" : "Map 2"} node ${node} <small>(row ${info.row}, col ${info.col})</small></h3>
    <p>${info.members} members${info.label ? ` · label <b>${escapeHtml(info.label)}</b>` : ""}</p>
    <div class="samples" data-node="${node}" data-map="${map}">${samples || '<span class="hint">no public members to show</span>'}</div>
    <table class="stats">${shares}${stats}</table>`;
}

function toggleMark(map, node) {
  const now = state.marks[map].get(node);
  if (!now) state.marks[map].set(node, "in");
  else if (now === "in") state.marks[map].set(node, "out");
  else state.marks[map].delete(node);
  colourMaps();
  if (state.mode.kind === "group") state.mode = { kind: "plain" };
  scheduleRun();
}

// -- the query --------------------------------------------------------------------------------

function filters() {
  return Object.fromEntries(new FormData($("#filters")).entries());
}

// the query of the page's state: marks, fields and the current mode; ``overrides`` replace
// parts of it (quick-select reads the top 1000 fingerprints of the same selection)
function currentQuery(overrides = {}) {
  const f = filters();
  const m = state.mode;
  return buildQuery({
    marks: state.marks,
    filters: f,
    top: Number(f.top) || 100,
    similarTo: m.kind === "similar" ? m.refs : null,
    nodeOf: m.kind === "node" ? { ref: m.ref, radius: m.radius } : null,
    only: m.kind === "group" ? m.ids : null,
    vector: state.maps.map2?.model?.input || "fp",
    ...overrides,
  });
}

let timer = null;
function scheduleRun() {
  clearTimeout(timer);
  timer = setTimeout(run, 250);
}

async function run() {
  const adql = currentQuery();
  state.adql = adql;
  $("#adql").textContent = adql;
  $("#download-votable").href = syncUrl(adql, "votable");
  $("#download-csv").href = syncUrl(adql, "csv");
  if (state.running) state.running.abort();
  const ctl = new AbortController();
  state.running = ctl;
  setStatus("running…", "busy");
  try {
    const result = await runQuery(adql, { signal: ctl.signal });
    if (ctl.signal.aborted) return;
    state.rows = records(result);
    state.checked = new Set([...state.checked].filter((id) => state.rows.some((r) => r.publisherid === id)));
    renderResults(result.overflow);
    setStatus(`${state.rows.length} rows${result.overflow ? " (more exist: raise Rows)" : ""}`, "done");
    await addFiles();
  } catch (e) {
    if (e.name === "AbortError") return;
    state.rows = [];
    renderResults(false);
    setStatus(e.message, "error");
  } finally {
    if (state.running === ctl) state.running = null;
  }
}

function setStatus(text, kind) {
  const el = $("#status");
  el.textContent = text;
  el.dataset.state = kind;
}

function mjdToIso(mjd) {
  return mjd == null ? "" : new Date((mjd - 40587) * 86400000).toISOString().slice(0, 19).replace("T", " ");
}

function renderResults() {
  const head = ["", "preview", "publisherID", "collection", "instrument", "filter", "start (UTC)", "Map-2 node", "objects"];
  const withSim = state.rows.some((r) => r.sim != null);
  if (withSim) head.push("similarity");
  head.push("files");
  $("#results-table thead").innerHTML = `<tr>${head.map((h) => `<th>${h}</th>`).join("")}</tr>`;
  $("#results-table tbody").innerHTML = state.rows.map((r) => `<tr data-id="${escapeHtml(r.publisherid)}">
      <td><input type="checkbox" class="pick" ${state.checked.has(r.publisherid) ? "checked" : ""} aria-label="select ${escapeHtml(r.publisherid)}"></td>
      <td><img class="preview" loading="lazy" src="/preview/plane/${encodeURIComponent(r.planeid)}.png" alt="" onerror="this.replaceWith(document.createTextNode('—'))"></td>
      <td class="pid">${escapeHtml(r.publisherid)}</td><td>${escapeHtml(r.collection ?? "")}</td>
      <td>${escapeHtml(r.instrument_name ?? "")}</td><td>${escapeHtml(r.energy_bandpassname ?? "")}</td>
      <td>${mjdToIso(r.time_bounds_lower)}</td><td>${r.map2_node ?? ""}</td><td>${r.n_detected ?? ""}</td>
      ${withSim ? `<td class="sim">${r.sim == null ? "" : r.sim.toFixed(4)}</td>` : ""}
      <td class="files" data-plane="${escapeHtml(r.planeid)}"></td></tr>`).join("");
  $("#result-count").textContent = `(${state.rows.length})`;
  document.querySelectorAll("#results-table .pick").forEach((box) =>
    box.addEventListener("change", (ev) => {
      const id = ev.target.closest("tr").dataset.id;
      if (ev.target.checked) state.checked.add(id); else state.checked.delete(id);
      updateSelection();
    }));
  updateSelection();
  if ($("#colour-by").value === "filter") colourMaps();
}

async function addFiles() {
  const ids = state.rows.slice(0, 200).map((r) => r.planeid).filter(Boolean);
  if (!ids.length) return;
  try {
    const result = await runQuery(`SELECT planeID, uri FROM caom2.Artifact WHERE planeID IN (${ids.map((i) => `'${i}'`).join(", ")})`);
    const byPlane = new Map();
    for (const r of records(result)) byPlane.set(r.planeid, [...(byPlane.get(r.planeid) || []), r.uri]);
    document.querySelectorAll("#results-table td.files").forEach((td) => {
      td.innerHTML = (byPlane.get(td.dataset.plane) || []).map((u) => `<a href="${escapeHtml(u)}">${escapeHtml(u.split("/").pop())}</a>`).join(" ");
    });
  } catch (e) { /* the files column stays empty: the result itself is shown */ }
}

function updateSelection() {
  const n = state.checked.size;
  $("#select-node").disabled = n !== 1;
  $("#refine").disabled = n < 1;
  drawFootprints($("#sky"), state.rows.map((r) => ({ id: r.publisherid, vertices: r.position_bounds, selected: state.checked.has(r.publisherid) })));
}

// -- refine, node, quick-select -----------------------------------------------------------------

function selectNode() {
  const [ref] = state.checked;
  state.mode = { kind: "node", ref, radius: Number($("#node-radius").value) || 0 };
  state.checked.clear();
  run();
}

function refine() {
  state.mode = { kind: "similar", refs: [...state.checked] };
  run();
}

async function quickSelect() {
  // a group's own 15 are not the selection to group: quick-select looks past them
  const adql = currentQuery({ top: 1000, only: null, columns: ["p.planeID", "p.publisherID", "f.fp"] });
  setStatus("quick-select: reading the top 1000 fingerprints…", "busy");
  try {
    const rows = records(await runQuery(adql));
    const groups = kmeans(rows.map((r) => r.fp), 5);
    $("#groups").innerHTML = groups.map((g, j) => {
      const rep = rows[g.members[0]];
      return `<button type="button" class="group" data-group="${j}" title="${g.members.length} images; representative ${escapeHtml(rep.publisherid)}">
        <img src="/preview/plane/${encodeURIComponent(rep.planeid)}.png" alt=""><span>group ${j + 1}: ${g.members.length} images</span></button>`;
    }).join("");
    document.querySelectorAll("#groups .group").forEach((b) => b.addEventListener("click", () => {
      const g = groups[Number(b.dataset.group)];
      state.mode = { kind: "group", ids: g.members.slice(0, 15).map((i) => rows[i].publisherid) };
      run();
    }));
    setStatus(`quick-select: ${groups.length} groups among ${rows.length} images`, "done");
  } catch (e) {
    setStatus(e.message, "error");
  }
}

// -- upload -----------------------------------------------------------------------------------

function markUpload() {
  document.querySelectorAll(".node.upload, .node.upload-objects").forEach((c) => c.classList.remove("upload", "upload-objects"));
  if (!state.upload) return;
  const u = state.upload;
  if (u.map2_node != null) document.querySelector(`#grid-map2 .node[data-node="${u.map2_node}"]`)?.classList.add("upload");
  for (const node of new Set(u.objects.map((o) => o.map1_node))) {
    document.querySelector(`#grid-map1 .node[data-node="${node}"]`)?.classList.add("upload-objects");
  }
}

async function upload(ev) {
  ev.preventDefault();
  const file = $("#upload-file").files[0];
  const out = $("#upload-result");
  if (!file) { out.textContent = "choose a file first"; return; }
  const body = new FormData();
  body.append("file", file);
  out.textContent = "fingerprinting…";
  out.dataset.state = "busy";
  const reply = await fetch("/api/fingerprint", { method: "POST", body });
  const data = await reply.json();
  if (!reply.ok) {
    out.textContent = data.error;
    out.dataset.state = "error";
    return;
  }
  state.upload = data;
  markUpload();
  out.dataset.state = "done";
  out.innerHTML = `<p>${data.n_objects} objects detected (${data.n_sampled} encoded); Map-2 node
    <b>${data.map2_node ?? "–"}</b>; ${new Set(data.objects.map((o) => o.map1_node)).size} Map-1 nodes (outlined).</p>
    <ol class="similar">${data.similar.map((s) => `<li data-id="${escapeHtml(s.publisherID)}">
      <img src="/preview/plane/${encodeURIComponent(s.publisherID)}" alt="" onerror="this.remove()">
      ${escapeHtml(s.publisherID)} <span class="sim">${s.sim.toFixed(4)}</span></li>`).join("")}</ol>`;
  // the result list: the same similarity (the explicit fingerprint as the reference) with the
  // page's metadata columns, marks and fields, so the upload can be refined like any result
  state.mode = { kind: "similar", refs: [`[${(data.image_vec || data.fp).join(",")}]`] };
  run();
}

// -- misc -------------------------------------------------------------------------------------

function escapeHtml(s) {
  return String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

async function progress() {
  try {
    const p = await (await fetch("/api/status")).json();
    const el = $("#progress");
    if (p.fingerprinted < p.planes) {
      el.hidden = false;
      el.textContent = `Loading the archive: ${p.fingerprinted} of ${p.planes} images fingerprinted; the maps and results fill in as it goes.`;
      setTimeout(progress, 5000);
    } else el.hidden = true;
  } catch (e) { /* the page works without it */ }
}

async function sendSamp() {
  const el = $("#samp-status");
  try {
    await sendTable(new URL(syncUrl(state.adql, "votable"), location.href).href, "caomai result");
    el.textContent = "sent to TOPCAT";
  } catch (e) {
    el.textContent = e.message;
  }
}

document.addEventListener("DOMContentLoaded", async () => {
  $("#colour-by").addEventListener("change", colourMaps);
  $("#clear-marks").addEventListener("click", () => {
    state.marks.map1.clear(); state.marks.map2.clear(); state.mode = { kind: "plain" }; state.upload = null;
    colourMaps(); run();
  });
  $("#filters").addEventListener("submit", (ev) => { ev.preventDefault(); run(); });
  $("#select-node").addEventListener("click", selectNode);
  $("#refine").addEventListener("click", refine);
  $("#quick-select").addEventListener("click", quickSelect);
  $("#upload-form").addEventListener("submit", upload);
  $("#copy-adql").addEventListener("click", () => navigator.clipboard?.writeText(state.adql));
  $("#samp").addEventListener("click", sendSamp);
  await Promise.all([loadMap("map1"), loadMap("map2")]);
  progress();
  run();
});
