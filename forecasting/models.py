"""Cost data, forecasts, anomalies and budgets: every row belongs to one organization.

Natural keys are unique constraints, so re-imports, re-runs and concurrent workers converge on
the same rows instead of duplicating them, and "once" (one event per anomaly, one per budget x
threshold x basis x month) is enforced by the database, not by a check-then-act.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models

from portal.tenancy import TenantModel

SERVICE_MAX = 200
ACCOUNT_MAX = 100
REGION_MAX = 64
RESOURCE_MAX = 300
MONEY = {"max_digits": 20, "decimal_places": 6}
FORECAST_MONEY = {"max_digits": 18, "decimal_places": 2}


class CostDataset(TenantModel):
    """An organization's cost data as a whole: its currency and a version bumped by every import.

    Forecasts remember the version they were computed from, so "is the cached forecast current" is
    one integer comparison, and the row is the lock that serialises imports and run requests.
    """

    currency = models.CharField(max_length=3, blank=True)
    version = models.PositiveBigIntegerField(default=0)
    first_date = models.DateField(null=True, blank=True)
    last_date = models.DateField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization"], name="cost_dataset_one_per_org")]

    def __str__(self) -> str:
        return f"Cost data of {self.organization_id} (v{self.version})"


class CostRecord(TenantModel):
    """Spend of one day on one service in one account and region (imports aggregate to this key)."""

    date = models.DateField()
    service = models.CharField(max_length=SERVICE_MAX)
    account = models.CharField(max_length=ACCOUNT_MAX, blank=True, default="")
    region = models.CharField(max_length=REGION_MAX, blank=True, default="")
    amount = models.DecimalField(**MONEY)
    currency = models.CharField(max_length=3)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "date", "service", "account", "region"], name="cost_record_natural_key"
            ),
        ]
        indexes = [models.Index(fields=["organization", "service", "date"], name="cost_record_service_idx")]

    def __str__(self) -> str:
        return f"{self.date} {self.service} {self.amount} {self.currency}"


class CostMonth(TenantModel):
    """Spend of one service in one calendar month: a roll-up of ``CostRecord`` kept by every import.

    Rewritten for the months an import touches, in the import's transaction, so pages and forecast runs
    read a few hundred rows instead of aggregating every daily row on each request.
    """

    service = models.CharField(max_length=SERVICE_MAX)
    month = models.DateField(help_text="First day of the month")
    amount = models.DecimalField(**MONEY)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "service", "month"], name="cost_month_natural_key"),
        ]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m} {self.service} {self.amount}"


class ResourceUtilization(TenantModel):
    """One resource's average utilisation (and optionally its cost) on one day."""

    date = models.DateField()
    service = models.CharField(max_length=SERVICE_MAX)
    resource_id = models.CharField(max_length=RESOURCE_MAX)
    account = models.CharField(max_length=ACCOUNT_MAX, blank=True, default="")
    region = models.CharField(max_length=REGION_MAX, blank=True, default="")
    avg_cpu_percent = models.DecimalField(max_digits=5, decimal_places=2)
    avg_memory_percent = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    cost = models.DecimalField(**MONEY, null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "date", "resource_id"], name="utilization_natural_key"),
        ]
        indexes = [models.Index(fields=["organization", "resource_id", "date"], name="utilization_resource_idx")]

    def __str__(self) -> str:
        return f"{self.date} {self.resource_id} cpu {self.avg_cpu_percent} %"


class CostImport(TenantModel):
    """One file handed to the importer, its progress and, if rejected, the report of bad rows."""

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting"
        RUNNING = "running", "Importing"
        SUCCEEDED = "succeeded", "Imported"
        FAILED = "failed", "Rejected"

    class Source(models.TextChoices):
        UPLOAD = "upload", "Upload page"
        API = "api", "API"
        COMMAND = "command", "import_costs command"
        DEMO = "demo", "Demo data"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.UPLOAD)
    format = models.CharField(max_length=20, blank=True, help_text="focus, aws_cur or utilization (detected)")
    filename = models.CharField(max_length=255)
    size_bytes = models.PositiveBigIntegerField(default=0)
    # Kept only while a worker still has to read it; deleted once the import has finished.
    file = models.FileField(upload_to="cost-imports/%Y/%m/", blank=True)
    bytes_processed = models.PositiveBigIntegerField(default=0)
    lines_processed = models.PositiveIntegerField(default=0)
    rows_written = models.PositiveIntegerField(default=0)
    currency = models.CharField(max_length=3, blank=True)
    first_date = models.DateField(null=True, blank=True)
    last_date = models.DateField(null=True, blank=True)
    error_count = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True, help_text='[{"line": 12, "message": "..."}]')
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["organization", "-created_at"], name="cost_import_recent_idx")]

    def __str__(self) -> str:
        return f"{self.filename} ({self.status})"

    @property
    def progress_percent(self) -> int:
        if self.status == self.Status.SUCCEEDED:
            return 100
        if not self.size_bytes:
            return 0
        return min(99, int(self.bytes_processed * 100 / self.size_bytes))

    @property
    def finished(self) -> bool:
        return self.status in (self.Status.SUCCEEDED, self.Status.FAILED)


class ForecastRun(TenantModel):
    """One computation of an organization's forecasts (the total and every service)."""

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for a worker"
        RUNNING = "running", "Computing"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    ACTIVE = (Status.PENDING, Status.RUNNING)

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    reason = models.CharField(max_length=20, blank=True, help_text="import, nightly, page, api, budget")
    data_version = models.PositiveBigIntegerField(default=0)
    requested_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    generated_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    series_count = models.PositiveIntegerField(default=0)
    notes = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]
        constraints = [
            # At most one run waiting or computing per organization: a page refresh, an import and the
            # nightly job asking at the same moment get the same run.
            models.UniqueConstraint(
                fields=["organization"],
                condition=models.Q(status__in=["pending", "running"]),
                name="forecast_run_one_active_per_org",
            ),
        ]
        indexes = [models.Index(fields=["organization", "status", "-requested_at"], name="forecast_run_state_idx")]

    def __str__(self) -> str:
        return f"Forecast run {self.public_id} ({self.status})"


class CostForecast(TenantModel):
    """One forecast month of one series ("" is the organization's total) with its bands."""

    run = models.ForeignKey(ForecastRun, on_delete=models.CASCADE, related_name="points")
    service = models.CharField(max_length=SERVICE_MAX, blank=True, help_text="Empty: the total")
    month = models.DateField(help_text="First day of the month")
    mean = models.DecimalField(**FORECAST_MONEY)
    lower_65 = models.DecimalField(**FORECAST_MONEY)
    upper_65 = models.DecimalField(**FORECAST_MONEY)
    lower_80 = models.DecimalField(**FORECAST_MONEY)
    upper_80 = models.DecimalField(**FORECAST_MONEY)
    lower_95 = models.DecimalField(**FORECAST_MONEY)
    upper_95 = models.DecimalField(**FORECAST_MONEY)
    model = models.CharField(max_length=120)
    backtest_mape = models.FloatField(null=True, blank=True)
    coverage_65 = models.FloatField(null=True, blank=True)
    coverage_80 = models.FloatField(null=True, blank=True)
    coverage_95 = models.FloatField(null=True, blank=True)
    trend = models.CharField(max_length=12)
    trend_slope = models.FloatField(default=0)
    history_months = models.PositiveSmallIntegerField()
    currency = models.CharField(max_length=3)
    generated_at = models.DateTimeField()
    expires_at = models.DateTimeField()

    class Meta:
        ordering = ["service", "month"]
        constraints = [
            models.UniqueConstraint(fields=["run", "service", "month"], name="cost_forecast_one_per_month"),
        ]
        indexes = [models.Index(fields=["organization", "month"], name="cost_forecast_month_idx")]

    def __str__(self) -> str:
        return f"{self.service or 'Total'} {self.month:%Y-%m}: {self.mean}"

    def bounds(self, level: int) -> tuple:
        return getattr(self, f"lower_{level}"), getattr(self, f"upper_{level}")

    def coverage(self, level: int) -> float | None:
        return getattr(self, f"coverage_{level}")


class CostAnomaly(TenantModel):
    """A day or month of a service whose spend rose above its expected band."""

    class Granularity(models.TextChoices):
        DAILY = "daily", "Day"
        MONTHLY = "monthly", "Month"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    service = models.CharField(max_length=SERVICE_MAX)
    granularity = models.CharField(max_length=10, choices=Granularity.choices)
    date = models.DateField(help_text="The day, or the first day of the month")
    actual = models.DecimalField(**MONEY)
    expected = models.DecimalField(**MONEY)
    lower = models.DecimalField(**MONEY)
    upper = models.DecimalField(**MONEY)
    level = models.PositiveSmallIntegerField()
    impact = models.DecimalField(**MONEY, help_text="actual - expected")
    impact_percent = models.FloatField()
    currency = models.CharField(max_length=3)
    model = models.CharField(max_length=160, blank=True)
    detected_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-date", "service"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "service", "granularity", "date"], name="cost_anomaly_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.service} {self.date} +{self.impact} {self.currency}"


class Budget(TenantModel):
    """A monthly spending limit for the total (service "") or one service, with alert thresholds."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    service = models.CharField(max_length=SERVICE_MAX, blank=True, help_text="Empty: total spend")
    amount = models.DecimalField(max_digits=16, decimal_places=2)
    currency = models.CharField(max_length=3)
    thresholds = ArrayField(models.PositiveSmallIntegerField(), default=list, help_text="Percent of the amount")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["service"]
        constraints = [models.UniqueConstraint(fields=["organization", "service"], name="budget_one_per_scope")]

    def __str__(self) -> str:
        return f"{self.service or 'Total'}: {self.amount} {self.currency}/month"

    @property
    def scope(self) -> str:
        return self.service or "Total spend"


class BudgetAlert(TenantModel):
    """Spend reached a threshold of a budget in a month, on actual or forecast basis: recorded once."""

    class Basis(models.TextChoices):
        ACTUAL = "actual", "Actual month-to-date"
        FORECAST = "forecast", "Forecast month-end"

    budget = models.ForeignKey(Budget, on_delete=models.CASCADE, related_name="alerts")
    threshold = models.PositiveSmallIntegerField()
    basis = models.CharField(max_length=10, choices=Basis.choices)
    month = models.DateField()
    amount = models.DecimalField(max_digits=18, decimal_places=2)
    budget_amount = models.DecimalField(max_digits=16, decimal_places=2)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-month", "threshold"]
        constraints = [
            models.UniqueConstraint(fields=["budget", "threshold", "basis", "month"], name="budget_alert_once"),
        ]

    def __str__(self) -> str:
        return f"{self.budget} {self.threshold} % {self.basis} {self.month:%Y-%m}"
