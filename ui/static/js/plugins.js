// plugins.js: the Plugins page: the installed plugins with their load
// warnings and errors, the plugin instances of the partitions the user
// sees, an instance form generated from the plugin's configurationFields
// and validated with the server's own messages (plugins-rules.js), and a
// TEST button running the plugin (POST /api/v1/instances/{id}/test).
// Viewers see everything read-only.
import { get, post, put, del } from "./api.js";
import { $, h, me, params, setParams, toast } from "./ui.js";
import { problems, serverProblems } from "./plugins-rules.js";

const canChange = ["admin", "manager"].includes(me().role);
let plugins = [];
let partitions = [];
let editing = null; // the instance being edited; {} for a new one

const usable = () => plugins.filter((p) => p.spec);
const partitionName = (cid) => {
  const p = partitions.find((x) => x.cid === cid);
  return p ? `${p.name} (${cid})` : String(cid);
};

function renderPlugins() {
  $("plugin-list").replaceChildren(...plugins.map((p) => {
    const s = p.spec;
    return h("article", { class: "plugin", dataset: { name: p.name } },
      h("h3", {}, s ? s.label : p.name, " ", h("span", { class: "hint" }, s ? `${p.name} · version ${s.version}` : p.name)),
      s && s.author ? h("p", {}, "By ", s.author) : null,
      s ? (s.description || []).map((line) => h("p", { class: "description" }, line)) : null,
      s ? h("p", {}, "Alert types: ", s.supportedAlertTypes.includes("*") ? "all" : s.supportedAlertTypes.join(", ")) : null,
      s ? h("p", { class: "hint" }, "Configuration: ", s.configurationFields.map((f) => `${f.label} (${f.key}, ${f.fieldspec.type})`).join(", ") || "none") : null,
      p.warnings.map((w) => h("p", { class: "warning" }, "Warning: ", w)),
      p.error ? h("p", { class: "error" }, p.error) : null);
  }));
}

async function loadInstances() {
  const cid = $("instance-cid").value;
  let list = await get("/api/v1/instances");
  if (cid !== "") list = list.filter((i) => i.cid === Number(cid));
  $("instances").tBodies[0].replaceChildren(...list.map((inst) =>
    h("tr", { dataset: { id: inst.id } },
      h("td", {}, inst.id),
      h("td", {}, inst.name),
      h("td", {}, inst.plugin),
      h("td", {}, partitionName(inst.cid)),
      h("td", { class: "values" }, Object.entries(inst.values).map(([k, v]) => `${k}=${v}`).join(" ")),
      // An instance of the configuration file changes there (and a
      // SIGHUP), not here: the API refuses it with 409.
      h("td", { class: "actions" }, canChange ? (inst.source === "config" ? [
        h("span", { class: "badge from-config", title: "Defined in the configuration file: edit it there and reload (SIGHUP)" }, "from the config file"),
        h("button", { class: "secondary test", onclick: () => runTest(inst) }, "Test"),
      ] : [
        h("button", { class: "secondary", onclick: () => edit(inst) }, "Edit"),
        h("button", { class: "secondary test", onclick: () => runTest(inst) }, "Test"),
        h("button", { class: "secondary", onclick: () => remove(inst) }, "Delete"),
      ]) : inst.source === "config" ? h("span", { class: "badge from-config" }, "from the config file") : null))));
}

async function remove(inst) {
  if (!confirm(`Delete plugin instance ${inst.name}?`)) return;
  try {
    await del(`/api/v1/instances/${inst.id}`);
    toast(`Instance ${inst.name} deleted`);
    loadInstances();
  } catch (ex) {
    toast(ex.message, true);
  }
}

async function runTest(inst) {
  const box = $("test-result");
  box.hidden = false;
  $("test-title").textContent = `Test of ${inst.name} (${inst.plugin})`;
  $("test-status").textContent = "Running…";
  $("test-output").textContent = "";
  try {
    const r = await post(`/api/v1/instances/${inst.id}/test`);
    $("test-status").textContent = `exit code ${r.exit_code} after ${r.duration.toFixed(3)} s` +
      (r.error ? ` (${r.error})` : "") + (r.truncated ? " · output truncated" : "");
    $("test-status").className = r.exit_code === 0 && !r.error ? "ok" : "error";
    $("test-output").textContent = r.output;
  } catch (ex) {
    $("test-status").textContent = ex.message;
    $("test-status").className = "error";
  }
}

/** fieldInput builds the input of one configuration field. */
function fieldInput(f, value) {
  const fs = f.fieldspec;
  const id = `field-${f.key}`;
  let input;
  if (fs.type === "boolean") {
    input = h("select", { id },
      h("option", { value: "" }, fs.value !== undefined ? `default (${fs.value})` : "not set"),
      h("option", { value: "true" }, "true"), h("option", { value: "false" }, "false"));
  } else {
    input = h("input", {
      id, type: fs.type === "password" ? "password" : "text", autocomplete: "off",
      inputmode: fs.type === "int" ? "numeric" : null,
      placeholder: fs.value !== undefined ? `default ${fs.value}` : fs.type === "password" && editing.id ? "enter again to keep it" : null,
    });
  }
  input.value = fs.type === "password" ? "" : value ?? "";
  input.dataset.key = f.key;
  input.addEventListener("input", () => showProblems(false));
  const bounds = [];
  if (fs.min !== undefined) bounds.push(`min ${fs.min}`);
  if (fs.max !== undefined) bounds.push(`max ${fs.max}`);
  if (fs.minlength !== undefined) bounds.push(`at least ${fs.minlength} characters`);
  if (fs.maxlength !== undefined) bounds.push(`at most ${fs.maxlength} characters`);
  return h("div", { class: "field", dataset: { key: f.key } },
    h("label", { for: id }, f.label, fs.required ? " *" : "", " ", h("code", {}, f.key)),
    input,
    h("span", { class: "hint" }, [fs.type, ...bounds].join(", "), f.helptext ? ` · ${f.helptext}` : ""),
    h("p", { class: "error field-error", id: `error-${f.key}`, role: "alert", hidden: true }));
}

function currentPlugin() {
  return plugins.find((p) => p.name === $("instance-plugin").value);
}

function renderFields() {
  const p = currentPlugin();
  const values = editing && editing.plugin === p?.name ? editing.values : {};
  $("instance-fields").replaceChildren(...(p ? p.spec.configurationFields.map((f) => fieldInput(f, values[f.key])) : []));
}

function formValues() {
  const out = {};
  for (const el of $("instance-fields").querySelectorAll("[data-key]:is(input, select)")) {
    if (el.value !== "") out[el.dataset.key] = el.value;
  }
  return out;
}

/** showFieldErrors puts each {KEY: message} beside its field. */
function showFieldErrors(byKey) {
  for (const el of $("instance-fields").querySelectorAll(".field-error")) {
    const msg = byKey[el.id.slice("error-".length)];
    el.textContent = msg || "";
    el.hidden = !msg;
  }
}

/** showProblems checks the form in the browser; all=false only clears fixed fields. */
function showProblems(all) {
  const p = currentPlugin();
  const found = p ? problems(p.spec.configurationFields, formValues()) : {};
  if (!all) {
    for (const el of $("instance-fields").querySelectorAll(".field-error")) {
      if (el.hidden) delete found[el.id.slice("error-".length)];
    }
  }
  showFieldErrors(found);
  return Object.keys(found).length === 0;
}

function edit(inst) {
  editing = inst;
  $("instance-editor").hidden = false;
  $("instance-title").textContent = inst.id ? `Edit instance ${inst.id}` : "New instance";
  $("instance-name").value = inst.name || "";
  $("instance-plugin").replaceChildren(...usable().map((p) => h("option", { value: p.name }, `${p.spec.label} (${p.name})`)));
  $("instance-plugin").value = inst.plugin || usable()[0]?.name || "";
  $("instance-plugin").disabled = Boolean(inst.id);
  $("instance-form-cid").replaceChildren(...partitions.map((p) => h("option", { value: p.cid }, partitionName(p.cid))));
  $("instance-form-cid").value = String(inst.cid ?? partitions[0]?.cid ?? 0);
  $("instance-error").hidden = true;
  renderFields();
  $("instance-name").focus();
}

$("instance-plugin").addEventListener("change", renderFields);
$("instance-cancel").addEventListener("click", () => { $("instance-editor").hidden = true; editing = null; });
$("instance-new").addEventListener("click", () => edit({}));
$("instance-cid").addEventListener("change", () => {
  setParams({ cid: $("instance-cid").value });
  loadInstances().catch((ex) => toast(ex.message, true));
});

$("instance-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const err = $("instance-error");
  err.hidden = true;
  if (!showProblems(true)) return;
  const body = {
    name: $("instance-name").value, plugin: $("instance-plugin").value,
    cid: Number($("instance-form-cid").value), values: formValues(),
  };
  try {
    const saved = editing.id ? await put(`/api/v1/instances/${editing.id}`, body) : await post("/api/v1/instances", body);
    toast(`Instance ${saved.name} saved`);
    $("instance-editor").hidden = true;
    editing = null;
    loadInstances();
  } catch (ex) {
    const { byKey, rest } = serverProblems(ex.message);
    showFieldErrors(byKey);
    if (rest) {
      err.textContent = rest;
      err.hidden = false;
    }
  }
});

async function init() {
  [plugins, partitions] = await Promise.all([get("/api/v1/plugins"), get("/api/v1/partitions")]);
  renderPlugins();
  $("instance-cid").append(...partitions.map((p) => h("option", { value: p.cid }, partitionName(p.cid))));
  const cid = params().cid?.[0];
  if (cid !== undefined) $("instance-cid").value = cid;
  $("instance-new").hidden = !canChange || usable().length === 0;
  await loadInstances();
}

init().catch((ex) => toast(ex.message, true));
