"""Wire models of the Admin API (projects, service accounts, keys, model permissions), in the
shapes of OpenAI's `admin-openapi` (its `Project`, `ProjectServiceAccount`, `ProjectApiKey`,
`AdminApiKey`, `ProjectModelPermissions`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from assistants_server.db.access import ApiKeyRow, ProjectRow, RateLimitRow, ServiceAccountRow
from assistants_server.kit.wire import WireModel

Name = Annotated[str, Field(min_length=1, max_length=256)]
Scopes = Annotated[list[str], Field(max_length=32)]


class CreateProjectRequest(WireModel):
    name: Name
    # What a project of this server does not have (no key management service, one region):
    # accepted as the service accepted them, and not kept.
    external_key_id: str | None = None
    residency: str | None = None


class ModifyProjectRequest(WireModel):
    name: Name | None = None
    external_key_id: str | None = None
    # This server's own: how many of the project's runs may be active at once (null: any).
    max_active_runs: Annotated[int, Field(ge=1)] | None = None


class Project(BaseModel):
    id: str
    object: Literal["organization.project"] = "organization.project"
    name: str
    created_at: int
    archived_at: int | None
    status: str
    max_active_runs: int | None = None

    @classmethod
    def from_row(cls, row: ProjectRow) -> Project:
        return cls(id=row.id, name=row.name, created_at=row.created_at,
                   archived_at=row.archived_at, status=row.status,
                   max_active_runs=row.max_active_runs)


class CreateServiceAccountRequest(WireModel):
    name: Name
    create_service_account_only: bool | None = None
    # This server's own: the scopes of the key made with it (absent: every scope).
    scopes: Scopes | None = None


class ModifyServiceAccountRequest(WireModel):
    name: Name | None = None
    role: Literal["member", "owner"] | None = None


class CreateKeyRequest(WireModel):
    """A service account's additional key."""

    name: Name = "Secret Key"
    scopes: Scopes | None = None


class CreateAdminKeyRequest(WireModel):
    name: Name
    expires_in_seconds: Annotated[int, Field(ge=1, le=31_536_000)] | None = None


class ServiceAccount(BaseModel):
    object: Literal["organization.project.service_account"] = (
        "organization.project.service_account")
    id: str
    name: str
    role: str
    created_at: int

    @classmethod
    def from_row(cls, row: ServiceAccountRow) -> ServiceAccount:
        return cls(id=row.id, name=row.name, role=row.role, created_at=row.created_at)


class NewServiceAccountKey(BaseModel):
    object: Literal["organization.project.service_account.api_key"] = (
        "organization.project.service_account.api_key")
    value: str
    name: str
    created_at: int
    id: str


class NewServiceAccount(ServiceAccount):
    api_key: NewServiceAccountKey | None


class ProjectApiKey(BaseModel):
    object: Literal["organization.project.api_key"] = "organization.project.api_key"
    redacted_value: str
    name: str
    created_at: int
    last_used_at: int | None
    id: str
    owner_project_access: Literal["active", "inactive"] = "active"
    owner: dict[str, Any]
    scopes: list[str] | None = None  # this server's own: null, every scope

    @classmethod
    def from_row(cls, row: ApiKeyRow, account: ServiceAccountRow | None) -> ProjectApiKey:
        owner: dict[str, Any] = {"type": "service_account"}
        if account is not None:
            owner["service_account"] = {"id": account.id, "name": account.name,
                                        "role": account.role, "created_at": account.created_at}
        return cls(redacted_value=row.redacted_value, name=row.name, created_at=row.created_at,
                   last_used_at=row.last_used_at, id=row.id, owner=owner, scopes=row.scopes)


class AdminApiKey(BaseModel):
    object: Literal["organization.admin_api_key"] = "organization.admin_api_key"
    id: str
    name: str | None
    redacted_value: str
    created_at: int
    expires_at: int | None
    last_used_at: int | None
    owner: dict[str, Any]

    @classmethod
    def from_row(cls, row: ApiKeyRow) -> AdminApiKey:
        return cls(id=row.id, name=row.name, redacted_value=row.redacted_value,
                   created_at=row.created_at, expires_at=row.expires_at,
                   last_used_at=row.last_used_at,
                   owner={"type": "service_account", "object": "organization.service_account",
                          "id": row.created_by, "name": row.created_by,
                          "created_at": row.created_at, "role": "owner"})


class NewAdminApiKey(AdminApiKey):
    value: str


class ModelPermissions(WireModel):
    mode: Literal["allow_list", "deny_list"]
    model_ids: Annotated[list[str], Field(max_length=1000)]


class ModelPermissionsObject(BaseModel):
    object: Literal["project.model_permissions"] = "project.model_permissions"
    mode: Literal["allow_list", "deny_list"]
    model_ids: list[str]


Limit = Annotated[int, Field(ge=0)]


class UpdateRateLimitRequest(WireModel):
    """0 removes a limit."""

    max_requests_per_1_minute: Limit | None = None
    max_tokens_per_1_minute: Limit | None = None
    max_requests_per_1_day: Limit | None = None
    # The service's other limits, for media and batches this server does not serve: accepted,
    # not kept.
    max_images_per_1_minute: Limit | None = None
    max_audio_megabytes_per_1_minute: Limit | None = None
    batch_1_day_max_input_tokens: Limit | None = None


class RateLimit(BaseModel):
    """A project's limits on a model; 0: none."""

    object: Literal["project.rate_limit"] = "project.rate_limit"
    id: str
    model: str
    max_requests_per_1_minute: int = 0
    max_tokens_per_1_minute: int = 0
    max_requests_per_1_day: int = 0

    @classmethod
    def from_row(cls, model: str, row: RateLimitRow | None) -> RateLimit:
        limits = (row.max_requests_per_1_minute, row.max_tokens_per_1_minute,
                  row.max_requests_per_1_day) if row is not None else (None, None, None)
        rpm, tpm, rpd = (value or 0 for value in limits)
        return cls(id=f"rl-{model}", model=model, max_requests_per_1_minute=rpm,
                   max_tokens_per_1_minute=tpm, max_requests_per_1_day=rpd)


class ModelPermissionsDeleted(BaseModel):
    object: Literal["project.model_permissions.deleted"] = "project.model_permissions.deleted"
    deleted: bool = True


class Deleted(BaseModel):
    id: str
    object: str
    deleted: bool = True
