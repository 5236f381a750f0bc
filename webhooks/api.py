"""Webhooks REST API: one view per operation, input and output serializers, the pages' services.

Members read; organization admins change things (403 otherwise). Serializer names start with
``Webhook`` so they stay unique in the OpenAPI schema.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.api import paginated_response, reject_unknown_fields
from portal.pagination import PagePagination
from webhooks import selectors, services
from webhooks.models import DESCRIPTION_MAX, DeliveryState, Endpoint
from webhooks.ssrf import MAX_URL_LENGTH


def _require_admin(request: Request) -> None:
    if not request.membership.is_admin:
        raise PermissionDenied("Only organization admins can manage webhook endpoints.")


def _endpoint(request: Request, public_id: Any) -> Endpoint:
    return selectors.endpoint_get(organization=request.organization, public_id=public_id)


def _datetime_param(request: Request, name: str) -> datetime | None:
    raw = request.query_params.get(name, "").strip()
    if not raw:
        return None
    try:
        return serializers.DateTimeField().to_internal_value(raw)
    except serializers.ValidationError as exc:
        raise serializers.ValidationError({name: exc.detail}) from None


# --- Output serializers ---------------------------------------------------------------------------


class WebhookEndpointHealthOutput(serializers.Serializer):
    attempts_24h = serializers.IntegerField()
    successes_24h = serializers.IntegerField()
    success_rate = serializers.FloatField(allow_null=True, help_text="Percent of attempts in the last 24 h")
    last_attempt_at = serializers.DateTimeField(allow_null=True)
    last_success_at = serializers.DateTimeField(allow_null=True)
    failing_since = serializers.DateTimeField(allow_null=True)


class WebhookEndpointOutput(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    url = serializers.CharField()
    description = serializers.CharField()
    all_events = serializers.BooleanField()
    event_types = serializers.ListField(child=serializers.CharField())
    enabled = serializers.BooleanField()
    disabled_reason = serializers.CharField()
    disabled_at = serializers.DateTimeField(allow_null=True)
    secret_rotated_at = serializers.DateTimeField(allow_null=True)
    previous_secret_expires_at = serializers.DateTimeField(
        allow_null=True, help_text="While in the future, the previous secret also signs deliveries."
    )
    created = serializers.DateTimeField(source="created_at")
    updated = serializers.DateTimeField(source="updated_at")
    health = serializers.SerializerMethodField()

    @extend_schema_field(WebhookEndpointHealthOutput)
    def get_health(self, endpoint: Endpoint) -> dict[str, Any]:
        if hasattr(endpoint, "attempts_24h"):
            counts = {"attempts_24h": endpoint.attempts_24h, "successes_24h": endpoint.successes_24h}
        else:
            counts = selectors.endpoint_health(endpoint=endpoint)
        return WebhookEndpointHealthOutput(
            {
                **counts,
                "success_rate": selectors.success_rate(
                    attempts=counts["attempts_24h"], successes=counts["successes_24h"]
                ),
                "last_attempt_at": endpoint.last_attempt_at,
                "last_success_at": endpoint.last_success_at,
                "failing_since": endpoint.failing_since,
            }
        ).data


class WebhookSecretOutput(serializers.Serializer):
    secret = serializers.CharField(help_text="whsec_… (Standard Webhooks format)")
    previous_secret_expires_at = serializers.DateTimeField(allow_null=True)


class WebhookDeliveryOutput(serializers.Serializer):
    message = serializers.CharField(source="message.msg_id", help_text="The webhook-id header of every attempt")
    endpoint = serializers.UUIDField(source="endpoint.public_id")
    event_type = serializers.CharField()
    created = serializers.DateTimeField(source="created_at")
    status = serializers.ChoiceField(source="state", choices=DeliveryState.choices)
    attempts = serializers.IntegerField(source="attempt_count")
    next_attempt_at = serializers.DateTimeField(allow_null=True)
    last_attempt_at = serializers.DateTimeField(allow_null=True)
    last_status = serializers.IntegerField(allow_null=True)
    last_error = serializers.CharField()
    finished_at = serializers.DateTimeField(allow_null=True)


class WebhookAttemptOutput(serializers.Serializer):
    number = serializers.IntegerField()
    created = serializers.DateTimeField(source="created_at")
    outcome = serializers.CharField()
    final = serializers.BooleanField(help_text="This attempt ended the delivery")
    url = serializers.CharField()
    request_headers = serializers.DictField(child=serializers.CharField())
    response_status = serializers.IntegerField(allow_null=True)
    response_headers = serializers.DictField(child=serializers.CharField())
    response_body = serializers.CharField(help_text="At most the first 20 KB")
    response_truncated = serializers.BooleanField()
    latency_ms = serializers.IntegerField()
    error_class = serializers.CharField()
    error_message = serializers.CharField()
    remote_address = serializers.CharField()


class WebhookMessageOutput(serializers.Serializer):
    id = serializers.CharField(source="msg_id")
    event_type = serializers.CharField()
    created = serializers.DateTimeField(source="created_at")
    payload = serializers.JSONField(help_text="The body as sent: type, timestamp and data")


class WebhookMessageDetailOutput(WebhookMessageOutput):
    deliveries = WebhookDeliveryOutput(many=True, source="deliveries.all")


class WebhookEventTypeOutput(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField()


class WebhookRecoverOutput(serializers.Serializer):
    recovered = serializers.IntegerField()
    more = serializers.BooleanField(help_text="More than 10,000 matched: call again with since=resume_from")
    resume_from = serializers.DateTimeField(allow_null=True)


# --- Endpoints -------------------------------------------------------------------------------------


class WebhookEndpointListCreateApi(APIView):
    pagination_class = PagePagination

    class WebhookEndpointCreateInput(serializers.Serializer):
        url = serializers.CharField(max_length=MAX_URL_LENGTH)
        description = serializers.CharField(max_length=DESCRIPTION_MAX, allow_blank=True, default="")
        event_types = serializers.ListField(child=serializers.CharField(max_length=64), max_length=100, default=list)
        all_events = serializers.BooleanField(default=False)

    @extend_schema(responses=WebhookEndpointOutput(many=True), summary="List webhook endpoints with their health")
    def get(self, request: Request) -> Response:
        queryset = selectors.endpoint_list(organization=request.organization)
        return paginated_response(request, self, queryset, WebhookEndpointOutput)

    @extend_schema(
        request=WebhookEndpointCreateInput,
        responses={201: WebhookEndpointOutput},
        summary="Add a webhook endpoint (admins)",
    )
    def post(self, request: Request) -> Response:
        _require_admin(request)
        reject_unknown_fields(request.data, set(self.WebhookEndpointCreateInput().fields))
        serializer = self.WebhookEndpointCreateInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        endpoint = services.endpoint_create(
            organization=request.organization, actor_membership=request.membership, **serializer.validated_data
        )
        return Response(WebhookEndpointOutput(endpoint).data, status=status.HTTP_201_CREATED)


class WebhookEndpointDetailApi(APIView):
    class WebhookEndpointUpdateInput(serializers.Serializer):
        url = serializers.CharField(max_length=MAX_URL_LENGTH, required=False)
        description = serializers.CharField(max_length=DESCRIPTION_MAX, allow_blank=True, required=False)
        event_types = serializers.ListField(child=serializers.CharField(max_length=64), max_length=100, required=False)
        all_events = serializers.BooleanField(required=False)

    @extend_schema(responses=WebhookEndpointOutput, summary="One webhook endpoint")
    def get(self, request: Request, public_id: Any) -> Response:
        return Response(WebhookEndpointOutput(_endpoint(request, public_id)).data)

    @extend_schema(
        request=WebhookEndpointUpdateInput, responses=WebhookEndpointOutput, summary="Change an endpoint (admins)"
    )
    def patch(self, request: Request, public_id: Any) -> Response:
        _require_admin(request)
        endpoint = _endpoint(request, public_id)
        reject_unknown_fields(request.data, set(self.WebhookEndpointUpdateInput().fields))
        serializer = self.WebhookEndpointUpdateInput(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        endpoint = services.endpoint_update(
            endpoint=endpoint, actor_membership=request.membership, **serializer.validated_data
        )
        return Response(WebhookEndpointOutput(endpoint).data)

    @extend_schema(responses={204: None}, summary="Delete an endpoint and its delivery log (admins)")
    def delete(self, request: Request, public_id: Any) -> Response:
        _require_admin(request)
        services.endpoint_delete(endpoint=_endpoint(request, public_id), actor_membership=request.membership)
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookEndpointSecretApi(APIView):
    @extend_schema(responses=WebhookSecretOutput, summary="Reveal the signing secret (admins)")
    def get(self, request: Request, public_id: Any) -> Response:
        _require_admin(request)
        endpoint = _endpoint(request, public_id)
        secret = services.endpoint_secret_reveal(endpoint=endpoint, actor_membership=request.membership)
        data = {"secret": secret, "previous_secret_expires_at": endpoint.previous_secret_expires_at}
        return Response(WebhookSecretOutput(data).data, headers={"Cache-Control": "no-store"})


class WebhookEndpointSecretRotateApi(APIView):
    @extend_schema(
        request=None,
        responses=WebhookSecretOutput,
        summary="Rotate the signing secret (admins): the old one signs alongside for 24 h",
    )
    def post(self, request: Request, public_id: Any) -> Response:
        _require_admin(request)
        endpoint = _endpoint(request, public_id)
        secret = services.endpoint_secret_rotate(endpoint=endpoint, actor_membership=request.membership)
        endpoint.refresh_from_db(fields=["previous_secret_expires_at"])
        data = {"secret": secret, "previous_secret_expires_at": endpoint.previous_secret_expires_at}
        return Response(WebhookSecretOutput(data).data, headers={"Cache-Control": "no-store"})


class WebhookEndpointTestApi(APIView):
    class WebhookTestOutput(serializers.Serializer):
        event = serializers.UUIDField(help_text="The webhook.test event")
        delivery = WebhookDeliveryOutput(allow_null=True, help_text="Null until the event has been fanned out")

    @extend_schema(request=None, responses={202: WebhookTestOutput}, summary="Send a webhook.test event (admins)")
    def post(self, request: Request, public_id: Any) -> Response:
        _require_admin(request)
        endpoint = _endpoint(request, public_id)
        event = services.endpoint_test_send(endpoint=endpoint, actor_membership=request.membership)
        delivery = selectors.delivery_for_event(endpoint=endpoint, event_id=event.public_id)
        data = {"event": event.public_id, "delivery": delivery}
        return Response(self.WebhookTestOutput(data).data, status=status.HTTP_202_ACCEPTED)


class WebhookEndpointEnableApi(APIView):
    class WebhookEnableInput(serializers.Serializer):
        recover_since = serializers.DateTimeField(
            required=False, help_text="Also resend failed and dead messages created since then (≤ 14 days)"
        )

    class WebhookEnableOutput(serializers.Serializer):
        endpoint = WebhookEndpointOutput()
        recovery = WebhookRecoverOutput(allow_null=True)

    @extend_schema(request=WebhookEnableInput, responses=WebhookEnableOutput, summary="Enable an endpoint (admins)")
    def post(self, request: Request, public_id: Any) -> Response:
        _require_admin(request)
        endpoint = _endpoint(request, public_id)
        reject_unknown_fields(request.data or {}, {"recover_since"})
        serializer = self.WebhookEnableInput(data=request.data or {})
        serializer.is_valid(raise_exception=True)
        result = services.endpoint_enable(
            endpoint=endpoint,
            actor_membership=request.membership,
            recover_since=serializer.validated_data.get("recover_since"),
        )
        endpoint = _endpoint(request, public_id)
        return Response(self.WebhookEnableOutput({"endpoint": endpoint, "recovery": result}).data)


class WebhookEndpointDisableApi(APIView):
    class WebhookDisableInput(serializers.Serializer):
        reason = serializers.CharField(max_length=200, required=False, allow_blank=True)

    @extend_schema(request=WebhookDisableInput, responses=WebhookEndpointOutput, summary="Disable an endpoint (admins)")
    def post(self, request: Request, public_id: Any) -> Response:
        _require_admin(request)
        endpoint = _endpoint(request, public_id)
        reject_unknown_fields(request.data or {}, {"reason"})
        serializer = self.WebhookDisableInput(data=request.data or {})
        serializer.is_valid(raise_exception=True)
        services.endpoint_disable(endpoint=endpoint, actor_membership=request.membership, **serializer.validated_data)
        return Response(WebhookEndpointOutput(_endpoint(request, public_id)).data)


class WebhookEndpointRecoverApi(APIView):
    class WebhookRecoverInput(serializers.Serializer):
        since = serializers.DateTimeField(help_text="At most 14 days ago")

    @extend_schema(
        request=WebhookRecoverInput,
        responses={202: WebhookRecoverOutput},
        summary="Resend failed and dead messages since a time (admins; ≤ 14 days, ≤ 10,000 messages)",
    )
    def post(self, request: Request, public_id: Any) -> Response:
        _require_admin(request)
        endpoint = _endpoint(request, public_id)
        reject_unknown_fields(request.data, {"since"})
        serializer = self.WebhookRecoverInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = services.endpoint_recover(
            endpoint=endpoint, actor_membership=request.membership, since=serializer.validated_data["since"]
        )
        return Response(WebhookRecoverOutput(result).data, status=status.HTTP_202_ACCEPTED)


# --- Deliveries, attempts, messages -------------------------------------------------------------------

_TIME_PARAMS = [
    OpenApiParameter("since", str, description="ISO 8601 date-time: created at or after"),
    OpenApiParameter("until", str, description="ISO 8601 date-time: created at or before"),
    OpenApiParameter("page", int),
    OpenApiParameter("page_size", int, description="1–100, default 50"),
]


def _errors_to_400(problems: dict[str, str]) -> None:
    if problems:
        raise serializers.ValidationError({name: [message] for name, message in problems.items()})


class WebhookEndpointDeliveryListApi(APIView):
    pagination_class = PagePagination

    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, enum=DeliveryState.values),
            OpenApiParameter("event_type", str),
            *_TIME_PARAMS,
        ],
        responses=WebhookDeliveryOutput(many=True),
        summary="An endpoint's deliveries, newest first",
    )
    def get(self, request: Request, public_id: Any) -> Response:
        endpoint = _endpoint(request, public_id)
        filters = selectors.DeliveryFilters(
            state=request.query_params.get("status", ""),
            event_type=request.query_params.get("event_type", ""),
            since=_datetime_param(request, "since"),
            until=_datetime_param(request, "until"),
        )
        _errors_to_400(filters.errors())
        return paginated_response(
            request, self, selectors.delivery_list(endpoint=endpoint, filters=filters), WebhookDeliveryOutput
        )


class WebhookDeliveryAttemptListApi(APIView):
    pagination_class = PagePagination

    @extend_schema(
        responses=WebhookAttemptOutput(many=True), summary="Attempts of one message to one endpoint, oldest first"
    )
    def get(self, request: Request, public_id: Any, msg_id: str) -> Response:
        delivery = selectors.delivery_get(endpoint=_endpoint(request, public_id), msg_id=msg_id)
        return paginated_response(request, self, selectors.attempt_list(delivery=delivery), WebhookAttemptOutput)


class WebhookDeliveryReplayApi(APIView):
    @extend_schema(
        request=None,
        responses={202: WebhookDeliveryOutput},
        summary="Send one message to this endpoint again now (admins; same webhook-id)",
    )
    def post(self, request: Request, public_id: Any, msg_id: str) -> Response:
        _require_admin(request)
        endpoint = _endpoint(request, public_id)
        services.delivery_replay(endpoint=endpoint, actor_membership=request.membership, msg_id=msg_id)
        delivery = selectors.delivery_get(endpoint=endpoint, msg_id=msg_id)
        return Response(WebhookDeliveryOutput(delivery).data, status=status.HTTP_202_ACCEPTED)


class WebhookMessageListApi(APIView):
    pagination_class = PagePagination

    @extend_schema(
        parameters=[OpenApiParameter("event_type", str), *_TIME_PARAMS],
        responses=WebhookMessageOutput(many=True),
        summary="Messages sent to the organization's endpoints, newest first",
    )
    def get(self, request: Request) -> Response:
        filters = selectors.MessageFilters(
            event_type=request.query_params.get("event_type", ""),
            since=_datetime_param(request, "since"),
            until=_datetime_param(request, "until"),
        )
        _errors_to_400(filters.errors())
        return paginated_response(
            request,
            self,
            selectors.message_list(organization=request.organization, filters=filters),
            WebhookMessageOutput,
        )


class WebhookMessageDetailApi(APIView):
    @extend_schema(responses=WebhookMessageDetailOutput, summary="One message and its delivery to each endpoint")
    def get(self, request: Request, msg_id: str) -> Response:
        message = selectors.message_get(organization=request.organization, msg_id=msg_id)
        return Response(WebhookMessageDetailOutput(message).data)


class WebhookEventTypeListApi(APIView):
    @extend_schema(responses=WebhookEventTypeOutput(many=True), summary="Event types endpoints can subscribe to")
    def get(self, request: Request) -> Response:
        return Response(WebhookEventTypeOutput(selectors.event_type_list(), many=True).data)
