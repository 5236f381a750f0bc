import pytest

from tickets import selectors, services
from tickets.tests.factories import make_ticket

pytestmark = pytest.mark.django_db


def _search(organization, q):
    return [t.subject for t in selectors.ticket_list(organization=organization, filters=selectors.TicketFilters(q=q))]


def test_subject_match_ranks_above_a_match_in_a_reply(member, agent):
    in_reply = make_ticket(member, subject="Billing question", description="Invoice looks odd.")
    services.comment_create(ticket=in_reply, author=agent, body="The kubernetes node pool was resized.")
    make_ticket(member, subject="Kubernetes upgrade failed", description="Nodes stuck.")
    assert _search(member.organization, "kubernetes") == ["Kubernetes upgrade failed", "Billing question"]


def test_last_word_matches_as_a_prefix(member):
    make_ticket(member, subject="PostgreSQL replication lag")
    assert _search(member.organization, "replication la") == ["PostgreSQL replication lag"]
    assert _search(member.organization, "replica") == ["PostgreSQL replication lag"]


def test_all_words_must_match_and_stemming_applies(member):
    make_ticket(member, subject="Backups failing nightly", description="The backup job fails.")
    make_ticket(member, subject="Backups slow")
    assert _search(member.organization, "backup fail") == ["Backups failing nightly"]


def test_ticket_number_matches_exactly_and_comes_first(member):
    first = make_ticket(member, subject="Something about 1002")
    second = make_ticket(member, subject="Other")
    assert second.number == 1002
    assert _search(member.organization, "#1002") == ["Other"]
    assert _search(member.organization, "1002")[0] == "Other"
    assert first.subject in _search(member.organization, "1002")


def test_customers_never_match_internal_notes(member, agent):
    ticket = make_ticket(member, subject="VPN drops")
    services.comment_create(ticket=ticket, author=agent, body="zebracorn escalation to vendor", internal=True)
    assert _search(member.organization, "zebracorn") == []


def test_search_stays_inside_the_organization(member, other_member):
    make_ticket(other_member, subject="Kafka outage")
    assert _search(member.organization, "kafka") == []


@pytest.mark.parametrize("q", ["'", "&|!:*()", "   ", "a:b", "<script>"])
def test_odd_search_text_is_harmless(member, q):
    make_ticket(member, subject="Plain ticket")
    assert isinstance(_search(member.organization, q), list)


def _distinct_words(rnd, chars):
    """Text of ``chars`` characters made of words no other text uses: the largest vector per character."""
    words, size = [], 0
    while size < chars:
        word = "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(9))
        words.append(word)
        size += len(word) + 1
    return " ".join(words)[:chars]


def test_a_long_thread_of_distinct_words_still_takes_replies_and_stays_searchable(member, agent):
    """Uncapped, the replies' vector passed PostgreSQL's 1 MB tsvector limit around the 20th
    reply of 20,000 characters, and from then on every reply and edit of the ticket failed."""
    import random

    from tickets.models import BODY_MAX

    rnd = random.Random(42)
    ticket = make_ticket(member, subject="Kubernetes ingress flapping", description="Since the upgrade.")
    services.comment_create(ticket=ticket, author=member.user, body="First reply mentions zanzibarwidget today.")
    for i in range(45):
        services.comment_create(
            ticket=ticket, author=agent if i % 2 else member.user, body=_distinct_words(rnd, BODY_MAX)
        )

    reply = services.comment_create(ticket=ticket, author=member.user, body="Still there after reply 47.")
    services.ticket_update(ticket=ticket, actor=member.user, subject="Kubernetes ingress flapping again")

    assert reply.ticket.comment_count == 47
    assert _search(member.organization, "ingress") == ["Kubernetes ingress flapping again"]
    assert _search(member.organization, "zanzibarwidget") == ["Kubernetes ingress flapping again"]
    assert _search(member.organization, "upgrade") == ["Kubernetes ingress flapping again"]
