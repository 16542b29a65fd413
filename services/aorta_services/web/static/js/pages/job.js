// A job: its DAG coloured by operator status and redrawn live from the event stream, the
// timeline, each operator's log, the payload's files, metadata, and the actions its state allows.

import { api, followEvents } from "../api.js";
import { renderDag, updateDagStates } from "../dag.js";
import { badge, fill, h } from "../dom.js";
import { showFiles } from "../files.js";
import { duration, when } from "../format.js";
import { ganttLegend, renderGantt } from "../gantt.js";
import { logView } from "../logview.js";

function facts(pairs) {
  return h("dl", { class: "facts" },
    pairs.filter(([, value]) => value !== undefined && value !== null && value !== "")
      .map(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]));
}

function dagShape(dag) {
  return JSON.stringify([dag.nodes.map((n) => n.name), dag.edges.map((e) => [e.from, e.to])]);
}

export async function render(main, { params: [jobId], who, toast, go, current }) {
  let job = await api.job(jobId);
  if (!current()) return null;
  const canDownload = !who || !who.auth || who.role !== "viewer";

  const title = h("h1", {});
  const badges = h("span", { class: "actions", id: "job-badges" });
  const actions = h("div", { class: "actions" });
  const reason = h("p", { class: "notice", id: "waiting-reason", role: "status", hidden: true });
  const actionNote = h("p", { id: "action-result", role: "status", "aria-live": "polite" });
  const dagBox = h("div", { class: "diagram", id: "job-dag" });
  const timelineBox = h("div", { class: "diagram", id: "job-timeline" });
  const filesBox = h("div", { id: "job-files" });
  const factsBox = h("div", {});
  const messagesBox = h("div", {});
  const liveState = h("span", { class: "live", id: "live-state" }, "connecting…");
  const logs = logView(jobId);
  let dagSvg = null;
  let shape = "";

  const act = (label, cls, run) => h("button", {
    type: "button", class: cls, id: `job-${label.toLowerCase()}`,
    onclick: async (event) => {
      const button = event.currentTarget;
      button.disabled = true;
      fill(actionNote, "");
      try {
        await run();
        fill(actionNote, `${label}: done.`);
        await refresh();
      } catch (error) {
        fill(actionNote, h("span", { class: "notice" }, `${label} refused: ${error.message}`));
        button.disabled = false;
      }
    },
  }, label);

  const draw = () => {
    fill(title, job.name || job.job_id);
    fill(badges, badge(job.state), badge(job.status), h("span", { class: "badge s-stopped" }, job.priority));
    const buttons = [];
    // A created job not yet started has no start time and no reason to wait; a queued one does.
    if (job.state === "PENDING" && !job.started && !job.waiting_reason) buttons.push(act("Start", "primary", () => api.startJob(jobId)));
    if (job.state !== "STOPPED") buttons.push(act("Cancel", "danger", () => api.cancelJob(jobId)));
    if (job.state === "STOPPED") {
      buttons.push(act("Delete", "danger", async () => {
        if (!window.confirm(`Delete job ${job.name || jobId} with its logs and payload?`)) throw new Error("not confirmed");
        await api.deleteJob(jobId);
        go("#/jobs");
      }));
    }
    fill(actions, buttons);
    reason.hidden = !job.waiting_reason;
    fill(reason, job.waiting_reason ? `Waiting: ${job.waiting_reason}` : "");

    const nodes = job.dag.nodes.map((node) => ({ name: node.name, state: node.status }));
    if (dagShape(job.dag) !== shape || !dagSvg) {
      shape = dagShape(job.dag);
      dagSvg = renderDag(nodes, job.dag.edges, { onSelect: (name) => logs.show(name), label: "The job's operators" });
      fill(dagBox, dagSvg);
    } else {
      updateDagStates(dagSvg, Object.fromEntries(nodes.map((n) => [n.name, n.state])));
    }
    logs.operators(job.operators.map((op) => op.name));
    fill(factsBox, facts([
      ["Job id", h("span", { class: "mono" }, job.job_id)],
      ["Pipeline", h("a", { href: `#/pipelines/${job.pipeline_id}`, class: "mono" }, job.pipeline_id)],
      ["Payload", h("span", { class: "mono" }, job.payload_id)],
      ["Created", when(job.created)],
      ["Started", when(job.started)],
      ["Stopped", when(job.stopped)],
      ["Duration", duration(job.duration_seconds)],
      ...Object.entries(job.metadata || {}).map(([key, value]) => [key, value]),
    ]));
    fill(messagesBox, job.messages.length
      ? h("ul", {}, job.messages.map((message) => h("li", {}, message)))
      : h("p", { class: "empty" }, "No messages."));
  };

  const drawTimeline = async () => {
    try {
      const timeline = await api.timeline(jobId);
      const rows = timeline.operators.map((op) => ({ label: op.name, stages: op.stages }));
      const now = job.state === "STOPPED" ? null : new Date();
      const chart = timeline.available ? renderGantt(rows, { now }) : null;
      fill(timelineBox, chart ? [chart, ganttLegend(rows)]
        : h("p", { class: "empty" }, "No timeline yet: it appears once operators have run."));
    } catch (error) {
      fill(timelineBox, h("p", { class: "notice" }, error.message));
    }
  };

  let busy = null;
  let again = false;
  const refresh = async () => {
    if (busy) {
      again = true;
      return busy;
    }
    busy = (async () => {
      try {
        job = await api.job(jobId);
        if (!current()) return;
        draw();
        await Promise.all([drawTimeline(), showFiles(filesBox, job.payload_id, { canDownload, toast })]);
      } catch (error) {
        toast(error.message);
      }
    })();
    await busy;
    busy = null;
    if (again) {
      again = false;
      await refresh();
    }
    return null;
  };

  fill(main,
    h("p", {}, h("a", { href: "#/jobs" }, "← Jobs")),
    h("div", { class: "heading" }, h("div", {}, title, badges), h("div", { class: "actions" }, liveState, actions)),
    actionNote,
    reason,
    h("div", { class: "grid pair" },
      h("section", { class: "panel", "aria-labelledby": "dag-heading" },
        h("h2", { id: "dag-heading" }, "Operators"),
        h("p", { class: "live" }, "Select an operator to read its log."), dagBox),
      h("section", { class: "panel", "aria-labelledby": "timeline-heading" },
        h("h2", { id: "timeline-heading" }, "Timeline"), timelineBox)),
    logs.node,
    h("section", { class: "panel", "aria-labelledby": "files-heading" },
      h("h2", { id: "files-heading" }, "Payload files"), filesBox),
    h("div", { class: "grid" },
      h("section", { class: "panel", "aria-labelledby": "facts-heading" },
        h("h2", { id: "facts-heading" }, "Details and metadata"), factsBox),
      h("section", { class: "panel", "aria-labelledby": "messages-heading" },
        h("h2", { id: "messages-heading" }, "Messages"), messagesBox)));
  draw();
  await Promise.all([drawTimeline(), showFiles(filesBox, job.payload_id, { canDownload, toast })]);

  const stop = followEvents({
    jobId,
    // The server sends this job's events only (job_id filter), so any event means a change.
    onEvent: () => refresh(),
    onState: (state) => {
      liveState.textContent = state === "live" ? "● live" : "reconnecting…";
      if (state === "live") refresh();
    },
  });
  return () => {
    stop();
    logs.stop();
  };
}
