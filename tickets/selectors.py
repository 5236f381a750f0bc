"""Reads of tickets, each scoped to one organization and joined for the page that shows it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.postgres.expressions import ArraySubquery
from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVectorExact
from django.core.cache import cache
from django.db import connection
from django.db.models import (
    BooleanField,
    Case,
    Count,
    Exists,
    F,
    Func,
    IntegerField,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Value,
    When,
    Window,
)
from django.db.models.lookups import Lookup

from portal.models import Membership, Organization
from portal.params import whole_number
from portal.tenancy import scoped_get_or_404
from tickets import caching
from tickets import services as ticket_services
from tickets.models import (
    PRIORITY_RANK,
    Attachment,
    Category,
    Comment,
    Priority,
    Status,
    Ticket,
    TicketChange,
    TicketFollower,
)

User = get_user_model()

_WORD = re.compile(r"\w+", re.UNICODE)
# ASCII digits only (``\d`` and ``str.isdigit`` also accept "²" or "٣", which ``int()`` refuses or
# reads as another number), and few enough of them to fit the column they are compared with.
_NUMBER = re.compile(r"#?([0-9]{1,9})")

SORTS = {
    "updated": ("-updated_at", "-id"),
    "-updated": ("updated_at", "id"),
    "created": ("-created_at", "-id"),
    "-created": ("created_at", "id"),
    "priority": ("priority_rank", "-updated_at", "-id"),
    "number": ("-number",),
    "due": (F("resolution_due_at").asc(nulls_last=True), "-id"),
}
SORT_LABELS = {
    "updated": "Recently updated",
    "-updated": "Least recently updated",
    "created": "Newest",
    "-created": "Oldest",
    "priority": "Most urgent",
    "number": "Number",
    "due": "Due soonest",
}


@dataclass(frozen=True)
class TicketFilters:
    status: list[str] = field(default_factory=list)
    priority: list[str] = field(default_factory=list)
    category: list[str] = field(default_factory=list)
    assignee: str = ""  # "", "none" or a user id
    q: str = ""
    sort: str = "updated"

    def errors(self) -> dict[str, str]:
        problems = {}
        for name, values, choices in (
            ("status", self.status, Status.values),
            ("priority", self.priority, Priority.values),
            ("category", self.category, Category.values),
        ):
            unknown = [v for v in values if v not in choices]
            if unknown:
                problems[name] = f"Unknown {name}: {', '.join(unknown)}. Choose from: {', '.join(choices)}."
        if self.assignee and self.assignee != "none" and whole_number(self.assignee) is None:
            problems["assignee"] = "Unknown assignee."
        if self.sort not in SORTS:
            problems["sort"] = f"Unknown sort {self.sort!r}. Choose from: {', '.join(SORTS)}."
        if len(self.q) > 200:
            problems["q"] = "Keep the search to 200 characters."
        return problems


def _priority_rank() -> Case:
    return Case(*(When(priority=p, then=Value(rank)) for p, rank in PRIORITY_RANK.items()), output_field=IntegerField())


def search_query(text: str) -> SearchQuery | None:
    """All words must match; the last one also as a prefix (search as you type)."""
    words = _WORD.findall(text.lower())[:12]
    if not words:
        return None
    last = SearchQuery(f"{words[-1]}:*", search_type="raw", config="english") | SearchQuery(
        f"{words[-1]}:*", search_type="raw", config="simple"
    )
    if len(words) == 1:
        return last
    return SearchQuery(" & ".join(words[:-1]), search_type="raw", config="english") & last


class _IsTrue(Func):
    """``(condition) IS TRUE``: the same rows, but the planner can't answer it from an index."""

    template = "(%(expressions)s) IS TRUE"
    output_field = BooleanField()


def _matches(query: SearchQuery) -> _IsTrue:
    """``search_vector @@ query``, evaluated on the organization's rows.

    As a plain ``@@`` the planner takes the GIN index, which covers every organization: a common
    word or prefix ("data:*") collects every match in the whole table (thousands of rows at 1M
    tickets) before the organization filter keeps a handful. Hiding the operator from the index
    makes the organization's own indexes lead and the match a filter on its rows: O(tickets of
    the organization) instead of O(matches in all organizations). See docs/adr/0012.
    """
    return _IsTrue(SearchVectorExact(F("search_vector"), query))


TOTAL = "total_rows"


def ticket_list(
    *, organization: Organization, filters: TicketFilters | None = None, count_in_rows: bool = False
) -> QuerySet[Ticket]:
    """The list page and API: a fixed number of queries for any page size.

    With ``count_in_rows``, a text search also annotates every row with ``total_rows``
    (``count(*) OVER ()``): matching and ranking visit every candidate anyway, so the page's own
    query returns the count and the paginator needn't run the match a second time (see
    ``tickets.views.CountedPaginator``). Without a search the separate COUNT is cheaper: it is
    answered from an index, while a window count would stop the sort index from ending early.
    """
    filters = filters or TicketFilters()
    queryset = (
        Ticket.objects.for_organization(organization)
        .select_related("requester", "assignee")
        .defer("description", "search_vector")
    )
    if filters.sort == "priority":  # only this sort needs the rank (compiling the CASE costs on every page)
        queryset = queryset.annotate(priority_rank=_priority_rank())
    if filters.status:
        queryset = queryset.filter(status__in=filters.status)
    if filters.priority:
        queryset = queryset.filter(priority__in=filters.priority)
    if filters.category:
        queryset = queryset.filter(category__in=filters.category)
    if filters.assignee == "none":
        queryset = queryset.filter(assignee__isnull=True)
    elif filters.assignee:
        if whole_number(filters.assignee) is None:  # callers check errors() first; never a 500 if not
            return queryset.none()
        queryset = queryset.filter(assignee_id=int(filters.assignee))
    order: tuple[Any, ...] = SORTS.get(filters.sort, SORTS["updated"])
    q = filters.q.strip()
    if q:
        number = _NUMBER.fullmatch(q)
        # "#1042" is a reference: only that ticket. "1042" may also be a word in the text.
        query = None if number and q.startswith("#") else search_query(q)
        condition = Q(_matches(query)) if query is not None else Q(pk__in=[])
        if number:
            condition |= Q(number=int(number.group(1)))
        queryset = queryset.filter(condition)
        if query is not None:
            # An exact number match first, then by relevance; the chosen sort breaks ties.
            exact = Case(When(number=int(number.group(1)), then=Value(1)), default=Value(0)) if number else Value(0)
            queryset = queryset.annotate(exact=exact, rank=SearchRank(F("search_vector"), query, cover_density=True))
            order = ("-exact", "-rank", *order)
        if count_in_rows:
            queryset = queryset.annotate(**{TOTAL: Window(Count("*"))})
    return queryset.order_by(*order)


# What a row of the list page shows (tickets.templatetags.ticket_tags.ticket_row): its text, badges,
# SLA countdown and people. Whole tickets with whole requester/assignee users are ~50 columns a row;
# these ~20 take a third less CPU to fetch (25 rows: 6.2 → 4.2 ms).
ROW_FIELDS = (
    "public_id",
    "number",
    "subject",
    "status",
    "priority",
    "category",
    "comment_count",
    "updated_at",
    "first_response_at",
    "resolved_at",
    "sla_paused_at",
    "first_response_due_at",
    "first_response_warn_at",
    "resolution_due_at",
    "resolution_warn_at",
    "requester__first_name",
    "requester__last_name",
    "requester__email",
    "assignee__first_name",
    "assignee__last_name",
    "assignee__username",
)


def ticket_rows(*, organization: Organization, filters: TicketFilters | None = None) -> QuerySet[Ticket]:
    """``ticket_list`` for the list page: only what a row shows, with the match count on searches."""
    return ticket_list(organization=organization, filters=filters, count_in_rows=True).only(*ROW_FIELDS)


def ticket_get(*, organization: Organization, public_id: Any) -> Ticket:
    return scoped_get_or_404(
        Ticket.objects.for_organization(organization)
        .select_related("requester", "assignee", "organization")
        .defer("search_vector"),  # never read back: services recompute it in SQL
        organization=organization,
        public_id=public_id,
    )


def ticket_ref(*, organization: Organization, public_id: Any) -> Ticket:
    """The ticket's identity only (404 outside ``organization``), for writes whose service reads
    the row again under its lock."""
    return scoped_get_or_404(
        Ticket.objects.for_organization(organization).only("pk", "organization_id", "public_id"),
        organization=organization,
        public_id=public_id,
    )


def comment_list(*, ticket: Ticket, include_internal: bool) -> QuerySet[Comment]:
    queryset = (
        Comment.objects.for_organization(ticket.organization)
        .filter(ticket=ticket)
        .select_related("author")
        .prefetch_related(
            Prefetch("attachments", queryset=Attachment.objects.order_by("created_at", "id"), to_attr="files")
        )
        .order_by("created_at", "id")
    )
    return queryset if include_internal else queryset.filter(internal=False)


def ticket_history(*, ticket: Ticket, include_internal: bool) -> QuerySet[TicketChange]:
    queryset = TicketChange.objects.for_organization(ticket.organization).filter(ticket=ticket).select_related("actor")
    return queryset if include_internal else queryset.exclude(field="internal_note")


def ticket_thread(*, ticket: Ticket, include_internal: bool) -> tuple[list[Comment], list[Attachment]]:
    """The conversation (each comment with its ``files``) and the ticket's own attachments: two queries."""
    organization_id = ticket.organization_id
    comments = list(
        Comment.objects.filter(organization_id=organization_id, ticket=ticket)
        .select_related("author")
        .order_by("created_at", "id")
    )
    if not include_internal:
        comments = [c for c in comments if not c.internal]
    files = Attachment.objects.filter(organization_id=organization_id, ticket=ticket).order_by("created_at", "id")
    by_comment: dict[int | None, list[Attachment]] = {}
    for attachment in files:
        by_comment.setdefault(attachment.comment_id, []).append(attachment)
    for comment in comments:
        comment.files = by_comment.get(comment.pk, [])
    return comments, by_comment.get(None, [])


@dataclass
class TicketPage:
    ticket: Ticket
    comments: list[Comment]
    attachments: list[Attachment]  # on the ticket itself; comments carry theirs in .files
    history: list[TicketChange]
    following: bool
    # With ``with_followers``: who follows (CC), and the organization's active members who don't yet.
    followers: list[Any] = field(default_factory=list)
    follower_candidates: list[Any] = field(default_factory=list)


def ticket_followers(*, ticket: Ticket) -> tuple[list[Any], list[Any]]:
    """The ticket's followers, and the active members of its organization who could be added: one query.

    Followers are listed even when they are no longer members (an agent, someone who left), so
    they can still be removed. Raw SQL: on every ticket page, and the ORM spent ~4 ms of CPU
    compiling the same query with its two subqueries (``bench/tickets_RESULTS.md``, round 8).
    """
    users, followers_table, members = User._meta.db_table, TicketFollower._meta.db_table, Membership._meta.db_table
    sql = (
        f"SELECT u.id, u.first_name, u.last_name, u.username, u.email,"  # noqa: S608 - table names only
        f" EXISTS (SELECT 1 FROM {followers_table} f WHERE f.ticket_id = %s AND f.user_id = u.id) AS follows"
        f" FROM {users} u"
        f" WHERE u.id IN (SELECT f.user_id FROM {followers_table} f WHERE f.ticket_id = %s)"
        f" OR (u.is_active AND u.id IN (SELECT m.user_id FROM {members} m WHERE m.organization_id = %s))"
        " ORDER BY u.first_name, u.last_name, u.id"
    )
    followers, candidates = [], []
    for person in User.objects.raw(sql, [ticket.pk, ticket.pk, ticket.organization_id]):
        (followers if person.follows else candidates).append(person)
    return followers, candidates


def ticket_page(
    *, organization: Organization, public_id: Any, user: Any, include_internal: bool, with_followers: bool = False
) -> TicketPage:
    """Everything the detail page shows, in five queries whatever the length of the thread (six
    ``with_followers``)."""
    queryset = (
        Ticket.objects.for_organization(organization)
        .select_related("requester", "assignee", "organization")
        .defer("search_vector")  # the page never shows it; a long thread's vector is most of the row
    )
    if not with_followers:  # else the followers tell
        queryset = queryset.annotate(
            following=Exists(TicketFollower.objects.filter(ticket=OuterRef("pk"), user_id=getattr(user, "pk", None)))
        )
    ticket = scoped_get_or_404(queryset, organization=organization, public_id=public_id)
    comments, attachments = ticket_thread(ticket=ticket, include_internal=include_internal)
    if with_followers:
        followers, candidates = ticket_followers(ticket=ticket)
        ticket.following = any(person.pk == getattr(user, "pk", None) for person in followers)
    else:
        followers, candidates = [], []
    return TicketPage(
        ticket=ticket,
        comments=comments,
        attachments=attachments,
        history=list(ticket_history(ticket=ticket, include_internal=include_internal)),
        following=ticket.following,
        followers=followers,
        follower_candidates=candidates,
    )


def attachment_get(*, organization: Organization, ticket: Ticket, public_id: Any, include_internal: bool) -> Attachment:
    """An attachment of a ticket the caller can see; files of internal notes stay with agents."""
    queryset = Attachment.objects.for_organization(organization).filter(ticket=ticket)
    if not include_internal:
        queryset = queryset.exclude(comment__internal=True)
    return scoped_get_or_404(queryset, organization=organization, public_id=public_id)


def agent_get(*, user_id: Any) -> Any | None:
    """The active support agent with this id, or None: who can be a ticket's assignee."""
    return User.objects.filter(pk=user_id, is_staff=True, is_active=True).first()


class _EqualsAny(Lookup):
    """``lhs = ANY(rhs)`` for an array ``rhs``."""

    lookup_name = "equals_any"

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} = ANY({rhs})", [*lhs_params, *rhs_params]


def assignee_choices(*, organization: Organization) -> list[tuple[int, str]]:
    """Agents who have tickets in this organization (for the list filter), cached (``caching``)."""
    key = caching.assignee_choices_key(organization.pk)
    choices = cache.get(key)
    if choices is None:
        choices = _assignee_choices_read(organization)
        cache.set(key, choices, caching.ASSIGNEE_CHOICES_SECONDS)
    return choices


def _assignee_choices_read(organization: Organization) -> list[tuple[int, str]]:
    ids = Ticket.objects.for_organization(organization).exclude(assignee=None).values("assignee_id").distinct()
    # ``id = ANY(ARRAY(...))``, not ``id IN (...)``: the distinct ids are collected once and the
    # users read by primary key, where IN joined them against a scan of every user of the
    # platform (1.8 → 0.6 ms with 5,000 users, and growing with them).
    rows = (
        User.objects.filter(_EqualsAny(F("pk"), ArraySubquery(ids)))
        .order_by("first_name", "pk")
        .values_list("pk", "first_name", "last_name", "username")
    )
    # The names as User.get_full_name() or get_username(), without loading whole users.
    return [(pk, f"{first} {last}".strip() or username) for pk, first, last, username in rows]


def ticket_for_event(*, organization: Organization, public_id: Any) -> Ticket | None:
    """A ticket named in an event payload, or None if it has been purged since (its search vector,
    the largest column and never read in Python, is not loaded)."""
    return Ticket.objects.for_organization(organization).filter(public_id=public_id).defer("search_vector").first()


def ticket_people(*, organization: Organization, public_id: Any) -> set[int] | None:
    """Who hears about a ticket named in an event (requester, assignee, followers), in one
    query; None when the ticket has been purged since."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT t.requester_id, t.assignee_id,
                ARRAY(SELECT f.user_id FROM {TicketFollower._meta.db_table} f WHERE f.ticket_id = t.id)
            FROM {Ticket._meta.db_table} t
            WHERE t.organization_id = %s AND t.public_id = %s::uuid
            """,  # noqa: S608 - only the models' own table names are interpolated
            [organization.pk, str(public_id)],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    requester_id, assignee_id, followers = row
    people = {requester_id, *followers}
    if assignee_id:
        people.add(assignee_id)
    return people


def ticket_live_state(*, organization: Organization, public_id: Any) -> TicketPage | None:
    """What live viewers of the customer pages see (the ticket's row, status, SLA and public thread):
    no internal notes, nothing per-user, no history. Three queries; None once the ticket is gone.
    Every org-wide ticket push reads this in the worker, between the commit and the sockets."""
    ticket = (
        Ticket.objects.for_organization(organization)
        .select_related("requester", "assignee", "organization")
        .defer("search_vector")
        .filter(public_id=public_id)
        .first()
    )
    if ticket is None:
        return None
    comments, attachments = ticket_thread(ticket=ticket, include_internal=False)
    return TicketPage(ticket=ticket, comments=comments, attachments=attachments, history=[], following=False)


# --- Batched reads for pages of tickets (GraphQL resolves a page's threads in one go) -------------


def comments_by_ticket(
    *, organization: Organization, ticket_ids: list[int], include_internal: bool
) -> dict[int, list[Comment]]:
    """Every ticket's thread, oldest first, authors joined and files attached: two queries."""
    queryset = (
        Comment.objects.for_organization(organization)
        .filter(ticket_id__in=ticket_ids)
        .select_related("author")
        .prefetch_related(
            Prefetch("attachments", queryset=Attachment.objects.order_by("created_at", "id"), to_attr="files")
        )
        .order_by("created_at", "id")
    )
    if not include_internal:
        queryset = queryset.filter(internal=False)
    out: dict[int, list[Comment]] = {pk: [] for pk in ticket_ids}
    for comment in queryset:
        out[comment.ticket_id].append(comment)
    return out


def ticket_files_by_ticket(*, organization: Organization, ticket_ids: list[int]) -> dict[int, list[Attachment]]:
    """Files attached to the tickets themselves (not to a reply): one query."""
    out: dict[int, list[Attachment]] = {pk: [] for pk in ticket_ids}
    files = (
        Attachment.objects.for_organization(organization)
        .filter(ticket_id__in=ticket_ids, comment__isnull=True)
        .order_by("created_at", "id")
    )
    for attachment in files:
        out[attachment.ticket_id].append(attachment)
    return out


def descriptions_by_ticket(*, organization: Organization, ticket_ids: list[int]) -> dict[int, str]:
    """The descriptions that ``ticket_list`` defers, for one page: one query."""
    return dict(
        Ticket.objects.for_organization(organization).filter(pk__in=ticket_ids).values_list("pk", "description")
    )


@dataclass(frozen=True)
class TicketCounts:
    by_status: dict[str, int]
    sla_at_risk: int
    sla_breached: int


def ticket_counts(*, organization: Organization) -> TicketCounts:
    """Tickets per status, and how many unfinished tickets are at risk or past their SLA.

    The SLA state comes from ``tickets.services.ticket_sla_status`` itself (the one definition
    the pages and the API use), applied to the unfinished tickets' SLA columns only.
    """
    rows = (
        Ticket.objects.for_organization(organization)
        .values("status")
        .annotate(n=Count("id"))
        .order_by()
        .values_list("status", "n")
    )
    by_status = dict.fromkeys(Status.values, 0) | dict(rows)
    at_risk = breached = 0
    unfinished = (
        Ticket.objects.for_organization(organization)
        .exclude(status__in=[Status.RESOLVED, Status.CLOSED])
        .only(
            "status",
            "first_response_at",
            "first_response_due_at",
            "first_response_warn_at",
            "resolution_due_at",
            "resolution_warn_at",
            "resolved_at",
            "sla_paused_at",
        )
    )
    for ticket in unfinished.iterator(chunk_size=2000):
        state = ticket_services.ticket_sla_status(ticket=ticket).state
        at_risk += state == "at_risk"
        breached += state == "breached"
    return TicketCounts(by_status=by_status, sla_at_risk=at_risk, sla_breached=breached)
