from streamia_kit.migrations import run_env
from streamia_playback.progress.models import Base

run_env(Base.metadata)
