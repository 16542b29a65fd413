"""The Kubernetes executor: each operator run is a pod (`executor`), whose manifest `pods`
builds and whose status `outcome` reads."""
