"""What the platform tells operations people about itself: Prometheus metrics, OpenTelemetry
traces and the helpers that keep both in step with the store's own records."""
