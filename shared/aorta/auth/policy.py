"""The role each public method needs (pure, no I/O).

Roles are checked at the gateway before a request is parsed. What a role may do with things
another subject created (`Principal.owns`) is checked where those things are loaded: a `user`
acts on its own pipelines' metadata, jobs and payloads only; an `admin` on everything.

- `viewer`: lists, status, details, versions and utilization; never payload bytes or logs.
- `user`: what a viewer may, but the status and details of its own jobs and payloads only
  (`ownership.check_reader`), plus creating pipelines, jobs and payloads, starting, cancelling
  and deleting its jobs, reading its jobs' logs and the logs of pipeline services only its
  jobs used, moving its payloads' bytes, downloading models. Lists (`Jobs.List`, Page, Queue,
  `aorta.v1.Services/List`) show a user its own things only (`ownership.listed_owner`).
- `admin`: everything, including `Clara.Stop`, pipeline removal and model writes.
"""

from __future__ import annotations

from collections.abc import Mapping

from aorta.auth.principal import Role

V, U, A = Role.VIEWER, Role.USER, Role.ADMIN

_CLARA = "nvidia.clara.platform"

REQUIRED_ROLES: Mapping[str, Role] = {
    f"{_CLARA}.Clara/Stop": A,
    f"{_CLARA}.Clara/Utilization": V,
    f"{_CLARA}.Clara/Version": V,
    f"{_CLARA}.Jobs/AddMetadata": U,
    f"{_CLARA}.Jobs/Cancel": U,
    f"{_CLARA}.Jobs/Create": U,
    f"{_CLARA}.Jobs/List": V,
    f"{_CLARA}.Jobs/ReadLogs": U,
    f"{_CLARA}.Jobs/RemoveMetadata": U,
    f"{_CLARA}.Jobs/Start": U,
    f"{_CLARA}.Jobs/Status": V,
    f"{_CLARA}.Models/AddMetadata": A,
    f"{_CLARA}.Models/CreateCatalog": A,
    f"{_CLARA}.Models/CreateInstance": A,
    f"{_CLARA}.Models/DeleteCatalog": A,
    f"{_CLARA}.Models/DeleteInstance": A,
    f"{_CLARA}.Models/DeleteModel": A,
    f"{_CLARA}.Models/DownloadModel": U,
    f"{_CLARA}.Models/ListCatalogs": V,
    f"{_CLARA}.Models/ListInstances": V,
    f"{_CLARA}.Models/ListModels": V,
    f"{_CLARA}.Models/ReadCatalog": V,
    f"{_CLARA}.Models/ReadInstance": V,
    f"{_CLARA}.Models/RemoveMetadata": A,
    f"{_CLARA}.Models/UpdateCatalog": A,
    f"{_CLARA}.Models/UpdateInstance": A,
    f"{_CLARA}.Models/UploadModel": A,
    f"{_CLARA}.node_monitor.Monitor/GpuMetrics": V,
    f"{_CLARA}.Payloads/AddMetadata": U,
    f"{_CLARA}.Payloads/Create": U,
    f"{_CLARA}.Payloads/Delete": U,
    f"{_CLARA}.Payloads/Details": V,
    f"{_CLARA}.Payloads/Download": U,
    f"{_CLARA}.Payloads/Remove": U,
    f"{_CLARA}.Payloads/RemoveMetadata": U,
    f"{_CLARA}.Payloads/Upload": U,
    f"{_CLARA}.Pipelines/AddMetadata": U,
    f"{_CLARA}.Pipelines/Create": U,
    f"{_CLARA}.Pipelines/Details": V,
    f"{_CLARA}.Pipelines/List": V,
    f"{_CLARA}.Pipelines/Remove": A,
    f"{_CLARA}.Pipelines/RemoveMetadata": U,
    f"{_CLARA}.Pipelines/Update": U,
    # Aorta's own API (protos/aorta/api/audit.proto, aorta_jobs.proto, aorta_session.proto,
    # aorta_services.proto, aorta_payloads.proto).
    "aorta.v1.Audit/List": A,
    "aorta.v1.Jobs/Delete": U,
    "aorta.v1.Jobs/Page": V,
    "aorta.v1.Jobs/Queue": V,
    "aorta.v1.Jobs/Timeline": U,
    "aorta.v1.Payloads/CommitDirectUpload": U,
    "aorta.v1.Payloads/DirectDownload": U,
    "aorta.v1.Payloads/DirectUpload": U,
    "aorta.v1.Services/List": V,
    "aorta.v1.Services/ReadLogs": U,
    "aorta.v1.Session/WhoAmI": V,
}
"""`package.Service/Method` → the least role that may call it. A method missing here is
refused to everyone but an admin (`required_role`)."""


def required_role(method: str) -> Role:
    """The least role that may call `method` (`package.Service/Method`); admin when unknown,
    so a method added to the API is closed until someone decides who may call it."""
    return REQUIRED_ROLES.get(method, A)
