"""What the platform needs from a Kubernetes cluster, shared by the executor, the Triton backend
and the agent: the API client (`api`), object names and labels (`names`), the `AORTA_K8S_*`
settings (`settings`) and resumable watches (`watch`)."""
