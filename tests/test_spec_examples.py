"""SPEC.md's usage examples, verbatim, against a real table."""

from __future__ import annotations

from typing import cast

from flask import Flask, session
from flask import session as flask_session

from dynamodb_session_flask import DynamoDbSession, DynamoDbSessionInstance

from .conftest import item_count


def build_readme_app(table_name: str, endpoint_url: str) -> Flask:
    flask_app = Flask(__name__)
    flask_app.session_interface = DynamoDbSession()
    flask_app.config.update(
        SESSION_DYNAMODB_TABLE_NAME=table_name,
        SESSION_DYNAMODB_ENDPOINT_URL=endpoint_url,
        SESSION_DYNAMODB_OVERRIDE_COOKIE_SECURE=False,
    )

    @flask_app.route('/save')
    def save():
        session['val'] = 'My Value'
        return 'Success', 200

    @flask_app.route('/load')
    def load():
        saved_val = session['val']
        return saved_val, 200

    @flask_app.route('/end')
    def end_session():
        # This will remove the session from the database and remove the session ID from
        # cookies/headers
        session.clear()
        return 'Success', 200

    dynamodb_session = cast(DynamoDbSessionInstance, flask_session)

    @flask_app.route('/abandon')
    def abandon_session():
        dynamodb_session.abandon()
        return 'Success', 200

    return flask_app


def test_save_load_end_round_trip(engine, admin_client, table_name):
    client = build_readme_app(table_name, engine.endpoint_url).test_client()

    assert client.get('/save').status_code == 200
    assert client.get_cookie('id') is not None
    assert item_count(admin_client, table_name) == 1

    response = client.get('/load')
    assert response.status_code == 200
    assert response.text == 'My Value'

    client.get('/end')
    assert client.get_cookie('id') is None
    assert item_count(admin_client, table_name) == 0


def test_abandon_removes_the_session_immediately(engine, admin_client, table_name):
    client = build_readme_app(table_name, engine.endpoint_url).test_client()
    client.get('/save')

    client.get('/abandon')

    assert item_count(admin_client, table_name) == 0
    assert client.get_cookie('id') is None
