// login.js: the login form. On success it goes to ?next= when that is a
// page of this site, else to the first page.
import { login } from "./api.js";
import { $ } from "./ui.js";

const form = $("login");
form.addEventListener("submit", async (e) => {
  e.preventDefault();
  const err = $("login-error");
  err.hidden = true;
  $("login-submit").disabled = true;
  try {
    await login($("user").value, $("password").value);
    const next = new URLSearchParams(location.search).get("next") || "/";
    // Only a path of this site: never an absolute or protocol-relative URL.
    location.assign(next.startsWith("/") && !next.startsWith("//") ? next : "/");
  } catch (ex) {
    err.textContent = ex.message;
    err.hidden = false;
  } finally {
    $("login-submit").disabled = false;
  }
});
