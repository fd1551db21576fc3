"""The file outbox: one parseable .eml per email, named so the newest reset is easy to find."""

from __future__ import annotations

import re
import stat
from email import policy
from email.parser import BytesParser

from streamia_notifications.senders.outbox import FileOutboxSender


async def test_the_outbox_writes_a_parseable_eml_with_a_text_and_an_html_part(
    tmp_path, renderer, reset_job
):
    sender = FileOutboxSender(tmp_path / "outbox")
    name = await sender.send(renderer.message(reset_job))
    [path] = (tmp_path / "outbox").iterdir()
    assert path.name == name
    assert re.fullmatch(r"\d{8}T\d{6}\.\d{6}Z-password-reset-ana@example\.com\.eml", path.name)
    message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
    assert message["To"] == "ana@example.com"
    assert message["Subject"] == "Restablece tu contraseña de Streamia"
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    link = f"https://streamia.test/reset-password/{reset_job.token}"
    assert link in text and f'href="{link}"' in html


async def test_outbox_files_sort_by_time_so_the_latest_is_last(
    tmp_path, renderer, reset_job, welcome_job
):
    sender = FileOutboxSender(tmp_path)
    for job in (reset_job, welcome_job, reset_job.model_copy(update={"event_id": "second"})):
        await sender.send(renderer.message(job))
    resets = sorted(p.name for p in tmp_path.glob("*-password-reset-*.eml"))
    assert len(resets) == 2
    latest = BytesParser(policy=policy.default).parsebytes((tmp_path / resets[-1]).read_bytes())
    assert latest["X-Streamia-Event-Id"] == "second"
    assert not list(tmp_path.glob(".*"))  # no partial files left behind


async def test_the_outbox_folder_and_its_emails_are_readable_by_their_owner_only(
    tmp_path, renderer, reset_job
):
    sender = FileOutboxSender(tmp_path / "outbox")
    await sender.send(renderer.message(reset_job))  # a reset link is a key to the account
    [path] = (tmp_path / "outbox").iterdir()
    assert stat.S_IMODE((tmp_path / "outbox").stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
