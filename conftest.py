"""Every Python, shell and JSON snippet of the README and the documentation (``docs/*.md``),
run by pytest through Sybil, so the docs cannot drift from the code.

Each document runs in order, in one namespace, against a local DynamoDB-compatible engine
started for the run (``DYNAMODB_ENGINE``: moto's server by default, or dynalite), found
the way an application finds a local engine: ``AWS_ENDPOINT_URL_DYNAMODB`` with a region
and dummy credentials in the environment. The docs' local endpoint,
``http://127.0.0.1:8000``, stands for the engine's address, a free port chosen for the run.

Shell snippets run in bash, ``-e`` and ``-o pipefail``, in a scratch directory holding the
smallest application there is as ``yourapp.py`` (``DEFAULT_APP``), so that
``flask --app yourapp`` finds one; a Python snippet whose first line is a comment naming a
file (``# yourapp.py``) is saved there too. A snippet that cannot run here (an install
from the package index, a server that runs until stopped) is preceded by
``<!-- skip: next "reason" -->``; hidden set-up and checks are
``<!-- invisible-code-block: python -->`` blocks. Every document starts on an empty engine.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from sybil import Example, Sybil
from sybil.evaluators.python import pad
from sybil.parsers import markdown, myst

from tests.engines import DUMMY_ACCESS_KEY, DUMMY_SECRET_KEY, REGION, LocalEngine, start_engine

SHELL_TIMEOUT = 120.0
#: A Python snippet starting with this comment is also saved under that name.
FILE_HEADER = re.compile(r"\A# ([\w.-]+\.py)\n")
#: What the snippets see of the environment: a local engine, never a real account.
ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": DUMMY_ACCESS_KEY,
    "AWS_SECRET_ACCESS_KEY": DUMMY_SECRET_KEY,
    "AWS_DEFAULT_REGION": REGION,
}
UNSET = ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL", "FLASK_APP")
SCRATCH = "_docs_scratch"
#: The endpoint the docs tell readers to start an engine on.
DOCS_ENDPOINT = "http://127.0.0.1:8000"

#: The application the docs' ``flask --app yourapp`` commands run on, unless a page shows
#: its own.
DEFAULT_APP = """\
from flask import Flask

from dynamodb_session_flask import DynamoDbSession

app = Flask(__name__)
DynamoDbSession().init_app(app)
"""

_engine: LocalEngine | None = None
_saved_environment: dict[str, str | None] = {}


def _running_engine() -> LocalEngine:
    # One engine for every document of the run; tests/engines.py stops it at exit.
    global _engine
    if _engine is None:
        _engine = start_engine(os.environ.get("DYNAMODB_ENGINE", "moto"))
    return _engine


def setup(namespace: dict[str, Any]) -> None:
    engine = _running_engine()
    wanted: dict[str, str | None] = {
        **ENVIRONMENT,
        "AWS_ENDPOINT_URL_DYNAMODB": engine.endpoint_url,
        **dict.fromkeys(UNSET),
    }
    for key, value in wanted.items():
        _saved_environment[key] = os.environ.get(key)
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    namespace["__name__"] = "docs_snippet"
    scratch = Path(tempfile.mkdtemp(prefix="docs-snippets-"))
    (scratch / "yourapp.py").write_text(DEFAULT_APP, "utf-8")
    namespace[SCRATCH] = scratch


def teardown(namespace: dict[str, Any]) -> None:
    for key, value in _saved_environment.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    _saved_environment.clear()
    shutil.rmtree(namespace[SCRATCH], ignore_errors=True)
    # Modules the snippets' apps imported from the scratch directory go with it.
    for name in [n for n, m in sys.modules.items() if _from_scratch(m, namespace[SCRATCH])]:
        del sys.modules[name]
    _running_engine().reset()


def _from_scratch(module: Any, scratch: Path) -> bool:
    path = getattr(module, "__file__", None)
    return isinstance(path, str) and path.startswith(str(scratch))


def _source(example: Example) -> str:
    return str(example.parsed).replace(DOCS_ENDPOINT, _running_engine().endpoint_url)


def evaluate_python(example: Example) -> None:
    __tracebackhide__ = True
    source = _source(example)
    named = FILE_HEADER.match(source)
    if named:
        (example.namespace[SCRATCH] / named.group(1)).write_text(source, "utf-8")
    # Padded so that a traceback gives the line in the document.
    padded = pad(source, example.line + example.parsed.line_offset)
    exec(compile(padded, example.path, "exec", dont_inherit=True), example.namespace)
    example.namespace.pop("__builtins__", None)


def evaluate_shell(example: Example) -> None:
    # The virtualenv's own commands (flask, pip) first, as in an activated virtualenv.
    bin_dir = str(Path(sys.executable).parent)
    environment = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
    result = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", _source(example)],
        cwd=example.namespace[SCRATCH],
        env=environment,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=SHELL_TIMEOUT,
    )
    if result.returncode != 0:
        raise AssertionError(
            f"exit code {result.returncode}\n--- stdout\n{result.stdout}--- stderr\n{result.stderr}"
        )


def evaluate_json(example: Example) -> None:
    json.loads(str(example.parsed))


def _sybil(flavour: Any, **where: Any) -> Sybil:
    return Sybil(
        parsers=[
            flavour.CodeBlockParser(language="python", evaluator=evaluate_python),
            flavour.CodeBlockParser(language="shell", evaluator=evaluate_shell),
            flavour.CodeBlockParser(language="json", evaluator=evaluate_json),
            flavour.SkipParser(),
        ],
        setup=setup,
        teardown=teardown,
        **where,
    )


pytest_collect_file = (
    # The README renders on GitHub and PyPI as CommonMark; the docs are MyST, for Sphinx.
    _sybil(markdown, patterns=["README.md"], excludes=["*/README.md"], name="readme")
    + _sybil(myst, patterns=["docs/*.md"], name="docs")
).pytest()
