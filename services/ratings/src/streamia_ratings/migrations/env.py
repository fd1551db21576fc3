from streamia_kit.migrations import run_env
from streamia_ratings.ratings.models import Base

run_env(Base.metadata)
