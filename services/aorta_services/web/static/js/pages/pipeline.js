// A pipeline: its definition files with line numbers, its DAG, and a form that runs it with
// dropped (or chosen) input files and variables.

import { api } from "../api.js";
import { renderDag } from "../dag.js";
import { fill, h } from "../dom.js";
import { runForm } from "../runform.js";

function source(file) {
  const lines = file.content.replace(/\n$/, "").split("\n");
  return h("figure", { class: "definition" },
    h("figcaption", { class: "mono" }, file.path),
    h("div", { class: "source", role: "region", tabindex: 0, "aria-label": `${file.path}, ${lines.length} lines` },
      h("pre", { class: "ln", "aria-hidden": "true" }, lines.map((_, i) => `${i + 1}\n`).join("")),
      h("pre", { class: "code" }, lines.join("\n"))));
}

export async function render(main, { params: [pipelineId], current, who, go }) {
  const pipeline = await api.pipeline(pipelineId);
  if (!current()) return null;
  const nodes = pipeline.dag.nodes.map((node) => ({ name: node.name }));
  const mayRun = !who || !who.auth || who.role !== "viewer";
  fill(main,
    h("p", {}, h("a", { href: "#/pipelines" }, "← Pipelines")),
    h("h1", {}, pipeline.name),
    h("p", { class: "mono live" }, pipeline.pipeline_id),
    h("div", { class: "grid" },
      h("section", { class: "panel", "aria-labelledby": "pdag-heading" },
        h("h2", { id: "pdag-heading" }, "Operators"),
        h("div", { class: "diagram", id: "pipeline-dag" }, renderDag(nodes, pipeline.dag.edges, { label: "The pipeline's operators" }))),
      h("section", { class: "panel", "aria-labelledby": "run-heading" },
        h("h2", { id: "run-heading" }, "Run this pipeline"),
        mayRun ? runForm(pipeline, { go }) : h("p", { class: "empty" }, "Viewers cannot run pipelines."))),
    h("section", { "aria-labelledby": "files-heading" },
      h("h2", { id: "files-heading" }, "Definition"),
      pipeline.files.map(source)));
  return null;
}
