"""Web sign-in for people: Flask-Login sessions, CSRF-protected forms, login/logout/sign-up."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Flask, redirect, render_template, request, url_for
from flask_limiter import Limiter
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from werkzeug.wrappers import Response
from wtforms import EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, Length

from auth.accounts import MIN_PASSWORD, authenticate, sign_up
from auth.limits import limits, login_email
from auth.mail import Mailer
from auth.model import Account, StoreMembership
from orders.domain.errors import InvalidRequest
from orders.store.db import Database


@dataclass
class AccountUser(UserMixin):  # type: ignore[misc]
    """The signed-in account as Flask-Login sees it."""

    id: int
    email: str
    shopper_id: int | None
    store_ids: tuple[int, ...]
    time_zone: str | None = None

    def get_id(self) -> str:
        """Flask-Login's session key."""
        return str(self.id)

    @property
    def is_merchant(self) -> bool:
        """True when the account works in at least one store."""
        return bool(self.store_ids)


class LoginForm(FlaskForm):  # type: ignore[misc]
    """`/login`: email and password (CSRF from Flask-WTF)."""

    email = EmailField("Email", validators=[DataRequired(), Length(max=320)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])


class SignupForm(FlaskForm):  # type: ignore[misc]
    """`/signup`: a new shopper account."""

    name = StringField("Your name", validators=[DataRequired(), Length(max=200)])
    email = EmailField("Email", validators=[DataRequired(), Length(max=320)])
    password = PasswordField(
        "Password", validators=[DataRequired(), Length(min=MIN_PASSWORD, max=1024)]
    )


class LogoutForm(FlaskForm):  # type: ignore[misc]
    """A CSRF-protected logout button."""


def load_account(db: Database, account_id: int) -> AccountUser | None:
    """The AccountUser for a session's account id, or None when gone or disabled."""
    with db.read() as session:
        account = session.get(Account, account_id)
        if account is None or account.disabled:
            return None
        stores = tuple(
            session.scalars(
                select(StoreMembership.store_id)
                .where(StoreMembership.account_id == account_id)
                .order_by(StoreMembership.store_id)
            )
        )
        return AccountUser(account.id, account.email, account.shopper_id, stores, account.time_zone)


def safe_next(target: str | None, default: str = "/") -> str:
    """Only same-site relative paths are followed after login (no open redirects)."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return default
    return target


def init_login(
    app: Flask, db: Database, limiter: Limiter, mailer: Mailer | None = None, public_url: str = ""
) -> LoginManager:
    """Install Flask-Login on `app` and mount the sign-in pages (login attempts rate-limited)."""
    manager = LoginManager()
    manager.login_view = "auth_web.login"
    manager.login_message = "Please sign in first."
    manager.init_app(app)

    def _load(user_id: str) -> AccountUser | None:
        return load_account(db, int(user_id)) if user_id.isdigit() else None

    manager.user_loader(_load)

    app.register_blueprint(make_blueprint(db, limiter, mailer or Mailer(), public_url))
    return manager


def existing_account_notice(public_url: str) -> tuple[str, str]:
    """Subject and text of the e-mail sent when someone signs up with a registered address."""
    return (
        "Someone tried to make a new Restock account with your e-mail address",
        "Hello,\n\nSomeone, maybe you, tried to create a new Restock account with this e-mail\n"
        "address. You already have an account, so nothing was changed and no new account\n"
        f"was made.\n\nIf it was you, sign in with your existing password: {public_url}/login\n"
        "If it was not you, you can ignore this message.\n",
    )


def make_blueprint(db: Database, limiter: Limiter, mailer: Mailer, public_url: str) -> Blueprint:
    """The `/login`, `/logout` and `/signup` pages."""
    bp = Blueprint("auth_web", __name__, template_folder="templates")

    @bp.route("/login", methods=["GET", "POST"])
    @limiter.limit(lambda: limits().login, methods=["POST"])
    @limiter.limit(
        lambda: limits().failed_logins_per_account,
        key_func=login_email,
        methods=["POST"],
        deduct_when=lambda response: response.status_code == 401,
        scope="failed-login-account",
    )
    def login() -> Any:
        form = LoginForm()
        error = None
        if form.validate_on_submit():
            account = authenticate(db, form.email.data or "", form.password.data or "")
            if account is not None:
                user = load_account(db, account.id)
                if user is not None:
                    login_user(user)
                    return redirect(safe_next(request.args.get("next")))
            error = "That email and password do not match an account."
        status = 401 if error else (400 if form.errors else 200)
        signed_up = request.method == "GET" and request.args.get("signed_up") == "1"
        page = render_template("auth/login.html", form=form, error=error, signed_up=signed_up)
        return page, status

    @bp.route("/signup", methods=["GET", "POST"])
    @limiter.limit(lambda: limits().signup, methods=["POST"])
    def signup() -> Any:
        form = SignupForm()
        error = None
        if form.validate_on_submit():
            try:
                done = sign_up(
                    db,
                    email=form.email.data or "",
                    password=form.password.data or "",
                    shopper_name=form.name.data or "",
                )
            except InvalidRequest as exc:
                error = exc.detail
            else:
                if not done.created:
                    mailer.send_later(done.email, *existing_account_notice(public_url))
                # One answer whether or not the email was registered: nobody learns which.
                target = safe_next(request.args.get("next"), default="") or None
                return redirect(url_for("auth_web.login", signed_up=1, next=target))
        status = 400 if error or form.errors else 200
        return render_template("auth/signup.html", form=form, error=error), status

    @bp.post("/logout")
    def logout() -> Response:
        form = LogoutForm()
        if form.validate_on_submit() and current_user.is_authenticated:
            logout_user()
        return redirect(url_for("auth_web.login"))

    return bp
