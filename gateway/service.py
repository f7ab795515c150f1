"""The gateway service: every route mixin from ``gateway.routes`` on one
nameko service. A route validates, makes (at most) one RPC and shapes the
answer; errors map through ``gateway.exceptions``."""
from __future__ import annotations

from typing import Any

from crm_shared.rpc import ClusterRpc
from crm_shared.service import ServiceBase
from gateway.console import ConsoleRoutes
from gateway.dependencies import Readiness
from gateway.openapi import build_openapi
from gateway.routes.auth import AuthRoutes
from gateway.routes.crm import CrmRoutes
from gateway.routes.exchange import ExchangeRoutes
from gateway.routes.imports import ImportRoutes
from gateway.routes.mail import MailAccountRoutes, MailRoutes
from gateway.routes.ops import OpsRoutes
from gateway.routes.org import OrgRoutes
from gateway.routes.telephony import CallRoutes, TelephonyRoutes
from gateway.routes.tenants import TenantRoutes
from gateway.routes.users import JournalRoutes, UsersRoutes

API_VERSION = "1.0.0"


# Add an area's route mixin to the bases (one per line keeps merges easy).
class GatewayService(
    OpsRoutes,
    AuthRoutes,
    TenantRoutes,
    OrgRoutes,
    UsersRoutes,
    JournalRoutes,
    CrmRoutes,
    ImportRoutes,
    ExchangeRoutes,
    MailAccountRoutes,
    MailRoutes,
    CallRoutes,
    TelephonyRoutes,
    ConsoleRoutes,
    ServiceBase,
):
    name = "gateway"

    cluster: Any = ClusterRpc()
    readiness: Any = Readiness()


_document: dict[str, Any] | None = None


def openapi_document() -> dict[str, Any]:
    global _document
    if _document is None:
        _document = build_openapi(GatewayService, "CRM platform API", API_VERSION)
    return _document


SERVICE = GatewayService
