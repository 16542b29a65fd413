// Building DOM nodes without HTML strings: text always goes through textContent, so nothing a
// job, a log or a pipeline file says can become markup.

const SVG_NS = "http://www.w3.org/2000/svg";

function apply(node, attrs) {
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      node.addEventListener(key.slice(2), value);
    } else if (key === "dataset") {
      Object.assign(node.dataset, value);
    } else {
      node.setAttribute(key, value === true ? "" : String(value));
    }
  }
}

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** An HTML element: h("a", {href: "#/jobs"}, "Jobs"). */
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  apply(node, attrs);
  append(node, children);
  return node;
}

/** An SVG element, same shape as h(). */
export function s(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  apply(node, attrs);
  append(node, children);
  return node;
}

/** Replaces every child of `node` with `children`. */
export function fill(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

/** A state badge; the class colours it the same everywhere (table, DAG, legend). */
export function badge(value) {
  const text = value || "UNKNOWN";
  return h("span", { class: `badge s-${text.toLowerCase()}` }, text);
}

/**
 * A scrollable table: `headings` are column titles (a string, or {text, class}), `rows` arrays
 * of cells (a node or text each). `attrs` go on the <table>.
 */
export function dataTable(attrs, headings, rows) {
  return h("div", { class: "table-wrap" }, h("table", attrs,
    h("thead", {}, h("tr", {}, headings.map((heading) => typeof heading === "string"
      ? h("th", { scope: "col" }, heading)
      : h("th", { scope: "col", class: heading.class }, heading.text)))),
    h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((cell) => h("td", {}, cell)))))));
}

/** Metadata as "key=value, key=value". */
export function metadataText(metadata) {
  return Object.entries(metadata || {}).map(([key, value]) => `${key}=${value}`).join(", ");
}
