from django import forms

from tickets.models import BODY_MAX, SUBJECT_MAX, Category, Priority, Status
from tickets.selectors import SORT_LABELS


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("widget", MultipleFileInput())
        kwargs.setdefault("required", False)
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        single = super().clean
        if isinstance(data, list | tuple):
            return [single(item, initial) for item in data]
        return [single(data, initial)] if data else []


ATTACHMENT_HELP = "Up to 5 files, 10 MB each: images, PDF, text, CSV, JSON, logs or ZIP."


class TicketCreateForm(forms.Form):
    subject = forms.CharField(label="Subject", max_length=SUBJECT_MAX)
    description = forms.CharField(
        label="Describe the problem", max_length=BODY_MAX, widget=forms.Textarea(attrs={"rows": 8})
    )
    priority = forms.ChoiceField(
        label="Priority",
        choices=Priority.choices,
        initial=Priority.MEDIUM,
        help_text="Critical: production down (first response within 1 h). High: 4 h. Medium: 24 h. Low: 48 h.",
    )
    category = forms.ChoiceField(label="Category", choices=Category.choices, initial=Category.GENERAL)
    attachments = MultipleFileField(label="Attachments", help_text=ATTACHMENT_HELP)


class CommentForm(forms.Form):
    body = forms.CharField(label="Your reply", max_length=BODY_MAX, widget=forms.Textarea(attrs={"rows": 4}))
    attachments = MultipleFileField(label="Attachments", help_text=ATTACHMENT_HELP)


class FollowerAddForm(forms.Form):
    """CC a colleague: the organization's active members who don't follow the ticket yet."""

    user = forms.ChoiceField(label="Add a follower")

    def __init__(self, *args, candidates=(), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["user"].choices = [
            ("", "Choose a colleague"),
            *[(str(u.pk), u.get_full_name() or u.get_username()) for u in candidates],
        ]


class StatusForm(forms.Form):
    status = forms.ChoiceField(choices=Status.choices)


def _with_any(choices, label="Any"):
    return [("", label), *choices]


class TicketFilterForm(forms.Form):
    q = forms.CharField(label="Search", required=False, max_length=200)
    status = forms.ChoiceField(label="Status", choices=_with_any(Status.choices), required=False)
    priority = forms.ChoiceField(label="Priority", choices=_with_any(Priority.choices), required=False)
    category = forms.ChoiceField(label="Category", choices=_with_any(Category.choices), required=False)
    assignee = forms.ChoiceField(label="Assignee", required=False)
    sort = forms.ChoiceField(label="Sort by", choices=list(SORT_LABELS.items()), required=False)

    def __init__(self, *args, assignees: list[tuple[int, str]] = (), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["assignee"].choices = [
            ("", "Anyone"),
            ("none", "Unassigned"),
            *[(str(pk), name) for pk, name in assignees],
        ]
