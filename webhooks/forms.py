from __future__ import annotations

from datetime import timedelta

from django import forms
from django.utils import timezone

from webhooks import selectors
from webhooks.models import DESCRIPTION_MAX, DeliveryState
from webhooks.ssrf import MAX_URL_LENGTH

DATETIME_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d"]


class DateTimeLocalInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, **kwargs) -> None:
        super().__init__(format="%Y-%m-%dT%H:%M", **kwargs)


def _event_type_choices() -> list[tuple[str, str]]:
    return [(t.name, t.name) for t in selectors.event_type_list()]


class EndpointForm(forms.Form):
    url = forms.CharField(
        label="Endpoint URL",
        max_length=MAX_URL_LENGTH,
        widget=forms.URLInput(attrs={"placeholder": "https://hooks.example.com/securebase", "autocomplete": "off"}),
        help_text="An https:// address on the public internet. Redirects are not followed.",
    )
    description = forms.CharField(
        label="Description",
        required=False,
        max_length=DESCRIPTION_MAX,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=f"What receives these events, for your colleagues (up to {DESCRIPTION_MAX} characters).",
    )
    all_events = forms.BooleanField(label="All events, including types added later", required=False)
    event_types = forms.MultipleChoiceField(
        label="Event types", required=False, widget=forms.CheckboxSelectMultiple, choices=()
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["event_types"].choices = _event_type_choices()
        self.event_descriptions = {t.name: t.description for t in selectors.event_type_list()}

    def event_type_options(self) -> list[dict]:
        """Checkbox, name and description for each type (the template renders the picker)."""
        chosen = set(self["event_types"].value() or [])
        return [
            {"name": name, "description": self.event_descriptions.get(name, ""), "checked": name in chosen}
            for name, _ in self.fields["event_types"].choices
        ]


def _with_any(choices, label="Any"):
    return [("", label), *choices]


class DeliveryFilterForm(forms.Form):
    status = forms.ChoiceField(label="Status", choices=_with_any(DeliveryState.choices), required=False)
    event_type = forms.ChoiceField(label="Event type", required=False)
    since = forms.DateTimeField(
        label="Since (UTC)", required=False, input_formats=DATETIME_FORMATS, widget=DateTimeLocalInput()
    )
    until = forms.DateTimeField(
        label="Until (UTC)", required=False, input_formats=DATETIME_FORMATS, widget=DateTimeLocalInput()
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["event_type"].choices = _with_any(_event_type_choices())

    def clean(self) -> dict:
        data = super().clean()
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            self.add_error("until", "“Until” must be after “since”.")
        return data

    def filters(self) -> selectors.DeliveryFilters:
        data = self.cleaned_data if self.is_valid() else {}
        return selectors.DeliveryFilters(
            state=data.get("status") or "",
            event_type=data.get("event_type") or "",
            since=data.get("since"),
            until=data.get("until"),
        )


class RecoverForm(forms.Form):
    since = forms.DateTimeField(
        label="Resend failed and dead messages since (UTC)",
        input_formats=DATETIME_FORMATS,
        widget=DateTimeLocalInput(),
        help_text="At most 14 days back; up to 10,000 messages at a time, oldest first.",
    )

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("initial", {"since": (timezone.now() - timedelta(days=1)).replace(second=0, microsecond=0)})
        super().__init__(*args, **kwargs)


class EnableForm(forms.Form):
    recover = forms.BooleanField(label="Also resend its failed and dead messages", required=False)
    since = forms.DateTimeField(
        label="Since (UTC)", required=False, input_formats=DATETIME_FORMATS, widget=DateTimeLocalInput()
    )

    def clean(self) -> dict:
        data = super().clean()
        if data.get("recover") and not data.get("since"):
            self.add_error("since", "Choose from when to resend messages.")
        return data
