"""comment.hidden: the author is told by email, at the address user.* events last gave."""

from __future__ import annotations

from streamia_kit.db import new_id
from streamia_kit.events import CommentHidden, UserDeleted, UserRegistered, UserUpdated
from streamia_kit.testing import serve_app, wait_for
from streamia_notifications.app import create_app
from streamia_notifications.recipients.repository import RecipientsRepository


async def _address(app, user_id: str, expected: str) -> bool:
    async with app.state.service.db.sessions() as session:
        found = await RecipientsRepository(session).get(user_id)
    return found is not None and found.email == expected


def _hidden(user_id: str, reason: str = "reports") -> CommentHidden:
    return CommentHidden(
        comment_id=new_id(),
        user_id=user_id,
        movie_id=new_id(),
        movie_title="Night <Train>",
        text="An <i>unpopular</i> opinion",
        reason=reason,
    )


async def test_the_author_of_a_hidden_comment_gets_an_email_at_their_newest_address(
    mail, settings_factory, publish, new_address, parts
):
    text_of, html_of = parts
    app = create_app(settings_factory())
    async with serve_app(app):
        user_id, old, new = new_id(), new_address("old"), new_address("new")
        await publish(
            app, UserRegistered(user_id=user_id, email=old, first_name="Ana", last_name="G")
        )
        await publish(
            app,
            UserUpdated(user_id=user_id, email=new, first_name="Ana", last_name="G", language="en"),
        )
        await wait_for(lambda: mail.find(to=old), message="welcome")
        await wait_for(lambda: _address(app, user_id, new), message="the new address projected")
        hidden = await publish(app, _hidden(user_id))
        [message] = await wait_for(lambda: mail.find(event_id=hidden.id), message="told")
        assert message["To"] == new and message["X-Streamia-Email-Kind"] == "comment-hidden"
        assert message["Subject"] == "Your comment on Night <Train> is hidden for review"
        text = text_of(message)
        assert "Several members reported your comment" in text
        assert "An <i>unpopular</i> opinion" in text
        assert "An &lt;i&gt;unpopular&lt;/i&gt; opinion" in html_of(message)  # escaped

        by_admin = await publish(app, _hidden(user_id, reason="admin"))
        [message] = await wait_for(lambda: mail.find(event_id=by_admin.id), message="admin")
        assert "A moderator has hidden your comment" in text_of(message)


async def test_a_deleted_authors_hidden_comment_sends_nothing(
    mail, settings_factory, publish, new_address
):
    app = create_app(settings_factory())
    async with serve_app(app):
        user_id, to = new_id(), new_address()
        await publish(app, UserRegistered(user_id=user_id, email=to, first_name="A", last_name="B"))
        await publish(app, UserDeleted(user_id=user_id, email=to, first_name="A", last_name="B"))
        await wait_for(lambda: len(mail.find(to=to)) == 2, message="welcome and farewell")
        await publish(app, _hidden(user_id))
        # A later email for another author proves the hidden comment was consumed by then.
        other, other_to = new_id(), new_address("other")
        await publish(
            app, UserRegistered(user_id=other, email=other_to, first_name="C", last_name="D")
        )
        await wait_for(lambda: _address(app, other, other_to), message="the other author")
        marker = await publish(app, _hidden(other))
        await wait_for(lambda: mail.find(event_id=marker.id), message="marker")
        kinds = sorted(m["X-Streamia-Email-Kind"] for m in mail.find(to=to))
        assert kinds == ["farewell", "welcome"]  # sent in any order; no comment-hidden
