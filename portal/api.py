"""The core's REST API: one view per operation, each with its own input and output serializers."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.pagination import BasePagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from portal import events, selectors, services
from portal.authentication import ServiceTokenAuthentication
from portal.pagination import PagePagination
from portal.permissions import IsServiceToken
from portal.throttling import ServiceRateThrottle


def paginated_response(
    request: Request, view: APIView, queryset: QuerySet, serializer_class: type, context: dict | None = None
) -> Response:
    """The one way lists are answered: a page of ``queryset`` through ``serializer_class``.

    The page comes from the view's ``pagination_class``, the same attribute drf-spectacular reads
    to document the ``{count, next, previous, results}`` envelope and the ``page``/``page_size``
    parameters: a list view that forgot it would be documented as a bare array, so it is an error.
    """
    pagination_class = getattr(view, "pagination_class", None)
    if pagination_class is None:
        raise ImproperlyConfigured(f"{type(view).__name__} answers a page: set pagination_class = PagePagination.")
    paginator: BasePagination = pagination_class()
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(serializer_class(page, many=True, context=context or {}).data)


def reject_unknown_fields(data: Any, allowed: set[str]) -> None:
    """400 for a body that is not a JSON object or names fields the operation does not take.

    A typo in a field name must be an error, not a silently ignored change.
    """
    if not isinstance(data, dict):
        raise serializers.ValidationError({"non_field_errors": ["Send a JSON object."]})
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})


class StrictCharField(serializers.CharField):
    """A CharField that takes only JSON strings: DRF's own turns 12 or true into "12" and "True"."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


# --- Me ---------------------------------------------------------------------------------------


class OrganizationOutput(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    name = serializers.CharField()
    slug = serializers.CharField()


class MeApi(APIView):
    class MeOutput(serializers.Serializer):
        id = serializers.IntegerField()
        username = serializers.CharField()
        email = serializers.EmailField()
        name = serializers.CharField(source="get_full_name")
        organization = OrganizationOutput()
        role = serializers.CharField()

    @extend_schema(responses=MeOutput, summary="The caller and the organization the request acts in")
    def get(self, request: Request) -> Response:
        user = request.user
        data = {
            "id": user.pk,
            "username": user.get_username(),
            "email": user.email,
            "get_full_name": user.get_full_name(),
            "organization": request.organization,
            "role": request.membership.role,
        }
        return Response(self.MeOutput(data).data)


# --- Members ----------------------------------------------------------------------------------


class MemberListApi(APIView):
    pagination_class = PagePagination

    class MemberOutput(serializers.Serializer):
        id = serializers.IntegerField()
        email = serializers.EmailField(source="user.email")
        name = serializers.CharField(source="user.get_full_name")
        role = serializers.CharField()
        joined = serializers.DateTimeField(source="created_at")

    @extend_schema(responses=MemberOutput(many=True), summary="Members of the organization")
    def get(self, request: Request) -> Response:
        queryset = selectors.membership_list(organization=request.organization)
        return paginated_response(request, self, queryset, self.MemberOutput)


# --- API tokens -------------------------------------------------------------------------------


class ApiTokenOutput(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    name = serializers.CharField()
    prefix = serializers.CharField()
    created = serializers.DateTimeField(source="created_at")
    last_used = serializers.DateTimeField(source="last_used_at", allow_null=True)


class ApiTokenListCreateApi(APIView):
    pagination_class = PagePagination

    class ApiTokenCreateInput(serializers.Serializer):
        name = StrictCharField(max_length=100)

    class ApiTokenCreatedOutput(ApiTokenOutput):
        key = serializers.CharField(help_text="Shown once: store it now, it cannot be retrieved again.")

    @extend_schema(responses=ApiTokenOutput(many=True), summary="Your API tokens in this organization")
    def get(self, request: Request) -> Response:
        return paginated_response(
            request, self, selectors.api_token_list(membership=request.membership), ApiTokenOutput
        )

    @extend_schema(
        request=ApiTokenCreateInput,
        responses={201: ApiTokenCreatedOutput},
        summary="Create an API token (key shown once)",
    )
    def post(self, request: Request) -> Response:
        reject_unknown_fields(request.data, {"name"})
        serializer = self.ApiTokenCreateInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        token, key = services.api_token_create(membership=request.membership, **serializer.validated_data)
        token.key = key
        # The key is shown once: no cache (browser, proxy) may keep a copy of it.
        return Response(
            self.ApiTokenCreatedOutput(token).data,
            status=status.HTTP_201_CREATED,
            headers={"Cache-Control": "no-store"},
        )


class ApiTokenRevokeApi(APIView):
    @extend_schema(responses={204: None}, summary="Revoke one of your API tokens")
    def delete(self, request: Request, token_id: Any) -> Response:
        services.api_token_revoke(membership=request.membership, public_id=token_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Events -----------------------------------------------------------------------------------


class EventOutput(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    type = serializers.CharField()
    data = serializers.JSONField(source="payload")
    created = serializers.DateTimeField(source="created_at")


class EventsApi(APIView):
    """GET: the organization's activity (members). POST: platform events (service tokens only).

    Platform events (metrics, compliance, invoices) come from systems outside the portal and
    are validated against the catalog, stored and dispatched like any other event.
    """

    authentication_classes = [ServiceTokenAuthentication, *api_settings.DEFAULT_AUTHENTICATION_CLASSES]
    pagination_class = PagePagination

    class EventIngestInput(serializers.Serializer):
        type = serializers.CharField(
            max_length=64, help_text="metrics.updated, compliance.updated, invoice.created or notice.published"
        )
        organization = serializers.SlugField(help_text="The organization's slug.")
        data = serializers.JSONField()

    def get_permissions(self) -> list:
        if self.request.method == "POST":
            return [IsServiceToken()]
        return super().get_permissions()

    def get_throttles(self) -> list:
        if self.request.method == "POST":
            return [ServiceRateThrottle()]
        return super().get_throttles()

    @extend_schema(responses=EventOutput(many=True), summary="The organization's activity, newest first")
    def get(self, request: Request) -> Response:
        types = [t for t in request.query_params.getlist("type") if t]
        for event_type in types:
            if event_type not in events.CATALOG:
                raise serializers.ValidationError({"type": [f"Unknown event type {event_type!r}."]})
        queryset = selectors.event_list(organization=request.organization, types=types)
        return paginated_response(request, self, queryset, EventOutput)

    @extend_schema(
        request=EventIngestInput,
        responses={201: EventOutput},
        summary="Submit a platform event (service token)",
        auth=[{"ServiceToken": []}],
    )
    def post(self, request: Request) -> Response:
        if not isinstance(request.data, dict):
            raise serializers.ValidationError({"non_field_errors": ["Send a JSON object."]})
        serializer = self.EventIngestInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        event = services.platform_event_ingest(
            service_token=request.auth,
            event_type=serializer.validated_data["type"],
            organization_slug=serializer.validated_data["organization"],
            data=serializer.validated_data["data"],
        )
        return Response(EventOutput(event).data, status=status.HTTP_201_CREATED)
