"""Cost pages: thin views over forecasting.selectors and forecasting.services.

Every page works without JavaScript. With htmx, the horizon/band/service toggles swap the results
region only, a forecast still being computed polls its region until the worker has stored it, an
import in a worker polls its progress bar, and budget changes swap the budget card.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from forecasting import conf, exports, selectors, services
from forecasting.engine import ALLOWED_HORIZONS, ALLOWED_LEVELS
from forecasting.forms import BudgetForm, BudgetUpdateForm, CostUploadForm, ForecastViewForm
from forecasting.models import CostImport
from portal.forms import form_add_service_errors
from portal.tenancy import organization_admin_required, organization_required

RECENT_IMPORTS = 20
RESULTS_CACHE_SECONDS = 3600
# Room for the multipart envelope around the file itself.
UPLOAD_OVERHEAD = 64 * 1024


def _query(horizon: int, level: int, service: str, **extra: Any) -> str:
    params: dict[str, Any] = {"horizon": horizon, "level": level}
    if service:
        params["service"] = service
    return urlencode({**params, **extra})


def _ensure_run(request: HttpRequest, page: selectors.ForecastPage) -> selectors.ForecastPage:
    """Ask a worker for the forecast when the cache is missing or stale (never compute here)."""
    state = page.state
    if not state.has_data or state.current:
        return page
    if state.active is not None and not state.active_is_stale:
        return page
    failed_on_this_data = state.failed is not None and state.failed.data_version >= state.dataset.version
    if failed_on_this_data and state.active is None:
        return page  # show the error and a "try again" button rather than retrying on every view
    run = services.forecast_run_request(organization=request.organization, reason="page")
    if run is not None:
        page.state = replace(state, active=run, failed=None)
    return page


def _results_context(request: HttpRequest, page: selectors.ForecastPage) -> dict[str, Any]:
    base = reverse("forecasting:overview")

    def link(**changes: Any) -> str:
        values = {"horizon": page.horizon, "level": page.level, "service": page.service, **changes}
        return f"{base}?{_query(values['horizon'], values['level'], values['service'])}"

    polling = page.state.has_data and not page.ready and page.state.active is not None
    history = sorted(page.history.series.get(page.service, {}).items())[-24:]
    forecast_by_month = {p.month: p for p in page.points}
    table_months = [m for m, _ in history] + [p.month for p in page.points]
    return {
        "page": page,
        "polling": polling,
        "failed": page.state.failed if not page.ready and not polling else None,
        "chart": exports.page_chart(page) if (history or page.points) else "",
        "horizon_links": [
            {"label": f"{h} months", "url": link(horizon=h), "current": h == page.horizon} for h in ALLOWED_HORIZONS
        ],
        "level_links": [
            {"label": f"{lv} %", "url": link(level=lv), "current": lv == page.level} for lv in ALLOWED_LEVELS
        ],
        "results_url": link(),
        "total_url": link(service=""),
        "breakdown_rows": [{"row": row, "url": link(service=row.service)} for row in page.breakdown],
        "table_rows": [
            {
                "month": month,
                "actual": dict(history).get(month),
                "forecast": forecast_by_month.get(month),
                "bounds": forecast_by_month[month].bounds(page.level) if month in forecast_by_month else None,
            }
            for month in table_months
        ],
        "coverage": page.summary.coverage.get(page.level) if page.summary else None,
        "export_query": _query(page.horizon, page.level, page.service),
    }


def _budget_context(
    request: HttpRequest, state: selectors.ForecastState, services_list: list[str], form: BudgetForm | None = None
) -> dict[str, Any]:
    is_admin = request.membership.is_admin
    statuses = selectors.budget_statuses(organization=request.organization, state=state)
    budgeted = {s.budget.service for s in statuses}
    available = [s for s in services_list if s not in budgeted]
    fields_html = ""
    if form is None and is_admin:
        form = BudgetForm(
            services=available, initial={"thresholds": ", ".join(map(str, conf.default_budget_thresholds()))}
        )
        form.fields["service"].choices = [c for c in form.fields["service"].choices if c[0] not in budgeted]
        fields_html = _blank_budget_fields(form)
    return {
        "budget_statuses": statuses,
        "budget_form": form,
        "budget_fields_html": fields_html,
        "is_admin": is_admin,
        "can_add_budget": is_admin and (len(available) > 0 or "" not in budgeted),
        "currency": state.dataset.currency if state.dataset else "",
    }


def _blank_budget_fields(form: BudgetForm) -> str:
    """The unbound budget form's fields, rendered once per set of choices and cached (Django's widget templates
    cost a few ms per page; the fields hold no per-user data, the CSRF token is outside them)."""
    choices = "\n".join(f"{value}\t{label}" for value, label in form.fields["service"].choices)
    digest = hashlib.sha256(f"{choices}\n{form.initial.get('thresholds', '')}".encode()).hexdigest()[:32]
    key = f"forecasting:budget-fields:v1:{digest}"
    html = cache.get(key)
    if html is None:
        html = render_to_string("forecasting/overview.html#budget-fields", {"budget_form": form})
        cache.set(key, html, timeout=RESULTS_CACHE_SECONDS)
    return mark_safe(html)  # noqa: S308 - rendered by our own template with autoescaping


def _service_names(request: HttpRequest, state: selectors.ForecastState) -> list[str]:
    """The organization's service names, cached per data version (a new import is a new key)."""
    if state.dataset is None:
        return selectors.service_names(organization=request.organization)
    dataset = state.dataset
    key = f"forecasting:services:v1:{dataset.organization_id}:{dataset.pk}:{dataset.version}:{dataset.updated_at.timestamp()}"
    names = cache.get(key)
    if names is None:
        names = selectors.service_names(organization=request.organization)
        cache.set(key, names, timeout=RESULTS_CACHE_SECONDS)
    return names


def _results_html(
    request: HttpRequest,
    form: ForecastViewForm,
    *,
    horizon: int,
    level: int,
    service: str,
    state: selectors.ForecastState,
) -> str:
    """The results region, from the cache while the forecast it shows is current.

    The key names the run, the data version and the anomalies' stamp (``CostDataset.updated_at``), so a new
    forecast, an import or a newly found anomaly is a different key, never a stale fragment. Only ready
    results are cached: the "computing" and "failed" states are rendered every time.
    """
    key = selectors.results_cache_key(state=state, horizon=horizon, level=level, service=service)
    if key is not None and not form.errors:
        cached = cache.get(key)
        if cached is not None:
            return cached
    page = selectors.forecast_page(
        organization=request.organization, service=service, horizon=horizon, level=level, state=state
    )
    page = _ensure_run(request, page)
    html = render_to_string(
        "forecasting/overview.html#forecast-results", {"form": form, **_results_context(request, page)}, request=request
    )
    if key is not None and page.ready and not form.errors:
        cache.set(key, html, timeout=RESULTS_CACHE_SECONDS)
    return html


def _overview_context(request: HttpRequest, state: selectors.ForecastState, results_html: str, **extra: Any) -> dict:
    context = {"has_data": state.has_data, "results_html": results_html}
    names = _service_names(request, state) if state.has_data else []
    context.update(_budget_context(request, state, names, extra.pop("budget_form", None)))
    context.update(extra)
    return context


@organization_required
@require_GET
def overview(request: HttpRequest) -> HttpResponse:
    form = ForecastViewForm(request.GET or None)
    invalid = form.is_bound and not form.is_valid()
    horizon, level, service = form.values()
    state = selectors.forecast_state(organization=request.organization)
    html = (
        _results_html(request, form, horizon=horizon, level=level, service=service, state=state)
        if state.has_data
        else ""
    )
    status = 400 if invalid else 200
    if request.htmx and request.htmx.target == "forecast-results":
        return HttpResponse(html, status=status)
    return render(request, "forecasting/overview.html", _overview_context(request, state, html), status=status)


@organization_required
@require_GET
def recommendation_list(request: HttpRequest) -> HttpResponse:
    """Cost-saving advice: its own page, and lazily loaded into the overview (it reads utilisation too)."""
    advice = selectors.recommendation_list(organization=request.organization)
    template = (
        "forecasting/recommendations.html#recommendation-list" if request.htmx else "forecasting/recommendations.html"
    )
    return render(request, template, {"recommendations": advice})


@organization_required
@require_POST
def forecast_refresh(request: HttpRequest) -> HttpResponse:
    run = services.forecast_run_request(organization=request.organization, reason="page")
    if run is None:
        messages.error(request, "There is no cost data to forecast yet.")
    url = reverse("forecasting:overview")
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


# --- Budgets ----------------------------------------------------------------------------------


def _budget_response(request: HttpRequest, form: BudgetForm | None = None, status: int = 200) -> HttpResponse:
    state = selectors.forecast_state(organization=request.organization)
    names = selectors.service_names(organization=request.organization)
    if request.htmx:
        return render(
            request,
            "forecasting/overview.html#budget-section",
            _budget_context(request, state, names, form),
            status=status,
        )
    if status >= 400:
        form_view = ForecastViewForm()
        horizon, level, service = form_view.values()
        html = _results_html(request, form_view, horizon=horizon, level=level, service=service, state=state)
        return render(
            request,
            "forecasting/overview.html",
            _overview_context(request, state, html, budget_form=form),
            status=status,
        )
    return redirect(reverse("forecasting:overview") + "#budgets")


@organization_admin_required
@require_POST
def budget_create(request: HttpRequest) -> HttpResponse:
    form = BudgetForm(request.POST, services=selectors.service_names(organization=request.organization))
    if form.is_valid():
        try:
            budget = services.budget_create(
                organization=request.organization,
                actor=request.user,
                service=form.cleaned_data["service"],
                amount=form.cleaned_data["amount"],
                thresholds=form.cleaned_data["thresholds"],
            )
        except ValidationError as exc:
            form_add_service_errors(form, exc)
        else:
            messages.success(request, f"Budget for {budget.scope} saved.")
            return _budget_response(request)
    return _budget_response(request, form, status=400)


@organization_admin_required
@require_POST
def budget_update(request: HttpRequest, public_id: Any) -> HttpResponse:
    budget = selectors.budget_get(organization=request.organization, public_id=public_id)
    form = BudgetUpdateForm(request.POST)
    try:
        if not form.is_valid():
            raise ValidationError([f"{form.fields[f].label}: {e}" for f, errors in form.errors.items() for e in errors])
        services.budget_update(
            budget=budget,
            actor=request.user,
            amount=form.cleaned_data["amount"],
            thresholds=form.cleaned_data["thresholds"],
        )
    except ValidationError as exc:
        for message in exc.messages:
            messages.error(request, f"{budget.scope}: {message}")
        return _budget_response(request, status=400)
    messages.success(request, f"Budget for {budget.scope} updated.")
    return _budget_response(request)


@organization_admin_required
@require_POST
def budget_delete(request: HttpRequest, public_id: Any) -> HttpResponse:
    budget = selectors.budget_get(organization=request.organization, public_id=public_id)
    scope = budget.scope
    services.budget_delete(budget=budget, actor=request.user)
    messages.success(request, f"Budget for {scope} removed.")
    return _budget_response(request)


# --- Imports ----------------------------------------------------------------------------------


def _declared_size(request: HttpRequest) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


@organization_required
@require_http_methods(["GET", "POST"])
def cost_import(request: HttpRequest) -> HttpResponse:
    form = CostUploadForm()
    failed = None
    status = 200
    if request.method == "POST":
        if _declared_size(request) > conf.import_max_bytes() + UPLOAD_OVERHEAD:
            # Refused before Django reads (and stores) the body.
            form = CostUploadForm(data={})
            form.errors.clear()
            try:
                services.cost_import_check_size(size=_declared_size(request))
            except ValidationError as exc:
                form_add_service_errors(form, exc)
            status = 400
        else:
            form = CostUploadForm(request.POST, request.FILES)
            if form.is_valid():
                upload = form.cleaned_data["file"]
                try:
                    result = services.cost_import_submit(
                        organization=request.organization,
                        user=request.user,
                        file=upload,
                        filename=upload.name,
                        size=upload.size,
                        source=CostImport.Source.UPLOAD,
                    )
                except ValidationError as exc:
                    form_add_service_errors(form, exc)
                else:
                    if result.status == CostImport.Status.FAILED:
                        failed = result
                    else:
                        if result.status == CostImport.Status.SUCCEEDED:
                            messages.success(request, f"{result.filename} imported: {result.rows_written} rows.")
                        return redirect("forecasting:import_detail", result.public_id)
            status = 400
    imports = list(selectors.cost_import_list(organization=request.organization)[:RECENT_IMPORTS])
    context = {"form": form, "failed": failed, "imports": imports, "max_bytes": conf.import_max_bytes()}
    return render(request, "forecasting/import.html", context, status=status)


@organization_required
@require_GET
def import_detail(request: HttpRequest, public_id: Any) -> HttpResponse:
    cost_import = selectors.cost_import_get(organization=request.organization, public_id=public_id)
    template = "forecasting/import_detail.html#import-status" if request.htmx else "forecasting/import_detail.html"
    return render(request, template, {"cost_import": cost_import})


# --- Exports ----------------------------------------------------------------------------------

EXPORT_TYPES = {"csv": "text/csv; charset=utf-8", "json": "application/json", "pdf": "application/pdf"}


def export_response(page: selectors.ForecastPage, *, organization: Any, fmt: str) -> HttpResponse:
    import json

    now = timezone.now()
    if fmt == "csv":
        body: str | bytes = exports.export_csv(page)
    elif fmt == "json":
        body = json.dumps(exports.export_data(page, organization=organization), indent=2)
    else:
        body = exports.export_pdf(page, organization=organization, generated=now)
    response = HttpResponse(body, content_type=EXPORT_TYPES[fmt])
    scope = "total" if not page.service else "service"
    response["Content-Disposition"] = (
        f'attachment; filename="cost-forecast-{organization.slug}-{scope}-{now:%Y%m%d}.{fmt}"'
    )
    response["Cache-Control"] = "private, no-store"
    return response


@organization_required
@require_GET
def export(request: HttpRequest, fmt: str) -> HttpResponse:
    if fmt not in EXPORT_TYPES:
        raise Http404("Unknown export format.")
    form = ForecastViewForm(request.GET or None)
    if form.is_bound and not form.is_valid():
        messages.error(request, "Choose a valid horizon and band for the export.")
        return redirect("forecasting:overview")
    horizon, level, service = form.values()
    page = selectors.forecast_page(
        organization=request.organization, service=service, horizon=horizon, level=level, all_points=True
    )
    if not page.ready:
        _ensure_run(request, page)
        messages.info(request, "The forecast is still being computed; export again in a moment.")
        return redirect(reverse("forecasting:overview") + "?" + _query(horizon, level, service))
    return export_response(page, organization=request.organization, fmt=fmt)
