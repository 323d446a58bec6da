"""Sphinx configuration: `make docs` builds docs/_build/html, warnings as errors."""

from __future__ import annotations

import importlib.metadata

project = "dynamodb-session-flask"
copyright = "The dynamodb-session-flask maintainers"
release = importlib.metadata.version("dynamodb-session-flask")
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "myst_parser",
    "pallets_sphinx_themes",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build"]
# Headings are link targets (`configuration.md#iam-permissions`), as on GitHub.
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]
# The Pallets theme registers Click's and Jinja's Sphinx domains, which MyST's link
# resolution asks about every link and which cannot answer; links here resolve anyway.
suppress_warnings = ["myst.domains"]

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_preserve_defaults = True

html_theme = "flask"
html_title = f"dynamodb-session-flask {version}"
html_short_title = "dynamodb-session-flask"
html_theme_options = {"index_sidebar_logo": False}
html_sidebars = {
    "index": ["project.html", "localtoc.html", "searchbox.html"],
    "**": ["localtoc.html", "relations.html", "searchbox.html"],
}
html_show_sourcelink = False
