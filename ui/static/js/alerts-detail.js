// alerts-detail.js: the Alerts page's detail panel: every field of one
// alert, its actions with the log of their plugin calls and the buttons
// that approve, reject, stop or restart them (managers and administrators
// only), the graphs of the values its plugins annotated (per the plugin's
// gui.json containers and update_fields), the pcap of a DDoS alert, and
// its notes with a form to add one.
import uPlot from "/assets/vendor/uPlot.esm.js";
import { get, post } from "./api.js";
import { $, h, me, time, toast } from "./ui.js";

/** stateLabels name the states of an action. */
export const stateLabels = {
  waiting_approval: "waiting for approval", in_progress: "in progress", ended: "ended", rejected: "rejected",
  waiting: "waiting for approval", running: "in progress", none: "no action",
};

let openID = null;
let hooks = {};
let charts = [];

/** detailID is the ID of the alert shown, null when none is. */
export const detailID = () => openID;

/**
 * openDetail shows alert id in the panel; hooks.onClose runs when the
 * user closes it, hooks.onChange after an action or a note changed it.
 */
export async function openDetail(id, h0) {
  openID = id;
  hooks = h0 || {};
  await refreshDetail();
}

/** closeDetail hides the panel. */
export function closeDetail() {
  openID = null;
  for (const c of charts) c.destroy();
  charts = [];
  $("al-detail").hidden = true;
  $("al-detail").replaceChildren();
}

/** refreshDetail reads the open alert again and redraws the panel. */
export async function refreshDetail() {
  const id = openID;
  if (id === null) return;
  const panel = $("al-detail");
  let d, notes;
  try {
    [d, notes] = await Promise.all([
      get(`/api/v1/alerts/${id}`),
      get(`/api/v1/alerts/${id}/notes`).catch((ex) => ({ error: ex.message })),
    ]);
  } catch (ex) {
    if (id !== openID) return;
    panel.hidden = false;
    panel.replaceChildren(header(id), h("p", { class: "error" },
      ex.status === 404 || ex.status === 403 ? `Alert ${id} is not one you may see (or it was deleted).` : ex.message));
    return;
  }
  if (id !== openID) return; // another alert was opened meanwhile
  for (const c of charts) c.destroy();
  charts = [];
  const a = d.alert || {};
  const pcap = Object.keys(a).some((k) => k.toLowerCase() === "target_ip");
  panel.hidden = false;
  panel.replaceChildren(...[
    header(id),
    h("p", {},
      h("span", { class: `sev sev-${a.severity}` }, a.severity), " ",
      h("strong", {}, a.alert_type), " · policy ",
      d.policy && d.policy.name ? `${d.policy.name} (${d.policy.id})` : `#${d.policy ? d.policy.id : "?"} (deleted)`),
    pcap ? h("p", {}, h("a", { href: `/api/v1/alerts/${id}/pcap`, download: `alert-${id}.pcap`, id: "al-pcap" }, "Download the sampled packets (pcap)")) : null,
    h("h3", {}, "Fields"),
    fields(a),
    h("h3", {}, "Actions"),
    actions(d.actions || []),
    annotations(d.annotations),
    h("h3", {}, "Notes"),
    notesView(id, notes),
  ].filter((el) => el !== null));
  drawAnnotationCharts();
}

function header(id) {
  return h("div", { class: "al-detail-head" },
    h("h2", {}, `Alert ${id}`),
    h("button", { type: "button", class: "link", id: "al-detail-close", onclick: () => { closeDetail(); if (hooks.onClose) hooks.onClose(); } }, "Close"));
}

/** fields lists every field of the alert's FlowTraq JSON, nested ones indented. */
function fields(obj) {
  const rows = [];
  const walk = (o, prefix) => {
    for (const [k, v] of Object.entries(o)) {
      const name = prefix ? `${prefix}.${k}` : k;
      if (v && typeof v === "object" && !Array.isArray(v)) walk(v, name);
      else rows.push(h("tr", {}, h("th", {}, name), h("td", {}, fieldValue(k, v))));
    }
  };
  walk(obj, "");
  return h("table", { class: "al-fields" }, h("tbody", {}, rows));
}

function fieldValue(k, v) {
  if (Array.isArray(v)) return v.map((x) => (typeof x === "object" ? JSON.stringify(x) : String(x))).join(", ");
  if (/_utc$/.test(k) && typeof v === "number") return `${time(v)} (${v})`;
  return v === null ? "–" : String(v);
}

/** actions lists the actions with their buttons and call logs. */
function actions(list) {
  if (list.length === 0) return h("p", { class: "hint" }, "No action: the policy attaches no plugin.");
  const mayAct = me().role !== "viewer";
  return h("div", {}, list.map((ac) => {
    const buttons = [];
    const btn = (op, label, cls) => h("button", { type: "button", class: cls, "data-op": op, "data-action": ac.id, onclick: (e) => act(ac.id, op, e.target) }, label);
    if (mayAct) {
      if (ac.state === "waiting_approval") buttons.push(btn("approve", "Approve", ""), btn("reject", "Reject", "danger"));
      if (ac.state === "in_progress") buttons.push(btn("stop", "Stop", "danger"), btn("restart", "Restart", "secondary"));
      if (ac.state === "ended") buttons.push(btn("restart", "Restart", "secondary"));
    }
    const calls = ac.calls || [];
    return h("div", { class: "al-action", "data-action": ac.id },
      h("div", { class: "row" },
        h("strong", {}, `#${ac.id} ${ac.plugin}`),
        h("span", { class: `al-st al-st-${ac.state}` }, stateLabels[ac.state] || ac.state),
        h("span", { class: "hint" }, `since ${time(ac.updated)}`),
        ...buttons),
      calls.length === 0 ? h("p", { class: "hint" }, "No plugin call yet.") :
        h("table", { class: "list al-calls" },
          h("thead", {}, h("tr", {}, h("th", {}, "Call"), h("th", {}, "Started"), h("th", {}, "Duration"), h("th", {}, "Exit"), h("th", {}, "Output"))),
          h("tbody", {}, calls.map((c) => h("tr", {},
            h("td", {}, c.op),
            h("td", {}, time(c.start)),
            h("td", { class: "num" }, `${(c.duration_ns / 1e6).toFixed(1)} ms`),
            h("td", { class: c.exit_code === 0 ? "num" : "num error" }, String(c.exit_code), c.error ? ` (${c.error})` : ""),
            h("td", {}, h("pre", { class: "al-output" }, c.output || "(no output)", c.truncated ? "\n… (truncated)" : "")))))));
  }));
}

async function act(aid, op, button) {
  button.disabled = true;
  try {
    await post(`/api/v1/actions/${aid}/${op}`);
    toast(`Action ${aid}: ${op} done`);
    if (hooks.onChange) hooks.onChange();
    await refreshDetail();
  } catch (ex) {
    toast(ex.message, true);
    button.disabled = false;
  }
}

let pendingCharts = [];

/** annotations builds one graph holder per container of each action's plugin. */
function annotations(ann) {
  pendingCharts = [];
  const acts = (ann && ann.actions) || [];
  const blocks = [];
  for (const ac of acts) {
    const keys = ac.keys || [];
    if (keys.length === 0) continue;
    const groups = new Map();
    for (const c of ac.containers || []) groups.set(c, []);
    for (const s of keys) {
      const c = s.container || "Other values";
      if (!groups.has(c)) groups.set(c, []);
      groups.get(c).push(s);
    }
    for (const [container, series] of groups) {
      if (series.length === 0) continue;
      const el = h("div", { class: "al-ann-chart" });
      blocks.push(h("div", { class: "al-ann" }, h("h4", {}, `${ac.plugin || "action " + ac.action}: ${container}`), el));
      pendingCharts.push({ el, series });
    }
  }
  if (blocks.length === 0) return null;
  return h("div", {}, h("h3", {}, "Annotations"), blocks);
}

const annColors = ["#1f6feb", "#d0342c", "#2e9e5b", "#d48a00", "#8e1b5d", "#0a8a9f"];

/** drawAnnotationCharts draws the holders once they are in the page (uPlot needs a width). */
function drawAnnotationCharts() {
  for (const { el, series } of pendingCharts) {
    const ts = [...new Set(series.flatMap((s) => s.values.map((p) => Date.parse(p.time) / 1000)))].sort((a, b) => a - b);
    const index = new Map(ts.map((t, i) => [t, i]));
    const data = [ts, ...series.map((s) => {
      const col = new Array(ts.length).fill(null);
      for (const p of s.values) col[index.get(Date.parse(p.time) / 1000)] = p.value;
      return col;
    })];
    charts.push(new uPlot({
      width: Math.max(260, el.clientWidth - 4), height: 160,
      scales: { x: { time: true } },
      series: [{}, ...series.map((s, i) => ({ label: s.label || s.key, stroke: annColors[i % annColors.length], width: 2, spanGaps: true, points: { show: true, size: 5 } }))],
    }, data, el));
  }
  pendingCharts = [];
}

/** notesView lists the notes and offers the form that adds one. */
function notesView(id, notes) {
  const list = Array.isArray(notes) ? notes : [];
  const err = h("p", { class: "error", hidden: true });
  const text = h("textarea", { id: "al-note-text", rows: 2, maxlength: 4000, placeholder: "Add a note; @tags make it filterable", required: true });
  const form = h("form", { id: "al-note-form", class: "al-note-form" }, text, h("button", { type: "submit" }, "Add note"), err);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    err.hidden = true;
    try {
      await post(`/api/v1/alerts/${id}/notes`, { text: text.value });
      text.value = "";
      if (hooks.onChange) hooks.onChange();
      await refreshDetail();
    } catch (ex) {
      err.textContent = ex.message;
      err.hidden = false;
    }
  });
  return h("div", {},
    notes && notes.error ? h("p", { class: "error" }, notes.error) : null,
    list.length === 0 ? h("p", { class: "hint" }, "No note yet.") :
      h("ul", { class: "al-notes", id: "al-notes" }, list.map((n) => h("li", {},
        h("div", { class: "hint" }, `${n.user} · ${time(n.time)}`),
        h("div", { class: "al-note-text" }, n.text)))),
    form);
}
