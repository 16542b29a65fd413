"""Which bus user each registered service logs in as on a closed bus (`aorta up`)."""

from __future__ import annotations

from aorta import bus_permissions
from aorta.bus.credentials import generate_credentials
from aorta_services.launch import registry


def test_every_registered_service_gets_credentials() -> None:
    users = generate_credentials(bus_permissions.bus_users())
    assert set(registry.service_credentials(users)) == set(registry.SERVICES)


def test_bus_services_log_in_as_themselves_and_event_readers_as_the_events_user() -> None:
    users = generate_credentials(bus_permissions.bus_users())
    chosen = registry.service_credentials(users)
    assert {name: chosen[name] for name in registry.BUS_SERVICES} == {
        name: users[name] for name in registry.BUS_SERVICES
    }
    assert {name: chosen[name] for name in registry.EVENT_READERS} == dict.fromkeys(
        registry.EVENT_READERS, users[bus_permissions.EVENTS_USER]
    )
