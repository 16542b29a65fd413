// The console's one door to its server: every call of the JSON API (services/aorta_services/web/
// openapi.json) goes through here, so the CSRF header, the session cookie and the error form are
// handled once.

/** A refusal or failure of the API, carrying its HTTP status and the `error.code` it named. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** Fired on `window` when a call finds the session gone, so the shell can ask to sign in. */
export const SIGNED_OUT = "aorta:signed-out";

function url(path, query = {}) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined || value === null || value === "") continue;
    for (const item of Array.isArray(value) ? value : [value]) params.append(key, item);
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

async function failure(response) {
  let code = `HTTP_${response.status}`;
  let message = response.statusText || "The console's server did not answer as expected.";
  try {
    const body = await response.json();
    if (body && body.error) ({ code, message } = body.error);
  } catch {
    // A body that is not the API's JSON error (a proxy's page): the status line says enough.
  }
  if (response.status === 401) window.dispatchEvent(new CustomEvent(SIGNED_OUT));
  return new ApiError(response.status, code, message);
}

/** A raw response of the API, refused responses turned into ApiError. */
export async function request(method, path, { query, json, body, signal } = {}) {
  const headers = { Accept: "application/json" };
  // Every request carries the header, so state-changing ones pass the server's CSRF check.
  headers["X-Aorta-Console"] = "1";
  let payload = body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(json);
  }
  const response = await fetch(url(path, query), {
    method, headers, body: payload, credentials: "same-origin", signal,
  });
  if (!response.ok) throw await failure(response);
  return response;
}

async function json(method, path, options) {
  const response = await request(method, path, options);
  return response.status === 204 ? null : response.json();
}

const enc = encodeURIComponent;

export const api = {
  whoami: () => json("GET", "/api/whoami"),
  signIn: (token) => json("POST", "/api/session", { json: { token } }),
  signOut: () => json("DELETE", "/api/session"),

  pipelines: () => json("GET", "/api/pipelines"),
  pipeline: (id) => json("GET", `/api/pipelines/${enc(id)}`),
  /** Creates a job of pipeline `id` from a FormData (name, priority, variables, start, file). */
  createJob: (id, form) => json("POST", `/api/pipelines/${enc(id)}/jobs`, { body: form }),

  jobs: (query) => json("GET", "/api/jobs", { query }),
  job: (id) => json("GET", `/api/jobs/${enc(id)}`),
  timeline: (id) => json("GET", `/api/jobs/${enc(id)}/timeline`),
  startJob: (id) => json("POST", `/api/jobs/${enc(id)}/start`, { json: {} }),
  cancelJob: (id) => json("POST", `/api/jobs/${enc(id)}/cancel`, { json: {} }),
  deleteJob: (id) => json("DELETE", `/api/jobs/${enc(id)}`),
  /** The response of an operator's log, to read as a stream (follow) or whole. */
  log: (id, operator, follow, signal) => request("GET", `/api/jobs/${enc(id)}/logs/${enc(operator)}`, {
    query: { follow: follow ? "true" : undefined }, signal,
  }),

  payload: (id) => json("GET", `/api/payloads/${enc(id)}`),
  downloadUrl: (id, name) => url(`/api/payloads/${enc(id)}/download`, { name }),
  download: (id, name) => request("GET", `/api/payloads/${enc(id)}/download`, { query: { name } }),
  /** A pre-signed URL of the blob store for the file, when the platform offers one
   * (`supported`); docs/payloads.md. */
  directDownload: (id, name) => json("GET", `/api/payloads/${enc(id)}/direct-download`, { query: { name } }),

  models: () => json("GET", "/api/models"),
  utilization: (minutes) => json("GET", "/api/utilization", { query: { minutes } }),
};

/**
 * Follows the server's event stream (GET /api/events), calling `onEvent(cloudEvent)` for each
 * event and `onState("live" | "reconnecting")` as the connection comes and goes; reconnects with
 * a growing pause. Read with fetch rather than EventSource because the stream names each event
 * by its CloudEvent type, which EventSource would need a listener per type for. Returns a
 * function that stops following.
 */
export function followEvents({ jobId, onEvent, onState }) {
  const controller = new AbortController();
  let pause = 1000;
  const run = async () => {
    while (!controller.signal.aborted) {
      try {
        const response = await fetch(url("/api/events", { job_id: jobId }), {
          headers: { Accept: "text/event-stream" },
          credentials: "same-origin",
          signal: controller.signal,
        });
        if (!response.ok) throw await failure(response);
        onState?.("live");
        pause = 1000;
        await readEvents(response.body, onEvent);
      } catch (error) {
        if (controller.signal.aborted) return;
        if (error instanceof ApiError && error.status === 401) return;
      }
      onState?.("reconnecting");
      await new Promise((resolve) => setTimeout(resolve, pause));
      pause = Math.min(pause * 2, 15000);
    }
  };
  run();
  return () => controller.abort();
}

async function readEvents(stream, onEvent) {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = block.split("\n").filter((line) => line.startsWith("data:"))
        .map((line) => line.slice(5).replace(/^ /, "")).join("\n");
      if (!data) continue;
      try {
        onEvent(JSON.parse(data));
      } catch {
        // An event whose data is not JSON is not one of the platform's CloudEvents: skip it.
      }
    }
  }
}
