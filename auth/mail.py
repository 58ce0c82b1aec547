"""E-mail to people (RESTOCK_SMTP_URL, RESTOCK_MAIL_FROM); unset: no e-mail, a log line."""

from __future__ import annotations

import logging
import smtplib
import ssl
import threading
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

log = logging.getLogger(__name__)

# scheme -> (default port, implicit TLS, STARTTLS)
SCHEMES = {
    "smtp": (25, False, False),
    "smtp+starttls": (587, False, True),
    "smtps": (465, True, False),
}
TIMEOUT_SECONDS = 20


@dataclass(frozen=True)
class Mailer:
    """Sends plain-text mail through one SMTP server; without a URL it sends nothing."""

    smtp_url: str | None = None
    mail_from: str | None = None

    def __post_init__(self) -> None:
        # A mistyped URL fails at start, not on the first notice in a background thread.
        if self.smtp_url:
            parts = urlsplit(self.smtp_url)
            if parts.scheme not in SCHEMES or not parts.hostname:
                raise ValueError("RESTOCK_SMTP_URL must be smtp://, smtp+starttls:// or smtps://")

    @property
    def configured(self) -> bool:
        """True when an SMTP server is set."""
        return bool(self.smtp_url)

    def send(self, to: str, subject: str, body: str) -> None:
        """Deliver one message now (blocking); without a server, log that none was sent."""
        if not self.smtp_url:
            # The address stays out of the log: logs travel further than mailboxes.
            log.info("no e-mail configured (RESTOCK_SMTP_URL unset); not sent: %s", subject)
            return
        parts = urlsplit(self.smtp_url)
        port, implicit_tls, starttls = SCHEMES[parts.scheme]
        message = EmailMessage()
        message["From"] = self.mail_from or f"restock@{parts.hostname}"
        message["To"] = to
        message["Subject"] = subject
        message.set_content(body)
        host, port = parts.hostname or "", parts.port or port
        context = ssl.create_default_context()
        smtp: smtplib.SMTP
        if implicit_tls:
            smtp = smtplib.SMTP_SSL(host, port, timeout=TIMEOUT_SECONDS, context=context)
        else:
            smtp = smtplib.SMTP(host, port, timeout=TIMEOUT_SECONDS)
        with smtp:
            if starttls:
                smtp.starttls(context=context)
            if parts.username:
                smtp.login(unquote(parts.username), unquote(parts.password or ""))
            smtp.send_message(message)

    def send_later(self, to: str, subject: str, body: str) -> threading.Thread | None:
        """Send on a background thread, so how long SMTP takes never shows in a web answer."""
        if not self.configured:
            self.send(to, subject, body)  # only a log line
            return None
        worker = threading.Thread(
            target=self._send_logged, args=(to, subject, body), name="restock-mail", daemon=True
        )
        worker.start()
        return worker

    def _send_logged(self, to: str, subject: str, body: str) -> None:
        try:
            self.send(to, subject, body)
        except (OSError, smtplib.SMTPException, ValueError):
            log.exception("e-mail not sent: %s", subject)
