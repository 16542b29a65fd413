// Jobs: one page of the server's job list at a time (the server pages, so ten thousand jobs cost
// the browser one page), filters kept in the address, refreshed live from the event stream.

import { api, followEvents } from "../api.js";
import { badge, fill, h } from "../dom.js";
import { duration, shortId, when } from "../format.js";

const STATES = ["PENDING", "RUNNING", "STOPPED"];
const STATUSES = ["HEALTHY", "FAULTED", "CANCELED", "EVICTED", "TERMINATED"];
const SIZES = [25, 50, 100, 200];
const DEFAULT_SIZE = 50;

function select(id, label, options, value) {
  return h("label", { for: id }, label,
    h("select", { id, name: id },
      h("option", { value: "" }, "Any"),
      options.map(([v, text]) => h("option", { value: v, selected: v === value }, text))));
}

function isoOrEmpty(local) {
  if (!local) return "";
  const date = new Date(local);
  return Number.isNaN(date.getTime()) ? "" : date.toISOString();
}

function localValue(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  const shifted = new Date(date.getTime() - date.getTimezoneOffset() * 60000);
  return shifted.toISOString().slice(0, 16);
}

export async function render(main, { query, current, toast }) {
  const filters = {
    state: query.get("state") || "",
    status: query.get("status") || "",
    pipeline_id: query.get("pipeline_id") || "",
    created_after: query.get("created_after") || "",
    created_before: query.get("created_before") || "",
    limit: String(Math.min(500, Math.max(1, Number(query.get("limit")) || DEFAULT_SIZE))),
  };
  const sizes = [...new Set([...SIZES, Number(filters.limit)])].sort((a, b) => a - b);
  const pipelines = (await api.pipelines().catch(() => ({ items: [] }))).items;
  if (!current()) return null;
  const names = new Map(pipelines.map((p) => [p.pipeline_id, p.name]));

  const cursors = [null];
  let page = 0;
  let refreshing = null;
  let again = false;

  const form = h("form", { class: "toolbar", role: "search", "aria-label": "Filter jobs" },
    select("state", "State", STATES.map((v) => [v, v]), filters.state),
    select("status", "Status", STATUSES.map((v) => [v, v]), filters.status),
    select("pipeline_id", "Pipeline", pipelines.map((p) => [p.pipeline_id, p.name]), filters.pipeline_id),
    h("label", { for: "created_after" }, "Created after",
      h("input", { id: "created_after", type: "datetime-local", value: localValue(filters.created_after) })),
    h("label", { for: "created_before" }, "Created before",
      h("input", { id: "created_before", type: "datetime-local", value: localValue(filters.created_before) })),
    h("label", { for: "limit" }, "Per page",
      h("select", { id: "limit" }, sizes.map((n) => h("option", { value: n, selected: String(n) === filters.limit }, n)))),
    h("button", { type: "submit" }, "Apply"),
    h("button", { type: "reset" }, "Clear"),
  );
  const count = h("p", { class: "live", "aria-live": "polite", id: "jobs-count" });
  const liveState = h("span", { class: "live", id: "live-state" }, "connecting…");
  const body = h("tbody");
  const table = h("div", { class: "table-wrap" },
    h("table", { "aria-describedby": "jobs-count" },
      h("thead", {}, h("tr", {},
        h("th", { scope: "col" }, "Job"),
        h("th", { scope: "col" }, "State"),
        h("th", { scope: "col" }, "Status"),
        h("th", { scope: "col" }, "Priority"),
        h("th", { scope: "col" }, "Pipeline"),
        h("th", { scope: "col", class: "hide-narrow" }, "Created"),
        h("th", { scope: "col", class: "hide-narrow" }, "Started"),
        h("th", { scope: "col", class: "hide-narrow" }, "Stopped"),
        h("th", { scope: "col", class: "num" }, "Duration"),
        h("th", { scope: "col" }, "Waiting reason"))),
      body));
  const previous = h("button", { type: "button", id: "previous-page" }, "← Newer");
  const next = h("button", { type: "button", id: "next-page" }, "Older →");
  const where = h("span", { class: "live" });

  const readForm = () => {
    filters.state = form.querySelector("#state").value;
    filters.status = form.querySelector("#status").value;
    filters.pipeline_id = form.querySelector("#pipeline_id").value;
    filters.created_after = isoOrEmpty(form.querySelector("#created_after").value);
    filters.created_before = isoOrEmpty(form.querySelector("#created_before").value);
    filters.limit = form.querySelector("#limit").value;
    const kept = new URLSearchParams(Object.entries(filters)
      .filter(([key, v]) => v && !(key === "limit" && v === String(DEFAULT_SIZE))));
    const text = kept.toString();
    history.replaceState(null, "", `#/jobs${text ? `?${text}` : ""}`);
  };

  const row = (job) => h("tr", { "data-job": job.job_id },
    h("td", { class: "nowrap" }, h("a", { href: `#/jobs/${job.job_id}`, title: job.job_id }, job.name || shortId(job.job_id))),
    h("td", {}, badge(job.state)),
    h("td", {}, badge(job.status)),
    h("td", {}, job.priority),
    h("td", {}, names.get(job.pipeline_id) || shortId(job.pipeline_id)),
    h("td", { class: "hide-narrow nowrap" }, when(job.created)),
    h("td", { class: "hide-narrow nowrap" }, when(job.started)),
    h("td", { class: "hide-narrow nowrap" }, when(job.stopped)),
    h("td", { class: "num" }, duration(job.duration_seconds)),
    h("td", { class: "reason" }, job.waiting_reason || ""));

  const load = async () => {
    const answer = await api.jobs({
      ...filters, state: filters.state || undefined, status: filters.status || undefined,
      cursor: cursors[page] || undefined,
    });
    if (!current()) return;
    cursors[page + 1] = answer.next_cursor;
    fill(body, answer.items.length
      ? answer.items.map(row)
      : h("tr", {}, h("td", { colspan: 10, class: "empty" }, "No jobs match.")));
    // The platform reads one page at a time and never counts every match (a count grows
    // with the history): the page tells how many jobs it shows and whether older ones follow.
    const shown = answer.items.length;
    fill(count, `${shown} job${shown === 1 ? "" : "s"} on this page${answer.next_cursor ? ", older ones follow" : ""}`);
    fill(where, `page ${page + 1}`);
    previous.disabled = page === 0;
    next.disabled = !answer.next_cursor;
  };

  // Events arrive in bursts (a job's operators start and stop together): one reload at a time,
  // and one more after it when events came in meanwhile.
  const refresh = async () => {
    if (refreshing) {
      again = true;
      return;
    }
    refreshing = load().catch((error) => toast(error.message));
    await refreshing;
    refreshing = null;
    if (again) {
      again = false;
      refresh();
    }
  };

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    readForm();
    cursors.length = 1;
    page = 0;
    refresh();
  });
  // A form's reset would go back to the filters the page opened with; Clear means none.
  form.addEventListener("reset", (event) => {
    event.preventDefault();
    for (const id of ["state", "status", "pipeline_id", "created_after", "created_before"]) {
      form.querySelector(`#${id}`).value = "";
    }
    form.querySelector("#limit").value = String(DEFAULT_SIZE);
    form.requestSubmit();
  });
  previous.addEventListener("click", () => { page = Math.max(0, page - 1); refresh(); });
  next.addEventListener("click", () => { page += 1; refresh(); });

  fill(main,
    h("div", { class: "heading" }, h("h1", {}, "Jobs"), liveState),
    form, count, table,
    h("nav", { class: "pager", "aria-label": "Pages of jobs" }, previous, where, next));
  await load();
  const stop = followEvents({
    onEvent: (event) => { if (String(event.type).startsWith("org.aorta.job.")) refresh(); },
    onState: (state) => { liveState.textContent = state === "live" ? "● live" : "reconnecting…"; },
  });
  return stop;
}
