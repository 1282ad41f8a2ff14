// ui.js: small DOM, formatting and URL-state helpers shared by the pages,
// and the top bar's log-out button.
import { logout } from "./api.js";

/**
 * h builds an element: h("td", {class: "num", onclick: fn}, "text", child).
 * Attributes starting with "on" become listeners; null/false children are
 * skipped; strings become text (never HTML).
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** $ returns the element of id. */
export const $ = (id) => document.getElementById(id);

/** toast shows a short message; error ones stay longer. */
export function toast(msg, isError = false) {
  const el = h("div", { class: isError ? "msg error" : "msg" }, msg);
  $("toast").append(el);
  setTimeout(() => el.remove(), isError ? 8000 : 3000);
}

const units = ["", "k", "M", "G", "T", "P"];

/** si formats n with an SI prefix: 1234567 → "1.23 M". */
export function si(n, unit = "") {
  if (n === null || n === undefined || Number.isNaN(n)) return "–";
  let i = 0;
  let v = Math.abs(n);
  while (v >= 1000 && i < units.length - 1) { v /= 1000; i++; }
  const s = (n < 0 ? -v : v).toFixed(v >= 100 || i === 0 ? 0 : v >= 10 ? 1 : 2);
  return `${s} ${units[i]}${unit}`.trim();
}

/** bits formats a byte rate as bits per second. */
export const bits = (bytesPerSec) => si(bytesPerSec * 8, "b/s");

/** time formats a date (ISO string, Date or Unix seconds) in local time. */
export function time(t) {
  if (t === null || t === undefined || t === "") return "–";
  const d = t instanceof Date ? t : typeof t === "number" ? new Date(t * 1000) : new Date(t);
  if (Number.isNaN(d.getTime()) || d.getFullYear() < 1971) return "–";
  return d.toLocaleString(undefined, { year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

/** duration formats seconds as "3 s", "4 min", "2 h 5 min", "3 d 4 h". */
export function duration(sec) {
  if (sec < 60) return `${Math.round(sec)} s`;
  if (sec < 3600) return `${Math.round(sec / 60)} min`;
  if (sec < 86400) return `${Math.floor(sec / 3600)} h ${Math.round((sec % 3600) / 60)} min`;
  return `${Math.floor(sec / 86400)} d ${Math.round((sec % 86400) / 3600)} h`;
}

/** params returns the page URL's query as an object of arrays. */
export function params() {
  const out = {};
  for (const [k, v] of new URLSearchParams(location.search)) (out[k] ||= []).push(v);
  return out;
}

/**
 * setParams replaces the page URL's query with obj (arrays repeat a key;
 * empty values are left out) without reloading, so a view can be
 * bookmarked.
 */
export function setParams(obj) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(obj)) {
    for (const one of Array.isArray(v) ? v : [v]) if (one !== "" && one !== null && one !== undefined) q.append(k, one);
  }
  const s = q.toString();
  history.replaceState(null, "", location.pathname + (s ? "?" + s : ""));
}

/** me returns the logged-in user and role the page was rendered for. */
export function me() {
  const el = $("whoami");
  return el ? { user: el.dataset.user, role: el.dataset.role } : null;
}

const out = $("logout");
if (out) out.addEventListener("click", () => logout());
