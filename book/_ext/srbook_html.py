"""A small Sphinx extension with fixes to the book's HTML pages (loaded from _config.yml).

Inline scripts added by extensions (``app.add_js_file(None, body=...)``) can end up twice in a
page's ``<head>`` with Sphinx 7 and Jupyter Book 1: sphinx-thebe's
``const THEBE_JS_URL = ...`` then raises "Identifier 'THEBE_JS_URL' has already been
declared" in the browser console on every page. Removing exact duplicates from the page's
script list (keeping the first of each, in order) fixes it without changing anything else.
"""

from __future__ import annotations


def _script_key(script) -> tuple:
    # An inline script is registered once with filename None and once with "": same script.
    filename = getattr(script, "filename", script) or ""
    attributes = getattr(script, "attributes", {}) or {}
    return (str(filename), tuple(sorted((k, str(v)) for k, v in attributes.items())))


def dedupe_scripts(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        key = _script_key(script)
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def setup(app):
    # Run after the other html-page-context handlers, which may add scripts of their own.
    app.connect("html-page-context", dedupe_scripts, priority=900)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
