"""Templates: Spanish by default, English available, links to the platform, HTML escaped."""

from __future__ import annotations

import pytest

from streamia_notifications.emails.renderer import EmailRenderer
from streamia_notifications.emails.schemas import EmailJob, mask_email

SUBJECTS = {
    ("es", "welcome"): "Te damos la bienvenida a Streamia, Ana",
    ("en", "welcome"): "Welcome to Streamia, Ana",
    ("es", "password-reset"): "Restablece tu contraseña de Streamia",
    ("en", "password-reset"): "Reset your Streamia password",
    ("es", "farewell"): "Tu cuenta de Streamia se ha eliminado",
    ("en", "farewell"): "Your Streamia account has been deleted",
}


def _job(kind: str, reset_job: EmailJob) -> EmailJob:
    return (
        reset_job
        if kind == "password-reset"
        else reset_job.model_copy(update={"kind": kind, "token": None, "expires_at": None})
    )


@pytest.mark.parametrize(("language", "kind"), list(SUBJECTS))
def test_every_email_has_a_subject_a_text_and_an_html_part_in_both_languages(
    renderer, reset_job, language, kind
):
    rendered = renderer.render(_job(kind, reset_job), language)
    assert rendered.subject == SUBJECTS[(language, kind)]
    assert "Streamia" in rendered.text and "Streamia" in rendered.html
    assert f'<html lang="{language}">' in rendered.html
    assert "https://streamia.test/" in rendered.text
    assert 'href="https://streamia.test/"' in rendered.html


def test_spanish_is_the_default_and_the_default_is_configurable(unit_settings, welcome_job):
    assert EmailRenderer(unit_settings()).render(welcome_job).text.startswith("Hola, Ana:")
    english = EmailRenderer(unit_settings(default_language="en"))
    assert english.render(welcome_job).text.startswith("Hi Ana,")


def test_the_reset_email_links_to_the_frontend_reset_route_with_the_token(renderer, reset_job):
    rendered = renderer.render(reset_job)
    link = f"https://streamia.test/reset-password/{reset_job.token}"
    assert link in rendered.text
    assert f'href="{link}"' in rendered.html
    assert "60 minutos" in rendered.text


def test_names_are_escaped_in_html_and_left_alone_in_text(renderer, welcome_job):
    job = welcome_job.model_copy(update={"first_name": "<b>Ana</b> & co"})
    rendered = renderer.render(job)
    assert "&lt;b&gt;Ana&lt;/b&gt; &amp; co" in rendered.html
    assert "<b>Ana</b>" not in rendered.html
    assert "Hola, <b>Ana</b> & co:" in rendered.text


def test_a_name_with_a_line_break_cannot_add_a_header(renderer, welcome_job):
    job = welcome_job.model_copy(update={"first_name": "Ana\r\nBcc: victim@example.com"})
    message = renderer.message(job)
    assert message["Bcc"] is None
    assert "\n" not in message["Subject"]


def test_the_message_is_multipart_alternative_and_keyed_by_the_event(renderer, welcome_job):
    message = renderer.message(welcome_job, "en")
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    assert message["X-Streamia-Event-Id"] == welcome_job.event_id
    assert message["Message-ID"] == f"<{welcome_job.event_id}.welcome@streamia.local>"
    assert message["Content-Language"] == "en"


def test_a_job_never_shows_its_token_or_full_address_in_repr(reset_job):
    shown = repr(reset_job) + str(reset_job)
    assert reset_job.token not in shown
    assert "ana@example.com" not in shown
    assert mask_email("ana@example.com") == "a***@example.com"
    assert reset_job.redact(f"boom {reset_job.token} for ana@example.com") == (
        "boom [token] for a***@example.com"
    )
