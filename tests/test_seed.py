"""The demo seed: its admin password reaches a person, never the JSON log."""

from __future__ import annotations

from streamia import platform
from streamia_users.app import create_app
from streamia_users.config import UsersSettings


async def test_the_seed_summary_that_is_logged_names_the_admin_but_not_the_password(tmp_path):
    settings = UsersSettings(
        environment="test", data_dir=tmp_path, log_level="WARNING", argon2_memory_kib=1024
    )
    app = create_app(settings)
    await app.state.service.start()
    try:
        summary = await platform.seed_demo(apps=[("users", app, settings)])
    finally:
        await app.state.service.stop()
    assert platform.DEMO_ADMIN_EMAIL in summary
    assert platform.DEMO_ADMIN_PASSWORD not in summary
