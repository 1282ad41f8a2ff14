// alerts-graph.js: the Alerts page's graph: the alerts active in each time
// slice, stacked by type (uPlot bars). uPlot does not stack, so each
// series is drawn as the sum of its type and the types after it, the
// largest first; the legend and the hover show each type's own count.
// A legend click hides a type (the stacks are summed again without it);
// a drag across the plot calls onZoom(from, to) in Unix seconds.
import uPlot from "/assets/vendor/uPlot.esm.js";
import { h } from "./ui.js";

const palette = ["#1f6feb", "#d0342c", "#2e9e5b", "#d48a00", "#8e1b5d", "#0a8a9f", "#7a5cc7", "#b35a1f", "#5b6b7b", "#c2185b", "#558b2f", "#00695c"];

/** colorOf gives a type the same colour on every draw of the page. */
const colors = new Map();
function colorOf(type) {
  if (!colors.has(type)) colors.set(type, palette[colors.size % palette.length]);
  return colors.get(type);
}

const hidden = new Set(); // types hidden by a legend click, kept across reloads
let plot = null;
let raw = []; // raw[k][i]: count of type k in slice i

/** stacks sums each series with those after it, hidden types as zero. */
function stacks(types, times) {
  const out = types.map(() => new Array(times.length).fill(0));
  for (let i = 0; i < times.length; i++) {
    let sum = 0;
    for (let k = types.length - 1; k >= 0; k--) {
      if (!hidden.has(types[k])) sum += raw[k][i] || 0;
      out[k][i] = sum;
    }
  }
  return out;
}

/**
 * drawGraph draws histogram ({step_seconds, t, types}) of the time range
 * span ([from, to], Unix seconds) into el, replacing the previous graph;
 * onZoom(from, to) is called with the range dragged.
 */
export function drawGraph(el, histogram, span, onZoom) {
  const times = (histogram && histogram.t) || [];
  const byType = (histogram && histogram.types) || {};
  // Most alerts at the bottom of the stack, where they are easiest to read.
  const total = (k) => byType[k].reduce((a, b) => a + b, 0);
  const types = Object.keys(byType).sort((a, b) => total(b) - total(a) || a.localeCompare(b));
  raw = types.map((k) => byType[k]);
  if (plot) { plot.destroy(); plot = null; }
  el.replaceChildren();
  if (times.length === 0 || types.length === 0) {
    el.append(h("p", { class: "hint al-graph-empty" }, "No alert was active in this time range."));
    return;
  }
  const barPaths = uPlot.paths.bars({ size: [0.9, 40], align: 1 });
  const opts = {
    width: Math.max(300, el.clientWidth - 8),
    height: 200,
    cursor: { drag: { x: true, y: false, setScale: false }, points: { show: false } },
    select: { show: true },
    legend: { live: true },
    scales: { x: { time: true, range: () => span }, y: { range: (u, min, max) => [0, Math.max(1, max)] } },
    axes: [{}, { label: "alerts", size: 50, incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000, 10000] }],
    series: [
      { label: "time", value: (u, v) => (v === null ? "–" : new Date(v * 1000).toLocaleString()) },
      ...types.map((type, k) => ({
        label: type,
        show: !hidden.has(type),
        stroke: colorOf(type),
        fill: colorOf(type) + "cc",
        width: 0,
        paths: barPaths,
        points: { show: false },
        // The hover shows the type's own count, not its stack.
        value: (u, v, si, i) => (i === null || i === undefined ? "–" : String(raw[k][i] ?? 0)),
      })),
    ],
    hooks: {
      setSeries: [(u, si, opts2) => {
        if (si === null || !opts2 || opts2.show === undefined) return;
        const type = types[si - 1];
        if (opts2.show) hidden.delete(type); else hidden.add(type);
        u.setData([times, ...stacks(types, times)]);
      }],
      setSelect: [(u) => {
        const { left, width } = u.select;
        if (width < 5) return;
        // A drag reaching an edge of the plot (within 2 px) takes the
        // range's own end: a pixel there is seconds, minutes at 7 days,
        // and the newest alerts sit right at the end.
        const edge = u.over.clientWidth - 2;
        const from = left <= 2 ? Math.floor(span[0]) : Math.floor(u.posToVal(left, "x"));
        const to = left + width >= edge ? Math.ceil(span[1]) : Math.ceil(u.posToVal(left + width, "x"));
        u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
        if (to > from) onZoom(from, to);
      }],
    },
  };
  plot = new uPlot(opts, [times, ...stacks(types, times)], el);
}

/** resizeGraph fits the graph to its element's width. */
export function resizeGraph(el) {
  if (plot) plot.setSize({ width: Math.max(300, el.clientWidth - 8), height: 200 });
}

/** graphPlot returns the uPlot instance (for tests and debugging). */
export const graphPlot = () => plot;
