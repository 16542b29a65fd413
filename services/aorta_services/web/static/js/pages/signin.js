// Sign-in: the user pastes a token (`aorta token create`, or an OIDC access token); the server
// checks it against the platform and keeps it in an HttpOnly cookie the page never sees.

import { api } from "../api.js";
import { fill, h } from "../dom.js";

export async function render(main, { query, who, signedIn }) {
  const back = query.get("back") || "#/jobs";
  if (who && (!who.auth || who.signed_in)) {
    signedIn(who, back);
    return null;
  }
  const error = h("p", { class: "error", role: "alert", id: "sign-in-error" });
  const token = h("input", {
    id: "token", name: "token", type: "password", autocomplete: "off", required: true,
    "aria-describedby": "token-help sign-in-error", spellcheck: "false",
  });
  const form = h("form", { novalidate: true },
    h("label", { for: "token" }, "Token"),
    token,
    h("p", { id: "token-help", class: "live" },
      "A token made with `aorta token create`, or an access token from your identity provider."),
    error,
    h("button", { type: "submit", class: "primary" }, "Sign in"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    if (!token.value.trim()) {
      error.textContent = "Paste a token first.";
      token.focus();
      return;
    }
    try {
      const identity = await api.signIn(token.value.trim());
      signedIn(identity, back);
    } catch (failure) {
      error.textContent = failure.message;
      token.select();
    }
  });
  fill(main, h("section", { class: "signin" },
    h("h1", {}, "Sign in to Aorta"), form));
  token.focus();
  return null;
}
