// A job's timeline as a Gantt chart: one row per operator, one bar per stage (waiting, fetching
// inputs, running, pushing outputs: whatever the platform recorded), on one shared time axis.

import { h, s } from "./dom.js";
import { duration, toDate } from "./format.js";

/** The CSS class of a stage name: colours for the usual names, a neutral one for the rest. */
export function stageClass(name) {
  return `stage stage-${String(name).toLowerCase().replace(/[^a-z0-9]+/g, "-")}`;
}

const LABEL_W = 120;
const ROW_H = 26;
const BAR_H = 16;
const AXIS_H = 24;
const CHART_W = 560;

/**
 * The chart of `rows` ([{label, stages: [{name, start, end}]}], times as ISO strings or epoch
 * ms); null when no row has a timed stage, so the page can say there is no timeline. A stage
 * not yet ended runs to `now` while the job runs (`now` given), and is left out otherwise.
 */
export function renderGantt(rows, { now = null } = {}) {
  const timed = rows.map((row) => ({
    label: row.label,
    stages: row.stages
      .map((part) => ({ name: part.name, start: toDate(part.start), end: toDate(part.end) || now }))
      .filter((part) => part.start && part.end),
  })).filter((row) => row.stages.length);
  if (!timed.length) return null;
  const first = Math.min(...timed.flatMap((r) => r.stages.map((p) => p.start.getTime())));
  const last = Math.max(...timed.flatMap((r) => r.stages.map((p) => p.end.getTime())));
  const span = Math.max(1, last - first);
  const x = (date) => LABEL_W + ((date.getTime() - first) / span) * (CHART_W - LABEL_W - 8);
  const height = AXIS_H + timed.length * ROW_H + 4;

  const svg = s("svg", {
    class: "gantt", role: "img", viewBox: `0 0 ${CHART_W} ${height}`, width: CHART_W, height,
    "aria-label": `Timeline of ${timed.length} operator runs over ${duration(span / 1000)}`,
  });
  const axis = s("g", { class: "axis" });
  for (let tick = 0; tick <= 4; tick += 1) {
    const at = LABEL_W + (tick / 4) * (CHART_W - LABEL_W - 8);
    axis.append(
      s("line", { x1: at, x2: at, y1: AXIS_H - 4, y2: height }),
      s("text", { x: at, y: 14, "text-anchor": ["start", "middle", "middle", "middle", "end"][tick] },
        `+${duration((tick / 4) * span / 1000)}`),
    );
  }
  svg.append(axis);
  timed.forEach((row, index) => {
    const top = AXIS_H + index * ROW_H;
    const short = row.label.length > 17 ? `${row.label.slice(0, 16)}…` : row.label;
    svg.append(s("text", { class: "row-label", x: 4, y: top + 17 }, s("title", {}, row.label), short));
    for (const part of row.stages) {
      const left = x(part.start);
      const seconds = (part.end - part.start) / 1000;
      svg.append(s("rect", {
        class: stageClass(part.name), x: left, y: top + (ROW_H - BAR_H) / 2,
        width: Math.max(1.5, x(part.end) - left), height: BAR_H,
      }, s("title", {}, `${row.label} ${part.name}: ${duration(seconds)}`)));
    }
  });
  return svg;
}

/** The legend of the stage names `rows` use, in the order they first appear. */
export function ganttLegend(rows) {
  const names = [...new Set(rows.flatMap((row) => row.stages.map((part) => part.name)))];
  return h("ul", { class: "legend" },
    names.map((name) => h("li", {}, h("span", { class: `swatch ${stageClass(name)}` }), name)));
}
