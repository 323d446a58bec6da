"""Run ``examples/lambda_function.py``'s handler locally, as Lambda would, on an API
Gateway HTTP API event (payload 2.0) read from a file::

    make lambda-local
    .venv/bin/python examples/invoke_lambda.py examples/events/http-api-get-visits.json

Sessions go to an embedded moto server, gone when this ends (or to
``DYNAMODB_ENDPOINT_URL`` when set). The event is sent twice, the second time with the
cookie the first answer set, as a browser would; each answer is printed as one JSON line,
with the session id's value masked.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

# Run as a script, only this file's folder is importable; the function is in the
# ``examples`` package of the repository.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dynamodb_session_flask import create_table  # noqa: E402

DEFAULT_EVENT = Path(__file__).resolve().parent / "events" / "http-api-get-visits.json"


def _masked(cookie: str) -> str:
    """A Set-Cookie value with the cookie's own value replaced by its length."""
    pair, _, attributes = cookie.partition(";")
    name, _, value = pair.partition("=")
    return f"{name}=<{len(value)} characters>;{attributes}"


def main(argv: list[str]) -> int:
    event_path = Path(argv[1]) if len(argv) > 1 else DEFAULT_EVENT
    event: dict[str, Any] = json.loads(event_path.read_text())
    moto = None
    endpoint_url = os.environ.get("DYNAMODB_ENDPOINT_URL") or None
    if endpoint_url is None:
        from moto.server import ThreadedMotoServer

        # moto accepts any credentials; botocore needs some to sign with.
        os.environ.update(
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_DEFAULT_REGION="us-east-1",
        )
        os.environ.pop("AWS_SESSION_TOKEN", None)
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's access log
        moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        moto.start()
        host, port = moto.get_host_and_port()
        endpoint_url = f"http://{host}:{port}"
        os.environ["DYNAMODB_ENDPOINT_URL"] = endpoint_url
    try:
        table_name = os.environ.setdefault("SESSION_TABLE_NAME", "app_session")
        create_table(table_name, endpoint_url=endpoint_url, exist_ok=True)
        # Imported now, with the environment set: its module level is Lambda's init phase.
        function = importlib.import_module("examples.lambda_function")
        cookies: list[str] = list(event.get("cookies") or [])
        for _ in range(2):
            answer = function.lambda_handler({**event, "cookies": cookies}, None)
            set_cookies: list[str] = answer.get("cookies") or []
            shown = {
                "statusCode": answer["statusCode"],
                "body": answer.get("body"),
                "cookies": [_masked(cookie) for cookie in set_cookies],
            }
            print(json.dumps(shown), flush=True)
            cookies = [cookie.split(";", 1)[0] for cookie in set_cookies] or cookies
    finally:
        if moto is not None:
            moto.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
