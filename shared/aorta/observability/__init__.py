"""What the platform tells operations people about itself: Prometheus metrics, OpenTelemetry
traces and the helpers that keep both in step with the store's own records."""

TRACE_ID_METADATA = "aorta-trace-id"
"""The initial metadata of a `Jobs.Status` answer that names the job's trace id (when it has
one), as `aorta-owner` names its creator; Clara's message has no field for it."""
