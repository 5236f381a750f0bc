"""The form renderer's Python widgets say exactly what Django's widget templates say."""

import datetime as dt
import importlib
import inspect

import pytest
from django import forms
from django.conf import settings
from django.forms.renderers import DjangoTemplates
from django.forms.utils import ErrorList
from django.utils.safestring import mark_safe

from portal import form_renderer
from portal.form_renderer import FormRenderer

TEMPLATES = DjangoTemplates()
PYTHON = FormRenderer()

NASTY = "a \"quoted\" <b>&amp; 'single' value"


def _both(form: forms.Form) -> tuple[str, str]:
    out = []
    for renderer in (TEMPLATES, PYTHON):
        form.renderer = renderer
        form._bound_fields_cache.clear()
        out.append("".join(str(bound) for bound in form))
    return out[0], out[1]


def _project_forms() -> list[type[forms.Form]]:
    found = []
    for module_name in ("portal.forms", "tickets.forms", "forecasting.forms", "webhooks.forms", "notifications.views"):
        module = importlib.import_module(module_name)
        for _name, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, forms.BaseForm) and cls.__module__ == module_name and not inspect.isabstract(cls):
                found.append(cls)
    return found


def test_the_portal_uses_it():
    assert settings.FORM_RENDERER == "portal.form_renderer.FormRenderer"
    assert isinstance(forms.Form().renderer, FormRenderer)


@pytest.mark.parametrize("form_class", _project_forms(), ids=lambda cls: f"{cls.__module__}.{cls.__name__}")
def test_every_project_form_renders_the_same_unbound_and_bound(form_class):
    kwargs = {}
    if "assignees" in inspect.signature(form_class.__init__).parameters:
        kwargs["assignees"] = [(3, "Ada <Lovelace>"), (4, NASTY)]
    try:
        unbound = form_class(**kwargs)
    except TypeError:
        pytest.fail(f"{form_class.__name__} needs constructor arguments this test does not know")
    templates, python = _both(unbound)
    assert python == templates
    data = {}
    for name, field in unbound.fields.items():
        choices = getattr(field, "choices", None)
        data[name] = str(list(choices)[-1][0]) if choices else NASTY
    bound = form_class(data=data, **kwargs)
    bound.is_valid()
    templates, python = _both(bound)
    assert python == templates
    assert python  # something was rendered


WIDGETS = [
    forms.TextInput(),
    forms.TextInput(attrs={"placeholder": NASTY, "required": True, "disabled": False, "maxlength": 200}),
    forms.TextInput(attrs={"data-x": mark_safe("<i>safe</i>"), "aria-describedby": ("a", "b")}),
    forms.EmailInput(attrs={"autocomplete": "email"}),
    forms.PasswordInput(render_value=True),
    forms.NumberInput(attrs={"step": 0.5, "min": 0}),
    forms.HiddenInput(),
    forms.URLInput(),
    forms.DateInput(),
    forms.DateTimeInput(),
    forms.TimeInput(),
    forms.CheckboxInput(),
    forms.SearchInput(),
    forms.TelInput(),
    forms.ColorInput(),
    forms.Textarea(),
    forms.Textarea(attrs={"rows": 4, "cols": None}),
    forms.Select(choices=[("", "Any"), (1, "One"), ("two", NASTY), (3, 3), (4, mark_safe("<b>4</b>"))]),
    forms.Select(choices=[("Group <1>", [("a", "A"), ("b", "B")]), ("c", "C"), ("", [("d", "D")])]),
    forms.SelectMultiple(choices=[("a", "A"), ("b", "B"), ("c", "C")]),
    forms.NullBooleanSelect(),
]
VALUES = [
    None,
    "",
    "two",
    0,
    1,
    3,
    0.5,
    True,
    False,
    NASTY,
    mark_safe("<b>ok</b>"),
    ["a", "c"],
    ("a",),
    dt.date(2026, 11, 26),
]


@pytest.mark.parametrize("widget", WIDGETS, ids=lambda w: type(w).__name__)
def test_widgets_render_the_same_for_every_kind_of_value(widget):
    checked = 0
    for value in VALUES:
        for attrs in (None, {"id": "id_x"}, {"id": "id_x", "aria-invalid": "true", "class": "a&b"}):
            try:
                templates = widget.render("field<name>", value, attrs=attrs, renderer=TEMPLATES)
            except TypeError:  # Django's own widget refuses the value (NullBooleanSelect and a list)
                with pytest.raises(TypeError):
                    widget.render("field<name>", value, attrs=attrs, renderer=PYTHON)
                checked += 1
                continue
            python = widget.render("field<name>", value, attrs=attrs, renderer=PYTHON)
            assert python == templates, (value, attrs)
            checked += 1
    assert checked == len(VALUES) * 3


def test_templates_it_does_not_know_go_through_the_templates(monkeypatch):
    calls = []
    original = DjangoTemplates.render

    def spy(self, template_name, context, request=None):
        calls.append(template_name)
        return original(self, template_name, context, request)

    monkeypatch.setattr(DjangoTemplates, "render", spy)
    radio = forms.RadioSelect(choices=[("a", "A"), ("b", "B")]).render("r", "a", renderer=PYTHON)
    assert 'type="radio"' in radio and "checked" in radio
    assert "django/forms/widgets/radio.html" in calls
    calls.clear()
    text = forms.TextInput().render("t", "v", renderer=PYTHON)
    assert text == TEMPLATES.render("django/forms/widgets/text.html", forms.TextInput().get_context("t", "v", None))
    assert calls == ["django/forms/widgets/text.html"]  # only the comparison above used the templates
    # and a whole form's layout and its errors still come from the templates
    form = forms.Form()
    form.renderer = PYTHON
    assert "errorlist" in str(ErrorList(["Bad <input>"], renderer=PYTHON))
    assert str(form) == ""


def test_an_option_template_of_its_own_renders_the_select_through_the_templates():
    class Fancy(forms.Select):
        option_template_name = "django/forms/widgets/input_option.html"

    widget = Fancy(choices=[("a", "A")])
    assert widget.render("s", "a", renderer=PYTHON) == widget.render("s", "a", renderer=TEMPLATES)
    assert (
        form_renderer._WIDGETS["django/forms/widgets/select.html"](widget.get_context("s", "a", None)["widget"]) is None
    )
