// An operator's log, read as a stream: whole when the job has stopped, followed (the server keeps
// the response open and sends lines as they come) while it runs.

import { api } from "./api.js";
import { fill, h } from "./dom.js";

/**
 * The log panel of job `jobId`: an operator picker, a follow switch and the text. Returns
 * {node, show(operator), operators(names), stop()}.
 */
export function logView(jobId) {
  const picker = h("select", { id: "log-operator" });
  const follow = h("input", { id: "log-follow", type: "checkbox", checked: true });
  const text = h("pre", { class: "log", id: "log-text", tabindex: 0, "aria-live": "off", "aria-label": "Operator log" });
  const state = h("p", { class: "live", id: "log-state", "aria-live": "polite" });
  let reading = null;

  const read = async () => {
    reading?.abort();
    const operator = picker.value;
    if (!operator) return;
    const controller = new AbortController();
    reading = controller;
    fill(text, "");
    fill(state, follow.checked ? `following ${operator}…` : `reading ${operator}…`);
    try {
      const response = await api.log(jobId, operator, follow.checked, controller.signal);
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        const atBottom = text.scrollTop + text.clientHeight >= text.scrollHeight - 4;
        text.append(value);
        if (follow.checked && atBottom) text.scrollTop = text.scrollHeight;
      }
      if (reading === controller) fill(state, `end of ${operator}'s log`);
    } catch (error) {
      if (controller.signal.aborted) return;
      fill(state, h("span", { class: "error", role: "alert" }, error.message));
    }
  };

  picker.addEventListener("change", read);
  follow.addEventListener("change", read);
  const node = h("section", { class: "panel", id: "log-panel", "aria-labelledby": "log-heading" },
    h("h2", { id: "log-heading" }, "Operator log"),
    h("div", { class: "toolbar" },
      h("label", { for: "log-operator" }, "Operator", picker),
      h("label", { for: "log-follow", class: "inline" }, h("span", {}, "Follow"), follow)),
    state, text);

  return {
    node,
    operators(names) {
      const chosen = picker.value;
      if ([...picker.options].map((o) => o.value).join("\n") === names.join("\n")) return;
      fill(picker, h("option", { value: "" }, "Choose an operator"),
        names.map((name) => h("option", { value: name, selected: name === chosen }, name)));
    },
    show(operator) {
      picker.value = operator;
      read();
      node.scrollIntoView({ block: "nearest" });
      picker.focus();
    },
    stop() {
      reading?.abort();
    },
  };
}
