"""Nameko entrypoints of the crm service. They stay thin: validate, call
the domain code, return plain data.

RPCs serving the gateway take ``caller`` = {"tenant_id", "user_id"} first
(from the verified access token) and a record ``kind`` (counterparties,
contacts, products, invoices, payments; communications for reads); the
service loads the caller's principal (cached) and enforces its rights inside
every query. ``match_contact`` serves the telephony and mail services."""
from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import sqlalchemy as sa
from nameko.dependency_providers import Config
from nameko.events import BROADCAST, event_handler
from nameko.timer import timer

from contracts.crm import CallLogged, MailLogged
from crm_shared.config import settings_of
from crm_shared.db import read_only
from crm_shared.errors import CrmError, NotFound, Unauthenticated
from crm_shared.events import event_data, first_delivery, forget_processed_before, handle_event
from crm_shared.rpc import ServiceRpc, rpc
from crm_shared.service import DatabaseServiceBase
from services.crm import communications, exchange, imports, records
from services.crm.dependencies import Principals
from services.crm.kinds import kind_of
from services.crm.models import CreateRequest
from services.crm.settings import Settings
from services.crm.work import Work, parse_id

log = logging.getLogger(__name__)

# domain errors are answers, not failures: logged without a traceback, counted as expected_error
domain_rpc = rpc(expected_exceptions=(CrmError,))


class CrmService(DatabaseServiceBase):
    """Counterparties, contacts, products, invoices, payments and communications, with rights enforced
    inside every query."""

    name = "crm"

    users: Any = ServiceRpc("users")
    principals: Any = Principals()
    config: Any = Config()

    # -- the caller ---------------------------------------------------------------
    def _principal(self, tenant_id: str, user_id: str) -> dict[str, Any] | None:
        try:
            return self.principals.get(tenant_id, user_id, lambda: self.users.get_principal(tenant_id, user_id))
        except NotFound:
            return None

    def _work(self, caller: Any) -> Work:
        if not isinstance(caller, dict) or not caller.get("tenant_id") or not caller.get("user_id"):
            raise Unauthenticated("no authenticated caller", code="unauthenticated")
        tenant_id, user_id = str(caller["tenant_id"]), str(caller["user_id"])
        principal = self._principal(tenant_id, user_id) if parse_id(user_id) else None
        if principal is None or not principal.get("active") or str(principal.get("tenant_id")) != tenant_id:
            raise Unauthenticated("the user is unknown, inactive or deleted", code="user_inactive")
        return Work(self.db, tenant_id, self.outbox, principal, "api", self.context.get("request_id"),
                    lookup_user=lambda uid: self._principal(tenant_id, uid))

    # -- records ----------------------------------------------------------------------
    @domain_rpc
    @read_only
    def list_records(self, caller: dict[str, Any], kind: str, query: dict[str, Any] | None = None) -> dict[str, Any]:
        """``{items, next_cursor}``: one page under the caller's read scope."""
        return records.list_records(self._work(caller), kind_of(kind), query)

    @domain_rpc
    @read_only
    def count_records(self, caller: dict[str, Any], kind: str, query: dict[str, Any] | None = None) -> dict[str, Any]:
        """``{count}`` of what the list shows (every page)."""
        return records.count_records(self._work(caller), kind_of(kind), query)

    @domain_rpc
    def export_records(self, caller: dict[str, Any], kind: str,
                       query: dict[str, Any] | None = None) -> dict[str, Any]:
        """``{items, count}``: every record the list shows, in its order (CSV and 1C exports)."""
        return records.export_records(self._work(caller), kind_of(kind), query)

    @domain_rpc
    @read_only
    def get_record(self, caller: dict[str, Any], kind: str, record_id: str) -> dict[str, Any]:
        return records.get_record(self._work(caller), kind_of(kind), record_id)

    @domain_rpc
    def create_record(self, caller: dict[str, Any], kind: str, data: dict[str, Any]) -> dict[str, Any]:
        return records.create_record(self._work(caller), kind_of(kind, write=True), data)

    @domain_rpc
    def update_record(self, caller: dict[str, Any], kind: str, record_id: str,
                      data: dict[str, Any]) -> dict[str, Any]:
        return records.update_record(self._work(caller), kind_of(kind, write=True), record_id, data)

    @domain_rpc
    def delete_record(self, caller: dict[str, Any], kind: str, record_id: str) -> None:
        records.delete_record(self._work(caller), kind_of(kind, write=True), record_id)

    # -- CSV imports and exports (for the onec service) ------------------------------------
    @domain_rpc
    @read_only
    def check_import(self, caller: dict[str, Any], kind: str, policy: str) -> dict[str, Any]:
        """The caller may import ``kind`` with this duplicates policy; answers who they are (for the journal)."""
        work = self._work(caller)
        imports.require_import(work, kind_of(kind, write=True), str(policy))
        return {"actor": work.actor()}

    @domain_rpc
    def import_rows(self, caller: dict[str, Any], kind: str, batch: dict[str, Any]) -> dict[str, Any]:
        """``{outcomes}``: one batch of an import (``services.crm.imports``)."""
        return imports.import_rows(self._work(caller), kind_of(kind, write=True), batch)

    @domain_rpc
    def revert_import(self, caller: dict[str, Any], kind: str, import_id: str, limit: int = 2000,
                      after: str | None = None) -> dict[str, Any]:
        return imports.revert_import(self._work(caller), kind_of(kind, write=True), import_id, limit, after)

    @domain_rpc
    @read_only
    def export_page(self, caller: dict[str, Any], kind: str, query: dict[str, Any] | None = None,
                    cursor: str | None = None, limit: int = 2000) -> dict[str, Any]:
        """``{items, next_cursor}``: a page of the CSV export (``csv.export`` and the read scope)."""
        return imports.export_page(self._work(caller), kind_of(kind, write=True), query, cursor, limit)

    # -- 1C exchange (services.crm.exchange) ---------------------------------------------
    @domain_rpc
    @read_only
    def check_exchange(self, caller: dict[str, Any]) -> dict[str, Any]:
        """The caller holds ``exchange.run``; answers who they are (for the exchange journal)."""
        work = self._work(caller)
        exchange.require_exchange(work)
        return {"actor": work.actor()}

    @domain_rpc
    def apply_exchange(self, caller: dict[str, Any], batch: dict[str, Any]) -> dict[str, Any]:
        """``{outcomes}``: one batch of an exchange file's objects."""
        return exchange.apply_objects(self._work(caller), batch)

    @domain_rpc
    def deactivate_unlisted(self, caller: dict[str, Any], job_ids: list[str]) -> dict[str, Any]:
        """``{deactivated}``: after a full catalogue, the products from 1C it did not list."""
        return exchange.deactivate_unlisted(self._work(caller), job_ids)

    @domain_rpc
    @read_only
    def exchange_export_page(self, caller: dict[str, Any], kind: str, window: dict[str, Any] | None = None,
                             after: str | None = None, limit: int = 1000) -> dict[str, Any]:
        """``{items, after}``: records changed in the window, for an exchange export."""
        return exchange.export_page(self._work(caller), str(kind), window, after, limit)

    # -- for the telephony and mail services --------------------------------------------
    @domain_rpc
    def match_contact(self, tenant_id: str, phone: str | None = None, email: str | None = None) -> dict[str, Any]:
        """The contacts and counterparties whose phone (any format) or e-mail (any case) this is."""
        if not isinstance(tenant_id, str) or not tenant_id:
            raise Unauthenticated("a tenant is required", code="unauthenticated")
        return communications.match(self.db, tenant_id, phone=phone, email=email)

    @handle_event("telephony", "call_logged")
    def on_call_logged(self, event: dict[str, Any]) -> None:
        call = event_data(CallLogged, event)
        if first_delivery(self.db, event, "crm.on_call_logged"):
            communications.log_call(Work(self.db, call.tenant_id, self.outbox, None, "telephony"), call)

    @handle_event("mail", "mail_logged")
    def on_mail_logged(self, event: dict[str, Any]) -> None:
        mail = event_data(MailLogged, event)
        if first_delivery(self.db, event, "crm.on_mail_logged"):
            communications.log_mail(Work(self.db, mail.tenant_id, self.outbox, None, "mail"), mail)

    # -- rights changes -------------------------------------------------------------------
    @event_handler("users", "principal_changed", handler_type=BROADCAST, reliable_delivery=False)
    def on_principal_changed(self, event: dict[str, Any]) -> None:
        """Every replica drops the principals the users service says changed."""
        if not isinstance(event, dict):
            return
        data = event.get("data") or {}
        tenant = data.get("tenant_id") or event.get("tenant_id")
        user_ids = data.get("user_ids")
        self.principals.invalidate(str(tenant) if tenant else None,
                                   [str(u) for u in user_ids] if isinstance(user_ids, list) else None)

    # -- housekeeping ---------------------------------------------------------------------
    @timer(interval=3600)
    def housekeeping(self) -> None:
        """Forgets create request ids, processed event ids and what old imports did, past their retention."""
        hours = settings_of(self.config, Settings).CRM_IDEMPOTENCY_RETENTION_HOURS
        cutoff = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=hours)
        self.db.execute(sa.delete(CreateRequest).where(CreateRequest.created_at < cutoff))
        forget_processed_before(self.db, cutoff)
        imports.forget_before(self.db, dt.datetime.now(dt.timezone.utc)
                              - dt.timedelta(days=settings_of(self.config, Settings).CRM_IMPORT_RETENTION_DAYS))


SERVICE = CrmService
