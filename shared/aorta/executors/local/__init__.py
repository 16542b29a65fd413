"""The local executor: each operator run is a process group on this host (see `executor`)."""
