"""Notifications REST API: list, unread count, mark read, mark all read, delete, preferences."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from notifications import selectors, services
from notifications.models import Kind, Preference
from portal.api import paginated_response, reject_unknown_fields
from portal.pagination import PagePagination


class NotificationOutput(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    kind = serializers.CharField()
    title = serializers.CharField()
    body = serializers.CharField()
    link = serializers.CharField()
    updates = serializers.IntegerField(help_text="How many updates were folded into this notification")
    read = serializers.SerializerMethodField()
    created = serializers.DateTimeField(source="created_at")
    updated = serializers.DateTimeField(source="updated_at")

    def get_read(self, notification: Any) -> bool:
        return notification.read_at is not None


class NotificationListApi(APIView):
    pagination_class = PagePagination

    @extend_schema(
        parameters=[
            OpenApiParameter("kind", str, enum=Kind.values),
            OpenApiParameter("state", str, enum=["unread", "read"]),
            OpenApiParameter("sort", str, enum=list(selectors.SORTS)),
            OpenApiParameter("page", int),
            OpenApiParameter("page_size", int),
        ],
        responses=NotificationOutput(many=True),
        summary="Your notifications in this organization",
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        errors = {}
        if params.get("kind", "") not in ("", *Kind.values):
            errors["kind"] = [f"Choose one of: {', '.join(Kind.values)}."]
        if params.get("state", "") not in ("", "unread", "read"):
            errors["state"] = ["Choose unread or read."]
        if params.get("sort", "newest") not in selectors.SORTS:
            errors["sort"] = [f"Choose one of: {', '.join(selectors.SORTS)}."]
        if errors:
            raise serializers.ValidationError(errors)
        queryset = selectors.notification_list(
            user_id=request.user.pk,
            organization=request.organization,
            kind=params.get("kind", ""),
            state=params.get("state", ""),
            sort=params.get("sort", "newest"),
        )
        return paginated_response(request, self, queryset, NotificationOutput)


class UnreadCountApi(APIView):
    class UnreadCountOutput(serializers.Serializer):
        unread = serializers.IntegerField()

    @extend_schema(responses=UnreadCountOutput, summary="How many notifications are unread")
    def get(self, request: Request) -> Response:
        return Response({"unread": selectors.unread_count(user_id=request.user.pk, organization=request.organization)})


class MarkReadApi(APIView):
    @extend_schema(request=None, responses=NotificationOutput, summary="Mark one notification read")
    def post(self, request: Request, public_id: Any) -> Response:
        notification = services.notification_mark_read(
            user=request.user, organization=request.organization, public_id=public_id
        )
        return Response(NotificationOutput(notification).data)


class MarkAllReadApi(APIView):
    class MarkedOutput(serializers.Serializer):
        marked = serializers.IntegerField()

    @extend_schema(request=None, responses=MarkedOutput, summary="Mark every unread notification read")
    def post(self, request: Request) -> Response:
        count = services.notifications_mark_read(user=request.user, organization=request.organization)
        return Response({"marked": count})


class NotificationDeleteApi(APIView):
    @extend_schema(responses={204: None}, summary="Delete a notification")
    def delete(self, request: Request, public_id: Any) -> Response:
        services.notification_delete(user=request.user, organization=request.organization, public_id=public_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class PreferenceItem(serializers.Serializer):
    kind = serializers.ChoiceField(choices=Kind.choices)
    channel = serializers.ChoiceField(choices=Preference.Channel.choices)
    digest = serializers.ChoiceField(choices=Preference.Digest.choices, default=Preference.Digest.IMMEDIATE)
    mandatory = serializers.BooleanField(read_only=True, help_text="Alerts can't be turned off")


class PreferencesApi(APIView):
    class PreferencesInput(serializers.Serializer):
        preferences = PreferenceItem(many=True)

    def _data(self, request: Request) -> list[dict[str, Any]]:
        from notifications.models import MANDATORY_KINDS

        current = selectors.preferences_for(user=request.user)
        return [
            {"kind": k, "channel": p.channel, "digest": p.digest, "mandatory": k in MANDATORY_KINDS}
            for k, p in current.items()
        ]

    @extend_schema(responses=PreferenceItem(many=True), summary="Your notification preferences")
    def get(self, request: Request) -> Response:
        return Response(self._data(request))

    @extend_schema(
        request=PreferencesInput, responses=PreferenceItem(many=True), summary="Change notification preferences"
    )
    def put(self, request: Request) -> Response:
        reject_unknown_fields(request.data, {"preferences"})
        serializer = self.PreferencesInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        choices = {
            item["kind"]: {"channel": item["channel"], "digest": item["digest"]}
            for item in serializer.validated_data["preferences"]
        }
        services.preferences_update(user=request.user, choices=choices)
        return Response(self._data(request))
