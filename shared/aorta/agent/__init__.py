"""The agent beside an operator pod: `aorta agent fetch` (init container) pulls the run's inputs
from the blob store into its volumes; `aorta agent push` (sidecar) waits for the operator
container to end, then stores its outputs (exit 0 only) and its log.

The operator image runs unmodified: everything the platform adds to a run happens in these two
containers of the Aorta image, with the same transfer code as the local executor
(`aorta.executors.workspace`). Modules: `plan` (what to move, as the executor writes it),
`fetch`, `push`, and `command` (the `aorta agent` click group).
"""
