// Pipelines: every pipeline the platform holds, by name.

import { api } from "../api.js";
import { dataTable, fill, h, metadataText } from "../dom.js";

export async function render(main, { current }) {
  const { items } = await api.pipelines();
  if (!current()) return null;
  const sorted = [...items].sort((a, b) => a.name.localeCompare(b.name));
  fill(main,
    h("h1", {}, "Pipelines"),
    sorted.length
      ? dataTable({ id: "pipelines" }, ["Name", "Pipeline id", "Metadata"], sorted.map((pipeline) => [
        h("a", { href: `#/pipelines/${pipeline.pipeline_id}` }, pipeline.name),
        h("span", { class: "mono" }, pipeline.pipeline_id),
        metadataText(pipeline.metadata),
      ]))
      : h("p", { class: "empty" }, "No pipelines yet: create one with `aorta create pipeline`."));
  return null;
}
