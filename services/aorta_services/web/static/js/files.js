// A payload's files: name, size, checksum and a download link. Downloads are plain links the
// browser streams to disk; a viewer (whom the platform refuses bytes) gets a button instead that
// asks the server and shows its answer, so the refusal is seen rather than saved as a file.
// Where the platform's blob store hands out URLs (S3), a click fetches the file straight from
// the store instead (docs/payloads.md); the link's own address stays the fallback.

import { api } from "./api.js";
import { fill, h } from "./dom.js";
import { bytes } from "./format.js";

async function saveThroughPage(payloadId, name, toast) {
  try {
    const response = await api.download(payloadId, name);
    const blob = await response.blob();
    const link = h("a", { href: URL.createObjectURL(blob), download: name.split("/").pop() });
    link.click();
    URL.revokeObjectURL(link.href);
  } catch (error) {
    toast(`Download refused: ${error.message}`);
  }
}

async function saveDirect(event, payloadId, name) {
  event.preventDefault();
  const fallback = event.currentTarget.href;
  let target = fallback;
  try {
    const answer = await api.directDownload(payloadId, name);
    if (answer.supported) target = answer.link.url;
  } catch {
    // The console's own download says what went wrong.
  }
  window.location.assign(target);
}

/** The table of `payload`'s files; `canDownload` false draws the asking buttons. */
export function filesTable(payload, { canDownload, toast }) {
  if (!payload.files.length) return h("p", { class: "empty" }, "No files yet.");
  return h("div", { class: "table-wrap" }, h("table", { id: "payload-files" },
    h("thead", {}, h("tr", {},
      h("th", { scope: "col" }, "File"),
      h("th", { scope: "col", class: "num" }, "Size"),
      h("th", { scope: "col" }, "SHA-256"),
      h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Download")))),
    h("tbody", {}, payload.files.map((file) => h("tr", { "data-file": file.name },
      h("td", { class: "mono" }, file.name),
      h("td", { class: "num", title: `${file.size} bytes` }, bytes(file.size)),
      h("td", { class: "mono", title: file.sha256 || "" }, file.sha256 ? `${file.sha256.slice(0, 16)}…` : "not recorded"),
      h("td", {}, canDownload
        ? h("a", {
          class: "button", href: api.downloadUrl(payload.payload_id, file.name),
          download: file.name.split("/").pop(), "aria-label": `Download ${file.name}`,
          onclick: (event) => saveDirect(event, payload.payload_id, file.name),
        }, "Download")
        : h("button", {
          type: "button", "aria-label": `Download ${file.name}`,
          onclick: () => saveThroughPage(payload.payload_id, file.name, toast),
        }, "Download")))))));
}

/** Fills `box` with `payload`'s files, or says why they cannot be listed. */
export async function showFiles(box, payloadId, options) {
  try {
    fill(box, filesTable(await api.payload(payloadId), options));
  } catch (error) {
    fill(box, h("p", { class: "notice" }, error.message));
  }
}
