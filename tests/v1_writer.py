"""Run by the real dynamodb-session-flask 1.1.3 (its own virtualenv, see test_migration.py):
store sessions the way a running 1.x application does, and print their ids.

Usage: python v1_writer.py '{"endpoint": ..., "table": ..., "config": {...},
"sessions": [{...}, ...]}'; prints a JSON list of the ids, in order.
"""

import json
import sys

from flask import Flask, request, session

from dynamodb_session_flask import DynamoDbSession


def main() -> None:
    spec = json.loads(sys.argv[1])
    app = Flask("v1_writer")
    app.config.update(
        SESSION_DYNAMODB_ENDPOINT_URL=spec["endpoint"],
        SESSION_DYNAMODB_TABLE_NAME=spec["table"],
        SESSION_DYNAMODB_OVERRIDE_COOKIE_SECURE=False,
        **spec.get("config", {}),
    )
    app.session_interface = DynamoDbSession()

    @app.post("/save")
    def save():
        for key, value in request.get_json().items():
            session[key] = value
        return "saved"

    ids = []
    for data in spec["sessions"]:
        response = app.test_client().post("/save", json=data)
        assert response.status_code == 200, response.data
        [cookie] = response.headers.getlist("Set-Cookie")
        ids.append(cookie.split(";", 1)[0].split("=", 1)[1])
    print(json.dumps(ids))


if __name__ == "__main__":
    main()
