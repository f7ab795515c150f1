from crm_shared.migrations import run_env
from services.mail.models import Base

run_env(Base.metadata)
