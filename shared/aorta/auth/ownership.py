"""Who may act on a pipeline, job or payload, and how its owner is told to clients (pure, no
I/O).

Every pipeline, job and payload records the subject that created it (`owner`; "" for things
made while authentication was off). A `user` acts on its own things only, an `admin` on
everything (`Principal.owns`). Reading is wider: a viewer and an admin read every job's
status and every payload's details, a `user` its own only (`check_reader`, `may_read`), and
lists show a `user` its own things (`listed_owner`). A refusal names the thing and the
reason, never the other subject.

Clara's messages have no owner field, so the gateway sends it as the gRPC initial metadata
`OWNER_METADATA` of Jobs.Status, Pipelines.Details and Payloads.Details, percent-encoded
(gRPC metadata values are printable ASCII). An admin may force what the rules would refuse
only where a verb says so (`FORCE_METADATA`).
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import quote, unquote

from aorta.auth.principal import Principal, Role, current_principal
from aorta.errors import Forbidden

OTHER_USERS_JOB = "another user's job"
"""How a `user` is shown another user's job wherever the platform names jobs it may not read
(wait reasons, GPU processes): without its id or operator."""
OWNER_METADATA = "aorta-owner"
"""The gRPC initial-metadata key naming the subject that created the thing described."""

FORCE_METADATA = "aorta-force"
"""The gRPC metadata (value `true`) of a forced `Payloads.Delete` (`aorta delete payload
--force`): an admin deletes the read-only payload of a stopped job without the job. The gateway
passes it on to the payloads service as the bus header `FORCE_HEADER`."""
FORCE_HEADER = "Aorta-Force"


def check_may_force(thing: str, caller: Principal | None = None) -> None:
    """`Forbidden` unless `caller` (default: the current one) is an admin, the only role that
    may force the deletion of `thing` past the rule that keeps it."""
    who = current_principal() if caller is None else caller
    if not who.is_admin:
        raise Forbidden(f"only an admin may force the deletion of {thing}")


_PRINTABLE_ASCII = "".join(chr(code) for code in range(0x20, 0x7F) if chr(code) != "%")


def check_owner(owner: str, thing: str, caller: Principal | None = None) -> None:
    """`Forbidden` unless `caller` (default: the current one) may act on `thing` (e.g.
    "job 1f3e..."), which `owner` created."""
    who = current_principal() if caller is None else caller
    if who.owns(owner):
        return
    if not owner:
        raise Forbidden(
            f"{thing} was created before authentication was turned on; only an admin may change it"
        )
    raise Forbidden(f"{thing} belongs to another user")


def check_reader(owner: str, thing: str, caller: Principal | None = None) -> None:
    """`Forbidden` unless `caller` (default: the current one) may read `thing` (a job's
    status, a payload's details), which `owner` created: a viewer and an admin read
    everything, a `user` its own things only (those without an owner are an admin's)."""
    if may_read(owner, caller):
        return
    if not owner:
        raise Forbidden(
            f"{thing} was created before authentication was turned on; only an admin or a "
            "viewer may read it"
        )
    raise Forbidden(f"{thing} belongs to another user")


def may_read(owner: str, caller: Principal | None = None) -> bool:
    """Whether `caller` (default: the current one) may read a thing `owner` created
    (`check_reader`'s rule, or whether a `user` may see the id of a job a GPU process runs
    for)."""
    who = current_principal() if caller is None else caller
    return listed_owner(who) is None or who.owns(owner)


def listed_owner(caller: Principal | None = None) -> str | None:
    """The owner whose things a list by `caller` (default: the current one) is limited to
    (`Jobs.List` and Page, the Queue's entries, `aorta.v1.Services/List`): a `user`'s own
    subject; None (everything) for a viewer, who reads everything but changes nothing, and
    for an admin."""
    who = current_principal() if caller is None else caller
    if who.is_admin or not who.may(Role.USER):
        return None
    return who.subject


def owner_metadata(owner: str) -> tuple[tuple[str, str], ...]:
    """The initial metadata naming `owner`; none when nothing was recorded ("")."""
    if not owner:
        return ()
    return ((OWNER_METADATA, quote(owner, safe=_PRINTABLE_ASCII)),)


def owner_from_metadata(metadata: Iterable[tuple[str, str | bytes]] | None) -> str:
    """The owner that initial `metadata` names, "" when it names none."""
    for key, value in metadata or ():
        if key == OWNER_METADATA and isinstance(value, str):
            return unquote(value)
    return ""
