from __future__ import annotations

from decimal import Decimal

from django import forms
from django.core.exceptions import ValidationError

from forecasting import conf
from forecasting.engine import ALLOWED_HORIZONS, ALLOWED_LEVELS
from forecasting.models import SERVICE_MAX
from portal.params import whole_number

HORIZON_CHOICES = [(str(h), f"{h} months") for h in ALLOWED_HORIZONS]
LEVEL_CHOICES = [(str(level), f"{level} %") for level in ALLOWED_LEVELS]


class ForecastViewForm(forms.Form):
    """The page's state in the query string: horizon, band level and the series shown."""

    horizon = forms.TypedChoiceField(label="Horizon", choices=HORIZON_CHOICES, coerce=int, required=False)
    level = forms.TypedChoiceField(label="Band", choices=LEVEL_CHOICES, coerce=int, required=False)
    service = forms.CharField(label="Service", max_length=SERVICE_MAX, required=False)

    def values(self) -> tuple[int, int, str]:
        data = self.cleaned_data if self.is_bound and self.is_valid() else {}
        return (
            data.get("horizon") or conf.DEFAULT_HORIZON,
            data.get("level") or conf.DEFAULT_LEVEL,
            (data.get("service") or "").strip(),
        )


UPLOAD_HELP = (
    "A FOCUS 1.x export, an AWS Cost and Usage Report (CSV, or .csv.gz) or a utilisation file "
    "(date, service, resource_id, avg_cpu_percent). The whole file is checked first: if any row is wrong, "
    "nothing is imported and you get the list of lines to fix."
)


class CostUploadForm(forms.Form):
    file = forms.FileField(label="Cost or utilisation file", help_text=UPLOAD_HELP, allow_empty_file=True)


def parse_thresholds(raw: str) -> list[int]:
    parts = [p.strip().rstrip("%").strip() for p in (raw or "").replace(";", ",").split(",")]
    values = []
    for part in parts:
        if not part:
            continue
        value = whole_number(part)
        if value is None:
            raise ValidationError(f"{part!r} is not a whole percentage.")
        values.append(value)
    if not values:
        raise ValidationError("Give at least one threshold, e.g. 80, 100.")
    return values


class BudgetForm(forms.Form):
    service = forms.ChoiceField(label="Applies to", required=False)
    amount = forms.DecimalField(label="Monthly amount", min_value=Decimal("0.01"), max_digits=14, decimal_places=2)
    thresholds = forms.CharField(
        label="Alert at (% of the amount)",
        initial="80, 100",
        max_length=40,
        help_text="Comma-separated, e.g. 80, 100",
    )

    def __init__(self, *args, services: list[str] = (), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["service"].choices = [("", "Total spend"), *[(s, s) for s in services]]

    def clean_thresholds(self) -> list[int]:
        return parse_thresholds(self.cleaned_data["thresholds"])


class BudgetUpdateForm(forms.Form):
    amount = forms.DecimalField(label="Monthly amount", min_value=Decimal("0.01"), max_digits=14, decimal_places=2)
    thresholds = forms.CharField(label="Alert at (% of the amount)", max_length=40)

    def clean_thresholds(self) -> list[int]:
        return parse_thresholds(self.cleaned_data["thresholds"])
