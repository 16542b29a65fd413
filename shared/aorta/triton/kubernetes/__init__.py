"""The Kubernetes Triton backend: one Deployment and Service per pooled server (see
`backend`); their manifests (`objects`) are pure."""
