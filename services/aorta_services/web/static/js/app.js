// The console's shell: who is signed in, the no-auth banner, and the hash router that draws one
// page at a time into <main>. Hash routes keep every deep link served by the one index.html.

import { api, SIGNED_OUT } from "./api.js";
import { fill, h } from "./dom.js";
import * as jobPage from "./pages/job.js";
import * as jobsPage from "./pages/jobs.js";
import * as modelsPage from "./pages/models.js";
import * as nodePage from "./pages/node.js";
import * as pipelinePage from "./pages/pipeline.js";
import * as pipelinesPage from "./pages/pipelines.js";
import * as signInPage from "./pages/signin.js";

const ROUTES = [
  { pattern: /^\/sign-in$/, page: signInPage, section: null, open: true },
  { pattern: /^\/jobs$/, page: jobsPage, section: "jobs" },
  { pattern: /^\/jobs\/([^/]+)$/, page: jobPage, section: "jobs" },
  { pattern: /^\/pipelines$/, page: pipelinesPage, section: "pipelines" },
  { pattern: /^\/pipelines\/([^/]+)$/, page: pipelinePage, section: "pipelines" },
  { pattern: /^\/models$/, page: modelsPage, section: "models" },
  { pattern: /^\/node$/, page: nodePage, section: "node" },
];

const main = document.getElementById("main");
let who = null;
let leave = null;
let drawn = 0;

/** Shows a short message in the corner (refusals, confirmations) for a few seconds. */
export function toast(message) {
  const box = document.getElementById("toast");
  box.textContent = message;
  box.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.hidden = true; }, 8000);
}

/** Goes to `hash` (e.g. "#/jobs/ab12"). */
export function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

function parse() {
  const raw = location.hash.replace(/^#/, "") || "/jobs";
  const [path, search = ""] = raw.split("?");
  return { path, query: new URLSearchParams(search) };
}

function showWho() {
  const box = document.getElementById("who");
  const banner = document.getElementById("banner");
  banner.hidden = !who || who.auth;
  fill(banner, "This platform does not authenticate callers: anyone who can reach it acts as an admin. ",
    "Start it with --auth to require sign-in.");
  if (!who || !who.signed_in || !who.auth) {
    fill(box, who && !who.auth ? h("span", {}, "No sign-in (auth off)") : "");
    return;
  }
  fill(box,
    h("span", { class: "mono", "data-testid": "subject" }, who.subject),
    h("span", { class: "badge s-stopped" }, who.role || "no role"),
    h("button", { type: "button", onclick: signOut }, "Sign out"));
}

async function signOut() {
  await api.signOut();
  who = await api.whoami();
  showWho();
  go("#/sign-in");
}

/** Called by the sign-in page once the server accepted a token. */
export function signedIn(identity, back) {
  who = identity;
  showWho();
  go(back && back !== "#/sign-in" ? back : "#/jobs");
}

async function route() {
  const { path, query } = parse();
  const match = ROUTES.map((r) => ({ r, m: path.match(r.pattern) })).find((x) => x.m);
  leave?.();
  leave = null;
  for (const link of document.querySelectorAll(".nav a")) {
    if (match && link.dataset.section === match.r.section) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (!match) {
    fill(main, h("h1", {}, "Not found"), h("p", {}, "No page here. ", h("a", { href: "#/jobs" }, "Go to the jobs.")));
    return;
  }
  if (!match.r.open && who && who.auth && !who.signed_in) {
    go(`#/sign-in?back=${encodeURIComponent(location.hash || "#/jobs")}`);
    return;
  }
  const ticket = ++drawn;
  fill(main, h("p", { class: "live" }, "Loading…"));
  try {
    const cleanup = await match.r.page.render(main, {
      params: match.m.slice(1).map(decodeURIComponent), query, who, toast, go, signedIn,
      current: () => ticket === drawn,
    });
    if (ticket === drawn) leave = cleanup || null;
    else cleanup?.();
  } catch (error) {
    if (ticket !== drawn) return;
    fill(main, h("h1", {}, error.status === 404 ? "Not found" : "Something went wrong"),
      h("p", { class: "notice", role: "alert" }, error.message || String(error)),
      h("p", {}, h("a", { href: "#/jobs" }, "Go to the jobs.")));
  }
  if (ticket === drawn && route.moved) main.focus();
  route.moved = true;
}

window.addEventListener(SIGNED_OUT, async () => {
  who = await api.whoami().catch(() => who);
  showWho();
  if (who && who.auth && !who.signed_in && !location.hash.startsWith("#/sign-in")) {
    go(`#/sign-in?back=${encodeURIComponent(location.hash || "#/jobs")}`);
  }
});
window.addEventListener("hashchange", route);
// The hash holds the page's route, so the skip link moves focus itself instead of following
// its "#main" (which the router would take for a page).
document.querySelector(".skip-link").addEventListener("click", (event) => {
  event.preventDefault();
  main.focus();
});

(async () => {
  try {
    who = await api.whoami();
  } catch (error) {
    fill(main, h("h1", {}, "The console cannot reach the platform"), h("p", { class: "notice" }, error.message));
    return;
  }
  showWho();
  route();
})();
