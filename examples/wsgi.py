"""The demo shop for any WSGI server, such as gunicorn with several worker processes::

    DYNAMODB_ENDPOINT_URL=http://127.0.0.1:8000 \\
        gunicorn --workers 4 --bind 127.0.0.1:5000 examples.wsgi:app

Run from the repository's root. The environment says where the sessions are:

* ``DYNAMODB_ENDPOINT_URL``: a DynamoDB-compatible endpoint; unset, Amazon DynamoDB itself
  through boto3's default credentials and region;
* ``DEMO_TABLE_NAME``: the table, which must exist (``make demo`` creates it, or
  ``dynamodb_session_flask.create_table``), default ``dynamodb_session_flask_demo``;
* ``DEMO_COST_LOG``: the SQLite file all worker processes share for the cost panel;
* ``DEMO_SHOW_WORKER=1``: show which process served each page.

Every worker imports this module, so each builds its own app and DynamoDB client; the
sessions they serve are the same, because they live in the table.
"""

from __future__ import annotations

import os

from .app import DEFAULT_COST_LOG, DEFAULT_TABLE_NAME, create_app

_endpoint_url = os.environ.get("DYNAMODB_ENDPOINT_URL") or None
app = create_app(
    {
        "SESSION_DYNAMODB_ENDPOINT_URL": _endpoint_url,
        "SESSION_DYNAMODB_TABLE_NAME": os.environ.get("DEMO_TABLE_NAME", DEFAULT_TABLE_NAME),
        "DEMO_COST_LOG": os.environ.get("DEMO_COST_LOG", str(DEFAULT_COST_LOG)),
        "DEMO_BACKEND": _endpoint_url or "Amazon DynamoDB",
        "DEMO_SHOW_WORKER": os.environ.get("DEMO_SHOW_WORKER") == "1",
    }
)
