// Models: the platform's model repository.

import { api } from "../api.js";
import { fill, h } from "../dom.js";

export async function render(main, { current }) {
  const { items } = await api.models();
  if (!current()) return null;
  const sorted = [...items].sort((a, b) => a.name.localeCompare(b.name));
  fill(main,
    h("h1", {}, "Models"),
    sorted.length ? h("div", { class: "table-wrap" }, h("table", { id: "models" },
      h("thead", {}, h("tr", {},
        h("th", { scope: "col" }, "Name"),
        h("th", { scope: "col" }, "Type"),
        h("th", { scope: "col" }, "Model id"),
        h("th", { scope: "col" }, "Metadata"))),
      h("tbody", {}, sorted.map((model) => h("tr", {},
        h("td", {}, model.name),
        h("td", {}, model.type),
        h("td", { class: "mono" }, model.model_id),
        h("td", {}, Object.entries(model.metadata || {}).map(([k, v]) => `${k}=${v}`).join(", ")))))))
      : h("p", { class: "empty" }, "The model repository is empty: add a model with `aorta create model`."));
  return null;
}
