"""Reading rendered pages the way a browser (or a person) would: forms, field errors, links, the language."""

from __future__ import annotations

import re
from html import unescape
from html.parser import HTMLParser
from typing import Any

from django.utils import translation

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def html_of(response: Any) -> str:
    return str(response.content.decode())


def zh(message: Any) -> str:
    """A message (a msgid or a lazy translation) as a Chinese page shows it, compiled translations or not."""
    with translation.override("zh-hans"):
        return translation.gettext(message) if isinstance(message, str) else str(message)


def page_lang(response: Any) -> str:
    found = re.search(r'<html lang="([^"]*)"', html_of(response))
    return found.group(1) if found else ""


def field_errors(response: Any) -> dict[str, list[str]]:
    """Errors shown next to each field: ``<p class="error" id="id_<field>_error">``."""
    errors: dict[str, list[str]] = {}
    for field, text in re.findall(r'<p class="error" id="id_(\w+)_error">(.*?)</p>', html_of(response), re.S):
        errors.setdefault(field, []).append(unescape(text).strip())
    return errors


def alerts(response: Any) -> list[str]:
    """Messages in the page's alert boxes (errors that belong to no single field)."""
    boxes = re.findall(r'<div class="error-box" role="alert">(.*?)</div>', html_of(response), re.S)
    boxes += re.findall(r'<p class="error-message" role="alert">(.*?)</p>', html_of(response), re.S)
    return [unescape(re.sub(r"<[^>]+>", " ", box)).strip() for box in boxes]


def person_ids(response: Any) -> set[int]:
    """Members linked from a list page."""
    return {int(pk) for pk in re.findall(r'href="/console/people/(\d+)/"', html_of(response))}


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[dict[str, Any]] = []
        self._form: dict[str, Any] | None = None
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._form = {"_attrs": a, "_options": {}}
            self.forms.append(self._form)
        if self._form is None:
            return
        name = a.get("name", "")
        if tag == "input" and name:
            kind = a.get("type", "text")
            if kind in {"checkbox", "radio"}:
                if "checked" in a:
                    self._form[name] = a.get("value", "on")
            elif kind not in {"submit", "button"}:
                value = a.get("value", "")
                if kind == "date" and not _ISO_DATE.match(value):
                    value = ""  # a browser drops a value a date input cannot show
                self._form[name] = value
        elif tag == "select" and name:
            self._select = name
            self._form["_options"][name] = []
            self._form[name] = None
        elif tag == "option" and self._select:
            self._form["_options"][self._select].append(a.get("value", ""))
            if "selected" in a:
                self._form[self._select] = a.get("value", "")
        elif tag == "textarea" and name:
            self._textarea = name
            self._form[name] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag == "select" and self._form is not None and self._select:
            if self._form[self._select] is None:  # nothing selected: a browser sends the first option
                options = self._form["_options"][self._select]
                self._form[self._select] = options[0] if options else ""
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._form is not None and self._textarea:
            # Browsers drop one newline right after <textarea>.
            self._form[self._textarea] += data.removeprefix("\n") if not self._form[self._textarea] else data


def form_with(response: Any, field: str) -> dict[str, Any]:
    """The values a browser would submit from the page's form that has ``field``.

    ``_options`` maps each select to the values it offers; ``_attrs`` holds the form's attributes."""
    parser = _Forms()
    parser.feed(html_of(response))
    for form in parser.forms:
        if field in form:
            return form
    raise AssertionError(f"no form with a field {field!r} on the page")


def submittable(form: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """The form's values without the helper keys, with ``changes`` applied (None removes a field)."""
    data = {k: v for k, v in form.items() if not k.startswith("_") and k != "csrfmiddlewaretoken"}
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return data
