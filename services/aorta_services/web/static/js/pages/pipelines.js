// Pipelines: every pipeline the platform holds, by name.

import { api } from "../api.js";
import { fill, h } from "../dom.js";

export async function render(main, { current }) {
  const { items } = await api.pipelines();
  if (!current()) return null;
  const sorted = [...items].sort((a, b) => a.name.localeCompare(b.name));
  fill(main,
    h("h1", {}, "Pipelines"),
    sorted.length ? h("div", { class: "table-wrap" }, h("table", { id: "pipelines" },
      h("thead", {}, h("tr", {},
        h("th", { scope: "col" }, "Name"),
        h("th", { scope: "col" }, "Pipeline id"),
        h("th", { scope: "col" }, "Metadata"))),
      h("tbody", {}, sorted.map((pipeline) => h("tr", {},
        h("td", {}, h("a", { href: `#/pipelines/${pipeline.pipeline_id}` }, pipeline.name)),
        h("td", { class: "mono" }, pipeline.pipeline_id),
        h("td", {}, Object.entries(pipeline.metadata || {}).map(([k, v]) => `${k}=${v}`).join(", ")))))))
      : h("p", { class: "empty" }, "No pipelines yet: create one with `aorta create pipeline`."));
  return null;
}
