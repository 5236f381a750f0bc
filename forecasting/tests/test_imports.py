"""Imports end to end: upload page, service, worker path, the import_costs command; idempotency and rejection."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from forecasting import services
from forecasting.models import CostDataset, CostImport, CostRecord, ForecastRun, ResourceUtilization
from forecasting.tests.conftest import SAMPLES
from portal.models import Event

pytestmark = pytest.mark.django_db

FOCUS = (SAMPLES / "focus_1_0.csv").read_bytes()
CUR = (SAMPLES / "aws_cur.csv").read_bytes()
UTILIZATION = (SAMPLES / "utilization.csv").read_bytes()
BAD = (
    b"ChargePeriodStart,ServiceName,BilledCost,BillingCurrency,ChargeCategory\n"
    b"2025-01-01,Compute,10,USD,Usage\n"
    b"2025-01-02,Compute,ten,USD,Usage\n"
    b"2025-01-03,Compute,-4,USD,Usage\n"
)


def submit(organization, data: bytes, name: str = "costs.csv", **kwargs):
    return services.cost_import_submit(
        organization=organization, user=None, file=io.BytesIO(data), filename=name, size=len(data), **kwargs
    )


def snapshot(organization):
    return sorted(
        CostRecord.objects.for_organization(organization).values_list("date", "service", "account", "region", "amount")
    )


# --- Service --------------------------------------------------------------------------------------


def test_focus_import_writes_daily_rows_and_versions_the_dataset(organization, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        result = submit(organization, FOCUS)
    assert result.status == "succeeded" and result.format == "focus" and result.rows_written == 4
    assert CostRecord.objects.for_organization(organization).count() == 4
    dataset = CostDataset.objects.get(organization=organization)
    assert (dataset.currency, dataset.version, str(dataset.first_date), str(dataset.last_date)) == (
        "USD",
        1,
        "2025-01-01",
        "2025-01-02",
    )
    assert len(callbacks) == 1  # forecasts and anomaly checks, after commit


def test_reimporting_the_same_file_changes_nothing(organization):
    submit(organization, FOCUS)
    before = snapshot(organization)
    again = submit(organization, FOCUS)
    assert again.status == "succeeded"
    assert snapshot(organization) == before
    assert CostRecord.objects.for_organization(organization).count() == 4


def test_a_corrected_file_replaces_the_amounts_under_the_same_key(organization):
    submit(organization, FOCUS)
    corrected = FOCUS.replace(b"\n,3.20,", b"\n,4.80,")
    submit(organization, corrected)
    row = CostRecord.objects.for_organization(organization).get(service="Amazon Simple Storage Service")
    assert row.amount == Decimal("4.8")


def test_cur_and_focus_files_both_land_in_the_same_table(organization):
    submit(organization, FOCUS)
    submit(organization, CUR, name="cur.csv")
    assert set(CostRecord.objects.for_organization(organization).values_list("service", flat=True)) >= {
        "AmazonEC2",
        "Amazon Elastic Compute Cloud",
    }


def test_a_file_with_bad_rows_is_rejected_whole_with_a_report(organization):
    submit(organization, FOCUS)
    before = snapshot(organization)
    result = submit(organization, BAD)
    assert result.status == "failed" and result.error_count == 2
    assert [(e["line"], e["message"]) for e in result.errors] == [
        (3, "BilledCost 'ten' is not a number"),
        (4, "negative amount -4 on a Usage line (only credits, refunds and discounts can be negative)"),
    ]
    assert snapshot(organization) == before  # the good first row was not written either
    assert not CostImport.objects.filter(status="failed").exists()  # rejected on the spot: nothing left behind


def test_a_file_in_another_currency_is_refused(organization):
    submit(organization, FOCUS)
    euros = FOCUS.replace(b",USD,", b",EUR,")
    result = submit(organization, euros)
    assert result.status == "failed"
    assert "costs are in USD and the file is in EUR" in result.errors[0]["message"]
    assert CostRecord.objects.filter(currency="EUR").count() == 0


@pytest.mark.parametrize(("size", "message"), [(0, r"empty \(0 bytes\)"), (10**12, "the limit is")])
def test_empty_and_huge_files_are_refused_before_reading(organization, size, message):
    with pytest.raises(ValidationError, match=message):
        services.cost_import_submit(
            organization=organization, user=None, file=io.BytesIO(b""), filename="x.csv", size=size
        )
    assert not CostImport.objects.exists()


def test_utilisation_rows_are_upserted_without_touching_the_cost_version(organization):
    submit(organization, FOCUS)
    result = submit(organization, UTILIZATION, name="util.csv")
    assert result.status == "succeeded" and result.format == "utilization"
    submit(organization, UTILIZATION, name="util.csv")
    assert ResourceUtilization.objects.for_organization(organization).count() == 3
    assert CostDataset.objects.get(organization=organization).version == 1


def test_large_files_go_to_a_worker_with_progress(organization, settings, django_capture_on_commit_callbacks):
    settings.FORECAST_IMPORT_INLINE_MAX_BYTES = 100
    with django_capture_on_commit_callbacks(execute=True):
        pending = submit(organization, FOCUS)
        assert pending.status == "pending" and pending.file  # stored for the worker
    pending.refresh_from_db()
    assert pending.status == "succeeded" and pending.progress_percent == 100
    assert not pending.file  # deleted once imported
    assert CostRecord.objects.for_organization(organization).count() == 4


def test_a_worker_rejection_keeps_its_report_for_the_import_page(
    organization, settings, django_capture_on_commit_callbacks
):
    settings.FORECAST_IMPORT_INLINE_MAX_BYTES = 10
    with django_capture_on_commit_callbacks(execute=True):
        pending = submit(organization, BAD)
    pending.refresh_from_db()
    assert pending.status == "failed" and pending.error_count == 2 and not pending.file


def test_the_worker_task_is_idempotent(organization, settings, django_capture_on_commit_callbacks):
    settings.FORECAST_IMPORT_INLINE_MAX_BYTES = 10
    with django_capture_on_commit_callbacks(execute=True):
        pending = submit(organization, FOCUS)
    assert services.cost_import_run(cost_import_id=pending.pk) is None  # already done: no-op
    assert services.cost_import_run(cost_import_id=999_999) is None


def test_after_commit_the_import_requests_a_forecast_run(organization, django_capture_on_commit_callbacks, monkeypatch):
    executed = []
    monkeypatch.setattr(services, "forecast_run_execute", lambda *, run_id: executed.append(run_id))
    monkeypatch.setattr(services, "anomalies_detect", lambda **kwargs: [])
    with django_capture_on_commit_callbacks(execute=True):
        submit(organization, FOCUS)
    run = ForecastRun.objects.get(organization=organization)
    assert run.reason == "import" and executed == [run.pk]


# --- Upload page --------------------------------------------------------------------------------


def test_upload_page_imports_a_small_file_and_shows_the_result(member_client, organization):
    response = member_client.post(
        reverse("forecasting:import"), {"file": SimpleUploadedFile("focus.csv", FOCUS, content_type="text/csv")}
    )
    cost_import = CostImport.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("forecasting:import_detail", args=[cost_import.public_id])
    page = member_client.get(response["Location"]).content.decode()
    assert "Imported 4 rows" in page


def test_upload_page_shows_the_rejection_report_and_writes_nothing(member_client, organization):
    response = member_client.post(
        reverse("forecasting:import"), {"file": SimpleUploadedFile("bad.csv", BAD, content_type="text/csv")}
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "bad.csv was not imported" in page
    assert "Line 3:" in page and "is not a number" in page and "Line 4:" in page
    assert not CostRecord.objects.exists() and not CostImport.objects.exists()


@pytest.mark.parametrize(
    ("upload", "message"),
    [
        (SimpleUploadedFile("empty.csv", b"", content_type="text/csv"), "The file is empty"),
        (SimpleUploadedFile("notes.txt", b"hello,world\n1,2\n", content_type="text/plain"), "Unrecognised file"),
    ],
)
def test_upload_page_form_errors(member_client, upload, message):
    response = member_client.post(reverse("forecasting:import"), {"file": upload})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not CostRecord.objects.exists()


def test_upload_page_refuses_a_huge_body_before_reading_it(member_client, settings):
    settings.FORECAST_IMPORT_MAX_BYTES = 1000
    response = member_client.post(
        reverse("forecasting:import"),
        {"file": SimpleUploadedFile("big.csv", b"x" * 200_000, content_type="text/csv")},
    )
    assert response.status_code == 400
    assert "the limit is 1000" in response.content.decode()
    assert not CostImport.objects.exists()


def test_upload_page_without_a_file_is_a_form_error(member_client):
    response = member_client.post(reverse("forecasting:import"), {})
    assert response.status_code == 400 and "This field is required" in response.content.decode()


def test_import_detail_polls_while_the_worker_runs(member_client, organization):
    cost_import = CostImport.objects.create(
        organization=organization, filename="big.csv", size_bytes=1000, bytes_processed=400, status="running"
    )
    url = reverse("forecasting:import_detail", args=[cost_import.public_id])
    partial = member_client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in partial and 'hx-trigger="every 1s"' in partial and 'value="40"' in partial
    cost_import.status = "succeeded"
    cost_import.save(update_fields=["status"])
    partial = member_client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert "hx-trigger" not in partial and "Imported" in partial


def test_recent_imports_list_costs_a_fixed_number_of_queries(
    member_client, organization, django_assert_max_num_queries
):
    for i in range(25):
        CostImport.objects.create(organization=organization, filename=f"f{i}.csv", size_bytes=10, status="succeeded")
    with django_assert_max_num_queries(10):
        response = member_client.get(reverse("forecasting:import"))
    assert response.content.decode().count("f1") >= 10


# --- Command ------------------------------------------------------------------------------------


def test_import_costs_command_imports_with_a_progress_bar(organization, tmp_path):
    path = tmp_path / "cur.csv"
    path.write_bytes(CUR)
    out, err = io.StringIO(), io.StringIO()
    call_command("import_costs", str(path), "--org", "acme", stdout=out, stderr=err)
    assert "Imported cur.csv (aws_cur) into acme: 4 rows from 6 lines" in out.getvalue()
    assert "100 %" in err.getvalue()
    assert CostRecord.objects.for_organization(organization).count() == 4
    assert CostImport.objects.get().source == "command"


def test_import_costs_command_reports_every_bad_line_and_exits_2(organization, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_bytes(BAD)
    err = io.StringIO()
    with pytest.raises(CommandError) as excinfo:
        call_command("import_costs", str(path), "--org", "acme", "--no-progress", stderr=err)
    assert excinfo.value.returncode == 2
    assert "2 problems; nothing was imported" in str(excinfo.value)
    assert "line 3: BilledCost 'ten' is not a number" in err.getvalue()
    assert not CostRecord.objects.exists()


@pytest.mark.parametrize(
    ("args", "message"), [(["--org", "nope"], "No organization"), (["--org", "acme"], "File not found")]
)
def test_import_costs_command_argument_errors(organization, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("import_costs", "/nonexistent.csv", *args)


def test_no_event_is_published_by_an_import_without_budgets(organization):
    submit(organization, FOCUS)
    assert not Event.objects.exists()
