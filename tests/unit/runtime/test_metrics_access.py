"""Who may scrape `/metrics`: anyone on loopback or where authentication is off; beyond
loopback with authentication on, a caller with a token of any role."""

from __future__ import annotations

from pathlib import Path

import pytest

from aorta.auth.principal import Role
from aorta.auth.tokens import create_token
from aorta.errors import Unauthenticated
from aorta.runtime.process import metrics_access
from aorta.settings import Settings


def settings(tmp_path: Path, host: str, tokens: Path | None) -> Settings:
    environ = {"AORTA_DATA_DIR": str(tmp_path), "AORTA_HEALTH_HOST": host}
    environ["AORTA_HEALTH_PORT"] = "30090"
    if tokens is not None:
        environ["AORTA_AUTH_TOKENS_FILE"] = str(tokens)
    return Settings.from_env(environ)


def test_loopback_or_no_authentication_leaves_the_metrics_open(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.json"
    create_token(tokens, "prometheus", [Role.VIEWER])
    assert metrics_access(settings(tmp_path, "127.0.0.1", tokens)) is None
    assert metrics_access(settings(tmp_path, "0.0.0.0", None)) is None


async def test_beyond_loopback_with_authentication_a_scrape_needs_a_token(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.json"
    token = create_token(tokens, "prometheus", [Role.VIEWER])
    access = metrics_access(settings(tmp_path, "0.0.0.0", tokens))
    assert access is not None
    await access([("authorization", f"Bearer {token}")])
    with pytest.raises(Unauthenticated):
        await access([])
    with pytest.raises(Unauthenticated):
        await access([("authorization", "Bearer aorta_not-a-token")])
