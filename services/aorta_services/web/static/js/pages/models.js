// Models: the platform's model repository.

import { api } from "../api.js";
import { dataTable, fill, h, metadataText } from "../dom.js";

export async function render(main, { current }) {
  const { items } = await api.models();
  if (!current()) return null;
  const sorted = [...items].sort((a, b) => a.name.localeCompare(b.name));
  fill(main,
    h("h1", {}, "Models"),
    sorted.length
      ? dataTable({ id: "models" }, ["Name", "Type", "Model id", "Metadata"], sorted.map((model) => [
        model.name,
        model.type,
        h("span", { class: "mono" }, model.model_id),
        metadataText(model.metadata),
      ]))
      : h("p", { class: "empty" }, "The model repository is empty: add a model with `aorta create model`."));
  return null;
}
