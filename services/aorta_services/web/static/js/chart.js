// A line chart of GPU samples over the last minutes: utilization and memory as percentages on
// one axis, so both read at a glance on a 1280x800 screen or a tablet.

import { h, s } from "./dom.js";

const W = 640;
const H = 220;
const LEFT = 40;
const BOTTOM = 24;
const TOP = 8;

/**
 * A chart of `points` ([{t: Date, utilization: 0..100, memory: 0..100}]) over the `window`
 * seconds ending at `now`, titled by `label`.
 */
export function renderUsageChart(points, { label, now = new Date(), window = 300 }) {
  const start = now.getTime() - window * 1000;
  const x = (t) => LEFT + ((t.getTime() - start) / (window * 1000)) * (W - LEFT - 24);
  const y = (value) => TOP + (1 - Math.min(100, Math.max(0, value)) / 100) * (H - TOP - BOTTOM);
  const svg = s("svg", {
    class: "chart", role: "img", viewBox: `0 0 ${W} ${H}`, width: W, height: H,
    "aria-label": label,
  });
  const axis = s("g", { class: "axis" });
  for (const value of [0, 25, 50, 75, 100]) {
    axis.append(
      s("line", { x1: LEFT, x2: W - 24, y1: y(value), y2: y(value) }),
      s("text", { x: LEFT - 6, y: y(value) + 4, "text-anchor": "end" }, `${value}%`),
    );
  }
  for (let minute = 0; minute <= window / 60; minute += 1) {
    const at = new Date(start + minute * 60000);
    axis.append(s("text", { x: x(at), y: H - 6, "text-anchor": "middle" },
      minute === window / 60 ? "now" : `-${window / 60 - minute}m`));
  }
  svg.append(axis);
  const shown = points.filter((p) => p.t.getTime() >= start);
  for (const series of ["utilization", "memory"]) {
    if (shown.length === 0) continue;
    const d = shown.map((p, i) => `${i ? "L" : "M"} ${x(p.t).toFixed(1)} ${y(p[series]).toFixed(1)}`).join(" ");
    svg.append(s("path", { class: `series-${series === "utilization" ? "util" : "memory"}`, d }));
  }
  return svg;
}

/** The legend of the two series. */
export function usageLegend() {
  return h("ul", { class: "legend" },
    h("li", {}, h("span", { class: "swatch series-util" }), "GPU utilization"),
    h("li", {}, h("span", { class: "swatch series-memory" }), "GPU memory used"));
}
