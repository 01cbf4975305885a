"""The Locust web UI's door: a password login for `--web-login`, and a warning for an exposed UI.

Why: the web UI starts load against any host typed into it, so whoever reaches it can aim this
machine's load anywhere. Locust leaves authentication to the locustfile (`--web-login` shows its login
page and protects every view; the locustfile checks the credentials, docs.locust.io "Authentication").
Here: one user name and a password read from a file (`--web-password-file`) or the environment
(INFERLOAD_WEB_PASSWORD), compared in constant time; never a flag value (it would show in `ps`).
The UI binds 127.0.0.1 unless `--web-host` says otherwise.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import secrets
from pathlib import Path
from typing import Any

__all__ = ["PASSWORD_ENV", "WebLoginError", "install_login", "warn_if_exposed"]

PASSWORD_ENV = "INFERLOAD_WEB_PASSWORD"
MIN_PASSWORD = 12


class WebLoginError(RuntimeError):
    """--web-login without a usable password: the message says where to put one."""


def read_password(password_file: str | None) -> str:
    if password_file:
        try:
            password = Path(password_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            reason = exc.strerror or exc
            raise WebLoginError(f"cannot read --web-password-file {password_file}: {reason}") from None
    else:
        password = os.environ.get(PASSWORD_ENV, "").strip()
    if not password:
        raise WebLoginError(
            f"--web-login needs the web UI's password: put it in a file (--web-password-file PATH, or "
            f"INFERLOAD_WEB_PASSWORD_FILE) or in {PASSWORD_ENV}"
        )
    if len(password) < MIN_PASSWORD:
        raise WebLoginError(f"the web UI's password is too short ({len(password)} characters, at least "
                            f"{MIN_PASSWORD})")
    return password


def install_login(environment: Any, *, password_file: str | None, user: str) -> None:
    """Locust's login page with a user name and password form, checked against ours."""
    from flask import Blueprint, redirect, request, session, url_for
    from flask_login import UserMixin, login_user

    password = read_password(password_file)
    web_ui = environment.web_ui
    base = str(getattr(environment.parsed_options, "web_base_path", "") or "")

    class WebUser(UserMixin):  # type: ignore[misc]
        def __init__(self, name: str) -> None:
            self.name = name

        def get_id(self) -> str:
            return self.name

    web_ui.login_manager.user_loader(lambda name: WebUser(name) if name == user else None)
    web_ui.app.config["SECRET_KEY"] = secrets.token_hex(32)  # sessions end when this process does
    web_ui.auth_args = {"username_password_callback": f"{base}/inferload-login"}
    blueprint = Blueprint("inferload_login", __name__, url_prefix=base)

    @blueprint.route("/inferload-login", methods=["POST"])
    def login_submit() -> Any:
        given_user = str(request.form.get("username", ""))
        given = str(request.form.get("password", ""))
        if hmac.compare_digest(given_user, user) and hmac.compare_digest(given.encode(), password.encode()):
            login_user(WebUser(user))
            return redirect(url_for("locust.index"))
        session["auth_error"] = "Invalid user name or password"
        return redirect(url_for("locust.login"))

    web_ui.app.register_blueprint(blueprint)


def warn_if_exposed(web_host: str, logger: logging.Logger) -> None:
    """A UI bound beyond loopback without a login: anyone who reaches it can start load anywhere."""
    host = web_host.strip("[]")
    if host in ("", "*", "0.0.0.0", "::"):
        exposed = True
    else:
        try:
            exposed = not ipaddress.ip_address(host).is_loopback
        except ValueError:
            exposed = host != "localhost"
    if exposed:
        logger.warning(
            "the web UI listens on %s without a login: anyone who reaches it can start load against any "
            "host. Add --web-login (password from --web-password-file or %s), or bind 127.0.0.1",
            web_host or "all addresses", PASSWORD_ENV,
        )
