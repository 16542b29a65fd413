"""Pull policy and registry credentials: a pipeline's pull secrets become X-Registry-Auth."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from pathlib import Path

import pytest
from aiodocker.utils import compose_auth_header

from aorta.errors import Invalid, NotFound
from aorta.executors.container.pull import credentials_for, ensure_image, registry_of
from aorta.executors.container.settings import PullPolicy

NVCR_IMAGE = "nvcr.io/nvidia/clara/register-results:0.7.2-2010.1"


def _auth(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


CONFIG = {
    "auths": {
        "ngc-clara": {"auth": _auth("$oauthtoken", "s3cr:et"), "serveraddress": "nvcr.io"},
        "https://index.docker.io/v1/": {"auth": _auth("hubuser", "hubpass")},
        "registry.example.org:5000": {"username": "ci", "password": "pw"},
        "tokens.example.org": {"identitytoken": "tok-123"},
        "broken": {"auth": "not base64!", "serveraddress": "broken.example.org"},
    }
}


class FakeImages:
    """An engine's image store: which images it holds, which pulls it was asked for."""

    def __init__(self, present: set[str], refuse: str | None = None) -> None:
        self.present = present
        self.pulls: list[tuple[str, Mapping[str, str] | None]] = []
        self._refuse = refuse

    async def image_present(self, reference: str) -> bool:
        return reference in self.present

    async def pull(self, reference: str, credentials: Mapping[str, str] | None) -> None:
        self.pulls.append((reference, credentials))
        if self._refuse:
            raise Invalid(f"image {reference} could not be pulled: {self._refuse}")
        self.present.add(reference)


def test_registries_are_read_as_docker_reads_them() -> None:
    assert registry_of(NVCR_IMAGE) == "nvcr.io"
    assert registry_of("clara/dicom-test:latest") == "docker.io"
    assert registry_of("busybox") == "docker.io"
    assert registry_of("localhost/clara/ai:1") == "localhost"
    assert registry_of("registry.example.org:5000/x:1") == "registry.example.org:5000"


def test_a_named_pull_secret_becomes_the_registry_auth_header() -> None:
    credentials = credentials_for(CONFIG, NVCR_IMAGE, ["ngc-clara"])
    assert credentials == {
        "username": "$oauthtoken",
        "password": "s3cr:et",
        "serveraddress": "nvcr.io",
    }
    header = compose_auth_header(credentials)
    decoded = json.loads(base64.urlsafe_b64decode(header))
    assert decoded == {"username": "$oauthtoken", "password": "s3cr:et", "serveraddress": "nvcr.io"}


def test_an_entry_named_by_its_registry_applies_without_a_named_secret() -> None:
    assert credentials_for(CONFIG, "clara/ai:1", []) == {
        "username": "hubuser",
        "password": "hubpass",
        "serveraddress": "docker.io",
    }
    assert credentials_for(CONFIG, "registry.example.org:5000/x:1", []) == {
        "username": "ci",
        "password": "pw",
        "serveraddress": "registry.example.org:5000",
    }
    assert credentials_for(CONFIG, "tokens.example.org/x:1", []) == {
        "identitytoken": "tok-123",
        "serveraddress": "tokens.example.org",
    }


def test_no_credentials_for_a_registry_no_entry_names() -> None:
    assert credentials_for(CONFIG, "quay.io/x:1", ["ngc-clara"]) is None
    assert credentials_for({}, NVCR_IMAGE, []) is None


def test_a_missing_secret_and_unreadable_credentials_are_refused_without_their_content() -> None:
    with pytest.raises(NotFound, match="pull secret 'ngc-other'"):
        credentials_for(CONFIG, NVCR_IMAGE, ["ngc-other"])
    with pytest.raises(Invalid) as refused:
        credentials_for(CONFIG, "broken.example.org/x:1", ["broken"])
    assert "not base64" not in str(refused.value)


async def test_if_not_present_pulls_only_a_missing_image(tmp_path: Path) -> None:
    images = FakeImages({"clara/ai:1"})
    await ensure_image(
        images, "clara/ai:1", policy=PullPolicy.IF_NOT_PRESENT, auth_file=None, secrets=()
    )
    assert images.pulls == []
    await ensure_image(
        images, "clara/other:1", policy=PullPolicy.IF_NOT_PRESENT, auth_file=None, secrets=()
    )
    assert images.pulls == [("clara/other:1", None)]


async def test_always_pulls_with_the_credentials_of_the_named_secret(tmp_path: Path) -> None:
    auth_file = tmp_path / "config.json"
    auth_file.write_text(json.dumps(CONFIG))
    images = FakeImages({NVCR_IMAGE})
    await ensure_image(
        images, NVCR_IMAGE, policy=PullPolicy.ALWAYS, auth_file=auth_file, secrets=("ngc-clara",)
    )
    [(reference, credentials)] = images.pulls
    assert reference == NVCR_IMAGE
    assert credentials is not None and credentials["username"] == "$oauthtoken"


async def test_never_runs_only_images_already_there() -> None:
    images = FakeImages(set())
    with pytest.raises(NotFound, match="clara/ai:1 is not in the container engine's storage"):
        await ensure_image(
            images, "clara/ai:1", policy=PullPolicy.NEVER, auth_file=None, secrets=()
        )
    assert images.pulls == []


async def test_a_refused_pull_names_the_image_and_the_engines_reason() -> None:
    images = FakeImages(set(), refuse="unauthorized: authentication required")
    with pytest.raises(Invalid) as refused:
        await ensure_image(
            images, NVCR_IMAGE, policy=PullPolicy.IF_NOT_PRESENT, auth_file=None, secrets=()
        )
    assert NVCR_IMAGE in str(refused.value) and "unauthorized" in str(refused.value)


async def test_pull_secrets_without_a_credentials_file_are_refused() -> None:
    with pytest.raises(NotFound, match="AORTA_CONTAINER_AUTH_FILE"):
        await ensure_image(
            FakeImages(set()),
            NVCR_IMAGE,
            policy=PullPolicy.IF_NOT_PRESENT,
            auth_file=None,
            secrets=("ngc-clara",),
        )


async def test_an_unreadable_credentials_file_is_named_but_not_quoted(tmp_path: Path) -> None:
    auth_file = tmp_path / "config.json"
    auth_file.write_text('{"auths": {"nvcr.io": {"auth": "c2VjcmV0"}')
    with pytest.raises(Invalid) as refused:
        await ensure_image(
            FakeImages(set()),
            NVCR_IMAGE,
            policy=PullPolicy.IF_NOT_PRESENT,
            auth_file=auth_file,
            secrets=(),
        )
    assert str(auth_file) in str(refused.value) and "c2VjcmV0" not in str(refused.value)
