"""What every request handler of the console reaches through the application: the platform
client, the sessions, the event hub and the settings, and the caller's token."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from aorta_services.web.events import EventHub
from aorta_services.web.platform_client import Platform
from aorta_services.web.problems import unauthenticated
from aorta_services.web.sessions import Sessions
from aorta_services.web.settings import WebSettings
from aorta_services.web.utilization import History


@dataclass(frozen=True)
class Console:
    """The console's parts, shared by every request."""

    platform: Platform
    sessions: Sessions
    hub: EventHub
    settings: WebSettings
    history: History
    secure_cookies: bool


CONSOLE = web.AppKey("console", Console)


def console(request: web.Request) -> Console:
    return request.app[CONSOLE]


def token(request: web.Request) -> str | None:
    """The token to call the platform with for this request: its bearer token or its
    session's; None when it presents none (the platform then decides, and refuses when it
    authenticates). A cookie of a session that ended is refused at once."""
    found = console(request).sessions.credentials(request.headers, request.cookies)
    if found.stale_cookie:
        raise unauthenticated("your session has ended; sign in again")
    return found.token
