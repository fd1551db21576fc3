from streamia_kit.migrations import run_env
from streamia_movies.movies.models import Base

run_env(Base.metadata)
