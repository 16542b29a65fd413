// A pipeline's operators drawn as a layered graph in SVG: each operator sits one layer right of
// the deepest operator it takes input from, and within a layer operators follow the mean row of
// their sources, which keeps the edges of usual pipelines (chains, fans, diamonds) uncrossed.

import { s } from "./dom.js";

const NODE_W = 168;
const NODE_H = 48;
const GAP_X = 64;
const GAP_Y = 22;
const PAD = 12;

/**
 * Layers and rows of `nodes` (names) under `edges` ({from, to}); pure, for the renderer and
 * the tests. Returns a Map name -> {layer, row}. Edges naming unknown nodes are ignored; a
 * cycle (never valid in a pipeline) still ends, its nodes placed past the others.
 */
export function layout(nodes, edges) {
  const known = new Set(nodes);
  const sources = new Map(nodes.map((name) => [name, []]));
  for (const { from, to } of edges) {
    if (known.has(from) && known.has(to) && from !== to) sources.get(to).push(from);
  }
  const layer = new Map();
  const visiting = new Set();
  const depth = (name) => {
    if (layer.has(name)) return layer.get(name);
    if (visiting.has(name)) return nodes.length;
    visiting.add(name);
    const deepest = Math.max(-1, ...sources.get(name).map(depth));
    visiting.delete(name);
    layer.set(name, deepest + 1);
    return deepest + 1;
  };
  nodes.forEach(depth);

  const layers = [];
  for (const name of nodes) {
    const index = layer.get(name);
    (layers[index] ||= []).push(name);
  }
  const row = new Map();
  for (const members of layers.filter(Boolean)) {
    const weight = (name) => {
      const rows = sources.get(name).map((from) => row.get(from)).filter((r) => r !== undefined);
      return rows.length ? rows.reduce((a, b) => a + b, 0) / rows.length : -1;
    };
    members
      .map((name, order) => ({ name, order, weight: weight(name) }))
      .sort((a, b) => a.weight - b.weight || a.order - b.order)
      .forEach(({ name }, index) => row.set(name, index));
  }
  return new Map(nodes.map((name) => [name, { layer: layer.get(name), row: row.get(name) }]));
}

function position(place) {
  return { x: PAD + place.layer * (NODE_W + GAP_X), y: PAD + place.row * (NODE_H + GAP_Y) };
}

function stateClass(state) {
  return `dag-node s-${(state || "unknown").toLowerCase()}`;
}

/**
 * An SVG of the graph. `nodes`: [{name, state}] (state left out: a pipeline's plain operator);
 * `edges`: [{from, to}]; `onSelect(name)` runs
 * when a node is clicked or activated with Enter or Space (nodes are focusable buttons).
 */
export function renderDag(nodes, edges, { onSelect, label = "Operators" } = {}) {
  const places = layout(nodes.map((n) => n.name), edges);
  let width = 0;
  let height = 0;
  for (const place of places.values()) {
    const { x, y } = position(place);
    width = Math.max(width, x + NODE_W + PAD);
    height = Math.max(height, y + NODE_H + PAD);
  }
  const svg = s("svg", {
    class: "dag", role: "group", "aria-label": label,
    viewBox: `0 0 ${width} ${height}`, width, height,
  });
  svg.append(
    s("defs", {},
      s("marker", {
        id: "dag-arrow", viewBox: "0 0 10 10", refX: 10, refY: 5,
        markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse",
      }, s("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "dag-arrow" })),
    ),
  );
  for (const { from, to } of edges) {
    if (!places.has(from) || !places.has(to)) continue;
    const a = position(places.get(from));
    const b = position(places.get(to));
    const x1 = a.x + NODE_W;
    const y1 = a.y + NODE_H / 2;
    const x2 = b.x;
    const y2 = b.y + NODE_H / 2;
    const bend = Math.max(24, (x2 - x1) / 2);
    svg.append(s("path", {
      class: "dag-edge", "marker-end": "url(#dag-arrow)",
      d: `M ${x1} ${y1} C ${x1 + bend} ${y1}, ${x2 - bend} ${y2}, ${x2} ${y2}`,
      "data-from": from, "data-to": to,
    }));
  }
  for (const node of nodes) {
    const { x, y } = position(places.get(node.name));
    // A pipeline's operators have no state: drawn plain, named alone.
    const state = node.state === undefined ? "" : node.state || "UNKNOWN";
    const said = state ? `${node.name}: ${state}` : node.name;
    const group = s("g", {
      class: state ? stateClass(state) : "dag-node s-plain",
      tabindex: onSelect ? 0 : undefined, role: onSelect ? "button" : "img",
      "data-node": node.name, "data-state": state, "aria-label": said,
      transform: `translate(${x} ${y})`,
    },
      s("title", {}, said),
      s("rect", { width: NODE_W, height: NODE_H, rx: 6 }),
      s("text", { x: 10, y: state ? 20 : 29 }, clip(node.name, 20)),
      s("text", { x: 10, y: 38, class: "state-label" }, state),
    );
    if (onSelect) {
      group.addEventListener("click", () => onSelect(node.name));
      group.addEventListener("keydown", (event) => {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          onSelect(node.name);
        }
      });
    }
    svg.append(group);
  }
  return svg;
}

/** Recolours the nodes of a drawn graph in place, keeping focus where it is. */
export function updateDagStates(svg, states) {
  for (const group of svg.querySelectorAll("g[data-node]")) {
    const name = group.dataset.node;
    if (!(name in states)) continue;
    const state = states[name] || "UNKNOWN";
    if (group.dataset.state === state) continue;
    group.dataset.state = state;
    group.setAttribute("class", stateClass(state));
    group.setAttribute("aria-label", `${name}: ${state}`);
    group.querySelector("title").textContent = `${name}: ${state}`;
    group.querySelector(".state-label").textContent = state;
  }
}

function clip(text, length) {
  return text.length > length ? `${text.slice(0, length - 1)}…` : text;
}
