from crm_shared.migrations import run_env
from services.telephony.models import Base

run_env(Base.metadata)
