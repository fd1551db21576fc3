from streamia_favorites.favorites.models import Base
from streamia_kit.migrations import run_env

run_env(Base.metadata)
