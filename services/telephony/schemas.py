"""Input and output schemas of the telephony service (pydantic), kept apart
from the table models. The HTTP contracts are in ``contracts.telephony``."""
from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import StringConstraints

from contracts.base import EventData


class UserEvent(EventData):
    """``users.user_deactivated`` / ``users.user_deleted``."""

    tenant_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    user_id: uuid.UUID


class UserSipChanged(UserEvent):
    """``users.user_sip_changed``: «Подключить SIP запись» turned on or off."""

    sip_enabled: bool
