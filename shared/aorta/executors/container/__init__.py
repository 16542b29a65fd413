"""The container executor: operator runs as containers of their own images (Docker Engine API)."""
