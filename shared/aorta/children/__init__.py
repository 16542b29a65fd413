"""Server processes the platform starts (nats-server, tritonserver, test servers): each dies
with the platform (`process`, through the `parent_death_exec` trampoline), is awaited until it
serves (`readiness`) and stopped within a grace; `ports` finds free local ports for those that
cannot pick their own."""
