from streamia_kit.migrations import run_env
from streamia_users.users.models import Base

run_env(Base.metadata)
