"""Nameko entrypoints of the telephony service. They stay thin: validate, call
the domain code, return plain data.

The rights are checked here, where the accounts and calls live: a user sets
their own SIP account and ``users.manage`` anyone's; ``telephony.use``
places calls and shows the active list; the lists are scoped like
communications (``services.telephony.calls``). The caller's principal comes
from the users service (one call). The SIP side runs in the engine worker
processes this service starts (``dependencies.EngineWorkers``); the
database is where the two meet."""
from __future__ import annotations

import datetime as dt
import logging
import urllib.parse
import uuid
from typing import Any

import requests
import sqlalchemy as sa
from nameko.dependency_providers import Config
from nameko.exceptions import RemoteError
from nameko.timer import timer
from pydantic import ValidationError
from sqlalchemy.dialects.postgresql import insert as pg_insert

from contracts import journal
from contracts.telephony import CallIn, MangoSettingsIn
from crm_shared import scopes
from crm_shared.config import settings_of
from crm_shared.db import read_only
from crm_shared.errors import Conflict, CrmError, Forbidden, NotFound, validation_failed
from crm_shared.events import event_data, first_delivery, forget_processed_before, handle_event
from crm_shared.jobs import setting_job_timer
from crm_shared.rpc import ClusterRpc, rpc
from crm_shared.secrets import Secrets
from crm_shared.service import DatabaseServiceBase
from services.telephony import accounts, calls, mango
from services.telephony import metrics as m
from services.telephony.dependencies import Checks, EngineWorkers
from services.telephony.exceptions import PbxRefused, WebhookRefused, WebhookReplayed
from services.telephony.models import Call, MangoSettings, MangoWebhook, SipAccount
from services.telephony.schemas import UserEvent, UserSipChanged
from services.telephony.settings import Settings

log = logging.getLogger(__name__)

domain_rpc = rpc(expected_exceptions=(CrmError,))
MANGO_OPEN_HOURS = 4  # a PBX call open longer lost its end


class TelephonyService(DatabaseServiceBase):
    """Per-user SIP accounts, the SIP engine, active calls, the call log and the Mango Office PBX
    adapter."""

    name = "telephony"

    cluster: Any = ClusterRpc()
    config: Any = Config()
    secrets: Any = Secrets()
    engines: Any = EngineWorkers()
    checks: Any = Checks()

    @property
    def settings(self) -> Settings:
        return settings_of(self.config, Settings)

    # -- who is asking ----------------------------------------------------------------------
    def _principal(self, caller: Any) -> dict[str, Any]:
        return scopes.caller_principal(self.cluster.users, caller)

    def _user(self, caller: Any, user_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The caller, allowed to set ``user_id``'s SIP account, and that user (404 when unknown)."""
        principal = self._principal(caller)
        scopes.require_manage_user(principal, user_id, "SIP account")
        if str(principal["user_id"]) == str(user_id):
            return principal, principal
        try:
            uuid.UUID(str(user_id))
        except ValueError:
            raise NotFound("user not found", code="not_found") from None
        return principal, dict(self.cluster.users.get_principal(str(principal["tenant_id"]), str(user_id)))

    def _journal(self, principal: dict[str, Any], entity: str, entity_id: str, action: str,
                 changes: dict[str, Any]) -> None:
        actor = {"id": str(principal["user_id"]), "login": principal.get("login"),
                 "full_name": principal.get("full_name")}
        self.outbox.record(self.db, journal.RECORD_CHANGED, {
            "tenant_id": principal["tenant_id"], "entity": entity, "entity_id": entity_id, "action": action,
            "actor": actor, "source": "api", "request_id": self.context.get("request_id"),
            "changes": changes}, entity_id, principal["tenant_id"])

    # -- SIP accounts -----------------------------------------------------------------------
    @domain_rpc
    @read_only
    def get_sip_account(self, caller: dict[str, Any], user_id: str) -> dict[str, Any]:
        principal, _ = self._user(caller, user_id)
        return accounts.account_out(accounts.get(self.db, str(principal["tenant_id"]), user_id))

    @domain_rpc
    def put_sip_account(self, caller: dict[str, Any], user_id: str, data: dict[str, Any]) -> dict[str, Any]:
        principal, user = self._user(caller, user_id)
        row, action, changes = accounts.put(self.db, self.secrets, str(principal["tenant_id"]), user, data,
                                            may_set_extension=scopes.allows(principal, scopes.USERS_MANAGE))
        if action:
            self._journal(principal, "sip_account", str(row.user_id), action,
                          {"user_id": str(row.user_id), **changes})
        out = accounts.account_out(row)
        self.db.commit()
        return out

    @domain_rpc
    def delete_sip_account(self, caller: dict[str, Any], user_id: str) -> None:
        principal, _ = self._user(caller, user_id)
        row = accounts.get(self.db, str(principal["tenant_id"]), user_id, lock=True)
        changes = accounts.delete(self.db, row)
        self._journal(principal, "sip_account", str(row.user_id), journal.DELETE,
                      {"user_id": str(row.user_id), **changes, "password": accounts.MASK})

    @domain_rpc
    def check_sip_account(self, caller: dict[str, Any], user_id: str) -> dict[str, Any]:
        """«Проверить»: a real REGISTER of the stored account, unregistered afterwards."""
        principal, _ = self._user(caller, user_id)
        row = accounts.get(self.db, str(principal["tenant_id"]), user_id)
        spec = accounts.spec_of(row, self.secrets, 60, 3600, 0)
        self.db.commit()  # no transaction held while the registrar answers
        result = self.checks(spec)
        m.checks().labels("ok" if result["ok"] else str(result["reason"])).inc()
        return result

    # -- calls --------------------------------------------------------------------------------
    @domain_rpc
    @read_only
    def list_active_calls(self, caller: dict[str, Any]) -> dict[str, Any]:
        return calls.active(self.db, self._principal(caller), self.settings.TELEPHONY_ENDED_VISIBLE_SECONDS)

    @domain_rpc
    @read_only
    def list_calls(self, caller: dict[str, Any], query: dict[str, Any] | None = None) -> dict[str, Any]:
        return calls.log(self.db, self._principal(caller), query)

    @domain_rpc
    def place_call(self, caller: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        """Click-to-call: through the Mango Office PBX when the tenant has it and the user has an
        extension; else the user's SIP account (the worker holding it rings the user's phone)."""
        principal = self._principal(caller)
        scopes.require(principal, calls.TELEPHONY_USE, scopes.ALL)
        try:
            body = CallIn.model_validate(data or {})
        except ValidationError as exc:
            raise validation_failed(exc) from None
        tenant_id, user_id = str(principal["tenant_id"]), str(principal["user_id"])
        number = "".join(ch for ch in body.to_number if ch.isdigit() or ch == "+")
        account = accounts.find(self.db, tenant_id, user_id)
        pbx = self.db.get(MangoSettings, tenant_id)
        if pbx is not None and account is not None and account.extension:
            if not account.active:
                raise Conflict("your SIP account is off («Подключить SIP запись» is not on)", code="sip_not_enabled")
            return self._mango_callback(pbx, tenant_id, user_id, account.extension, number)
        if account is None:
            raise Conflict("you have no SIP account: set one in your user's telephony settings", code="no_sip_account")
        if not account.active:
            raise Conflict("your SIP account is off («Подключить SIP запись» is not on)", code="sip_not_enabled")
        row = calls.dial(self.db, tenant_id, user_id, number)
        accounts.wake_engines(self.db)
        self.db.commit()
        return {"call_id": str(row.id)}

    # -- Mango Office -------------------------------------------------------------------------
    def _require_admin(self, caller: Any) -> dict[str, Any]:
        principal = self._principal(caller)
        if not scopes.allows(principal, scopes.USERS_MANAGE):
            raise Forbidden("the PBX settings need the right 'users.manage'", code="forbidden",
                            details={"right": scopes.USERS_MANAGE})
        return principal

    @domain_rpc
    @read_only
    def get_mango_settings(self, caller: dict[str, Any]) -> dict[str, Any]:
        principal = self._require_admin(caller)
        return _mango_out(self.db.get(MangoSettings, str(principal["tenant_id"])))

    @domain_rpc
    def put_mango_settings(self, caller: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        principal = self._require_admin(caller)
        try:
            body = MangoSettingsIn.model_validate(data or {})
        except ValidationError as exc:
            raise validation_failed(exc) from None
        tenant_id = str(principal["tenant_id"])
        fingerprint = mango.fingerprint(body.api_key)
        other = self.db.scalar(sa.select(MangoSettings.tenant_id).where(MangoSettings.key_fingerprint == fingerprint,
                                                                        MangoSettings.tenant_id != tenant_id))
        if other is not None:
            raise Conflict("this API key belongs to another instance", code="mango_key_taken")
        row = self.db.get(MangoSettings, tenant_id, with_for_update=True)
        action = journal.UPDATE if row is not None else journal.CREATE
        before = row.api_base if row is not None else None
        if row is None:
            row = MangoSettings(tenant_id=tenant_id)
            self.db.add(row)
        row.api_key_enc = self.secrets.encrypt(body.api_key, mango.secret_context(tenant_id, "key"))
        row.api_salt_enc = self.secrets.encrypt(body.api_salt, mango.secret_context(tenant_id, "salt"))
        row.key_fingerprint, row.api_base, row.updated_at = fingerprint, body.api_base, accounts.utcnow()
        self.db.flush()
        self._journal(principal, "mango_settings", tenant_id, action,
                      {"api_base": {"old": before, "new": body.api_base}, "api_key": accounts.MASK,
                       "api_salt": accounts.MASK})
        out = _mango_out(row)
        self.db.commit()
        return out

    def _mango_callback(self, pbx: MangoSettings, tenant_id: str, user_id: str, extension: str,
                        number: str) -> dict[str, Any]:
        key = self.secrets.decrypt(pbx.api_key_enc, mango.secret_context(tenant_id, "key"))
        salt = self.secrets.decrypt(pbx.api_salt_enc, mango.secret_context(tenant_id, "salt"))
        command_id = mango.new_command_id()
        row = calls.dial(self.db, tenant_id, user_id, number, source="mango", external_id=command_id)
        self.db.commit()
        form = mango.signed_form(key, salt, mango.callback_command(command_id, extension, number))
        try:
            resp = requests.post(mango.callback_url(pbx.api_base), data=form,
                                 timeout=self.settings.TELEPHONY_MANGO_TIMEOUT_SECONDS)
            answer = resp.json() if resp.content else {}
            result = int(answer.get("result") or 0) if isinstance(answer, dict) else 0
        except (requests.RequestException, ValueError, TypeError) as exc:
            self._end(row, "failed", f"the PBX did not answer: {type(exc).__name__}")
            self.db.commit()
            raise PbxRefused("the Mango Office PBX did not answer", details={"reason": "unreachable"}) from None
        if resp.status_code != 200 or result != mango.OK_RESULT:
            self._end(row, "failed", f"the PBX refused the call: HTTP {resp.status_code}, result {result}")
            self.db.commit()
            raise PbxRefused(f"the Mango Office PBX refused the call (result {result})",
                             details={"reason": "refused", "result": result})
        return {"call_id": str(row.id)}

    def _end(self, row: Call, outcome: str, reason: str, at: dt.datetime | None = None) -> None:
        """Ends and logs the call (``calls.end`` locks and re-reads it: logged once), and counts it."""
        if calls.end(self.db, row, outcome, reason, at=at):
            m.calls().labels(row.source, row.direction, outcome).inc()

    @domain_rpc
    def mango_webhook(self, kind: str, content: str) -> dict[str, Any]:
        """``events/call`` or ``events/summary`` from the PBX: signed, fresh, not seen before."""
        try:
            answer = self._mango_webhook(kind, content)
        except mango.MangoRefused as exc:
            self.db.rollback()
            m.mango_webhooks().labels(kind, exc.code).inc()
            if exc.code == "replayed":
                raise WebhookReplayed(exc.message, details={"reason": exc.code}) from None
            raise WebhookRefused(exc.message, details={"reason": exc.code}) from None
        m.mango_webhooks().labels(kind, "ok").inc()
        return answer

    def _mango_webhook(self, kind: str, content: str) -> dict[str, Any]:
        if kind not in ("call", "summary"):
            raise NotFound("no such webhook", code="not_found")
        form = {k: v[0] for k, v in urllib.parse.parse_qs(str(content)).items()}
        key = form.get("vpbx_api_key") or ""
        pbx = self.db.scalar(sa.select(MangoSettings).where(MangoSettings.key_fingerprint == mango.fingerprint(key)))
        if pbx is None:
            raise mango.MangoRefused("unknown_key", "no instance has this API key")
        tenant_id = pbx.tenant_id
        salt = self.secrets.decrypt(pbx.api_salt_enc, mango.secret_context(tenant_id, "salt"))
        data = mango.verify(form, key, salt)
        now = accounts.utcnow()
        skew = self.settings.TELEPHONY_MANGO_MAX_SKEW_SECONDS
        if kind == "call":
            event = mango.call_event(data)
            mango.check_fresh(event.timestamp, now, skew)
        else:
            summary = mango.summary(data)
            mango.check_fresh(summary.ended.timestamp(), now, skew)
        seen = self.db.execute(pg_insert(MangoWebhook).values(
            tenant_id=tenant_id, sign=str(form["sign"]).lower()[:64], kind=kind, received_at=now)
            .on_conflict_do_nothing()).rowcount
        if not seen:
            raise mango.MangoRefused("replayed", "this webhook was taken already")
        if kind == "call":
            self._mango_call(tenant_id, event)
        else:
            self._mango_summary(tenant_id, summary)
        self.db.commit()
        return {"ok": True}

    def _user_by_extension(self, tenant_id: str, extension: str | None) -> uuid.UUID | None:
        if not extension:
            return None
        return self.db.scalar(sa.select(SipAccount.user_id).where(SipAccount.tenant_id == tenant_id,
                                                                  SipAccount.extension == extension).limit(1))

    def _mango_row(self, tenant_id: str, entry_id: str, command_id: str | None) -> Call | None:
        ids = [entry_id] + ([command_id] if command_id else [])
        return self.db.scalar(sa.select(Call).where(Call.tenant_id == tenant_id, Call.source == "mango",
                                                    Call.external_id.in_(ids)).with_for_update().limit(1))

    def _mango_call(self, tenant_id: str, event: mango.CallEvent) -> None:
        """One leg's event (``entry_id`` is the whole call, ``call_id`` a leg: an IVR, a queue, each
        extension rung). The call rings while any leg does; a leg's end ends it only once it was
        answered; an unanswered call ends with its summary (or the watcher's bound)."""
        row = self._mango_row(tenant_id, event.entry_id, event.command_id)
        leg_user = self._user_by_extension(tenant_id, event.to_extension)
        if row is None:
            if event.state != mango.APPEARED:
                return
            if event.from_extension and not event.to_extension:  # dialled from a desk phone
                row = calls.dial(self.db, tenant_id, self._user_by_extension(tenant_id, event.from_extension),
                                 event.to_number or "", source="mango", external_id=event.entry_id)
            else:
                row = calls.ring(self.db, tenant_id, leg_user, "mango", event.entry_id, event.from_number, None,
                                 event.to_number or event.to_extension)
            return
        if row.external_id != event.entry_id and event.command_id:
            row.external_id = event.entry_id  # our callback's call, by Mango's id from now on
        if row.user_id is None and leg_user is not None:
            row.user_id = leg_user
        if event.state == mango.CONNECTED:
            if row.direction == "incoming" and leg_user is not None:
                row.user_id = leg_user  # who answered
            calls.set_state(row, "talking", answered=True)
        elif event.state == mango.DISCONNECTED and row.answered_at is not None and leg_user in (None, row.user_id):
            self._end(row, "answered", "the PBX ended the call")

    def _mango_summary(self, tenant_id: str, summary: mango.Summary) -> None:
        row = self._mango_row(tenant_id, summary.entry_id, None)
        if row is None:
            user_ext = summary.to_extension if summary.direction == "incoming" else summary.from_extension
            row = calls.ring(self.db, tenant_id, self._user_by_extension(tenant_id, user_ext), "mango",
                             summary.entry_id, summary.from_number,
                             None, summary.to_number or summary.to_extension)
            row.direction = summary.direction
            row.started_at = summary.created
        if summary.talk is not None:
            row.answered_at = row.answered_at or summary.talk
        outcome = ("answered" if summary.answered else
                   ("missed" if row.direction == "incoming" else "no_answer"))
        self._end(row, outcome, "the PBX's summary", at=summary.ended)

    # -- background work ------------------------------------------------------------------------
    @setting_job_timer("TELEPHONY_MATCH_TICK_SECONDS")
    def match_calls(self) -> None:
        """New calls' numbers matched to contacts (crm ``match_contact``), shown in the active list and
        carried into the call log. Best effort: when the crm cannot answer, the call stays unlinked and
        the crm matches the number again from ``call_logged``."""
        pending = calls.unmatched(self.db)
        self.db.commit()  # no transaction (nor lock) held while the crm answers
        for tenant_id, call_id, phone in pending:
            match: dict[str, Any] = {}
            try:
                match = dict(self.cluster.crm.match_contact(tenant_id, phone=phone))
            except (CrmError, RemoteError) as exc:
                log.warning("match_contact failed, the call stays unlinked: %s", exc)
            calls.apply_match(self.db, tenant_id, call_id, match)
            self.db.commit()

    @timer(interval=2)
    def watch_engines(self) -> None:
        """Ends click-to-calls no worker took and calls of workers that are gone; the gauges."""
        s = self.settings
        now = accounts.utcnow()
        waited = self.db.scalars(sa.select(Call).where(
            Call.command == "dial", Call.ended_at.is_(None),
            Call.started_at < now - dt.timedelta(seconds=s.TELEPHONY_DIAL_WAIT_SECONDS))
            .with_for_update(skip_locked=True).limit(100)).all()
        for row in waited:
            self._end(row, "failed", "no engine worker holds this user's SIP account (is it registered?)")
        live = sa.select(SipAccount.worker).where(SipAccount.worker == Call.worker, SipAccount.lease_until > now)
        lost = self.db.scalars(sa.select(Call).where(
            Call.source == "sip", Call.ended_at.is_(None), Call.worker.is_not(None),
            Call.started_at < now - dt.timedelta(seconds=5), ~sa.exists(live))
            .with_for_update(skip_locked=True).limit(100)).all()
        for row in lost:
            self._end(row, "engine_lost", "the engine worker handling the call is gone")
        # a PBX call whose end never came (a lost webhook)
        stale = self.db.scalars(sa.select(Call).where(
            Call.source == "mango", Call.ended_at.is_(None),
            Call.started_at < now - dt.timedelta(hours=MANGO_OPEN_HOURS)).with_for_update(skip_locked=True)
            .limit(100)).all()
        for row in stale:
            self._end(row, "failed", f"no end from the PBX within {MANGO_OPEN_HOURS} h")
        # an account whose worker is gone is being registered again, whatever that worker last saw
        held = sa.and_(SipAccount.lease_until.is_not(None), SipAccount.lease_until >= now)
        shown = sa.case((SipAccount.notify_incoming.is_(False), "off"), (~held, "registering"),
                        else_=SipAccount.reg_state)
        states = dict(self.db.execute(sa.select(shown, sa.func.count()).where(
            SipAccount.active.is_(True)).group_by(shown)).all())
        for state in ("off", "registering", "registered", "failed"):
            m.registrations().labels(state).set(states.get(state, 0))
        m.accounts_unheld().set(self.db.scalar(sa.select(sa.func.count()).select_from(SipAccount).where(
            SipAccount.active.is_(True), sa.or_(SipAccount.lease_until.is_(None), SipAccount.lease_until < now))))
        self.db.commit()

    # -- the users service's events ---------------------------------------------------------------
    @handle_event("users", "user_sip_changed")
    def on_user_sip_changed(self, event: dict[str, Any]) -> None:
        data = event_data(UserSipChanged, event)
        if first_delivery(self.db, event, "telephony.on_user_sip_changed"):
            active = data.sip_enabled and self._user_active(data.tenant_id, str(data.user_id))
            accounts.set_active(self.db, data.tenant_id, data.user_id, active)

    @handle_event("users", "user_activated")
    def on_user_activated(self, event: dict[str, Any]) -> None:
        data = event_data(UserEvent, event)
        if first_delivery(self.db, event, "telephony.on_user_activated"):
            accounts.set_active(self.db, data.tenant_id, data.user_id,
                                self._user_active(data.tenant_id, str(data.user_id)))

    @handle_event("users", "user_deactivated")
    def on_user_deactivated(self, event: dict[str, Any]) -> None:
        data = event_data(UserEvent, event)
        if first_delivery(self.db, event, "telephony.on_user_deactivated"):
            accounts.set_active(self.db, data.tenant_id, data.user_id, False)

    @handle_event("users", "user_deleted")
    def on_user_deleted(self, event: dict[str, Any]) -> None:
        data = event_data(UserEvent, event)
        if first_delivery(self.db, event, "telephony.on_user_deleted"):
            row = accounts.find(self.db, data.tenant_id, data.user_id)
            if row is not None:
                accounts.delete(self.db, row)

    def _user_active(self, tenant_id: str, user_id: str) -> bool:
        """The user is active and sip_enabled now. The users service unreachable: the handler fails
        and its event is retried (the dedupe row goes back with the transaction)."""
        try:
            principal = self.cluster.users.get_principal(tenant_id, user_id)
        except NotFound:
            return False
        return bool(principal.get("active")) and bool(principal.get("sip_enabled"))

    @timer(interval=3600)
    def housekeeping(self) -> None:
        now = dt.datetime.now(dt.timezone.utc)
        forget_processed_before(self.db, now - dt.timedelta(days=3))
        # a webhook older than the freshness window is refused by its timestamp anyway
        self.db.execute(sa.delete(MangoWebhook).where(MangoWebhook.received_at < now - dt.timedelta(days=2)))
        self.db.commit()


def _mango_out(row: MangoSettings | None) -> dict[str, Any]:
    if row is None:
        return {"configured": False, "api_base": None, "api_key_set": False, "api_salt_set": False,
                "updated_at": None}
    return {"configured": True, "api_base": row.api_base, "api_key_set": True, "api_salt_set": True,
            "updated_at": accounts.iso(row.updated_at)}


SERVICE = TelephonyService
