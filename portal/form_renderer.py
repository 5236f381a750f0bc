"""The form renderer: Django's own widget templates, with the common ones rendered in Python.

Rendering a ``<select>`` through Django's templates includes one template per option and one
``attrs.html`` per tag; the filter form of the ticket list (five selects) cost ~4 ms of a page's
~27 ms of CPU. The functions below produce exactly what Django's templates
(``django/forms/widgets/*.html``) produce for the same context, byte for byte
(``portal/tests/test_form_renderer.py`` compares them over every widget the project uses and
over crafted values and attributes); every other template (admin widgets, radio groups, the
file input, form/field layouts) goes through the templates as before (docs/adr/0021).
"""

from __future__ import annotations

from django.forms.renderers import DjangoTemplates
from django.template.base import render_value_in_context
from django.utils.html import conditional_escape
from django.utils.safestring import SafeData


class _Context:
    """What ``render_value_in_context`` reads of a template Context: the renderer's defaults."""

    autoescape = True
    use_l10n = None
    use_tz = None


_CONTEXT = _Context()


def _text(value) -> str:
    """``{{ value }}``."""
    return render_value_in_context(value, _CONTEXT)


def _string(value) -> str:
    """``{{ value|stringformat:'s' }}``."""
    try:
        text = "%s" % (str(value) if isinstance(value, tuple) else value)
    except (ValueError, TypeError):
        return ""
    return text if isinstance(value, SafeData) else conditional_escape(text)


def _attrs(attrs: dict) -> str:
    """``django/forms/widgets/attrs.html``."""
    parts = []
    for name, value in attrs.items():
        if value is False:
            continue
        if value is True:
            parts.append(f" {_text(name)}")
        else:
            parts.append(f' {_text(name)}="{_string(value)}"')
    return "".join(parts)


def _input(widget: dict) -> str:
    """``django/forms/widgets/input.html``."""
    value = widget["value"]
    value_attr = f' value="{_string(value)}"' if value is not None else ""
    return (
        f'<input type="{_text(widget["type"])}" name="{_text(widget["name"])}"{value_attr}{_attrs(widget["attrs"])}>\n'
    )


def _input_include(widget: dict) -> str:
    """The templates that are ``{% include "django/forms/widgets/input.html" %}`` and a newline."""
    return _input(widget) + "\n"


def _option(widget: dict) -> str:
    """``django/forms/widgets/select_option.html``."""
    return f'<option value="{_string(widget["value"])}"{_attrs(widget["attrs"])}>{_text(widget["label"])}</option>\n'


def _select(widget: dict) -> str | None:
    """``django/forms/widgets/select.html`` (options through their own template name)."""
    parts = [f'<select name="{_text(widget["name"])}"{_attrs(widget["attrs"])}>']
    for group_name, group_choices, _index in widget["optgroups"]:
        if group_name:
            parts.append(f'\n  <optgroup label="{_text(group_name)}">')
        for option in group_choices:
            render = _OPTION_TEMPLATES.get(option["template_name"])
            if render is None:
                return None  # an option template of its own: the whole select through the templates
            parts.append("\n  ")
            parts.append(render(option))
        if group_name:
            parts.append("\n  </optgroup>")
    parts.append("\n</select>\n")
    return "".join(parts)


def _textarea(widget: dict) -> str:
    """``django/forms/widgets/textarea.html``."""
    value = widget["value"]
    return f'<textarea name="{_text(widget["name"])}"{_attrs(widget["attrs"])}>\n{_text(value) if value else ""}</textarea>\n'


_OPTION_TEMPLATES = {"django/forms/widgets/select_option.html": _option}

_WIDGETS = {
    "django/forms/widgets/input.html": _input,
    "django/forms/widgets/select.html": _select,
    "django/forms/widgets/select_option.html": _option,
    "django/forms/widgets/textarea.html": _textarea,
    **{
        f"django/forms/widgets/{name}.html": _input_include
        for name in (
            "checkbox",
            "color",
            "date",
            "datetime",
            "email",
            "file",
            "hidden",
            "number",
            "password",
            "search",
            "tel",
            "text",
            "time",
            "url",
        )
    },
}


class FormRenderer(DjangoTemplates):
    """``DjangoTemplates`` with the common widget templates rendered in Python (same output)."""

    def render(self, template_name, context, request=None):
        render = _WIDGETS.get(template_name)
        if render is not None and set(context) == {"widget"}:
            html = render(context["widget"])
            if html is not None:
                return html.strip()  # as BaseRenderer.render does
        return super().render(template_name, context, request)
