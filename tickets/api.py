"""Tickets REST API: one view per resource, input and output serializers, the pages' services."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.api import paginated_response
from portal.pagination import PagePagination
from portal.parsers import LimitedJSONParser
from tickets import selectors, services
from tickets.downloads import attachment_response, request_attachment
from tickets.forms import ATTACHMENT_HELP
from tickets.models import BODY_MAX, SUBJECT_MAX, Category, Priority, Queue, Status


class PersonOutput(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    name = serializers.SerializerMethodField()

    def get_name(self, user: Any) -> str:
        return user.get_full_name() or user.get_username()


class SlaOutput(serializers.Serializer):
    target = serializers.CharField()
    state = serializers.ChoiceField(choices=["met", "paused", "on_track", "at_risk", "breached"])
    due_at = serializers.DateTimeField(allow_null=True)


class TicketOutput(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    number = serializers.IntegerField()
    subject = serializers.CharField()
    status = serializers.CharField()
    priority = serializers.CharField()
    category = serializers.CharField()
    queue = serializers.CharField()
    requester = PersonOutput()
    assignee = PersonOutput(allow_null=True)
    comment_count = serializers.IntegerField()
    created = serializers.DateTimeField(source="created_at")
    updated = serializers.DateTimeField(source="updated_at")
    first_response_at = serializers.DateTimeField(allow_null=True)
    first_response_due_at = serializers.DateTimeField(allow_null=True)
    resolution_due_at = serializers.DateTimeField(allow_null=True)
    resolved_at = serializers.DateTimeField(allow_null=True)
    closed_at = serializers.DateTimeField(allow_null=True)
    sla = serializers.SerializerMethodField()

    @cached_property
    def _sla_output(self) -> SlaOutput:
        # One serializer for every row of a list: building one per row deep-copies its fields each time.
        return SlaOutput()

    @extend_schema_field(SlaOutput)
    def get_sla(self, ticket: Any) -> dict[str, Any]:
        return self._sla_output.to_representation(services.ticket_sla_status(ticket=ticket))


class AttachmentOutput(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    filename = serializers.CharField()
    content_type = serializers.CharField()
    size = serializers.IntegerField()
    url = serializers.SerializerMethodField(help_text="Download it with the same token")

    def get_url(self, attachment: Any) -> str:
        """The ticket's public id comes in the context (``_context``): one ticket per response."""
        path = reverse("tickets-api:attachment", args=[self.context["ticket_public_id"], attachment.public_id])
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path


def _context(request: Request, ticket: Any) -> dict[str, Any]:
    return {"request": request, "ticket_public_id": ticket.public_id}


class CommentOutput(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    author = PersonOutput()
    body = serializers.CharField()
    by_agent = serializers.BooleanField()
    internal = serializers.BooleanField()
    created = serializers.DateTimeField(source="created_at")
    attachments = AttachmentOutput(many=True, source="files")


class TicketDetailOutput(TicketOutput):
    description = serializers.CharField()
    attachments = AttachmentOutput(many=True, source="ticket_files")
    comments = CommentOutput(many=True, source="thread")
    followers = PersonOutput(many=True, source="follower_people", help_text="Who follows the ticket (CC)")


def _split(values: list[str]) -> list[str]:
    return [v for raw in values for v in raw.split(",") if v]


def _reject_fields(data: Any, allowed: set[str], *, agent: bool) -> None:
    if not isinstance(data, dict):
        raise serializers.ValidationError({"non_field_errors": ["Send a JSON object."]})
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise serializers.ValidationError(
            {f: ["Only support agents can set this." if not agent else "Unknown field."] for f in unknown}
        )


# Opening a ticket and replying take JSON, or multipart/form-data when files come along.
UPLOAD_PARSERS = [LimitedJSONParser, MultiPartParser]


def _attachments_field() -> serializers.ListField:
    return serializers.ListField(
        child=serializers.FileField(allow_empty_file=True),  # the service names the empty file
        required=False,
        help_text=f"multipart/form-data only. {ATTACHMENT_HELP}",
    )


def _with_files(serializer: type[serializers.Serializer]) -> dict[str, Any]:
    return {"application/json": serializer, "multipart/form-data": serializer}


class TicketListCreateApi(APIView):
    pagination_class = PagePagination
    parser_classes = UPLOAD_PARSERS

    class TicketCreateInput(serializers.Serializer):
        subject = serializers.CharField(max_length=SUBJECT_MAX)
        description = serializers.CharField(max_length=BODY_MAX)
        priority = serializers.ChoiceField(choices=Priority.choices, default=Priority.MEDIUM)
        category = serializers.ChoiceField(choices=Category.choices, default=Category.GENERAL)
        attachments = _attachments_field()

    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, description="Comma-separated: " + ", ".join(Status.values)),
            OpenApiParameter("priority", str, description="Comma-separated: " + ", ".join(Priority.values)),
            OpenApiParameter("category", str, description="Comma-separated: " + ", ".join(Category.values)),
            OpenApiParameter("assignee", str, description="An agent's id, or `none` for unassigned"),
            OpenApiParameter(
                "q", str, description="Full-text search (subject, description, replies) or a ticket number"
            ),
            OpenApiParameter("sort", str, enum=list(selectors.SORTS)),
            OpenApiParameter("page", int),
            OpenApiParameter("page_size", int, description="1–100, default 50"),
        ],
        responses=TicketOutput(many=True),
        summary="List the organization's tickets",
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        filters = selectors.TicketFilters(
            status=_split(params.getlist("status")),
            priority=_split(params.getlist("priority")),
            category=_split(params.getlist("category")),
            assignee=params.get("assignee", ""),
            q=params.get("q", ""),
            sort=params.get("sort", "updated"),
        )
        errors = filters.errors()
        if errors:
            raise serializers.ValidationError({k: [v] for k, v in errors.items()})
        queryset = selectors.ticket_list(organization=request.organization, filters=filters)
        return paginated_response(request, self, queryset, TicketOutput)

    @extend_schema(request=_with_files(TicketCreateInput), responses={201: TicketDetailOutput}, summary="Open a ticket")
    def post(self, request: Request) -> Response:
        _reject_fields(request.data, set(self.TicketCreateInput().fields), agent=False)
        serializer = self.TicketCreateInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        ticket = services.ticket_create(
            organization=request.organization, requester=request.user, **serializer.validated_data
        )
        return Response(_detail(request, ticket.public_id), status=status.HTTP_201_CREATED)


def _detail(request: Request, public_id: Any) -> dict[str, Any]:
    page = selectors.ticket_page(
        organization=request.organization,
        public_id=public_id,
        user=request.user,
        include_internal=services.is_agent(request.user),
        with_followers=True,
    )
    page.ticket.thread, page.ticket.ticket_files = page.comments, page.attachments
    page.ticket.follower_people = page.followers
    return TicketDetailOutput(page.ticket, context=_context(request, page.ticket)).data


class TicketDetailApi(APIView):
    class TicketUpdateInput(serializers.Serializer):
        status = serializers.ChoiceField(choices=Status.choices, required=False)
        subject = serializers.CharField(max_length=SUBJECT_MAX, required=False)
        description = serializers.CharField(max_length=BODY_MAX, required=False)
        priority = serializers.ChoiceField(choices=Priority.choices, required=False, help_text="Agents only")
        category = serializers.ChoiceField(choices=Category.choices, required=False, help_text="Agents only")
        queue = serializers.ChoiceField(choices=Queue.choices, required=False, help_text="Agents only")
        assignee = serializers.IntegerField(required=False, allow_null=True, help_text="Agents only: an agent's id")

    @extend_schema(responses=TicketDetailOutput, summary="One ticket with its conversation")
    def get(self, request: Request, public_id: Any) -> Response:
        return Response(_detail(request, public_id))

    @extend_schema(request=TicketUpdateInput, responses=TicketDetailOutput, summary="Change a ticket")
    def patch(self, request: Request, public_id: Any) -> Response:
        ticket = selectors.ticket_get(organization=request.organization, public_id=public_id)
        agent = services.is_agent(request.user)
        allowed = services.AGENT_EDITABLE if agent else services.CUSTOMER_EDITABLE
        _reject_fields(request.data, set(allowed), agent=agent)
        serializer = self.TicketUpdateInput(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        changes = dict(serializer.validated_data)
        if "assignee" in changes and changes["assignee"] is not None:
            changes["assignee"] = selectors.agent_get(user_id=changes["assignee"])
            if changes["assignee"] is None:
                raise serializers.ValidationError({"assignee": ["No active support agent has this id."]})
        services.ticket_update(ticket=ticket, actor=request.user, **changes)
        return Response(_detail(request, public_id))


class TicketCommentsApi(APIView):
    pagination_class = PagePagination
    parser_classes = UPLOAD_PARSERS

    class CommentCreateInput(serializers.Serializer):
        body = serializers.CharField(max_length=BODY_MAX)
        internal = serializers.BooleanField(default=False, help_text="Agents only: a note customers never see")
        attachments = _attachments_field()

    @extend_schema(responses=CommentOutput(many=True), summary="A ticket's conversation, oldest first")
    def get(self, request: Request, public_id: Any) -> Response:
        ticket = selectors.ticket_get(organization=request.organization, public_id=public_id)
        queryset = selectors.comment_list(ticket=ticket, include_internal=services.is_agent(request.user))
        return paginated_response(request, self, queryset, CommentOutput, context=_context(request, ticket))

    @extend_schema(request=_with_files(CommentCreateInput), responses={201: CommentOutput}, summary="Reply on a ticket")
    def post(self, request: Request, public_id: Any) -> Response:
        ticket = selectors.ticket_get(organization=request.organization, public_id=public_id)
        _reject_fields(request.data, set(self.CommentCreateInput().fields), agent=services.is_agent(request.user))
        serializer = self.CommentCreateInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        comment = services.comment_create(ticket=ticket, author=request.user, **serializer.validated_data)
        return Response(CommentOutput(comment, context=_context(request, ticket)).data, status=status.HTTP_201_CREATED)


class TicketAttachmentApi(APIView):
    @extend_schema(
        responses={(200, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY, description="The file")},
        summary="Download a ticket's or a reply's attachment",
    )
    def get(self, request: Request, public_id: Any, attachment_id: Any) -> Any:
        return attachment_response(request_attachment(request, public_id, attachment_id))


def _followers(ticket: Any) -> list[dict[str, Any]]:
    followers, _ = selectors.ticket_followers(ticket=ticket)
    return PersonOutput(followers, many=True).data


class TicketFollowersApi(APIView):
    class FollowerAddInput(serializers.Serializer):
        user = serializers.IntegerField(
            min_value=1, max_value=2**63 - 1, help_text="The id of an active member of the ticket's organization"
        )

    @extend_schema(responses=PersonOutput(many=True), summary="Who follows a ticket (CC)")
    def get(self, request: Request, public_id: Any) -> Response:
        ticket = selectors.ticket_get(organization=request.organization, public_id=public_id)
        return Response(_followers(ticket))

    @extend_schema(
        request=FollowerAddInput,
        responses={201: PersonOutput(many=True)},
        summary="Add a follower (CC a member of the organization)",
        description="Answers with the ticket's followers. Another organization's or an unknown user id is a 400.",
    )
    def post(self, request: Request, public_id: Any) -> Response:
        ticket = selectors.ticket_get(organization=request.organization, public_id=public_id)
        _reject_fields(request.data, {"user"}, agent=True)
        serializer = self.FollowerAddInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.ticket_follower_add(ticket=ticket, actor=request.user, user_id=serializer.validated_data["user"])
        return Response(_followers(ticket), status=status.HTTP_201_CREATED)


class TicketFollowerApi(APIView):
    @extend_schema(
        request=None,
        responses={204: None},
        summary="Remove a follower",
        description="A user id that does not follow the ticket is a 400.",
    )
    def delete(self, request: Request, public_id: Any, user_id: int) -> Response:
        ticket = selectors.ticket_get(organization=request.organization, public_id=public_id)
        services.ticket_follower_remove(ticket=ticket, actor=request.user, user_id=user_id)
        return Response(status=status.HTTP_204_NO_CONTENT)
