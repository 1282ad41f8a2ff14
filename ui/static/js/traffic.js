// traffic.js: the Traffic page: for one traffic group (or, for admins,
// one exporter interface), charts of bits, packets and new connections
// per second in and out — per-minute average and peak from GET
// /api/v1/history for the last hour or the last 7 days, with the live
// per-second values of the "traffic" events appended — and the top hosts
// (groups) and ports now, sortable by any counter. The selection is kept
// in the URL (?obj=g:ID or i:EXPORTER/IFINDEX, &range=1h|7d, &hsort, &psort).
import uPlot from "/assets/vendor/uPlot.esm.js";
import { events, get } from "./api.js";
import { $, h, me, params, setParams, si, toast } from "./ui.js";

const ranges = { "1h": { seconds: 3600, points: 60 }, "7d": { seconds: 7 * 86400, points: 1000 } };

// The charts: the history counters of "in" and "out", scaled to the unit.
const charts = [
  { el: "chart-bits", unit: "b/s", in: "bits_in", out: "bits_out", live: (c) => [c.bytes_in * 8, c.bytes_out * 8] },
  { el: "chart-packets", unit: "p/s", in: "packets_in", out: "packets_out", live: (c) => [c.packets_in, c.packets_out] },
  { el: "chart-conns", unit: "/s", in: "new_conn", out: "new_conn_out", live: (c) => [c.new_conn, c.new_conn_out] },
];

// The columns of the top tables: the sort key and how a row shows it.
const flowColumns = [
  { key: "bytes_in", label: "Bits in", show: (r) => si(r.bytes_in * 8, "b/s") },
  { key: "bytes_out", label: "Bits out", show: (r) => si(r.bytes_out * 8, "b/s") },
  { key: "packets_in", label: "Packets in", show: (r) => si(r.packets_in, "p/s") },
  { key: "packets_out", label: "Packets out", show: (r) => si(r.packets_out, "p/s") },
  { key: "new_conn", label: "New conn. in", show: (r) => si(r.new_conn, "/s") },
  { key: "new_conn_out", label: "New conn. out", show: (r) => si(r.new_conn_out, "/s") },
];
const hostColumns = [...flowColumns,
  { key: "uniq_local_endpoint", label: "Unique endpoints", show: (r) => si(r.uniq_local_endpoint) },
  { key: "uniq_remote_cidr", label: "Unique remote /24s", show: (r) => si(r.uniq_remote_cidr) },
];

const state = { obj: "", range: "1h", hsort: "bytes_in", psort: "bytes_in" };
const plots = {};
let data = {}; // by chart element: [t, inAvg, outAvg, inPeak, outPeak]

function saveState() {
  setParams({ obj: state.obj, range: state.range === "1h" ? "" : state.range,
    hsort: state.hsort === "bytes_in" ? "" : state.hsort, psort: state.psort === "bytes_in" ? "" : state.psort });
}

function makePlot(c) {
  const el = $(c.el);
  const fmt = (u, v) => (v === null || v === undefined ? "–" : si(v, c.unit));
  const opts = {
    width: Math.max(300, el.clientWidth || 900), height: 200,
    cursor: { drag: { x: false, y: false } },
    // The x axis always spans the range asked for, so that a few live
    // points are not stretched over the chart.
    scales: { x: { time: true, range: () => { const now = Date.now() / 1000; return [now - ranges[state.range].seconds, now]; } } },
    series: [{},
      { label: "in", stroke: "#1f6feb", width: 1.5, value: fmt, spanGaps: true },
      { label: "out", stroke: "#d4731a", width: 1.5, value: fmt, spanGaps: true },
      { label: "in peak", stroke: "rgba(31,111,235,0.35)", width: 1, value: fmt },
      { label: "out peak", stroke: "rgba(212,115,26,0.35)", width: 1, value: fmt }],
    axes: [{}, { size: 84, values: (u, vals) => vals.map((v) => si(v, c.unit)) }],
  };
  return new uPlot(opts, [[], [], [], [], []], el);
}

function draw(c) {
  const d = data[c.el];
  plots[c.el].setData(d);
  $(c.el).dataset.points = String(d[1].filter((v) => v !== null).length);
}

/** selection parses state.obj into the history query. */
function selection() {
  const [kind, rest] = [state.obj.slice(0, 1), state.obj.slice(2)];
  if (kind === "i") {
    const cut = rest.lastIndexOf("/");
    return { kind: "interface", exporter: rest.slice(0, cut), ifindex: rest.slice(cut + 1) };
  }
  return { kind: "group", id: rest };
}

async function loadHistory() {
  if (!state.obj) return;
  const r = ranges[state.range];
  const now = Date.now();
  const q = { ...selection(), from: new Date(now - r.seconds * 1000).toISOString().replace(/\.\d+Z$/, "Z"),
    max_points: r.points, counter: charts.flatMap((c) => [c.in, c.out]).join(",") };
  const ans = await get("/api/v1/history", q);
  for (const c of charts) {
    data[c.el] = [ans.t.slice(), ans.avg[c.in].slice(), ans.avg[c.out].slice(), ans.peak[c.in].slice(), ans.peak[c.out].slice()];
    draw(c);
  }
}

/** live appends a traffic event's values of the selected group or interface (last hour only). */
function live(ev) {
  if (state.range !== "1h") return;
  const sel = selection();
  const o = sel.kind === "group"
    ? ev.groups.find((x) => String(x.id) === sel.id)
    : (ev.interfaces || []).find((x) => x.exporter === sel.exporter && String(x.ifindex) === sel.ifindex);
  const t = Date.parse(ev.time) / 1000;
  $("traffic-live").textContent = `live · ${new Date(t * 1000).toLocaleTimeString()}`;
  if (!o) return;
  for (const c of charts) {
    const d = data[c.el];
    if (!d) continue;
    const [vin, vout] = c.live(o.cur);
    d[0].push(t); d[1].push(vin); d[2].push(vout); d[3].push(null); d[4].push(null);
    while (d[0].length && d[0][0] < t - 3600) d.forEach((col) => col.shift());
    draw(c);
  }
}

function topTable(table, columns, keyCol, sortKey, onSort, rows) {
  table.tHead.replaceChildren(h("tr", {}, h("th", {}, keyCol.label),
    columns.map((col) => h("th", { class: col.key === sortKey ? "num sorted" : "num", dataset: { sort: col.key },
      "aria-sort": col.key === sortKey ? "descending" : null, onclick: () => onSort(col.key) }, col.label))));
  table.tBodies[0].replaceChildren(...rows.map((r) =>
    h("tr", {}, h("td", {}, keyCol.show(r)), columns.map((col) => h("td", { class: "num" }, col.show(r.cur))))));
}

async function loadTop() {
  const sel = selection();
  const group = sel.kind === "group";
  $("top-hosts-part").hidden = !group;
  const base = group ? `/api/v1/trafficgroups/${sel.id}`
    : `/api/v1/exporters/${encodeURIComponent(sel.exporter)}/interfaces/${sel.ifindex}`;
  const [hosts, ports] = await Promise.all([
    group ? get(`${base}/hosts`, { sort: state.hsort, limit: 10 }) : null,
    get(`${base}/ports`, { sort: state.psort, limit: 10 }),
  ]);
  if (group) {
    topTable($("top-hosts"), hostColumns, { label: "Host", show: (r) => r.key.ip }, state.hsort,
      (k) => { state.hsort = k; saveState(); loadTop(); }, hosts);
  }
  topTable($("top-ports"), flowColumns, { label: "Port", show: (r) => `${r.key.port}/${protoName(r.key.proto)}` }, state.psort,
    (k) => { state.psort = k; saveState(); loadTop(); }, ports);
}

const protoName = (p) => ({ 1: "icmp", 6: "tcp", 17: "udp", 58: "icmpv6" })[p] || String(p);

function setRange(r) {
  state.range = r;
  $("range-1h").setAttribute("aria-pressed", String(r === "1h"));
  $("range-7d").setAttribute("aria-pressed", String(r === "7d"));
  saveState();
  loadHistory().catch((ex) => toast(ex.message, true));
}

async function objects() {
  const opts = (await get("/api/v1/trafficgroups")).map((g) => h("option", { value: `g:${g.id}` }, `${g.name} (group ${g.id}, partition ${g.cid})`));
  if (me().role === "admin") {
    const exporters = await get("/api/v1/exporters", { limit: 1000 });
    for (const ex of exporters) {
      for (const i of ex.interfaces) {
        opts.push(h("option", { value: `i:${ex.addr}/${i.key.ifindex}` }, `${ex.addr} interface ${i.key.ifindex}${i.name ? ` (${i.name})` : ""}`));
      }
    }
  }
  return opts;
}

async function init() {
  const p = params();
  state.obj = p.obj?.[0] || "";
  state.range = ranges[p.range?.[0]] ? p.range[0] : "1h";
  state.hsort = p.hsort?.[0] || state.hsort;
  state.psort = p.psort?.[0] || state.psort;
  const opts = await objects();
  const sel = $("traffic-object");
  sel.replaceChildren(...opts);
  if (!opts.length) {
    $("traffic-live").textContent = "no traffic groups you may see";
    return;
  }
  if (!opts.some((o) => o.value === state.obj)) state.obj = opts[0].value;
  sel.value = state.obj;
  for (const c of charts) plots[c.el] = makePlot(c);
  setRange(state.range);
  sel.addEventListener("change", () => {
    state.obj = sel.value;
    saveState();
    loadHistory().catch((ex) => toast(ex.message, true));
    loadTop().catch((ex) => toast(ex.message, true));
  });
  $("range-1h").addEventListener("click", () => setRange("1h"));
  $("range-7d").addEventListener("click", () => setRange("7d"));
  await loadTop();
  setInterval(() => loadTop().catch(() => {}), 5000);
  events(["traffic"], (topic, ev) => live(ev), () => loadHistory().catch(() => {}));
  window.addEventListener("resize", () => {
    for (const c of charts) plots[c.el].setSize({ width: Math.max(300, $(c.el).clientWidth), height: 200 });
  });
}

init().catch((ex) => toast(ex.message, true));
