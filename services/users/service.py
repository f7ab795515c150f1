"""Nameko entrypoints of the users service. They stay thin: validate, call
the domain code, return plain data.

RPCs serving the gateway take ``caller`` = {"tenant_id", "user_id"} first
(from the verified access token); the service loads the caller's principal
from its cache and enforces rights itself."""
from __future__ import annotations

from typing import Any

from nameko.events import BROADCAST, event_handler

from contracts import journal as journal_contract
from crm_shared.errors import CrmError
from crm_shared.events import first_delivery, handle_event
from crm_shared.rpc import rpc
from crm_shared.service import DatabaseServiceBase
from services.users import bootstrap, directory, journal, org
from services.users import rights as R
from services.users.dependencies import Passwords, Principals
from services.users.exceptions import NotFound, ValidationFailed
from services.users.work import Work, parse_id

# domain errors are answers, not failures: logged without a traceback, counted as expected_error
domain_rpc = rpc(expected_exceptions=(CrmError,))

USERS_MANAGE, ORG_MANAGE, JOURNAL_READ = "users.manage", "org.manage", "journal.read"


class UsersService(DatabaseServiceBase):
    """Users, departments (a tree), positions, roles and their rights with
    scopes, the principal of a user, the audit journal."""

    name = "users"

    principals: Any = Principals()
    passwords: Any = Passwords()

    def _work(self, caller: Any, right: str | None = None) -> Work:
        return Work.for_caller(caller, self.db, self.principals, self.outbox, self.passwords, right,
                               self.context.get("request_id"))

    def _system(self, tenant_id: Any, source: str) -> Work:
        if not isinstance(tenant_id, str) or not tenant_id or len(tenant_id) > 64:
            raise ValidationFailed("invalid tenant id", fields={"tenant_id": "a non-empty string of at most 64"})
        return Work(self.db, tenant_id, self.principals, self.outbox, self.passwords, None, source,
                    self.context.get("request_id"))

    # -- for the auth service and other services --------------------------
    @domain_rpc
    def bootstrap_tenant(self, tenant_id: str, company_name: str, admin_password: str) -> dict[str, Any]:
        if not isinstance(admin_password, str) or not admin_password:
            raise ValidationFailed("admin password is required", fields={"admin_password": "is required"})
        return bootstrap.bootstrap_tenant(self._system(tenant_id, "bootstrap"), str(company_name or "")[:300],
                                          admin_password)

    @domain_rpc
    def verify_credentials(self, tenant_id: str, login: str, password: str) -> dict[str, Any]:
        return directory.verify_credentials(self.db, self.passwords, tenant_id, login, password)

    @domain_rpc
    def get_principal(self, tenant_id: str, user_id: str) -> dict[str, Any]:
        principal = None
        if isinstance(tenant_id, str) and parse_id(user_id) is not None:
            principal = self.principals.principal(self.db, tenant_id, str(parse_id(user_id)))
        if principal is None:
            raise NotFound("user not found", code="not_found")
        return dict(principal)

    # -- rights and roles -----------------------------------------------------
    @domain_rpc
    def list_rights(self, caller: dict[str, Any]) -> dict[str, Any]:
        self._work(caller)
        return {"items": R.catalogue(), "next_cursor": None}

    @domain_rpc
    def list_roles(self, caller: dict[str, Any], query: dict[str, Any] | None = None) -> dict[str, Any]:
        return org.list_roles(self._work(caller), query)

    @domain_rpc
    def get_role(self, caller: dict[str, Any], role_id: str) -> dict[str, Any]:
        return org.get_role(self._work(caller), role_id)

    @domain_rpc
    def create_role(self, caller: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        return org.create_role(self._work(caller, ORG_MANAGE), data)

    @domain_rpc
    def update_role(self, caller: dict[str, Any], role_id: str, data: dict[str, Any]) -> dict[str, Any]:
        return org.update_role(self._work(caller, ORG_MANAGE), role_id, data)

    @domain_rpc
    def delete_role(self, caller: dict[str, Any], role_id: str) -> None:
        org.delete_role(self._work(caller, ORG_MANAGE), role_id)

    # -- departments ------------------------------------------------------------
    @domain_rpc
    def list_departments(self, caller: dict[str, Any], query: dict[str, Any] | None = None) -> dict[str, Any]:
        return org.list_departments(self._work(caller), query)

    @domain_rpc
    def get_department(self, caller: dict[str, Any], department_id: str) -> dict[str, Any]:
        return org.get_department(self._work(caller), department_id)

    @domain_rpc
    def create_department(self, caller: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        return org.create_department(self._work(caller, ORG_MANAGE), data)

    @domain_rpc
    def update_department(self, caller: dict[str, Any], department_id: str, data: dict[str, Any]) -> dict[str, Any]:
        return org.update_department(self._work(caller, ORG_MANAGE), department_id, data)

    @domain_rpc
    def delete_department(self, caller: dict[str, Any], department_id: str) -> None:
        org.delete_department(self._work(caller, ORG_MANAGE), department_id)

    # -- positions --------------------------------------------------------------
    @domain_rpc
    def list_positions(self, caller: dict[str, Any], query: dict[str, Any] | None = None) -> dict[str, Any]:
        return org.list_positions(self._work(caller), query)

    @domain_rpc
    def get_position(self, caller: dict[str, Any], position_id: str) -> dict[str, Any]:
        return org.get_position(self._work(caller), position_id)

    @domain_rpc
    def create_position(self, caller: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        return org.create_position(self._work(caller, ORG_MANAGE), data)

    @domain_rpc
    def update_position(self, caller: dict[str, Any], position_id: str, data: dict[str, Any]) -> dict[str, Any]:
        return org.update_position(self._work(caller, ORG_MANAGE), position_id, data)

    @domain_rpc
    def delete_position(self, caller: dict[str, Any], position_id: str) -> None:
        org.delete_position(self._work(caller, ORG_MANAGE), position_id)

    # -- users ------------------------------------------------------------------
    @domain_rpc
    def list_users(self, caller: dict[str, Any], query: dict[str, Any] | None = None) -> dict[str, Any]:
        return directory.list_users(self._work(caller), query)

    @domain_rpc
    def get_user(self, caller: dict[str, Any], user_id: str) -> dict[str, Any]:
        return directory.get_user(self._work(caller), user_id)

    @domain_rpc
    def create_user(self, caller: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        return directory.create_user(self._work(caller, USERS_MANAGE), data)

    @domain_rpc
    def update_user(self, caller: dict[str, Any], user_id: str, data: dict[str, Any]) -> dict[str, Any]:
        return directory.update_user(self._work(caller, USERS_MANAGE), user_id, data)

    @domain_rpc
    def delete_user(self, caller: dict[str, Any], user_id: str) -> None:
        directory.delete_user(self._work(caller, USERS_MANAGE), user_id)

    # -- journal ----------------------------------------------------------------
    @domain_rpc
    def list_journal(self, caller: dict[str, Any], query: dict[str, Any] | None = None) -> dict[str, Any]:
        return journal.list_journal(self._work(caller, JOURNAL_READ), query)

    # -- events -----------------------------------------------------------------
    @handle_event("auth", "user_locked_out")
    def on_user_locked_out(self, event: dict[str, Any]) -> None:
        if first_delivery(self.db, event, "users.on_user_locked_out"):
            journal.record_lockout(self.db, event)

    @handle_event("crm", journal_contract.RECORD_CHANGED)
    def on_crm_record_changed(self, event: dict[str, Any]) -> None:
        if first_delivery(self.db, event, "users.on_crm_record_changed"):
            journal.record_change(self.db, "crm", event)

    @handle_event("onec", journal_contract.RECORD_CHANGED)
    def on_onec_record_changed(self, event: dict[str, Any]) -> None:
        """CSV imports and their reverts, one entry each."""
        if first_delivery(self.db, event, "users.on_onec_record_changed"):
            journal.record_change(self.db, "onec", event)

    @handle_event("mail", journal_contract.RECORD_CHANGED)
    def on_mail_record_changed(self, event: dict[str, Any]) -> None:
        """Mail account changes (secrets already masked, and masked again here)."""
        if first_delivery(self.db, event, "users.on_mail_record_changed"):
            journal.record_change(self.db, "mail", event)

    @handle_event("telephony", journal_contract.RECORD_CHANGED)
    def on_telephony_record_changed(self, event: dict[str, Any]) -> None:
        """SIP account and PBX settings changes (secrets already masked, and masked again here)."""
        if first_delivery(self.db, event, "users.on_telephony_record_changed"):
            journal.record_change(self.db, "telephony", event)

    @event_handler("users", "principal_changed", handler_type=BROADCAST, reliable_delivery=False)
    def on_principal_changed(self, event: dict[str, Any]) -> None:
        """Every replica drops the tenant's cached org snapshot (this one did at commit already)."""
        if not isinstance(event, dict) or self.principals.is_own_event(str(event.get("event_id"))):
            return
        tenant = (event.get("data") or {}).get("tenant_id") or event.get("tenant_id")
        self.principals.invalidate(str(tenant) if tenant else None, "event")


SERVICE = UsersService
