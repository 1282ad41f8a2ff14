// account.js: the Account page: change one's password, manage one's API
// tokens.
import { get, post, put, del } from "./api.js";
import { $, h, me, time, toast } from "./ui.js";

async function loadTokens() {
  const tokens = await get("/api/v1/tokens");
  const who = me().user;
  $("tokens").tBodies[0].replaceChildren(...tokens.filter((t) => t.user === who).map((t) =>
    h("tr", {},
      h("td", {}, t.name),
      h("td", {}, time(t.created)),
      h("td", {}, t.expires ? time(t.expires) : "never"),
      h("td", {}, h("button", { class: "secondary", onclick: async () => {
        await del(`/api/v1/tokens/${t.id}`);
        toast(`Token ${t.name} revoked`);
        loadTokens();
      } }, "Revoke")))));
}

$("password-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const err = $("password-error");
  err.hidden = true;
  try {
    await put(`/api/v1/users/${encodeURIComponent(me().user)}`, { password: $("new-password").value });
    $("new-password").value = "";
    toast("Password changed");
  } catch (ex) {
    err.textContent = ex.message;
    err.hidden = false;
  }
});

$("token-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  try {
    const body = { name: $("token-name").value };
    if ($("token-expiry").value) body.expires_in = $("token-expiry").value;
    const t = await post("/api/v1/tokens", body);
    const shown = $("new-token");
    shown.textContent = `New token (copy it now, it is not shown again): ${t.token}`;
    shown.hidden = false;
    $("token-name").value = "";
    loadTokens();
  } catch (ex) {
    toast(ex.message, true);
  }
});

loadTokens().catch((ex) => toast(ex.message, true));
