from streamia_comments.comments.models import Base
from streamia_kit.migrations import run_env

run_env(Base.metadata)
