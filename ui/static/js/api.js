// api.js: the JSON API client every page uses. Requests carry the session
// cookie; changes carry the session's CSRF token. A 401 sends the browser
// to the login page and back; other errors throw ApiError with the
// server's message, which names what to change.

let csrf = null;

/** ApiError is a non-2xx answer: status and the server's error text. */
export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

/** session returns who is logged in, with the CSRF token (cached). */
export async function session() {
  const s = await request("GET", "/api/v1/session");
  csrf = s.csrf_token || csrf;
  return s;
}

/** toLogin sends the browser to the login page, back here afterwards. */
export function toLogin() {
  location.assign("/login?next=" + encodeURIComponent(location.pathname + location.search));
}

async function request(method, path, body, opts = {}) {
  // X-Requested-With: the server then asks for no basic auth, which would
  // open the browser's own password dialog.
  const headers = { Accept: "application/json", "X-Requested-With": "flowsentry-ui" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && method !== "HEAD") {
    if (csrf === null && !opts.noSession) await session();
    if (csrf) headers["X-CSRF-Token"] = csrf;
  }
  const res = await fetch(path, {
    method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status === 401 && !opts.noRedirect) {
    toLogin();
    throw new ApiError(401, "not logged in");
  }
  const text = await res.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = text; }
  }
  if (!res.ok) {
    const msg = data && data.error ? data.error : `HTTP ${res.status}`;
    throw new ApiError(res.status, msg, data);
  }
  return data;
}

/** get fetches path with query parameters (an object; empty values left out). */
export function get(path, query) {
  if (query) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) {
      if (v === undefined || v === null || v === "") continue;
      for (const one of Array.isArray(v) ? v : [v]) q.append(k, one);
    }
    const s = q.toString();
    if (s) path += (path.includes("?") ? "&" : "?") + s;
  }
  return request("GET", path);
}

export const post = (path, body) => request("POST", path, body);
export const put = (path, body) => request("PUT", path, body);
export const del = (path) => request("DELETE", path);

/** login posts the credentials; it never redirects. */
export async function login(user, password) {
  const s = await request("POST", "/api/v1/login", { user, password }, { noSession: true, noRedirect: true });
  csrf = s.csrf_token;
  return s;
}

/** logout ends the session and goes to the login page. */
export async function logout() {
  try { await request("POST", "/api/v1/logout"); } finally { location.assign("/login"); }
}

/**
 * events subscribes to the server-sent events of topics and calls
 * onEvent(topic, data) for each; "overflow" (events were lost) calls
 * onOverflow so the page reloads its data. Returns a function that closes
 * the stream.
 */
export function events(topics, onEvent, onOverflow) {
  const src = new EventSource("/api/v1/events?topics=" + encodeURIComponent(topics.join(",")));
  for (const t of topics) {
    src.addEventListener(t, (e) => {
      let data = null;
      try { data = JSON.parse(e.data); } catch { return; }
      onEvent(t, data);
    });
  }
  src.addEventListener("overflow", () => onOverflow && onOverflow());
  return () => src.close();
}
