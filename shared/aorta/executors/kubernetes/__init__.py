"""The Kubernetes executor: each operator run is a pod (see `executor`); the pod's manifest
(`pods`) and how its status becomes an outcome (`outcome`) are pure."""
