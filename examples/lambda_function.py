"""The documentation's AWS Lambda recipe (docs/lambda.md) as a deployable function
(handler: ``lambda_function.lambda_handler``), behind API Gateway (REST or HTTP API) or an
ALB through apig-wsgi.

Everything at module level runs once per Lambda instance, in its init phase: the settings
are validated, the DynamoDB client is built with the library's timeouts and retries (a
bare ``boto3.client("dynamodb")`` would wait up to botocore's 60 s per read), and one
warm-up read opens the connection, so the first user's request does not pay for it.

Run it locally against an embedded DynamoDB with ``make lambda-local`` (see
``examples/invoke_lambda.py``).
"""

from __future__ import annotations

import os

from apig_wsgi import make_lambda_handler
from flask import Flask, session

from dynamodb_session_flask import DynamoDbSession

app = Flask(__name__)
app.config.update(
    SESSION_DYNAMODB_TABLE_NAME=os.environ.get("SESSION_TABLE_NAME", "app_session"),
    # Unset on Lambda (boto3 finds DynamoDB in the function's region); set for local runs.
    SESSION_DYNAMODB_ENDPOINT_URL=os.environ.get("DYNAMODB_ENDPOINT_URL") or None,
)
DynamoDbSession().init_app(app, warm_up=True)


@app.get("/visits")
def visits() -> dict[str, int]:
    count = int(session.get("visits", 0)) + 1
    session["visits"] = count
    return {"visits": count}


lambda_handler = make_lambda_handler(app)
