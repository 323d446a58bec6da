"""One-time messages ("Added to your cart") shown on the page after a form's redirect.

Flask's ``flash()`` keeps its messages in the session: storing one and showing it would
each change the session, so every message would add an UpdateItem to the request that
shows it, and a message after logout would store a whole new session just to say
goodbye. The demo is about what sessions cost, so its messages travel in a cookie of
their own, which the next page shows once and expires. Applications pay that one small
write gladly and use ``flash()``; the integration tests do.
"""

from __future__ import annotations

import json

from flask import request
from werkzeug.wrappers import Response

COOKIE = "demo_notice"
#: Long enough to survive the redirect, short enough not to greet a later visit.
MAX_AGE_SECONDS = 60
MAX_LENGTH = 300


def leave(response: Response, text: str) -> Response:
    """Show ``text`` on the next page this browser loads."""
    response.set_cookie(
        COOKIE,
        json.dumps(text[:MAX_LENGTH]),
        max_age=MAX_AGE_SECONDS,
        httponly=True,
        samesite="Lax",
        path="/",
    )
    return response


def take(response: Response) -> str | None:
    """The message left for this page, if any; it is expired so a reload does not show it
    again. The text is the visitor's own input at most and is escaped when rendered."""
    raw = request.cookies.get(COOKIE)
    if raw is None:
        return None
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="Lax")
    try:
        text = json.loads(raw)
    except ValueError:
        return None
    return text if isinstance(text, str) else None
