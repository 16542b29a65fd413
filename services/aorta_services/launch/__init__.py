"""What runs the services: the `aorta` command (`main`), `aorta up` (`embedded`), `aorta serve`
(`process`), the list of services (`registry`) and the health endpoint (`health`).

It knows each service only by the module name the registry gives it, imported when started, so
it stays as independent of the services as they are of each other.
"""
