// The node: each GPU's utilization and memory over the last minutes, redrawn every few seconds
// from the server's samples, with the processes that hold it now.

import { api } from "../api.js";
import { fill, h } from "../dom.js";
import { bytes, toDate } from "../format.js";
import { renderUsageChart, usageLegend } from "../chart.js";

const MINUTES = 5;
const EVERY_MS = 5000;

function gpuKey(sample) {
  return `${sample.node_id} · GPU ${sample.pcie_id}`;
}

export async function render(main, { current, toast }) {
  const charts = h("div", { class: "grid", id: "gpu-charts" });
  const stamp = h("p", { class: "live", "aria-live": "polite" });
  fill(main, h("h1", {}, "Node"), stamp, charts);

  const draw = async () => {
    const usage = await api.utilization(MINUTES);
    if (!current()) return;
    if (!usage.current.length) {
      fill(charts, h("p", { class: "empty" }, "This node reports no GPU."));
      fill(stamp, "");
      return;
    }
    const now = new Date();
    const series = new Map();
    for (const sample of usage.history) {
      const t = toDate(sample.time);
      if (!t) continue;
      const key = gpuKey(sample);
      if (!series.has(key)) series.set(key, []);
      series.get(key).push({ t, utilization: sample.compute_utilization, memory: sample.memory_utilization });
    }
    fill(charts, usage.current.map((gpu) => {
      const key = gpuKey(gpu);
      const total = gpu.memory_used + gpu.memory_free;
      return h("section", { class: "panel", "aria-label": key },
        h("h2", {}, key),
        h("p", {}, `${gpu.compute_utilization.toFixed(0)}% busy · ${bytes(gpu.memory_used)} of ${bytes(total)} memory used`),
        h("div", { class: "diagram" }, renderUsageChart(series.get(key) || [], {
          label: `${key}: utilization and memory over the last ${MINUTES} minutes`, now, window: MINUTES * 60,
        })),
        usageLegend(),
        gpu.processes && gpu.processes.length
          ? h("ul", {}, gpu.processes.map((p) => h("li", {}, p.name,
            p.job_id ? [" (job ", h("a", { href: `#/jobs/${p.job_id}` }, p.job_id.slice(0, 8)), ")"] : "")))
          : h("p", { class: "live" }, "No process holds it."));
    }));
    fill(stamp, `Updated ${now.toLocaleTimeString()}`);
  };

  await draw();
  const timer = setInterval(() => draw().catch((error) => toast(error.message)), EVERY_MS);
  return () => clearInterval(timer);
}
