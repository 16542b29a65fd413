"""The container Triton backend: each server is a container of a Triton image (see `backend`)."""
