"""The mail-sender port and its adapters: SMTP, SendGrid's Web API, a file outbox."""
