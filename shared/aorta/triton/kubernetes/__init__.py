"""The Kubernetes Triton backend: one Deployment and Service per pooled server (`backend`),
whose manifests `objects` builds; `control` loads and unloads models over Triton's API."""
