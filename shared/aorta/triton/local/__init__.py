"""The local Triton backend: tritonserver child processes of this one (see `backend`)."""
