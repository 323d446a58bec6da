"""SPEC.md's TestSession example, verbatim, plus isolation between instances."""

import pytest
from flask import Flask, session

from dynamodb_session_flask.testing import TestSession


@pytest.fixture
def app():
    flask_app = Flask(__name__)

    @flask_app.route('/load')
    def load():
        return {
            'actual_value': session.get('val', None),
        }

    yield flask_app


@pytest.fixture()
def test_client(app):
    app.session_interface = TestSession()
    return app.test_client()


def test_able_to_use_test_session_transaction(test_client):
    expected_value = 'fake_value'

    with test_client:
        with test_client.session_transaction() as test_session:
            test_session['val'] = expected_value

        response = test_client.get('/load')

        assert response.json['actual_value'] == expected_value


def test_each_test_session_keeps_its_own_data(app):
    first, second = TestSession(), TestSession()
    app.session_interface = first
    with app.test_client().session_transaction() as test_session:
        test_session['val'] = 'first'

    app.session_interface = second
    assert app.test_client().get('/load').json['actual_value'] is None


def test_extra_methods_work_in_memory(app):
    @app.route('/extras')
    def extras():
        session['val'] = 'kept'
        session.save()
        session.regenerate()
        kept = session['val']
        session.abandon()
        return {'kept': kept, 'after_abandon': dict(session)}

    app.session_interface = TestSession()
    assert app.test_client().get('/extras').json == {'kept': 'kept', 'after_abandon': {}}
