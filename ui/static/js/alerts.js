// alerts.js: the Alerts page: a time range (relative presets, previous /
// next window, absolute from / to, graph zoom), a filter column whose
// entries carry their counts, the graph of active alerts by type, the
// list and the detail of one alert. The whole view (range, filters,
// search, sort, page, open alert) lives in the URL, so it can be
// bookmarked; server-sent events keep it current.
import { events, get } from "./api.js";
import { $, duration, h, params, setParams, time, toast } from "./ui.js";
import { drawGraph, graphPlot, resizeGraph } from "./alerts-graph.js";
import { detailID, openDetail, refreshDetail, stateLabels } from "./alerts-detail.js";

const ranges = { "15m": 900, "1h": 3600, "6h": 6 * 3600, "24h": 86400, "7d": 7 * 86400 };

/** facets are the filters of the column, in its order, with their labels. */
const facets = [
  { key: "severity", title: "Severity", order: (a, b) => Number(b) - Number(a) },
  { key: "status", title: "Action status", labels: stateLabels, fixed: ["waiting", "running", "ended", "none"] },
  { key: "type", title: "Alert type" },
  { key: "blacklist", title: "Blacklist" },
  { key: "duration", title: "Duration",
    labels: { instant: "instant (≤ 1 s)", seconds: "seconds", minutes: "minutes", hours: "hours", days: "days" },
    fixed: ["instant", "seconds", "minutes", "hours", "days"] },
  { key: "note", title: "Notes", labels: { none: "no note" } },
];

/** state is the view; readState and writeState keep it in the URL. */
const state = { range: "1h", from: 0, to: 0, filters: {}, q: "", sort: "", limit: 50, offset: 0, alert: null };

function readState() {
  const p = params();
  const one = (k) => (p[k] ? p[k][0] : "");
  state.range = "";
  const from = Date.parse(one("from")) / 1000;
  const to = Date.parse(one("to")) / 1000;
  if (from && to && from < to) {
    state.from = from;
    state.to = to;
  } else {
    state.range = ranges[one("range")] ? one("range") : "1h";
  }
  for (const f of facets) state.filters[f.key] = p[f.key] || [];
  state.q = one("q");
  state.sort = one("sort");
  state.limit = Number(one("limit")) || 50;
  state.offset = Number(one("offset")) || 0;
  state.alert = one("alert") ? Number(one("alert")) : null;
}

const iso = (sec) => new Date(sec * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");

function writeState() {
  const o = {};
  if (state.range) o.range = state.range;
  else { o.from = iso(state.from); o.to = iso(state.to); }
  Object.assign(o, state.filters);
  o.q = state.q;
  o.sort = state.sort;
  if (state.limit !== 50) o.limit = state.limit;
  if (state.offset) o.offset = state.offset;
  if (state.alert !== null) o.alert = state.alert;
  setParams(o);
}

/** window returns the [from, to] of the view in Unix seconds. */
function window_() {
  if (!state.range) return [state.from, state.to];
  const to = Math.ceil(Date.now() / 1000);
  return [to - ranges[state.range], to];
}

// A datetime-local input holds local time without a zone.
const toLocalInput = (sec) => {
  const d = new Date(sec * 1000);
  return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 19);
};

let generation = 0;
let changedAt = null; // performance.now() of the last change the user made

/** test hooks: the render time of the last change, and the graph. */
window.alertsPage = { renderMs: null, loads: 0, plot: () => graphPlot() };

/** load reads the list, the facets and the histogram of the view. */
async function load() {
  const gen = ++generation;
  const [from, to] = window_();
  const query = { from: iso(from), to: iso(to), ...state.filters, q: state.q, sort: state.sort, limit: state.limit, offset: state.offset || "", slices: 120 };
  let res;
  try {
    res = await get("/api/v1/alerts/search", query);
  } catch (ex) {
    if (gen !== generation) return;
    $("al-error").textContent = ex.message;
    $("al-error").hidden = false;
    return;
  }
  if (gen !== generation) return; // a newer view was asked for
  $("al-error").hidden = true;
  renderTime(from, to);
  renderFacets(res.facets || {});
  renderList(res);
  drawGraph($("al-graph"), res.histogram, [from, to], zoom);
  window.alertsPage.loads++;
  if (changedAt !== null) {
    window.alertsPage.renderMs = performance.now() - changedAt;
    changedAt = null;
  }
}

/** change applies a change of the view: URL, then reload. */
function change(fn, keepPage = false) {
  changedAt = performance.now();
  fn();
  if (!keepPage) state.offset = 0;
  writeState();
  load();
}

function zoom(from, to) {
  change(() => { state.range = ""; state.from = from; state.to = to; });
}

function renderTime(from, to) {
  for (const b of $("al-presets").querySelectorAll("button")) b.classList.toggle("active", b.dataset.range === state.range);
  if (document.activeElement !== $("al-from") && document.activeElement !== $("al-to")) {
    $("al-from").value = toLocalInput(from);
    $("al-to").value = toLocalInput(to);
  }
}

function renderFacets(counts) {
  const col = $("al-facets");
  col.replaceChildren(h("h2", {}, "Filters"), ...facets.map((f) => {
    const got = counts[f.key] || {};
    const selected = state.filters[f.key];
    let values = Object.keys(got);
    for (const v of selected) if (!values.includes(v)) values.push(v);
    if (f.fixed) values = [...f.fixed.filter((v) => values.includes(v)), ...values.filter((v) => !f.fixed.includes(v))];
    else values.sort(f.order || ((a, b) => (got[b] || 0) - (got[a] || 0) || a.localeCompare(b)));
    return h("fieldset", { class: "al-facet", "data-facet": f.key },
      h("legend", {}, f.title,
        selected.length ? h("button", { type: "button", class: "link al-clear", "data-clear": f.key, onclick: () => change(() => { state.filters[f.key] = []; }) }, "clear") : null),
      values.length === 0 ? h("p", { class: "hint" }, "none") : values.map((v) =>
        h("label", { class: "al-entry" },
          h("input", { type: "checkbox", value: v, "data-facet": f.key, checked: selected.includes(v), onchange: (e) => change(() => {
            const cur = state.filters[f.key].filter((x) => x !== v);
            if (e.target.checked) cur.push(v);
            state.filters[f.key] = cur;
          }) }),
          h("span", { class: "al-entry-label" }, facetLabel(f, v)),
          h("span", { class: "al-count" }, String(got[v] || 0)))));
  }));
}

function facetLabel(f, v) {
  if (f.key === "severity") return h("span", { class: `sev sev-${v}` }, v);
  return (f.labels && f.labels[v]) || v;
}

function renderList(res) {
  const list = res.alerts || [];
  const total = res.total || 0;
  $("al-total").textContent = `${total} alert${total === 1 ? "" : "s"}`;
  const last = Math.min(state.offset + list.length, total);
  $("al-page").textContent = total ? `${state.offset + 1}–${last} of ${total}` : "";
  $("al-page-prev").disabled = state.offset === 0;
  $("al-page-next").disabled = last >= total;
  const body = $("al-list").tBodies[0];
  if (list.length === 0) {
    body.replaceChildren(h("tr", {}, h("td", { colspan: 9, class: "hint" }, "No alert matches this time range and these filters.")));
    return;
  }
  body.replaceChildren(...list.map((a) => h("tr", {
    class: a.id === state.alert ? "al-row selected" : "al-row", "data-id": a.id, "data-type": a.type, tabindex: 0,
    onclick: () => select(a.id),
    onkeydown: (e) => { if (e.key === "Enter") select(a.id); },
  },
  h("td", {}, h("span", { class: `sev sev-${a.severity}` }, a.severity)),
  h("td", {}, a.cid_name || String(a.cid)),
  h("td", { class: "al-when" }, time(a.earliest), " – ", a.ended ? time(a.latest) : h("span", { class: "al-open" }, "open"),
    h("div", { class: "hint" }, duration(a.duration_seconds || 0))),
  h("td", { class: "al-type" }, a.type),
  h("td", {}, a.object || ""),
  h("td", { class: "al-reason" }, a.reason || ""),
  h("td", { class: "al-sources" }, sources(a.sources)),
  h("td", {}, a.action_status && a.action_status !== "none" ? h("span", { class: `al-st al-st-${a.action_status}` }, stateLabels[a.action_status] || a.action_status) : ""),
  h("td", { class: "al-notes-cell" }, a.notes ? h("span", { class: "badge" }, `${a.notes} ✎`) : "",
    (a.tags || []).map((t) => h("span", { class: "badge al-tag" }, t))))));
}

function sources(s) {
  if (!s) return "";
  const list = Array.isArray(s) ? s : [s];
  const text = list.slice(0, 3).map((x) => (typeof x === "object" ? x.ip || x.addr || x.source || JSON.stringify(x) : String(x)));
  return text.join(", ") + (list.length > 3 ? ` +${list.length - 3}` : "");
}

function select(id) {
  state.alert = id;
  writeState();
  for (const tr of $("al-list").tBodies[0].rows) tr.classList.toggle("selected", Number(tr.dataset.id) === id);
  openDetail(id, { onClose: unselect, onChange: () => { load(); loadWaiting(); } });
}

function unselect() {
  state.alert = null;
  writeState();
  for (const tr of $("al-list").tBodies[0].rows) tr.classList.remove("selected");
}

/** loadWaiting shows how many actions wait for approval. */
async function loadWaiting() {
  try {
    const res = await get("/api/v1/actions", { state: "waiting", limit: 1 });
    const n = res.counts ? res.counts.waiting : 0;
    const el = $("al-waiting");
    el.textContent = `${n} action${n === 1 ? "" : "s"} waiting for approval`;
    el.hidden = n === 0;
  } catch (ex) {
    if (ex.status !== 403) toast(ex.message, true);
  }
}

// Live updates: at most one reload every 2 s, however many events come.
let lastRefresh = 0;
let timer = null;
let detailDirty = false;
function scheduleRefresh(detailToo) {
  detailDirty ||= detailToo;
  if (timer) return;
  timer = setTimeout(() => {
    timer = null;
    lastRefresh = Date.now();
    load();
    loadWaiting();
    if (detailDirty) { detailDirty = false; refreshDetail(); }
  }, Math.max(0, 2000 - (Date.now() - lastRefresh)));
}

function wire() {
  for (const b of $("al-presets").querySelectorAll("button")) {
    b.addEventListener("click", () => change(() => { state.range = b.dataset.range; }));
  }
  const shift = (dir) => change(() => {
    const [from, to] = window_();
    const span = to - from;
    state.range = "";
    state.from = from + dir * span;
    state.to = to + dir * span;
  });
  $("al-prev").addEventListener("click", () => shift(-1));
  $("al-next").addEventListener("click", () => shift(1));
  $("al-abs").addEventListener("submit", (e) => {
    e.preventDefault();
    const from = Date.parse($("al-from").value) / 1000;
    const to = Date.parse($("al-to").value) / 1000;
    if (!(from < to)) {
      toast("From must be before To: pick a range that ends after it starts", true);
      return;
    }
    change(() => { state.range = ""; state.from = from; state.to = to; });
  });
  $("al-search").addEventListener("submit", (e) => {
    e.preventDefault();
    change(() => { state.q = $("al-q").value.trim(); });
  });
  $("al-sort").addEventListener("change", () => change(() => { state.sort = $("al-sort").value; }));
  $("al-limit").addEventListener("change", () => change(() => { state.limit = Number($("al-limit").value); }));
  $("al-page-prev").addEventListener("click", () => change(() => { state.offset = Math.max(0, state.offset - state.limit); }, true));
  $("al-page-next").addEventListener("click", () => change(() => { state.offset += state.limit; }, true));
  $("al-waiting").addEventListener("click", (e) => {
    e.preventDefault();
    change(() => { state.filters.status = ["waiting"]; });
  });
  let resizeTimer = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => resizeGraph($("al-graph")), 150);
  });
  events(["alerts", "actions"], (topic, ev) => {
    const id = topic === "alerts" ? ev.id : ev.alert;
    scheduleRefresh(id === detailID());
  }, () => scheduleRefresh(true));
}

readState();
$("al-q").value = state.q;
$("al-sort").value = state.sort;
$("al-limit").value = String(state.limit);
wire();
load();
loadWaiting();
if (state.alert !== null) select(state.alert);
// A relative range moves with the clock even when no alert changes.
setInterval(() => { if (state.range && !timer) scheduleRefresh(false); }, 30000);
