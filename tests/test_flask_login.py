"""With the libraries applications pair sessions with: Flask-Login (login, remember-me,
fresh logins, logout) and Flask-WTF (CSRF-protected forms), as the README's "Using with
Flask-Login" section describes them, and Flask's own flash messages."""

from __future__ import annotations

import re
from typing import Any, cast

import pytest
from flask import Flask, flash, get_flashed_messages, redirect, request, session, url_for
from flask.testing import FlaskClient
from flask_login import (
    LoginManager,
    UserMixin,
    current_user,
    fresh_login_required,
    login_required,
    login_user,
    logout_user,
)
from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFProtect
from werkzeug.wrappers import Response
from wtforms import BooleanField, PasswordField, StringField
from wtforms.validators import InputRequired

from dynamodb_session_flask import DynamoDbSession, DynamoDbSessionInstance

from .conftest import CallCounter, counted_client
from .engines import LocalEngine

PASSWORDS = {"alice": "wonderland"}
SESSION_COOKIE = "id"
REMEMBER_COOKIE = "remember_token"


class User(UserMixin):
    def __init__(self, name: str) -> None:
        self.id = name


class LoginForm(FlaskForm):
    name = StringField(validators=[InputRequired()])
    password = PasswordField(validators=[InputRequired()])
    remember = BooleanField()


class EmptyForm(FlaskForm):
    """A form with nothing but its CSRF token, for the logout button."""


def dynamodb_session() -> DynamoDbSessionInstance:
    return cast(DynamoDbSessionInstance, session)


def build_app(engine: LocalEngine, table_name: str, logout_order: str) -> tuple[Flask, CallCounter]:
    client, calls = counted_client(engine.endpoint_url)
    app = Flask(__name__)
    app.config.update(
        TESTING=True,
        SECRET_KEY="test-secret-key-for-csrf-and-remember-cookies",
        SESSION_DYNAMODB_TABLE_NAME=table_name,
        SESSION_DYNAMODB_OVERRIDE_COOKIE_SECURE=False,
    )
    DynamoDbSession(client=client).init_app(app)
    CSRFProtect(app)
    login_manager = LoginManager(app)
    login_manager.login_view = "login"
    login_manager.refresh_view = "login"

    @login_manager.user_loader
    def load_user(user_id: str) -> User | None:
        return User(user_id) if user_id in PASSWORDS else None

    def messages() -> str:
        return "".join(f"<p class=flash>{m}</p>" for m in get_flashed_messages())

    @app.route("/login", methods=["GET", "POST"])
    def login() -> Any:
        form = LoginForm()
        if form.validate_on_submit():
            if PASSWORDS.get(form.name.data or "") != form.password.data:
                return "wrong password", 403
            # A new session id at login, against fixation: an id planted before login is
            # worthless after it. The session's data (CSRF token included) comes along.
            dynamodb_session().regenerate()
            login_user(User(form.name.data or ""), remember=bool(form.remember.data))
            flash(f"Welcome, {form.name.data}")
            return redirect(request.args.get("next") or url_for("home"))
        return f"<form method=post>{form.csrf_token}</form>{messages()}"

    @app.get("/")
    @login_required
    def home() -> str:
        logout_form = EmptyForm()
        return f"<p id=user>{current_user.id}</p>{messages()}<form>{logout_form.csrf_token}</form>"

    @app.get("/settings")
    @fresh_login_required
    def settings() -> str:
        return "settings"

    @app.get("/health")
    def health() -> str:
        return "ok"

    @app.post("/logout")
    @login_required
    def logout() -> Response:
        if logout_order == "clear-then-logout":
            # The order that works: Flask-Login's logout marks the session so that its
            # after_request hook deletes the remember cookie; that mark must outlive the
            # clear, so clear first.
            session.clear()
            logout_user()
        else:
            logout_user()
            session.clear()
        flash("Logged out")
        return redirect(url_for("login"))

    return app, calls


@pytest.fixture
def app_and_calls(engine: LocalEngine, table_name: str) -> tuple[Flask, CallCounter]:
    return build_app(engine, table_name, "clear-then-logout")


@pytest.fixture
def app(app_and_calls: tuple[Flask, CallCounter]) -> Flask:
    return app_and_calls[0]


def csrf_token(html: str) -> str:
    found = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html)
    assert found is not None, html
    return found.group(1)


def flashes(html: str) -> list[str]:
    return re.findall(r"<p class=flash>(.*?)</p>", html)


def log_in(client: FlaskClient, remember: bool = False, password: str = "wonderland") -> Any:
    token = csrf_token(client.get("/login").text)
    form = {"name": "alice", "password": password, "csrf_token": token}
    if remember:
        form["remember"] = "y"
    return client.post("/login", data=form)


def log_out(client: FlaskClient) -> Any:
    return client.post("/logout", data={"csrf_token": csrf_token(client.get("/").text)})


def cookie(client: FlaskClient, name: str) -> str | None:
    found = client.get_cookie(name)
    return None if found is None else found.value


def test_login_moves_the_session_to_a_new_id(app: Flask) -> None:
    client = app.test_client()
    client.get("/login")  # the CSRF token is stored in a session: it has an id now
    before = cookie(client, SESSION_COOKIE)
    assert before is not None

    response = log_in(client)
    assert response.status_code == 302
    after = cookie(client, SESSION_COOKIE)
    assert after is not None and after != before
    assert client.get("/").text.startswith("<p id=user>alice</p>")

    # The pre-login id is worthless: with it, the visitor is anonymous.
    other = app.test_client()
    other.set_cookie(SESSION_COOKIE, before)
    assert other.get("/").status_code == 302


def test_flash_messages_are_shown_exactly_once(app: Flask) -> None:
    client = app.test_client()
    log_in(client)
    assert flashes(client.get("/").text) == ["Welcome, alice"]
    assert flashes(client.get("/").text) == []


def test_forms_without_a_valid_csrf_token_are_refused(app: Flask) -> None:
    client = app.test_client()
    client.get("/login")
    form = {"name": "alice", "password": "wonderland"}
    assert client.post("/login", data=form).status_code == 400
    # A token issued to another session does not pass either.
    stranger_token = csrf_token(app.test_client().get("/login").text)
    assert client.post("/login", data={**form, "csrf_token": stranger_token}).status_code == 400
    assert client.get("/").status_code == 302

    log_in(client)
    assert client.post("/logout", data={}).status_code == 400
    assert client.get("/").status_code == 200


def test_remember_me_restores_a_login_that_is_not_fresh(app: Flask) -> None:
    client = app.test_client()
    log_in(client, remember=True)
    assert cookie(client, REMEMBER_COOKIE) is not None
    assert client.get("/settings").text == "settings"

    # The browser restarts: the session cookie is gone, the remember cookie is not.
    client.delete_cookie(SESSION_COOKIE)
    assert client.get("/").text.startswith("<p id=user>alice</p>")
    # Restored from the cookie, the login is not fresh: sensitive pages ask again.
    response = client.get("/settings")
    assert response.status_code == 302 and "/login" in response.headers["Location"]

    log_in(client)
    assert client.get("/settings").text == "settings"


@pytest.mark.parametrize(
    ("order", "logged_back_in"),
    [("clear-then-logout", False), ("logout-then-clear", True)],
)
def test_logout_order_decides_whether_the_remember_cookie_survives(
    engine: LocalEngine, table_name: str, order: str, logged_back_in: bool
) -> None:
    app, _ = build_app(engine, table_name, order)
    client = app.test_client()
    log_in(client, remember=True)
    assert log_out(client).status_code == 302

    assert (cookie(client, REMEMBER_COOKIE) is not None) is logged_back_in
    home = client.get("/")
    # logout_user() then session.clear() drops Flask-Login's "clear the remember cookie"
    # mark: the cookie stays, and the next request logs the user straight back in.
    assert (home.status_code == 200) is logged_back_in


def test_logout_ends_the_session_for_good(app: Flask) -> None:
    client = app.test_client()
    log_in(client)
    session_id = cookie(client, SESSION_COOKIE)
    assert session_id is not None
    log_out(client)
    assert flashes(client.get("/login").text) == ["Logged out"]
    assert client.get("/").status_code == 302

    replay = app.test_client()
    replay.set_cookie(SESSION_COOKIE, session_id)
    assert replay.get("/").status_code == 302


def test_flask_login_reads_the_session_on_every_request(
    app_and_calls: tuple[Flask, CallCounter],
) -> None:
    app, calls = app_and_calls
    client = app.test_client()
    log_in(client)
    calls.clear()
    # The view never touches the session, but Flask-Login's after_request hook looks for
    # its remember-cookie mark in it: one GetItem, and no write.
    assert client.get("/health").text == "ok"
    assert calls == {"GetItem": 1}

    calls.clear()
    assert app.test_client().get("/health").text == "ok"
    # Without a session cookie there is nothing to read.
    assert calls.total() == 0
