// users.js: the Users page (admins and managers): the users one may
// manage, created and edited (role, partitions, traffic groups, password)
// and deleted under the API's rules, whose messages are shown as they
// come; and the audit log, newest first, a page at a time.
import { get, post, put, del } from "./api.js";
import { $, h, me, time, toast } from "./ui.js";

const auditPage = 50;
let partitions = [];
let groups = [];
let editing = null; // the user being edited; null when creating

function checks(box, items, checked, label) {
  box.replaceChildren(...items.map((it) => h("label", { class: "check" },
    h("input", { type: "checkbox", value: it.id, checked: checked.includes(it.id) }), " ", label(it))));
}

const checkedIDs = (box) => [...box.querySelectorAll("input:checked")].map((el) => Number(el.value));

function renderChecks(u) {
  checks($("user-cids"), partitions.map((p) => ({ id: p.cid, name: p.name })), u ? u.cids : [], (p) => `${p.name} (${p.id})`);
  checks($("user-groups"), groups, u ? u.groups : [], (g) => `${g.name} (${g.id}, partition ${g.cid})`);
}

async function loadUsers() {
  const users = await get("/api/v1/users");
  $("users").tBodies[0].replaceChildren(...users.map((u) =>
    h("tr", { dataset: { name: u.name } },
      h("td", {}, u.name),
      h("td", {}, u.role),
      h("td", {}, u.role === "admin" ? "all" : u.cids.join(", ") || "none"),
      h("td", {}, u.groups.join(", ") || "all"),
      h("td", { class: "actions" },
        h("button", { class: "secondary", onclick: () => edit(u) }, "Edit"),
        u.name !== me().user ? h("button", { class: "secondary", onclick: () => remove(u) }, "Delete") : null))));
}

function edit(u) {
  editing = u;
  $("user-title").textContent = u ? `Edit user ${u.name}` : "New user";
  $("user-name").value = u ? u.name : "";
  $("user-name").disabled = Boolean(u);
  $("user-role").value = u ? u.role : "viewer";
  $("user-password").value = "";
  $("user-password").placeholder = u ? "leave empty to keep it" : "";
  $("user-save").textContent = u ? "Save" : "Create";
  $("user-cancel").hidden = !u;
  $("user-error").hidden = true;
  renderChecks(u);
}

async function remove(u) {
  if (!confirm(`Delete user ${u.name}?`)) return;
  try {
    await del(`/api/v1/users/${encodeURIComponent(u.name)}`);
    toast(`User ${u.name} deleted`);
    loadUsers();
    loadAudit();
  } catch (ex) {
    toast(ex.message, true);
  }
}

$("user-cancel").addEventListener("click", () => edit(null));
$("user-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const err = $("user-error");
  err.hidden = true;
  const body = { role: $("user-role").value, cids: checkedIDs($("user-cids")), groups: checkedIDs($("user-groups")) };
  if ($("user-password").value !== "" || !editing) body.password = $("user-password").value;
  try {
    if (editing) {
      await put(`/api/v1/users/${encodeURIComponent(editing.name)}`, body);
      toast(`User ${editing.name} saved`);
    } else {
      body.name = $("user-name").value;
      await post("/api/v1/users", body);
      toast(`User ${body.name} created`);
    }
    edit(null);
    loadUsers();
    loadAudit();
  } catch (ex) {
    err.textContent = ex.message;
    err.hidden = false;
  }
});

/** loadAudit shows the page of entries older than before (0: the newest). */
async function loadAudit(before = 0) {
  const list = await get("/api/v1/audit", { limit: auditPage, before: before || "" });
  $("audit").tBodies[0].replaceChildren(...list.map((a) =>
    h("tr", {},
      h("td", {}, a.seq), h("td", {}, time(a.time)), h("td", {}, a.user), h("td", {}, a.addr),
      h("td", {}, `${a.method} ${a.path}`), h("td", { class: a.status >= 400 ? "error" : null }, a.status),
      h("td", {}, a.summary))));
  const last = list.length ? list[list.length - 1].seq : 0;
  $("audit-older").disabled = list.length < auditPage;
  $("audit-older").dataset.before = last;
  $("audit-page").textContent = list.length ? `entries ${last} to ${list[0].seq}` : "no entries";
}

$("audit-newest").addEventListener("click", () => loadAudit().catch((ex) => toast(ex.message, true)));
$("audit-older").addEventListener("click", () => loadAudit(Number($("audit-older").dataset.before)).catch((ex) => toast(ex.message, true)));

async function init() {
  [partitions, groups] = await Promise.all([get("/api/v1/partitions"), get("/api/v1/trafficgroups")]);
  edit(null);
  await Promise.all([loadUsers(), loadAudit()]);
}

if (["admin", "manager"].includes(me().role)) {
  init().catch((ex) => toast(ex.message, true));
} else {
  $("main").replaceChildren(h("h1", {}, "Users"),
    h("p", { class: "error", id: "users-denied" }, "Only admins and managers manage users; your own password is on the Account page."));
}
