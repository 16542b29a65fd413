"""Whether a public door (the gateway, the web console) may listen where it is asked to (pure,
no I/O).

Nothing listens beyond loopback without authentication: such an address is refused at start
unless the operator accepted the risk (`--insecure`, `AORTA_INSECURE=true`), and then every
start warns. Tokens sent without TLS beyond loopback can be read on the wire: that warns too.
"""

from __future__ import annotations

import ipaddress

from aorta.settings import Settings, SettingsError

INSECURE_REFUSAL = (
    "the {door} would listen on {bind}, beyond loopback, with no authentication: anyone who "
    "can reach it could read and delete every job and payload. Turn authentication on "
    "(`aorta up --auth`, or set AORTA_AUTH_TOKENS_FILE or AORTA_OIDC_ISSUER), listen on "
    "127.0.0.1, or accept the risk with `--insecure` (AORTA_INSECURE=true)"
)


def bind_host(address: str) -> str:
    """The host part of a gRPC bind address (`[::]:50051` → `::`, `0.0.0.0:1` → `0.0.0.0`)."""
    host, separator, port = address.rpartition(":")
    if not separator or not port.isdigit():
        host = address
    return host.removeprefix("[").removesuffix("]")


def is_loopback(address: str) -> bool:
    """Whether `address` (`host:port`) listens on this machine's loopback only: 127.0.0.0/8,
    ::1 or `localhost` (or a `unix:` socket, which no network reaches). A wildcard (`0.0.0.0`,
    `::`, `[::]`) or any other name is not."""
    if address.startswith(("unix:", "unix-abstract:")):
        return True
    host = bind_host(address).lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def exposure_warnings(
    settings: Settings, address: str, door: str = "gateway"
) -> tuple[tuple[str, str], ...]:
    """What to warn about when `door` (`gateway`, `console`) listens on `address` with
    `settings`, as (log event, message) pairs: `<door>.insecure`, `<door>.cleartext_tokens`.
    Both doors take their TLS from the gateway's settings.

    Raises `SettingsError` (saying how to enable authentication or accept the risk) when
    `address` is beyond loopback, authentication is off and `settings.insecure` is not set.
    """
    if is_loopback(address):
        return ()
    if not settings.auth_enabled:
        if not settings.insecure:
            raise SettingsError(INSECURE_REFUSAL.format(door=door, bind=address))
        return (
            (
                f"{door}.insecure",
                f"the {door} listens on {address} with no authentication (AORTA_INSECURE): "
                "anyone who can reach it may do anything",
            ),
        )
    if not settings.gateway_tls:
        return (
            (
                f"{door}.cleartext_tokens",
                f"the {door} listens on {address} without TLS: tokens cross the network in "
                "clear text; set AORTA_GATEWAY_TLS_CERT and AORTA_GATEWAY_TLS_KEY "
                "(or `aorta up --tls auto`)",
            ),
        )
    return ()
