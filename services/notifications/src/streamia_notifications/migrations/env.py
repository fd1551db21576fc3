from streamia_kit.migrations import run_env
from streamia_notifications.models import metadata

run_env(metadata)
