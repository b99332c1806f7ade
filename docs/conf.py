"""Sphinx configuration for the ADAN site (`make docs`; warnings are errors)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

# The package lives in src/ (installed in editable mode by `make install`; this also lets a
# plain checkout build the API reference).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

project = "ADAN"
author = "the ADAN authors"
copyright = "2026, the ADAN authors"

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.viewcode",
    # The docstrings are Google style ("Args:" with hanging indents), which plain reST reads as
    # stray block quotes; napoleon turns those sections into field lists. NumPy style is unused.
    "sphinx.ext.napoleon",
]
napoleon_google_docstring = True
napoleon_numpy_docstring = False

# The hand-written pages are Markdown (MyST); the API reference is generated.
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

# Pages link to numbered sections of each other (data.md#6-features, ...).
myst_heading_anchors = 3

# The API reference walks the package `adan` recursively (docs/api.md), so it follows modules
# as they move; the stubs are written to docs/api/_generated/ (git-ignored).
autosummary_generate = True
autosummary_imported_members = False
autodoc_default_options = {
    "members": True,
    "undoc-members": False,
    "show-inheritance": True,
    # document each object once, in the module that defines it, not again where a package's
    # __init__ re-exports it (that would be a duplicate object description)
    "ignore-module-all": True,
}
autodoc_member_order = "bysource"
# Signatures stay short; the annotations go into the description instead of the signature.
autodoc_typehints = "description"
autodoc_class_signature = "separated"
# Only ADAN's own docstrings: a method that overrides Lightning's (training_step,
# configure_optimizers, ...) without a docstring would otherwise inherit Lightning's, whose
# roles and labels (:paramref:, testcode, Lightning's own cross-references) this site lacks.
autodoc_inherit_docstrings = False


# The docstrings write absolute values and norms as |x| (and |w_a|, |high - close[t-1]|, ...).
# In reST, |name| is a substitution reference and fails the build; outside inline literals
# and interpreted text, a bar in a docstring is always meant literally, so escape it.
_CODE_SPAN = re.compile(r"(``.+?``|`[^`]+`)")


def _escape_bars(app, what, name, obj, options, lines: list[str]) -> None:
    for i, line in enumerate(lines):
        if "|" in line:
            parts = _CODE_SPAN.split(line)
            lines[i] = "".join(p if j % 2 else p.replace("|", "\\|") for j, p in enumerate(parts))


def setup(app):
    app.connect("autodoc-process-docstring", _escape_bars)


html_theme = "alabaster"
html_title = "ADAN"
html_static_path: list[str] = []
