// policy.js: the Policy page: per partition a matrix of detector families
// and threshold lines (rows) by template, traffic group and interface
// (columns); a click configures the template, an override or a mute.
import uPlot from "/assets/vendor/uPlot.esm.js";
import { get, post, put, del, events } from "./api.js";
import { $, h, me, si, bits, params, setParams, toast } from "./ui.js";

const viewer = me().role === "viewer";
let families = new Map(); // name -> {object_types, lines, params}
let policies = new Map(); // id -> policy
let matrix = null;
let extraLines = []; // [{cid, row}] added with "+", kept until a reload
let chart = null;

/** collapsed returns the folded row keys: from the URL, DDoS subtypes by default. */
function collapsed() {
  const c = params().c;
  if (!c) return new Set(["ddos_flood"]);
  return new Set(c.filter((k) => k !== "-"));
}

function toggle(key) {
  const c = collapsed();
  if (c.has(key)) c.delete(key); else c.add(key);
  setParams({ c: c.size ? [...c] : ["-"] });
  render();
}

const byteCounters = new Set(["bytes_in", "bytes_out"]);
const rateText = (row, v) => byteCounters.has(row.threshold_type) ? bits(v) : si(v, "/s");

/** change describes the alert count against the previous hour. */
function change(c) {
  if (c.prev_hour === 0) return c.last_hour > 0 ? "new" : "";
  const pct = Math.round(((c.last_hour - c.prev_hour) / c.prev_hour) * 100);
  return pct === 0 ? "=" : (pct > 0 ? `▲ +${pct}%` : `▼ ${pct}%`);
}

function cellTitle(row, col, c) {
  const lines = [`${row.label} on ${col.name}`];
  if (c.rate !== undefined && c.rate !== null) lines.push(`Current rate: ${rateText(row, c.rate)}`);
  lines.push(`Alerts last hour: ${c.last_hour}, hour before: ${c.prev_hour}`);
  if (c.policy) lines.push(`Policy ${c.policy.id} "${c.policy.name}" (${c.policy.kind}, severity ${c.policy.severity}${c.policy.source === "config" ? ", configuration file" : ""})`);
  else lines.push("No policy");
  return lines.join("\n");
}

const badge = { template: "T", override: "O", mute: "M", policy: "P" };

function cellView(pt, row, col, c, j) {
  const text = row.kind === "rate" ? rateText(row, c.rate || 0) : String(c.last_hour);
  const td = h("td", {
    class: `cell state-${c.state || "none"}${j < 2 ? " tmpl" : ""}${viewer || !pt.may_change ? "" : " clickable"}`,
    title: cellTitle(row, col, c),
    dataset: { row: row.key, col: col.name, state: c.state || "none" },
  },
  c.state === "red" ? h("span", { class: "mark" }, "!") : c.state === "green" ? h("span", { class: "mark" }, "✓") : null,
  h("span", { class: "val" }, text),
  row.kind === "alerts" && change(c) ? h("span", { class: "chg" }, change(c)) : null,
  c.policy ? h("span", { class: `kind kind-${c.policy.kind}` }, badge[c.policy.kind]) : null);
  if (!viewer && pt.may_change) td.addEventListener("click", () => openCell(pt, row, col, c));
  return td;
}

function rowsOf(pt) {
  const rows = pt.rows.map((r, i) => ({ row: r, cells: pt.cells[i] }));
  for (const x of extraLines.filter((l) => l.cid === pt.cid)) {
    if (rows.some((r) => r.row.key === x.row.key)) continue;
    const empty = pt.columns.map(() => ({ policy: null, rate: 0, last_hour: 0, prev_hour: 0, state: "" }));
    let at = rows.findIndex((r) => r.row.key === x.row.parent);
    while (at + 1 < rows.length && rows[at + 1].row.parent === x.row.parent) at++;
    rows.splice(at + 1, 0, { row: x.row, cells: empty });
  }
  return rows;
}

function partitionView(pt) {
  const folded = collapsed();
  const parents = new Set(pt.rows.map((r) => r.parent).filter(Boolean));
  const head = h("tr", {}, h("th", { class: "rowlabel" }, "Detector"),
    pt.columns.map((c, j) => h("th", { class: j < 2 ? "tmpl" : c.kind, title: c.kind === "interface" ? `${c.exporter_addr} ifIndex ${c.ifindex}` : c.name }, c.name)));
  const body = [];
  for (const { row, cells } of rowsOf(pt)) {
    if (row.parent && folded.has(row.parent)) continue;
    const label = h("th", { class: `rowlabel${row.parent ? " child" : ""}` });
    if (parents.has(row.key)) {
      label.append(h("button", { class: "fold", type: "button", "aria-expanded": String(!folded.has(row.key)), onclick: () => toggle(row.key) }, folded.has(row.key) ? "▸" : "▾"), " ");
    }
    label.append(row.label);
    if (row.kind === "header" && !viewer && pt.may_change) {
      label.append(" ", h("button", { class: "add-line", type: "button", title: "Add a threshold line", onclick: () => openLine(pt, row) }, "+"));
    }
    const tr = h("tr", { class: `row-${row.kind}`, dataset: { key: row.key } }, label);
    if (row.kind === "header") tr.append(h("td", { colspan: pt.columns.length }));
    else cells.forEach((c, j) => tr.append(cellView(pt, row, pt.columns[j], c, j)));
    body.push(tr);
  }
  return h("section", { class: "card policy-partition", dataset: { cid: pt.cid } },
    h("h2", {}, `${pt.name} (partition ${pt.cid})`, pt.may_change ? null : h("span", { class: "hint" }, " read-only")),
    h("div", { class: "matrix-wrap" }, h("table", { class: "matrix" }, h("thead", {}, head), h("tbody", {}, body))));
}

function render() {
  if (!matrix) return;
  $("matrix").replaceChildren(...matrix.partitions.map(partitionView));
}

async function load() {
  const t0 = performance.now();
  const [m, pols] = await Promise.all([get("/api/v1/policy/matrix"), get("/api/v1/policies")]);
  matrix = m;
  policies = new Map(pols.map((p) => [p.id, p]));
  render();
  const ms = performance.now() - t0;
  $("policy-rendered").textContent = `Loaded and drawn in ${Math.round(ms)} ms.`;
  $("policy-rendered").dataset.ms = String(ms);
}

// --- the "+" dialog ---
let lineFor = null;
function openLine(pt, header) {
  lineFor = { pt, header };
  const fam = families.get(header.family);
  const counters = header.family === "threshold" ? ["packets_in", "bytes_in", "new_conn"]
    : ["bytes_in", "bytes_out", "packets_in", "packets_out", "new_conn", "updates"];
  $("line-counter").replaceChildren(...counters.map((c) => h("option", { value: c }, c)));
  const ports = fam && fam.object_types.some((o) => o.endsWith("PROTO+PORT"));
  $("line-proto-label").hidden = !ports;
  $("line-port-label").hidden = !ports;
  $("line-dialog").showModal();
}
$("line-cancel").addEventListener("click", () => $("line-dialog").close());
$("line-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const { pt, header } = lineFor;
  const counter = $("line-counter").value;
  const ports = !$("line-proto-label").hidden;
  const proto = ports ? Number($("line-proto").value) : 0;
  const port = ports ? Number($("line-port").value) : 0;
  const key = `${header.family}/${counter}/${proto}/${port}`;
  extraLines.push({ cid: pt.cid, row: { key, parent: header.key, kind: "rate", family: header.family,
    label: proto || port ? `${counter} ${proto}/${port}` : counter, threshold_type: counter, proto, port } });
  $("line-dialog").close();
  render();
});

// --- the cell dialog ---
function objectType(fam, row, col) {
  const ifc = col.kind === "interface" || col.kind === "interfaces";
  const port = row.proto || row.port;
  const want = ifc ? (port ? "EXPORTER_ADDR+IFINDEX+PROTO+PORT" : "EXPORTER_ADDR+IFINDEX") : (port ? "TGRP+PROTO+PORT" : "TGRP");
  return fam.object_types.includes(want) ? want : null;
}

/** fieldsFor builds the inputs of a family's parameters from pol (or the defaults). */
function fieldsFor(fam, row, pol, readOnly) {
  const fixed = new Set(row.kind === "rate" ? ["threshold_type", "proto", "port"] : []);
  const inputs = [];
  const sev = h("input", { id: "f-severity", type: "number", min: 0, value: pol ? pol.severity : 5, disabled: readOnly });
  const name = h("input", { id: "f-name", value: pol ? pol.name : "", required: true, disabled: readOnly });
  inputs.push(h("label", {}, "Name ", name), h("label", {}, "Severity ", sev));
  for (const p of fam.params) {
    if (p.type === "list" || p.type === "object" || fixed.has(p.key)) continue;
    const v = pol && pol[p.key] !== undefined ? pol[p.key] : p.default;
    const el = p.type === "bool"
      ? h("input", { id: `f-${p.key}`, type: "checkbox", checked: !!v, disabled: readOnly })
      : h("input", { id: `f-${p.key}`, type: p.type === "number" ? "number" : "text", step: "any", value: v ?? "", disabled: readOnly });
    el.dataset.key = p.key;
    el.dataset.type = p.type;
    inputs.push(h("label", {}, `${p.key} `, el));
  }
  return inputs;
}

/** formValues reads the dialog's inputs into a policy body. */
function formValues(base) {
  const body = { ...base, name: $("f-name").value, severity: Number($("f-severity").value) };
  for (const el of $("cell-fields").querySelectorAll("input[data-key]")) {
    body[el.dataset.key] = el.dataset.type === "bool" ? el.checked : el.dataset.type === "number" ? Number(el.value) : el.value;
  }
  return body;
}

async function drawHistory(row, col) {
  const box = $("cell-chart");
  box.replaceChildren();
  if (chart) { chart.destroy(); chart = null; }
  const port = row.proto || row.port;
  let q;
  if (col.kind === "group") q = { kind: port ? "group_port" : "group", id: col.tgrp };
  else if (col.kind === "interface") q = { kind: port ? "interface_port" : "interface", exporter: col.exporter_addr, ifindex: col.ifindex };
  else return;
  if (port) Object.assign(q, { proto: row.proto, port: row.port });
  const counter = row.threshold_type || "bytes_in";
  try {
    const hist = await get("/api/v1/history", q);
    const ys = (hist.avg && hist.avg[counter]) || [];
    box.append(h("p", { class: "hint" }, `${counter}, per-second average over ${hist.step_seconds} s steps (${hist.t.length} points)`));
    chart = new uPlot({ width: Math.max(300, box.clientWidth - 4), height: 160, scales: { x: { time: true } },
      series: [{}, { label: counter, stroke: "#1f6feb", width: 2, spanGaps: true }] }, [hist.t, ys], box);
  } catch (ex) {
    box.append(h("p", { class: "hint" }, `No rate history: ${ex.message}`));
  }
}

function openCell(pt, row, col, cell) {
  const fam = families.get(row.family);
  const ot = fam && objectType(fam, row, col);
  const inForce = cell.policy ? policies.get(cell.policy.id) : null;
  const template = cell.policy && cell.policy.template ? policies.get(cell.policy.template) : null;
  const onObject = col.kind === "group" || col.kind === "interface";
  const own = inForce && cell.policy.kind !== "template" ? inForce : null; // override, mute or bound policy
  const readOnly = !!(inForce && inForce.source === "config" && (own || !onObject));
  $("cell-title").textContent = `${row.label} — ${col.name}`;
  $("cell-info").textContent = cell.policy
    ? `In force: policy ${cell.policy.id} "${cell.policy.name}" (${cell.policy.kind}, severity ${cell.policy.severity}).`
    : "No policy here.";
  $("cell-readonly").hidden = !readOnly;
  $("cell-readonly").textContent = readOnly
    ? `Read-only: policy ${inForce.id} is defined in the configuration file (source: config); edit the file and reload the server (SIGHUP) to change it.` : "";
  $("cell-error").hidden = true;
  const buttons = [];
  const objectKeys = col.kind === "group" ? { tgrp: col.tgrp } : col.kind === "interface" ? { exporter_addr: col.exporter_addr, ifindex: col.ifindex } : {};
  const base = {
    cid: pt.cid, family: row.family, object_type: ot, actions: [],
    target: col.kind === "interface" || col.kind === "interfaces" ? "interfaces" : "traffic_groups",
    ...(row.kind === "rate" ? { threshold_type: row.threshold_type, proto: row.proto || 0, port: row.port || 0 } : {}),
    ...objectKeys,
  };
  const save = async (method, path, body) => {
    try {
      delete body.source;
      await (method === "POST" ? post(path, body) : put(path, body));
      $("cell-dialog").close();
      toast("Policy saved");
      await load();
    } catch (ex) {
      $("cell-error").textContent = ex.message;
      $("cell-error").hidden = false;
    }
  };
  let shown = null; // the policy whose values the form shows
  let submit = null;
  if (!ot) {
    $("cell-info").textContent += ` Family ${row.family} does not watch ${col.kind === "interface" || col.kind === "interfaces" ? "interfaces" : "this object"}.`;
  } else if (!onObject) {
    shown = inForce;
    submit = inForce ? () => save("PUT", `/api/v1/policies/${inForce.id}`, formValues({ ...inForce }))
      : () => save("POST", "/api/v1/policies", formValues({ ...base }));
    buttons.push(h("button", { type: "button", id: "save-template" }, inForce ? "Save template" : "Create template"));
  } else if (own) {
    shown = own;
    submit = () => save("PUT", `/api/v1/policies/${own.id}`, formValues({ ...own }));
    buttons.push(h("button", { type: "button", id: "save-override" }, own.severity === 0 ? "Save (unmute by raising severity)" : "Save override"));
    buttons.push(h("button", { type: "button", class: "secondary", id: "remove-override", onclick: async () => {
      try { await del(`/api/v1/policies/${own.id}`); $("cell-dialog").close(); toast("Removed"); await load(); } catch (ex) { $("cell-error").textContent = ex.message; $("cell-error").hidden = false; }
    } }, own.override ? "Remove (back to the template)" : "Remove policy"));
  } else if (template) {
    shown = { ...template, name: `${template.name} on ${col.name}` };
    const over = { ...template, ...objectKeys, override: template.id };
    delete over.id;
    submit = () => save("POST", "/api/v1/policies", formValues(over));
    buttons.push(h("button", { type: "button", id: "save-override" }, "Create override"));
    buttons.push(h("button", { type: "button", class: "secondary", id: "mute", onclick: () => save("POST", "/api/v1/policies", { ...over, name: `Mute ${template.name} on ${col.name}`, severity: 0 }) }, "Mute here"));
  } else {
    submit = () => save("POST", "/api/v1/policies", formValues({ ...base }));
    buttons.push(h("button", { type: "button", id: "save-policy" }, "Create policy for this object"));
  }
  if (readOnly) buttons.length = 0;
  $("cell-fields").replaceChildren(...(ot ? fieldsFor(fam, row, shown, readOnly) : []));
  if (submit && buttons[0]) buttons[0].addEventListener("click", submit);
  buttons.push(h("button", { type: "button", class: "secondary", id: "cell-close", onclick: () => $("cell-dialog").close() }, "Close"));
  $("cell-buttons").replaceChildren(...buttons);
  $("cell-dialog").showModal();
  drawHistory(row, col);
}

// --- live updates: policies at once, traffic at most every 10 s ---
let pending = null;
function reloadSoon(delay) {
  if (pending) return;
  pending = setTimeout(() => { pending = null; if (!$("cell-dialog").open) load().catch((ex) => toast(ex.message, true)); }, delay);
}
events(["policies", "traffic"], (topic) => reloadSoon(topic === "policies" ? 200 : 10000), () => reloadSoon(200));

get("/api/v1/families").then((list) => {
  families = new Map(list.map((f) => [f.name, f]));
  return load();
}).catch((ex) => toast(ex.message, true));
