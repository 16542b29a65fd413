// "Run this pipeline": a job name, a priority, variables and input files (dropped on the zone or
// chosen with the file picker, which is also the keyboard's way in), sent as one multipart
// request that creates the job, uploads the files and starts it.

import { api } from "./api.js";
import { fill, h } from "./dom.js";
import { bytes } from "./format.js";

const PRIORITIES = ["LOWER", "NORMAL", "HIGHER", "IMMEDIATE"];

function variableRow(list) {
  const row = h("div", { class: "variables" },
    h("label", {}, "Name", h("input", { class: "var-name", type: "text", autocomplete: "off" })),
    h("label", {}, "Value", h("input", { class: "var-value", type: "text", autocomplete: "off" })),
    h("button", { type: "button", onclick: () => row.remove() }, "Remove"));
  list.append(row);
  row.querySelector(".var-name").focus();
}

/** The form for `pipeline`; `go` opens the new job's page once it is created. */
export function runForm(pipeline, { go }) {
  const files = [];
  const fileList = h("ul", { class: "file-list", id: "run-files", "aria-live": "polite" });
  const picker = h("input", { id: "run-file-input", type: "file", multiple: true, class: "visually-hidden" });
  const zone = h("div", { class: "dropzone", id: "run-dropzone" },
    h("p", {}, "Drop input files here, or ",
      h("label", { for: "run-file-input", class: "inline" }, h("span", { class: "button" }, "choose files"))),
    picker);
  const variables = h("div", { id: "run-variables" });
  const error = h("p", { class: "error", role: "alert", id: "run-error" });
  const start = h("input", { id: "run-start", type: "checkbox", checked: true });

  const showFiles = () => {
    fill(fileList, files.map((file, index) => h("li", {},
      h("span", { class: "mono" }, file.name), h("span", { class: "live" }, bytes(file.size)),
      h("button", { type: "button", "aria-label": `Remove ${file.name}`, onclick: () => { files.splice(index, 1); showFiles(); } }, "Remove"))));
  };
  const add = (list) => {
    for (const file of list) {
      if (!files.some((kept) => kept.name === file.name)) files.push(file);
    }
    showFiles();
  };

  picker.addEventListener("change", () => { add(picker.files); picker.value = ""; });
  zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    add(event.dataTransfer.files);
  });
  // The label's visible button is a span; Enter or Space on the focused picker opens it.
  picker.addEventListener("focus", () => zone.classList.add("over"));
  picker.addEventListener("blur", () => zone.classList.remove("over"));

  const name = h("input", { id: "run-name", name: "name", type: "text", required: true, value: `${pipeline.name}-run` });
  const priority = h("select", { id: "run-priority", name: "priority" },
    PRIORITIES.map((p) => h("option", { value: p, selected: p === "NORMAL" }, p)));
  const submit = h("button", { type: "submit", class: "primary", id: "run-submit" }, "Create and start");
  start.addEventListener("change", () => { submit.textContent = start.checked ? "Create and start" : "Create"; });

  const form = h("form", { id: "run-form" },
    h("div", { class: "toolbar" },
      h("label", { for: "run-name" }, "Job name", name),
      h("label", { for: "run-priority" }, "Priority", priority),
      h("label", { for: "run-start", class: "inline" }, start, h("span", {}, "Start it"))),
    zone, fileList,
    h("h3", {}, "Variables"),
    variables,
    h("p", {}, h("button", { type: "button", id: "run-add-variable", onclick: () => variableRow(variables) }, "Add variable")),
    error,
    submit);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    const values = {};
    for (const row of variables.querySelectorAll(".variables")) {
      const key = row.querySelector(".var-name").value.trim();
      if (key) values[key] = row.querySelector(".var-value").value;
    }
    const body = new FormData();
    body.append("name", name.value.trim());
    body.append("priority", priority.value);
    body.append("variables", JSON.stringify(values));
    body.append("start", start.checked ? "true" : "false");
    for (const file of files) body.append("file", file, file.name);
    submit.disabled = true;
    try {
      const created = await api.createJob(pipeline.pipeline_id, body);
      go(`#/jobs/${created.job_id}`);
    } catch (failure) {
      error.textContent = failure.message;
      submit.disabled = false;
    }
  });
  return form;
}
