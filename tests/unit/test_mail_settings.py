"""E-mail and proxy settings are checked when read, not when first used."""

from __future__ import annotations

import pytest

from auth.mail import Mailer
from restock.settings import Settings


@pytest.mark.parametrize("url", ["http://mail.test", "smtp://", "mail.test:25"])
def test_a_mistyped_smtp_url_fails_at_start(url: str) -> None:
    """Only smtp://, smtp+starttls:// and smtps:// with a host are accepted."""
    with pytest.raises(ValueError, match="RESTOCK_SMTP_URL"):
        Mailer(url)


def test_smtp_settings_come_from_the_environment() -> None:
    """RESTOCK_SMTP_URL and RESTOCK_MAIL_FROM are read; unset means no e-mail."""
    env = {"RESTOCK_SMTP_URL": "smtps://u:p@mail.test", "RESTOCK_MAIL_FROM": "shop@mail.test"}
    settings = Settings.from_env(env)
    assert (settings.smtp_url, settings.mail_from) == (env["RESTOCK_SMTP_URL"], "shop@mail.test")
    assert Mailer(settings.smtp_url).configured
    assert not Mailer(Settings.from_env({}).smtp_url).configured


@pytest.mark.parametrize("hops", ["-1", "11", "two"])
def test_a_bad_trusted_proxy_count_fails_at_start(hops: str) -> None:
    """RESTOCK_TRUSTED_PROXIES is a hop count from 0 to 10."""
    with pytest.raises(ValueError):
        Settings.from_env({"RESTOCK_TRUSTED_PROXIES": hops})
