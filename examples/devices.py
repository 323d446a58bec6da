"""The demo's "Your devices" panel: every live session of the logged-in user, with its
browser, when it signed in and when it was last active, an "End" button per session and
"Log out other devices" (OWASP ASVS 3.3.3 and 3.3.4).

A blueprint with its own routes and an HTML fragment: an application registers it with
``app.register_blueprint(devices)`` and a page shows the panel with ``{{ devices_panel() }}``.
After ending a session it sends the browser back to the app's ``index`` page.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import cast

from flask import Blueprint, redirect, render_template_string, session, url_for
from markupsafe import Markup
from werkzeug.wrappers import Response

from dynamodb_session_flask import DynamoDbSessionInstance, UserIndexMissingError

devices = Blueprint("devices", __name__, url_prefix="/devices")

PANEL = """
<section id="devices">
  <h2>Your devices</h2>
  {% if error %}
    <p id="devices-error">{{ error }}</p>
  {% else %}
    <table>
      <thead>
        <tr><th>Browser</th><th>Signed in</th><th>Last active</th><th></th></tr>
      </thead>
      <tbody>
      {% for device in sessions %}
        <tr class="device{% if device.current %} current{% endif %}">
          <td title="{{ device.user_agent or 'not recorded' }}">
            {{ browser(device.user_agent) }}
            {% if device.current %}<strong>(this device)</strong>{% endif %}
          </td>
          <td>{{ moment(device.created_at) }}</td>
          <td>{{ moment(device.last_active_at) }}</td>
          <td>
            <form method="post" action="{{ url_for('devices.end', handle=device.handle) }}">
              <button type="submit">End</button>
            </form>
          </td>
        </tr>
      {% endfor %}
      </tbody>
    </table>
    {% if sessions | rejectattr("current") | list %}
      <form method="post" action="{{ url_for('devices.end_others') }}">
        <button type="submit">Log out other devices</button>
      </form>
    {% endif %}
    <p><small>A device that signed in a moment ago can take a second to be listed.</small></p>
  {% endif %}
</section>
"""

# (token in the User-Agent, name shown), first match wins: Edge and Opera also say Chrome,
# and Chrome also says Safari.
_BROWSERS = [
    ("Edg/", "Edge"),
    ("OPR/", "Opera"),
    ("Firefox/", "Firefox"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
]
_SYSTEMS = [
    ("Android", "Android"),
    ("iPhone", "iPhone"),
    ("iPad", "iPad"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("CrOS", "ChromeOS"),
    ("Linux", "Linux"),
]


def browser(user_agent: str | None) -> str:
    """A short name for a User-Agent ("Firefox on Linux"); good enough for a person to
    recognise their own device, which is all the panel needs."""
    if not user_agent:
        return "Unknown browser"
    name = next((shown for token, shown in _BROWSERS if token in user_agent), None)
    system = next((shown for token, shown in _SYSTEMS if token in user_agent), None)
    if name and system:
        return f"{name} on {system}"
    return name or system or user_agent[:40]


def moment(when: datetime) -> Markup:
    """A time as "3 min ago", with the exact UTC time in a tooltip."""
    seconds = int((datetime.now(timezone.utc) - when).total_seconds())
    if seconds < 60:
        ago = "just now"
    elif seconds < 3600:
        ago = f"{seconds // 60} min ago"
    elif seconds < 86400:
        ago = f"{seconds // 3600} h ago"
    else:
        ago = f"{seconds // 86400} d ago"
    exact = when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return Markup('<time datetime="{0}" title="{0}">{1}</time>').format(exact, ago)


def _session() -> DynamoDbSessionInstance:
    return cast(DynamoDbSessionInstance, session)


def devices_panel() -> Markup:
    """The panel's HTML for the current user; empty for a visitor who is not logged in.
    Costs one Query on the per-user index and one BatchGetItem."""
    try:
        sessions = _session().user_sessions()
        error = None
    except UserIndexMissingError as exc:
        # The shop keeps working without the index; only this panel cannot.
        sessions, error = [], str(exc)
    if not sessions and error is None:
        return Markup("")
    html = render_template_string(
        PANEL, sessions=sessions, error=error, browser=browser, moment=moment
    )
    return Markup(html)


@devices.app_context_processor
def _provide_panel() -> dict[str, object]:
    return {"devices_panel": devices_panel}


def _back_home() -> Response:
    # 303 makes the browser follow up with a GET, so reloading the page does not re-post.
    return redirect(url_for("index"), code=303)


@devices.post("/end/<handle>")
def end(handle: str) -> Response:
    # Only this user's sessions can be ended: another user's handle, or a made-up one,
    # ends nothing. Ending this device's own session logs it out.
    _session().end_user_session(handle)
    return _back_home()


@devices.post("/end-others")
def end_others() -> Response:
    _session().end_other_sessions()
    return _back_home()
