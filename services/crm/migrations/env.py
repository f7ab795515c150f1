from crm_shared.migrations import run_env
from services.crm.models import Base

run_env(Base.metadata)
