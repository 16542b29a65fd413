"""The node monitor: GPU metrics and the Clara service's own verbs (Version, Utilization, Stop)."""
