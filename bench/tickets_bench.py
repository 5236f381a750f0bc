#!/usr/bin/env python
"""Tickets benchmark: seed N tickets, then measure the ticket pages over HTTP and count their queries.

    .venv/bin/python bench/tickets_bench.py seed --tickets 1000000 --orgs 1000 --comments 3 [--reset]
    .venv/bin/python bench/tickets_bench.py run --base-url http://127.0.0.1:8001 --requests 300 --concurrency 1
    .venv/bin/python bench/tickets_bench.py queries [--explain]      # in-process query counts (+ EXPLAIN ANALYZE)
    .venv/bin/python bench/tickets_bench.py reset                    # remove every bench-* organization and user
    .venv/bin/python bench/tickets_bench.py all --base-url ...       # seed + run at 10k/10 orgs, then 1M/1000 orgs

The database comes from ``DATABASE_URL`` (use a database of its own, e.g. ``portal_bench``), Redis from
``REDIS_URL`` and ``REDIS_DB``: portal/settings.py replaces the db number in REDIS_URL with REDIS_DB (default
0), so give the bench server and this script ``REDIS_DB=9`` (or any db nobody else uses): every create and
comment enqueues an event-dispatch message for a Celery worker, and the throttle counters live there too.
The HTTP target is ``--base-url``: a
server started like ``make run`` does (Daphne) against the same database, with
``API_THROTTLE_RATE=1000000/hour`` (the API list is throttled at 100/hour per organization otherwise).

Seeding: bench organizations have slugs ``bench-NNNN`` and bench users usernames ``bench-...``, so
``seed --reset``/``reset`` remove them (and everything of theirs) without touching other data. Rows are
generated in Python, streamed with COPY into temporary stage tables, and moved into the real tables with
one INSERT ... SELECT per chunk that computes ``comment_count`` and ``search_vector`` set-based, with the
same expression as ``tickets.services.ticket_search_refresh`` (checked on a sample afterwards by calling
that function). Tickets are inserted in ``created_at`` order across all organizations, so an
organization's tickets are scattered over the table as they are in production.
"""

# ruff: noqa: S311, S603, S607, S608, PERF401, SIM108
# S311: random is for synthetic data; S608: the SQL only interpolates identifiers and numbers of our own.
from __future__ import annotations

import argparse
import contextlib
import http.client
import itertools
import json
import math
import multiprocessing as mp
import os
import platform
import random
import re
import statistics
import sys
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from machine_probe import cpu_probe  # bench/machine_probe.py, beside this script

# The application code imported for seeding (SLA policies, password hashing, the search-vector check) and
# for the in-process query counts. BENCH_PROJECT_ROOT points it at another checkout, e.g. a clean export
# of a commit that the measured server runs.
ROOT = Path(os.environ.get("BENCH_PROJECT_ROOT") or Path(__file__).resolve().parent.parent).resolve()
sys.path.insert(0, str(ROOT))

BENCH_PREFIX = "bench-"
BENCH_PASSWORD = "bench-password-2025"  # noqa: S105 - synthetic accounts in a benchmark database
USER_DOMAIN = "bench.example"
DAY = 86400.0
BIG_TABLES = ("tickets_ticket", "tickets_comment", "tickets_ticketchange", "tickets_ticketfollower")
SAVED_INDEXES = "bench_saved_indexes"


# --------------------------------------------------------------------------------------------------
# Django / database plumbing
# --------------------------------------------------------------------------------------------------


def django_setup() -> None:
    """Configure Django for the script's own process (development settings unless DEBUG is set)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    os.environ.setdefault("DEBUG", "1")
    # The in-process query count calls the API too, sharing the throttle counters in Redis with the server.
    os.environ.setdefault("API_THROTTLE_RATE", "1000000/hour")
    if not os.environ.get("DATABASE_URL"):
        sys.exit("tickets_bench: set DATABASE_URL (a database of its own, e.g. .../portal_bench)")
    if not os.environ.get("REDIS_URL"):
        sys.exit("tickets_bench: set REDIS_URL, and REDIS_DB to a Redis db of the bench's own (e.g. REDIS_DB=9)")
    import django

    django.setup()


def pg_connect(autocommit: bool = False):
    import psycopg

    return psycopg.connect(os.environ["DATABASE_URL"], autocommit=autocommit)


def fmt_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def data_size(conn, org_slug: str | None = None) -> dict:
    with conn.cursor() as cur:
        cur.execute(
            """
            SELECT (SELECT count(*) FROM tickets_ticket), (SELECT count(*) FROM tickets_comment),
                   (SELECT count(*) FROM portal_organization),
                   (SELECT count(*) FROM portal_organization WHERE slug LIKE 'bench-%%'),
                   pg_database_size(current_database()),
                   pg_total_relation_size('tickets_ticket'), pg_total_relation_size('tickets_comment')
            """
        )
        tickets, comments, orgs, bench_orgs, db, t_size, c_size = cur.fetchone()
        out = {
            "tickets": tickets,
            "comments": comments,
            "organizations": orgs,
            "bench_organizations": bench_orgs,
            "db_bytes": db,
            "tickets_table_bytes": t_size,
            "comments_table_bytes": c_size,
        }
        if org_slug:
            cur.execute(
                "SELECT count(*) FROM tickets_ticket t JOIN portal_organization o ON o.id = t.organization_id "
                "WHERE o.slug = %s",
                [org_slug],
            )
            out["org"] = org_slug
            out["org_tickets"] = cur.fetchone()[0]
    return out


def size_line(size: dict) -> str:
    line = (
        f"data: {size['tickets']:,} tickets, {size['comments']:,} comments, {size['organizations']:,} organizations "
        f"({size['bench_organizations']:,} bench), database {fmt_bytes(size['db_bytes'])} "
        f"(tickets_ticket {fmt_bytes(size['tickets_table_bytes'])}, tickets_comment {fmt_bytes(size['comments_table_bytes'])})"
    )
    if "org" in size:
        line += f"; measured organization {size['org']}: {size['org_tickets']:,} tickets"
    return line


def code_line() -> str:
    """Which application code this process imports (the server's may differ: say so with --label)."""
    import subprocess

    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
        return f"code: {ROOT} at {head}" + (f" + {len(dirty)} modified tracked files" if dirty else " (clean)")
    except (OSError, subprocess.CalledProcessError):
        return f"code: {ROOT} (not a git checkout)"


def machine_line() -> str:
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"machine: {os.cpu_count()} CPUs ({cpu}), RAM {mem}, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}; load average {load}; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )


# --------------------------------------------------------------------------------------------------
# Vocabulary: realistic managed-cloud support text, so full-text search has realistic selectivity
# --------------------------------------------------------------------------------------------------

# (words, weight): a Zipf-like mix, a few components dominate the tickets.
COMPONENTS = [
    "postgres database",
    "kubernetes cluster",
    "load balancer",
    "mysql database",
    "redis cache",
    "virtual machine",
    "object storage bucket",
    "tls certificate",
    "dns zone",
    "node pool",
    "backup job",
    "read replica",
    "vpn tunnel",
    "firewall rule",
    "api gateway",
    "ingress controller",
    "block volume",
    "container registry",
    "autoscaling group",
    "cdn distribution",
    "private network",
    "nat gateway",
    "kafka topic",
    "message queue",
    "elasticsearch cluster",
    "cron job",
    "serverless function",
    "monitoring agent",
    "log pipeline",
    "bastion host",
    "sftp server",
    "email relay",
    "secrets vault",
    "snapshot schedule",
    "managed mongodb",
    "rabbitmq broker",
    "clickhouse cluster",
    "terraform provider",
    "helm release",
    "service mesh",
]
COMPONENT_CUM = list(itertools.accumulate(1 / (i + 1) ** 0.9 for i in range(len(COMPONENTS))))
SYMPTOMS = [
    "is timing out",
    "has high latency",
    "returns 502 errors",
    "returns 503 errors",
    "keeps restarting",
    "ran out of memory",
    "reports a full disk",
    "is at 100% CPU",
    "is unreachable",
    "drops connections",
    "is stuck in provisioning",
    "failed to upgrade",
    "is degraded",
    "lost replication",
    "is being throttled",
    "refuses connections",
    "is very slow",
    "crashes on startup",
    "shows packet loss",
    "fails health checks",
    "rejects authentication",
    "has replication lag",
    "does not scale out",
    "returns stale data",
]
SYMPTOM_CUM = list(itertools.accumulate(1 / (i + 1) ** 0.7 for i in range(len(SYMPTOMS))))
REGIONS = [
    "eu-west-1",
    "eu-central-1",
    "us-east-1",
    "us-west-2",
    "ap-southeast-1",
    "ap-northeast-1",
    "sa-east-1",
    "ca-central-1",
    "eu-north-1",
    "af-south-1",
]
ENVS = ["prod", "production", "staging", "dev", "qa", "sandbox", "perf"]
HOST_PREFIXES = ["db", "web", "api", "k8s", "worker", "cache", "lb", "edge", "etl", "search", "mq", "vpn"]
CHANGES = [
    "the maintenance window",
    "yesterday's deploy",
    "the version upgrade",
    "a configuration change",
    "the failover",
    "scaling up the cluster",
    "rotating the credentials",
    "the network migration",
    "enabling encryption at rest",
    "the kernel patch",
    "moving to the new instance class",
    "the DNS cutover",
]
ERRORS = [
    "connection reset by peer",
    "ETIMEDOUT",
    "FATAL: too many connections for role",
    "permission denied for table orders",
    "x509: certificate has expired or is not yet valid",
    "OOMKilled",
    "upstream connect error or disconnect",
    "no space left on device",
    "NXDOMAIN",
    "503 Service Unavailable",
    "SSL handshake failed",
    "ERROR: could not serialize access due to concurrent update",
    "context deadline exceeded",
    "ImagePullBackOff",
    "CrashLoopBackOff",
    "read-only file system",
    "too many open files",
]
IMPACTS = [
    "failed checkouts",
    "slow page loads",
    "missing orders",
    "timeouts in the mobile app",
    "delayed payouts",
    "broken nightly reports",
    "a backlog of unprocessed events",
    "errors in the admin panel",
    "customers unable to log in",
    "duplicate emails being sent",
]
TRIED = [
    "restarting the pods",
    "failing over to the replica",
    "increasing the connection pool",
    "rolling back the release",
    "clearing the cache",
    "rebooting the instance",
    "rotating the keys",
    "raising the memory limit",
    "flushing the DNS cache",
    "re-running the pipeline",
]
BUSINESS = [
    "Black Friday launch",
    "quarter close",
    "product release",
    "customer demo",
    "migration project",
    "compliance audit",
    "marketing campaign",
    "board meeting",
]
ARTIFACTS = [
    "logs",
    "screenshot",
    "HAR file",
    "query plan",
    "pod description",
    "traceroute output",
    "invoice PDF",
    "error timestamps",
    "request ids",
    "terraform plan",
]
CAUSES = [
    "a noisy neighbour on the host",
    "an expired intermediate certificate",
    "a saturated connection pool",
    "a runaway autovacuum",
    "a misconfigured security group",
    "a bad route after the network migration",
    "a memory leak in the agent",
    "a full write-ahead log volume",
    "an overloaded control plane",
    "a stuck lock held by a long transaction",
    "a regression in the load balancer firmware",
]
PLANS = ["Starter", "Business", "Enterprise", "legacy"]
TEAMS = ["database team", "network team", "platform team", "billing team", "security team", "tier 2"]
BILLING_TOPICS = [
    "egress charges",
    "reserved instance discounts",
    "the annual commitment",
    "VAT on invoices",
    "credit card payments",
    "purchase orders",
    "the free tier",
    "support plan pricing",
    "storage charges",
    "currency conversion",
]
BILLING_ISSUES = [
    "double egress charges",
    "a wrong VAT rate",
    "charges for deleted volumes",
    "an unexpected overage",
    "a missing credit note",
    "the wrong billing address",
    "charges after cancellation",
    "a failed card payment",
]
IDPS = ["Okta", "Azure AD", "Google Workspace", "OneLogin", "Keycloak", "Ping Identity"]
THREATS = [
    "credential stuffing",
    "DDoS attack",
    "port scan",
    "data exfiltration",
    "brute force login",
    "crypto mining",
    "SQL injection attempts",
    "phishing campaign",
]
COMPLIANCE = ["SOC 2", "ISO 27001", "GDPR", "HIPAA", "PCI DSS"]
HOWTOS = [
    "restore a backup to another region",
    "resize a volume without downtime",
    "rotate API keys",
    "set up private networking",
    "enable point-in-time recovery",
    "export audit logs",
    "configure alerts for disk usage",
    "add a second availability zone",
    "move a project between accounts",
]
FIRST_NAMES = [
    "Alice",
    "Bob",
    "Carla",
    "Dinesh",
    "Eva",
    "Farid",
    "Grace",
    "Hiro",
    "Ines",
    "Jonas",
    "Kemi",
    "Lena",
    "Mateo",
    "Nadia",
    "Oskar",
    "Priya",
    "Quentin",
    "Rosa",
    "Sven",
    "Tanya",
    "Umar",
    "Vera",
    "Wei",
    "Ximena",
    "Yusuf",
    "Zoe",
    "Aaron",
    "Bianca",
    "Chen",
    "Dana",
    "Emil",
    "Fatima",
    "Gustav",
    "Hana",
    "Ivan",
    "Julia",
    "Kofi",
    "Lucia",
    "Marek",
    "Nora",
]
LAST_NAMES = [
    "Smith",
    "Garcia",
    "Müller",
    "Rossi",
    "Nguyen",
    "Kowalski",
    "Okafor",
    "Tanaka",
    "Dubois",
    "Silva",
    "Johansson",
    "Novak",
    "Haddad",
    "Kim",
    "Patel",
    "Schmidt",
    "Moreau",
    "Costa",
    "Ivanova",
    "Brown",
    "Jensen",
    "Yilmaz",
    "Fischer",
    "Lopez",
    "Andersen",
    "Sato",
    "Nowak",
    "Ferreira",
    "Wright",
    "Khan",
]
COMPANY_WORDS = [
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Stark",
    "Wayne",
    "Hooli",
    "Vandelay",
    "Soylent",
    "Tyrell",
    "Cyberdyne",
    "Wonka",
    "Aperture",
    "Gringotts",
    "Oscorp",
    "Pied Piper",
    "Massive Dynamic",
    "Monarch",
]
COMPANY_SUFFIX = ["Cloud", "Labs", "Retail", "Logistics", "Health", "Bank", "Media", "Games", "Energy", "Systems"]


def _host(r: random.Random) -> str:
    return f"{r.choice(HOST_PREFIXES)}-{r.choice(ENVS)}-{r.randint(1, 40)}"


def _component(r: random.Random) -> str:
    return r.choices(COMPONENTS, cum_weights=COMPONENT_CUM)[0]


def _symptom(r: random.Random) -> str:
    return r.choices(SYMPTOMS, cum_weights=SYMPTOM_CUM)[0]


def _hhmm(r: random.Random) -> str:
    return f"{r.randint(0, 23):02d}:{r.choice((0, 5, 10, 15, 20, 30, 40, 45, 50)):02d}"


def description_sentence(r: random.Random, category: str) -> str:
    c, s = _component(r), _symptom(r)
    if category == "billing" and r.random() < 0.8:
        return r.choice(
            [
                f"Invoice INV-{r.randint(2023, 2025)}-{r.randint(1, 12):02d} shows {r.choice(BILLING_ISSUES)}.",
                f"We were charged for {r.choice(BILLING_TOPICS)} although our contract covers it.",
                f"Could you explain the line for {r.choice(BILLING_TOPICS)} on our last invoice?",
                f"Our finance team needs a corrected invoice before the {r.choice(BUSINESS)}.",
                f"The amount for {r.choice(BILLING_TOPICS)} went up by {r.randint(5, 300)}% this month.",
                "Please send the credit note to our accounts payable address.",
            ]
        )
    if category == "account" and r.random() < 0.8:
        return r.choice(
            [
                f"We need {r.choice(IDPS)} added as a second identity provider for our subsidiary.",
                f"User {r.choice(FIRST_NAMES).lower()}.{r.choice(LAST_NAMES).lower()} is locked out after the MFA reset.",
                "Please remove access for an employee who left the company last week.",
                f"Our {r.choice(IDPS)} SSO login fails with an invalid SAML response.",
                "The API token of our deploy pipeline stopped working after the role change.",
                f"We want to restrict console access to the {r.choice(TEAMS)} only.",
            ]
        )
    if category == "security" and r.random() < 0.8:
        return r.choice(
            [
                f"Our logs show a possible {r.choice(THREATS)} against the {c} in {r.choice(REGIONS)}.",
                f"Is the {c} affected by CVE-{r.randint(2021, 2025)}-{r.randint(1000, 49999)}?",
                "An access key was committed to a public repository and must be revoked now.",
                f"We need the audit log export for our {r.choice(COMPLIANCE)} assessment.",
                "Please approve our penetration test window for next week.",
                f"We saw {r.randint(2, 900)} thousand failed logins from {r.randint(3, 250)} addresses overnight.",
            ]
        )
    if category == "general" and r.random() < 0.7:
        return r.choice(
            [
                f"How do we {r.choice(HOWTOS)}?",
                f"Is there documentation on how to {r.choice(HOWTOS)}?",
                f"We are planning the {r.choice(BUSINESS)} and want to check the limits of the {c}.",
                f"What is the recommended size for a {c} with {r.randint(2, 500)} GB of data?",
                f"Does the {r.choice(PLANS)} plan include a {c}?",
            ]
        )
    return r.choice(
        [
            f"Since {_hhmm(r)} UTC our {c} {_host(r)} in {r.choice(REGIONS)} {s}.",
            f"This started right after {r.choice(CHANGES)}.",
            f"It affects roughly {r.randint(1, 100)}% of requests to the {c}.",
            f"Our customers are reporting {r.choice(IMPACTS)}.",
            f"We already tried {r.choice(TRIED)} without success.",
            f"The error message is: {r.choice(ERRORS)}.",
            f"Request id req-{r.getrandbits(32):08x} shows the failure at {_hhmm(r)}.",
            f"Please escalate, this is blocking our {r.choice(BUSINESS)}.",
            f"Could you look at the {c} metrics for the last {r.randint(2, 48)} hours?",
            "Nothing changed on our side as far as we know.",
            f"The {c} in {r.choice(REGIONS)} is fine, only {_host(r)} is affected.",
            f"We see {r.choice(ERRORS)} in the application logs every few minutes.",
        ]
    )


def subject_for(r: random.Random, category: str) -> str:
    c, s = _component(r), _symptom(r)
    if category == "billing":
        return r.choice(
            [
                f"Invoice INV-{r.randint(2023, 2025)}-{r.randint(1, 12):02d} shows {r.choice(BILLING_ISSUES)}",
                f"Question about {r.choice(BILLING_TOPICS)}",
                f"Refund for {r.choice(BILLING_ISSUES)}",
                f"Update payment method: {r.choice(['card expired', 'switch to invoice', 'new purchase order'])}",
            ]
        )
    if category == "account":
        return r.choice(
            [
                f"Add {r.choice(IDPS)} SSO for our subsidiary",
                f"Reset MFA for {r.choice(FIRST_NAMES)} {r.choice(LAST_NAMES)}",
                "Remove access for a former employee",
                f"API token permissions for the {r.choice(TEAMS)}",
                f"{r.choice(IDPS)} login fails with invalid SAML response",
            ]
        )
    if category == "security":
        return r.choice(
            [
                f"Possible {r.choice(THREATS)} on {c}",
                f"CVE-{r.randint(2021, 2025)}-{r.randint(1000, 49999)} affecting {c}",
                "Leaked access key in a public repository",
                f"Audit log export for {r.choice(COMPLIANCE)}",
            ]
        )
    if category == "general":
        return r.choice(
            [f"How to {r.choice(HOWTOS)}", f"Question about the {c}", f"Limits of the {c} on {r.choice(PLANS)}"]
        )
    return r.choice(
        [
            f"{c.capitalize()} {s} in {r.choice(REGIONS)}",
            f"{c.capitalize()} {_host(r)} {s}",
            f"{c.capitalize()} {s} after {r.choice(CHANGES)}",
            f"{r.choice(ERRORS)} from {c}",
            f"Urgent: {c} {s}",
        ]
    )


def agent_reply(r: random.Random) -> str:
    c = _component(r)
    return r.choice(
        [
            f"Thanks for the report, we are looking into the {c} now.",
            f"We identified {r.choice(CAUSES)} and applied a fix; please check on your side.",
            f"Could you share the {r.choice(ARTIFACTS)} from around {_hhmm(r)} UTC?",
            f"The issue was caused by {r.choice(CAUSES)}. It is resolved now.",
            f"We escalated this to the {r.choice(TEAMS)}; next update within {r.randint(1, 8)} hours.",
            f"We moved {_host(r)} to a healthy host in {r.choice(REGIONS)}.",
            f"The credit note for {r.choice(BILLING_ISSUES)} has been issued.",
            f"You can {r.choice(HOWTOS)} from the console under Settings; see the linked guide.",
        ]
    )


def customer_reply(r: random.Random) -> str:
    return r.choice(
        [
            "Thanks, it works again on our side.",
            f"We still see {r.choice(ERRORS)} on {_host(r)}.",
            f"Attached the {r.choice(ARTIFACTS)} you asked for.",
            "Any update on this? It is still affecting production.",
            f"The {_component(r)} {_symptom(r)} again since {_hhmm(r)} UTC.",
            "Confirmed, the invoice looks right now. Thank you!",
            f"Can we schedule a call with the {r.choice(TEAMS)} tomorrow?",
        ]
    )


def internal_note(r: random.Random) -> str:
    return r.choice(
        [
            f"Customer is on the {r.choice(PLANS)} plan; escalate to the {r.choice(TEAMS)} if it recurs.",
            f"Root cause looks like {r.choice(CAUSES)}; postmortem to follow.",
            f"Same pattern as the incident on {_host(r)} last month.",
            "Offer a service credit if the SLA is breached.",
        ]
    )


@dataclass
class TextPools:
    """Pre-generated sentences: a ticket picks a few, so generating 1M tickets stays cheap.

    Each pool entry was filled from the vocabulary at random (hosts, regions, ids, errors), so word
    frequencies follow the vocabulary's Zipf-like weights; per-ticket request ids keep the number of
    distinct lexemes growing with the data, as real ticket text does.
    """

    description: dict[str, list[str]]
    subject: dict[str, list[str]]
    agent: list[str]
    customer: list[str]
    internal: list[str]

    @classmethod
    def build(cls, seed: int, size: int = 20000) -> TextPools:
        r = random.Random(seed)
        return cls(
            description={c: [description_sentence(r, c) for _ in range(size)] for c in CATEGORIES},
            subject={c: [subject_for(r, c) for _ in range(size)] for c in CATEGORIES},
            agent=[agent_reply(r) for _ in range(size)],
            customer=[customer_reply(r) for _ in range(size)],
            internal=[internal_note(r) for _ in range(size // 4)],
        )


def search_terms(count: int, seed: int) -> list[str]:
    """What customers type: one full word and a prefix of a second (search as you type)."""
    r = random.Random(seed)
    words = sorted(
        {
            w
            for phrase in COMPONENTS + SYMPTOMS + CHANGES + IMPACTS + BILLING_TOPICS + THREATS
            for w in re.findall(r"[a-z]{4,}", phrase)
        }
        - {"with", "from", "after", "over", "being", "does", "again", "very"}
    )
    terms = []
    for _ in range(count):
        first = r.choice(words)
        second = r.choice(words)
        cut = max(3, min(len(second) - 1, r.randint(3, 6)))
        terms.append(f"{first} {second[:cut]}")
    return terms


# --------------------------------------------------------------------------------------------------
# Seeding
# --------------------------------------------------------------------------------------------------

STATUS_BY_AGE = [  # (max age in days, {status: weight})
    (3, {"open": 45, "in_progress": 27, "waiting_on_customer": 15, "resolved": 10, "closed": 3}),
    (30, {"open": 28, "in_progress": 17, "waiting_on_customer": 12, "resolved": 33, "closed": 10}),
    (90, {"open": 24, "in_progress": 7, "waiting_on_customer": 6, "resolved": 50, "closed": 13}),
    # Closed tickets are purged after TICKET_RETENTION_DAYS (90): older tickets are resolved, not closed.
    (10**6, {"open": 24, "in_progress": 6, "waiting_on_customer": 5, "resolved": 65, "closed": 0}),
]
PRIORITIES = {"critical": 4, "high": 18, "medium": 50, "low": 28}
CATEGORIES = {"technical": 45, "general": 20, "billing": 15, "account": 12, "security": 8}
CATEGORY_QUEUE = {
    "general": "support",
    "technical": "infrastructure",
    "billing": "billing",
    "account": "support",
    "security": "security",
}
PRIORITY_LABEL = {"critical": "Critical", "high": "High", "medium": "Medium", "low": "Low"}

STAGE_TICKET_COLUMNS = (
    "id",
    "organization_id",
    "number",
    "subject",
    "description",
    "status",
    "priority",
    "category",
    "queue",
    "requester_id",
    "assignee_id",
    "created",
    "updated",
    "first_response",
    "resolved",
    "closed",
    "paused",
    "fr_due",
    "fr_warn",
    "fr_warned",
    "fr_breached",
    "res_due",
    "res_warn",
    "res_warned",
    "res_breached",
)
STAGE_COMMENT_COLUMNS = ("id", "organization_id", "ticket_id", "author_id", "body", "internal", "by_agent", "created")


@dataclass
class Plan:
    """Everything the chunk workers need (inherited through fork)."""

    seed: int
    now: float
    ticket_base: int  # first ticket id - 1
    comment_base: int
    ts: list[float]  # created_at of ticket i (sorted)
    org_index: list[int]
    number: list[int]
    ncomments: list[int]
    comment_offset: list[int]  # comment ids of ticket i start at comment_base + comment_offset[i] + 1
    org_ids: list[int]
    org_members: list[list[int]]
    org_agents: list[list[int]]
    policies: dict  # priority -> (first_response_minutes, resolution_minutes, calendar or None)
    pools: TextPools | None = None
    chunks: list[tuple[int, int]] = field(default_factory=list)
    replica: bool = True


def _esc(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\t", " ").replace("\n", "\\n").replace("\r", "")


def _ts(x: float | None) -> str:
    return "\\N" if x is None else f"{x:.6f}"


def _deadlines(plan: Plan, priority: str, started: float) -> tuple[float, float, float, float]:
    """First-response due/warn and resolution due/warn, as tickets.services._sla_recompute sets them."""
    first, resolution, calendar = plan.policies[priority]
    if calendar is None:  # 24x7: sla.add_business_seconds is start + seconds
        return (
            started + first * 60,
            started + first * 60 * 0.8,
            started + resolution * 60,
            started + resolution * 60 * 0.8,
        )
    from tickets import sla

    start = datetime.fromtimestamp(started, UTC)
    fr = sla.deadlines(started_at=start, target_minutes=first, paused_seconds=0, calendar=calendar)
    res = sla.deadlines(started_at=start, target_minutes=resolution, paused_seconds=0, calendar=calendar)
    return fr.due_at.timestamp(), fr.warn_at.timestamp(), res.due_at.timestamp(), res.warn_at.timestamp()


def generate_chunk(plan: Plan, lo: int, hi: int) -> tuple[list[str], list[str]]:
    """TSV lines for the ticket and comment stage tables, tickets lo..hi-1 (deterministic per chunk)."""
    r = random.Random(plan.seed * 1_000_003 + lo)
    pools = plan.pools
    now = plan.now
    statuses_by_age = [(age, list(w), list(itertools.accumulate(w.values()))) for age, w in STATUS_BY_AGE]
    prios, prio_cum = list(PRIORITIES), list(itertools.accumulate(PRIORITIES.values()))
    cats, cat_cum = list(CATEGORIES), list(itertools.accumulate(CATEGORIES.values()))
    choice, rand, uniform, lognorm = r.choice, r.random, r.uniform, r.lognormvariate
    tickets: list[str] = []
    comments: list[str] = []
    for i in range(lo, hi):
        tid = plan.ticket_base + i + 1
        oi = plan.org_index[i]
        org_id = plan.org_ids[oi]
        members, agents = plan.org_members[oi], plan.org_agents[oi]
        created = plan.ts[i]
        age = (now - created) / DAY
        for max_age, names, cum in statuses_by_age:
            if age <= max_age:
                status = r.choices(names, cum_weights=cum)[0]
                break
        priority = r.choices(prios, cum_weights=prio_cum)[0]
        category = r.choices(cats, cum_weights=cat_cum)[0]
        requester = choice(members)
        assignee = choice(agents) if (status != "open" or rand() < 0.3) else None
        fr_due, fr_warn, res_due, res_warn = _deadlines(plan, priority, created)
        fr_target = fr_due - created
        res_target = res_due - created

        # Timeline: when the conversation ends (resolution, a question to the customer, or now).
        resolved = closed = paused = None
        if status in ("resolved", "closed"):
            resolved = min(now - 60, created + lognorm(math.log(res_target * 0.5), 0.9))
            resolved = max(resolved, created + 60)
            if status == "closed":
                closed = resolved if rand() < 0.3 else min(now - 30, resolved + uniform(600, 3 * DAY))
                closed = max(closed, resolved)
            end = closed or resolved
            paused = resolved
        elif status == "waiting_on_customer":
            end = created + (now - created) * uniform(0.2, 1.0)
            paused = end
        else:
            end = created + (now - created) * uniform(0.1, 1.0) if age > 1 else now
        end = max(end, created + 1)

        # Conversation: the agent usually answers first; some agent comments are internal notes.
        k = plan.ncomments[i]
        first_response = None
        last_time = created
        if k:
            first_delay = min(end - created, lognorm(math.log(max(fr_target * 0.3, 60)), 0.8))
            times = [created + first_delay, *sorted(uniform(created + first_delay, end) for _ in range(k - 1))]
            cid = plan.comment_base + plan.comment_offset[i]
            agent_first = rand() < 0.85
            for j, at in enumerate(times):
                cid += 1
                by_agent = (j % 2 == 0) == agent_first
                if by_agent:
                    author = assignee or choice(agents)
                    internal = j > 0 and rand() < 0.12
                    body = choice(pools.internal) if internal else choice(pools.agent)
                    if not internal and first_response is None:
                        first_response = at
                else:
                    author = requester if rand() < 0.8 else choice(members)
                    internal = False
                    body = choice(pools.customer)
                if rand() < 0.3:
                    body += " " + (choice(pools.agent) if by_agent else choice(pools.description[category]))
                comments.append(
                    f"{cid}\t{org_id}\t{tid}\t{author}\t{_esc(body)}\t{'t' if internal else 'f'}\t"
                    f"{'t' if by_agent else 'f'}\t{at:.6f}\n"
                )
                last_time = at
        updated = max(created, last_time, resolved or 0, closed or 0)

        # What the SLA sweeper would have stamped by now (it only fires while the clock runs).
        fr_stop = first_response or paused or now
        res_stop = resolved or paused or now
        fr_warned = fr_warn + 20 if fr_warn < fr_stop else None
        fr_breached = fr_due + 20 if fr_due < fr_stop else None
        res_warned = res_warn + 20 if res_warn < res_stop else None
        res_breached = res_due + 20 if res_due < res_stop else None

        parts = r.choices(pools.description[category], k=r.randint(2, 5))
        if category == "technical" and rand() < 0.4:  # unique tokens, as real tickets have
            parts.append(
                f"Request id req-{r.getrandbits(32):08x} at {r.randint(0, 23):02d}:{r.randint(0, 59):02d} UTC."
            )
        if len(parts) > 3:  # a paragraph break, as people type them
            description = " ".join(parts[:2]) + "\n\n" + " ".join(parts[2:])
        else:
            description = " ".join(parts)
        tickets.append(
            "\t".join(
                (
                    str(tid),
                    str(org_id),
                    str(plan.number[i]),
                    _esc(choice(pools.subject[category])),
                    _esc(description),
                    status,
                    priority,
                    category,
                    CATEGORY_QUEUE[category],
                    str(requester),
                    str(assignee) if assignee else "\\N",
                    _ts(created),
                    _ts(updated),
                    _ts(first_response),
                    _ts(resolved),
                    _ts(closed),
                    _ts(paused),
                    _ts(fr_due),
                    _ts(fr_warn),
                    _ts(fr_warned),
                    _ts(fr_breached),
                    _ts(res_due),
                    _ts(res_warn),
                    _ts(res_warned),
                    _ts(res_breached),
                )
            )
            + "\n"
        )
    return tickets, comments


# The INSERT ... SELECT that moves a chunk from the stage tables into the real ones. comment_count and
# search_vector are computed here, set-based; the vector is the expression of
# tickets.services.ticket_search_refresh (replies: the public comments' bodies joined with ' ', in
# conversation order: created_at, id, as the service's string_agg orders them).
INSERT_TICKETS = """
INSERT INTO tickets_ticket (
    id, public_id, number, subject, description, status, priority, category, queue, created_at, updated_at,
    first_response_at, resolved_at, closed_at, comment_count, sla_started_at, sla_paused_at, sla_paused_seconds,
    first_response_due_at, first_response_warn_at, first_response_warned_at, first_response_breached_at,
    resolution_due_at, resolution_warn_at, resolution_warned_at, resolution_breached_at, search_vector,
    assignee_id, organization_id, requester_id)
SELECT s.id, gen_random_uuid(), s.number, s.subject, s.description, s.status, s.priority, s.category, s.queue,
    to_timestamp(s.created), to_timestamp(s.updated), to_timestamp(s.first_response), to_timestamp(s.resolved),
    to_timestamp(s.closed), coalesce(c.n, 0), to_timestamp(s.created), to_timestamp(s.paused), 0,
    to_timestamp(s.fr_due), to_timestamp(s.fr_warn), to_timestamp(s.fr_warned), to_timestamp(s.fr_breached),
    to_timestamp(s.res_due), to_timestamp(s.res_warn), to_timestamp(s.res_warned), to_timestamp(s.res_breached),
    setweight(to_tsvector('english', s.subject), 'A') || setweight(to_tsvector('simple', s.subject), 'A')
    || setweight(to_tsvector('english', s.description), 'B')
    || setweight(to_tsvector('simple', s.description), 'B')
    || setweight(to_tsvector('english', coalesce(c.replies, '')), 'C')
    || setweight(to_tsvector('simple', coalesce(c.replies, '')), 'C'),
    s.assignee_id, s.organization_id, s.requester_id
FROM bench_stage_ticket s
LEFT JOIN (
    SELECT ticket_id, count(*) AS n, string_agg(body, ' ' ORDER BY created_at, id) AS replies
    FROM tickets_comment WHERE id > %(clo)s AND id <= %(chi)s AND NOT internal GROUP BY ticket_id
) c ON c.ticket_id = s.id
ORDER BY s.id
"""
INSERT_COMMENTS = """
INSERT INTO tickets_comment (id, public_id, body, internal, by_agent, created_at, author_id, organization_id, ticket_id)
SELECT id, gen_random_uuid(), body, internal, by_agent, to_timestamp(created), author_id, organization_id, ticket_id
FROM bench_stage_comment ORDER BY id
"""
# What the services write besides: the requester follows the ticket (ticket_create), and the audit trail
# has the creation, the assignment and the status change.
INSERT_FOLLOWERS = """
INSERT INTO tickets_ticketfollower (organization_id, ticket_id, user_id, created_at)
SELECT organization_id, id, requester_id, to_timestamp(created) FROM bench_stage_ticket ORDER BY id
"""
INSERT_CHANGES = """
INSERT INTO tickets_ticketchange (organization_id, ticket_id, actor_id, field, old_value, new_value, created_at)
SELECT organization_id, ticket_id, actor_id, field, old_value, new_value, created_at FROM (
    SELECT s.organization_id, s.id AS ticket_id, s.requester_id AS actor_id, 'created' AS field, '' AS old_value,
           initcap(s.priority) || ' priority' AS new_value, to_timestamp(s.created) AS created_at, 0 AS k
    FROM bench_stage_ticket s
    UNION ALL
    SELECT s.organization_id, s.id, s.assignee_id, 'assignee', '',
           coalesce(nullif(trim(u.first_name || ' ' || u.last_name), ''), u.username),
           to_timestamp(least(s.created + 300, s.updated)), 1
    FROM bench_stage_ticket s JOIN auth_user u ON u.id = s.assignee_id
    UNION ALL
    SELECT s.organization_id, s.id, s.assignee_id, 'status', 'open', s.status,
           to_timestamp(coalesce(s.closed, s.resolved, s.paused, s.updated)), 2
    FROM bench_stage_ticket s WHERE s.status <> 'open'
) x ORDER BY ticket_id, k
"""


def _stage_tables(cur) -> None:
    cur.execute(
        """
        CREATE TEMP TABLE IF NOT EXISTS bench_stage_ticket (
            id bigint, organization_id bigint, number integer, subject text, description text, status text,
            priority text, category text, queue text, requester_id integer, assignee_id integer,
            created float8, updated float8, first_response float8, resolved float8, closed float8, paused float8,
            fr_due float8, fr_warn float8, fr_warned float8, fr_breached float8,
            res_due float8, res_warn float8, res_warned float8, res_breached float8)
        """
    )
    cur.execute(
        """
        CREATE TEMP TABLE IF NOT EXISTS bench_stage_comment (
            id bigint, organization_id bigint, ticket_id bigint, author_id integer, body text,
            internal boolean, by_agent boolean, created float8)
        """
    )


def _try_replica(cur) -> bool:
    """Skip FK triggers while loading (ids are consistent by construction; checked afterwards)."""
    try:
        cur.execute("SAVEPOINT replica")
        cur.execute("SET session_replication_role = replica")
        cur.execute("RELEASE SAVEPOINT replica")
        return True
    except Exception:
        cur.execute("ROLLBACK TO SAVEPOINT replica")
        return False


def load_chunks(plan: Plan, chunk_ids: list[int], progress: mp.Queue | None) -> None:
    """Worker: generate, COPY and insert the given chunks (one transaction per chunk)."""
    conn = pg_connect()
    with conn.cursor() as cur:
        cur.execute("SET synchronous_commit = off")
        if plan.replica:
            _try_replica(cur)
        _stage_tables(cur)
        conn.commit()
        for ci in chunk_ids:
            lo, hi = plan.chunks[ci]
            t0 = time.perf_counter()
            tickets, comments = generate_chunk(plan, lo, hi)
            t1 = time.perf_counter()
            cur.execute("TRUNCATE bench_stage_ticket, bench_stage_comment")
            with cur.copy(f"COPY bench_stage_ticket ({', '.join(STAGE_TICKET_COLUMNS)}) FROM STDIN") as copy:
                for block in range(0, len(tickets), 2000):
                    copy.write("".join(tickets[block : block + 2000]))
            with cur.copy(f"COPY bench_stage_comment ({', '.join(STAGE_COMMENT_COLUMNS)}) FROM STDIN") as copy:
                for block in range(0, len(comments), 4000):
                    copy.write("".join(comments[block : block + 4000]))
            t2 = time.perf_counter()
            cur.execute(INSERT_COMMENTS)
            clo = plan.comment_base + plan.comment_offset[lo]
            chi = plan.comment_base + plan.comment_offset[hi - 1] + plan.ncomments[hi - 1]
            t3 = time.perf_counter()
            cur.execute(INSERT_TICKETS, {"clo": clo, "chi": chi})
            t3b = time.perf_counter()
            cur.execute(INSERT_FOLLOWERS)
            cur.execute(INSERT_CHANGES)
            conn.commit()
            t4 = time.perf_counter()
            msg = (ci, hi - lo, len(comments), t1 - t0, t2 - t1, t3b - t3, (t3 - t2) + (t4 - t3b))
            if progress is not None:
                progress.put(msg)
    conn.close()


def _saved_indexes(cur) -> list[tuple[str, str, str]]:
    cur.execute(f"CREATE TABLE IF NOT EXISTS {SAVED_INDEXES} (tablename text, indexname text, indexdef text)")
    cur.execute(f"SELECT tablename, indexname, indexdef FROM {SAVED_INDEXES} ORDER BY tablename, indexname")
    return cur.fetchall()


def restore_indexes(conn, quiet: bool = False) -> float:
    """(Re)create the secondary indexes the seeder dropped (also after an interrupted seed)."""
    started = time.perf_counter()
    with conn.cursor() as cur:
        saved = _saved_indexes(cur)
        conn.commit()
        for table, name, definition in saved:
            t0 = time.perf_counter()
            cur.execute("SET maintenance_work_mem = '512MB'")
            cur.execute("SELECT 1 FROM pg_indexes WHERE schemaname = current_schema() AND indexname = %s", [name])
            if cur.fetchone() is None:
                cur.execute(definition)
            cur.execute(f"DELETE FROM {SAVED_INDEXES} WHERE indexname = %s", [name])
            conn.commit()
            if not quiet:
                print(f"  index {name} on {table}: {time.perf_counter() - t0:.1f}s", flush=True)
    return time.perf_counter() - started


def drop_secondary_indexes(conn) -> list[str]:
    """Drop the non-constraint indexes of the big tables, remembering their definitions in the database."""
    with conn.cursor() as cur:
        _saved_indexes(cur)
        cur.execute(
            """
            SELECT i.tablename, i.indexname, i.indexdef FROM pg_indexes i
            WHERE i.schemaname = current_schema() AND i.tablename = ANY(%s)
              AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)
            """,
            [list(BIG_TABLES)],
        )
        rows = cur.fetchall()
        for table, name, definition in rows:
            cur.execute(f"INSERT INTO {SAVED_INDEXES} VALUES (%s, %s, %s)", [table, name, definition])
            cur.execute(f'DROP INDEX "{name}"')
    conn.commit()
    return [name for _, name, _ in rows]


def bench_org_ids(cur) -> list[int]:
    cur.execute("SELECT id FROM portal_organization WHERE slug LIKE 'bench-%%'")
    return [row[0] for row in cur.fetchall()]


def reset(verbose: bool = True) -> None:
    """Remove every bench-* organization and user, with their tickets, without touching other data."""
    django_setup()
    from django.contrib.auth import get_user_model

    from portal.models import Organization

    t0 = time.perf_counter()
    conn = pg_connect()
    restore_indexes(conn, quiet=not verbose)
    with conn.cursor() as cur:
        orgs = bench_org_ids(cur)
        if orgs:
            cur.execute("SELECT count(*) FROM tickets_ticket WHERE organization_id <> ALL(%s)", [orgs])
            others = cur.fetchone()[0]
            cur.execute("SELECT count(*) FROM tickets_ticketcounter WHERE organization_id <> ALL(%s)", [orgs])
            others += cur.fetchone()[0]
            if others == 0:
                # Only bench data in the ticket tables: TRUNCATE is instant and leaves no bloat.
                cur.execute(
                    "TRUNCATE tickets_attachment, tickets_ticketchange, tickets_ticketfollower, tickets_comment, "
                    "tickets_ticket, tickets_ticketcounter"
                )
            else:
                for table in (
                    "tickets_attachment",
                    "tickets_ticketchange",
                    "tickets_ticketfollower",
                    "tickets_comment",
                    "tickets_ticket",
                    "tickets_ticketcounter",
                ):
                    cur.execute(f"DELETE FROM {table} WHERE organization_id = ANY(%s)", [orgs])
            cur.execute("DELETE FROM portal_event WHERE organization_id = ANY(%s)", [orgs])
        conn.commit()
    conn.close()
    # Whatever else refers to them (memberships, tokens, notifications, ...) goes through Django's cascade.
    Organization.objects.filter(slug__startswith=BENCH_PREFIX).delete()
    get_user_model().objects.filter(username__startswith=BENCH_PREFIX).delete()
    if verbose:
        print(f"reset: removed {len(orgs)} bench organizations and their users in {time.perf_counter() - t0:.1f}s")


def seed(args: argparse.Namespace) -> None:
    django_setup()
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.db import transaction

    from portal.models import Membership, Organization
    from tickets import services
    from tickets.models import Priority

    User = get_user_model()
    if args.reset:
        reset()
    conn = pg_connect()
    restore_indexes(conn)
    with conn.cursor() as cur:
        if bench_org_ids(cur):
            sys.exit("seed: bench organizations exist already; add --reset to start over")
    print(machine_line())
    started = time.perf_counter()
    r = random.Random(args.seed)
    n, n_orgs = args.tickets, args.orgs

    # --- People: organizations, members (1 admin + members), a pool of support agents -----------------
    password = make_password(BENCH_PASSWORD)  # hashed once, reused by every bench account
    with transaction.atomic():
        agents = User.objects.bulk_create(
            User(
                username=f"{BENCH_PREFIX}agent-{a:03d}@securebase.example",
                email=f"{BENCH_PREFIX}agent-{a:03d}@securebase.example",
                first_name=r.choice(FIRST_NAMES),
                last_name=r.choice(LAST_NAMES),
                password=password,
                is_staff=True,
            )
            for a in range(1, args.agents + 1)
        )
        orgs = Organization.objects.bulk_create(
            Organization(
                slug=f"{BENCH_PREFIX}{o:04d}",
                name=f"{r.choice(COMPANY_WORDS)} {r.choice(COMPANY_SUFFIX)} {o:04d}",
            )
            for o in range(1, n_orgs + 1)
        )
        people = []
        for o in range(1, n_orgs + 1):
            for m in range(1, args.members + 1):
                first, last = r.choice(FIRST_NAMES), r.choice(LAST_NAMES)
                email = f"{BENCH_PREFIX}{o:04d}-{m}@{USER_DOMAIN}"
                people.append(User(username=email, email=email, first_name=first, last_name=last, password=password))
        people = User.objects.bulk_create(people, batch_size=2000)
        Membership.objects.bulk_create(
            (
                Membership(
                    organization=orgs[idx // args.members],
                    user=user,
                    role=Membership.Role.ADMIN if idx % args.members == 0 else Membership.Role.MEMBER,
                )
                for idx, user in enumerate(people)
            ),
            batch_size=2000,
        )
    t_people = time.perf_counter() - started
    print(
        f"people: {len(orgs):,} organizations, {len(people):,} members, {len(agents):,} agents in {t_people:.1f}s",
        flush=True,
    )

    # --- The plan: created_at for every ticket, sorted across organizations -----------------------------
    now = time.time()
    span = args.days * DAY
    ts = sorted(now - span + r.random() * (span - 600) for _ in range(n))
    per_org = [n // n_orgs + (1 if o < n % n_orgs else 0) for o in range(n_orgs)]
    org_index = [o for o, count in enumerate(per_org) for _ in range(count)]
    r.shuffle(org_index)
    counters = [1000] * n_orgs  # numbers start at 1001, as tickets.services._next_number hands them out
    number = []
    for oi in org_index:
        counters[oi] += 1
        number.append(counters[oi])
    mean = args.comments
    # 0..2*mean per ticket, uniform (mean exactly `mean` for whole numbers)
    ncomments = [r.randint(0, int(2 * mean)) for _ in range(n)] if mean else [0] * n
    offsets, total = [], 0
    for k in ncomments:
        offsets.append(total)
        total += k
    team = max(1, min(len(agents), args.team))
    agent_ids = [a.pk for a in agents]
    policies = {}
    for p in Priority.values:
        policy = services.sla_policy_for(p)
        policies[p] = (
            policy.first_response_minutes,
            policy.resolution_minutes,
            None if policy.calendar.always_open else policy.calendar,
        )
    with conn.cursor() as cur:
        cur.execute("SELECT coalesce(max(id), 0) FROM tickets_ticket")
        ticket_base = cur.fetchone()[0]
        cur.execute("SELECT coalesce(max(id), 0) FROM tickets_comment")
        comment_base = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM tickets_ticket")
        existing = cur.fetchone()[0]
    conn.commit()
    plan = Plan(
        seed=args.seed,
        now=now,
        ticket_base=ticket_base,
        comment_base=comment_base,
        ts=ts,
        org_index=org_index,
        number=number,
        ncomments=ncomments,
        comment_offset=offsets,
        org_ids=[o.pk for o in orgs],
        org_members=[[u.pk for u in people[o * args.members : (o + 1) * args.members]] for o in range(n_orgs)],
        org_agents=[r.sample(agent_ids, team) for _ in range(n_orgs)],
        policies=policies,
        pools=TextPools.build(args.seed),
        chunks=[(lo, min(n, lo + args.chunk)) for lo in range(0, n, args.chunk)],
        replica=not args.keep_triggers,
    )
    print(
        f"plan: {n:,} tickets over {args.days} days, {total:,} comments (mean {mean}/ticket), "
        f"{len(plan.chunks)} chunks of {args.chunk:,}, {args.jobs} job(s) in {time.perf_counter() - started - t_people:.1f}s",
        flush=True,
    )

    # --- Load -------------------------------------------------------------------------------------------
    dropped = []
    if n >= existing and not args.keep_indexes:
        dropped = drop_secondary_indexes(conn)
        print(
            f"dropped {len(dropped)} secondary indexes for the load (recreated below): {', '.join(dropped)}", flush=True
        )
    t_load = time.perf_counter()
    progress: mp.Queue = mp.get_context("fork").Queue()
    jobs = max(1, args.jobs)
    assignments = [list(range(j, len(plan.chunks), jobs)) for j in range(jobs)]
    ctx = mp.get_context("fork")
    workers = [ctx.Process(target=load_chunks, args=(plan, a, progress)) for a in assignments if a]
    for w in workers:
        w.start()
    done_t = done_c = 0
    gen = copy_t = ins_t = rest_t = 0.0
    for _ in range(len(plan.chunks)):
        while True:
            try:
                _, nt, nc, a, b, c, d = progress.get(timeout=5)
                break
            except Exception:
                if not any(w.is_alive() for w in workers):
                    sys.exit(
                        "seed: a loader process died; see the error above (indexes are restored by the next seed/reset)"
                    )
        done_t += nt
        done_c += nc
        gen, copy_t, ins_t, rest_t = gen + a, copy_t + b, ins_t + c, rest_t + d
        elapsed = time.perf_counter() - t_load
        print(
            f"  {done_t:>10,} tickets {done_c:>11,} comments  {elapsed:7.1f}s  "
            f"{done_t / elapsed:8,.0f} tickets/s {(done_t + done_c) / elapsed:9,.0f} tickets+comments/s",
            flush=True,
        )
    for w in workers:
        w.join()
        if w.exitcode:
            sys.exit(f"seed: a loader exited with {w.exitcode}")
    load_s = time.perf_counter() - t_load
    print(
        f"loaded in {load_s:.1f}s (CPU time summed over jobs: generate {gen:.1f}s, COPY {copy_t:.1f}s, "
        f"insert tickets+tsvector {ins_t:.1f}s, comments/followers/audit {rest_t:.1f}s)",
        flush=True,
    )

    # --- Indexes, sequences, counters, statistics -----------------------------------------------------------
    t_idx = time.perf_counter()
    restore_indexes(conn)
    idx_s = time.perf_counter() - t_idx
    with conn.cursor() as cur:
        for table in ("tickets_ticket", "tickets_comment", "tickets_ticketfollower", "tickets_ticketchange"):
            cur.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT coalesce(max(id), 1) FROM {table}))"
            )
        cur.execute(
            """
            INSERT INTO tickets_ticketcounter (organization_id, last_number)
            SELECT organization_id, max(number) FROM tickets_ticket WHERE organization_id = ANY(%s)
            GROUP BY organization_id
            ON CONFLICT (organization_id) DO UPDATE SET last_number = EXCLUDED.last_number
            """,
            [plan.org_ids],
        )
        # The FK triggers were skipped: prove the references hold.
        cur.execute(
            """
            SELECT (SELECT count(*) FROM tickets_comment c WHERE c.organization_id = ANY(%(o)s)
                      AND NOT EXISTS (SELECT 1 FROM tickets_ticket t WHERE t.id = c.ticket_id
                                      AND t.organization_id = c.organization_id)),
                   (SELECT count(*) FROM tickets_ticket t WHERE t.organization_id = ANY(%(o)s)
                      AND NOT EXISTS (SELECT 1 FROM portal_membership m WHERE m.user_id = t.requester_id
                                      AND m.organization_id = t.organization_id))
            """,
            {"o": plan.org_ids},
        )
        orphans = cur.fetchone()
        conn.commit()
    if any(orphans):
        sys.exit(
            f"seed: integrity check failed: {orphans[0]} comments without their ticket, {orphans[1]} foreign requesters"
        )
    conn.close()
    t_vac = time.perf_counter()
    aconn = pg_connect(autocommit=True)
    with aconn.cursor() as cur:
        for table in (*BIG_TABLES, "tickets_ticketcounter", "auth_user", "portal_membership", "portal_organization"):
            cur.execute(f"VACUUM (ANALYZE) {table}")
    vac_s = time.perf_counter() - t_vac
    total_s = time.perf_counter() - started
    with aconn.cursor() as cur:
        cur.execute(
            "SELECT (SELECT count(*) FROM tickets_ticketfollower WHERE organization_id = ANY(%(o)s)), "
            "(SELECT count(*) FROM tickets_ticketchange WHERE organization_id = ANY(%(o)s))",
            {"o": plan.org_ids},
        )
        followers, changes = cur.fetchone()
    rows = n + total + followers + changes
    print(f"indexes rebuilt in {idx_s:.1f}s, VACUUM ANALYZE {vac_s:.1f}s, integrity checked (0 orphans)")
    print(
        f"seed done in {total_s:.1f}s: {n:,} tickets, {total:,} comments, {followers:,} followers, {changes:,} audit rows "
        f"= {rows:,} rows, {rows / total_s:,.0f} rows/s overall ({n / total_s:,.0f} tickets/s; "
        f"load phase alone {(n + total + followers + changes) / load_s:,.0f} rows/s)"
    )
    verify_search_vectors(aconn, plan.org_ids, sample=args.verify)
    print_table_sizes(aconn)
    print(size_line(data_size(aconn)))
    aconn.close()


def verify_search_vectors(conn, org_ids: list[int], sample: int = 200) -> None:
    """Recompute the vector of a sample with the service's own function (rolled back) and compare."""
    if not sample or not org_ids:
        return
    from django.db import connection, transaction

    from tickets.services import ticket_search_refresh

    with conn.cursor() as cur:
        cur.execute(
            "WITH pick AS (SELECT id FROM tickets_ticket WHERE organization_id = ANY(%s) ORDER BY random() LIMIT %s) "
            "SELECT t.id, t.search_vector::text, t.comment_count, (SELECT count(*) FROM tickets_comment c "
            "WHERE c.ticket_id = t.id AND NOT c.internal) FROM tickets_ticket t JOIN pick ON pick.id = t.id",
            [org_ids, sample],
        )
        stored = cur.fetchall()
    mismatched = 0
    try:
        with transaction.atomic():
            for tid, vector, count, public in stored:
                ticket_search_refresh(ticket_id=tid)
                with connection.cursor() as cur:
                    cur.execute("SELECT search_vector::text FROM tickets_ticket WHERE id = %s", [tid])
                    if cur.fetchone()[0] != vector or count != public:
                        mismatched += 1
            raise _Rollback
    except _Rollback:
        pass
    print(
        f"verified: search_vector and comment_count of {len(stored)} random tickets equal what "
        f"tickets.services.ticket_search_refresh computes ({mismatched} mismatches)"
    )
    if mismatched:
        sys.exit("seed: search_vector differs from the service's; fix INSERT_TICKETS")


class _Rollback(Exception):
    pass


def print_table_sizes(conn) -> None:
    with conn.cursor() as cur:
        cur.execute(
            """
            SELECT c.relname, c.reltuples::bigint, pg_relation_size(c.oid), pg_indexes_size(c.oid),
                   pg_total_relation_size(c.oid)
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = current_schema() AND c.relkind = 'r'
              AND (c.relname LIKE 'tickets\\_%%' OR c.relname IN ('auth_user', 'portal_membership', 'portal_organization',
                   'portal_event', 'django_session'))
            ORDER BY pg_total_relation_size(c.oid) DESC
            """
        )
        print(f"  {'table':<26}{'rows':>12}{'heap':>11}{'indexes':>11}{'total':>11}")
        for name, rows, heap, idx, total in cur.fetchall():
            print(f"  {name:<26}{max(rows, 0):>12,}{fmt_bytes(heap):>11}{fmt_bytes(idx):>11}{fmt_bytes(total):>11}")
        cur.execute("SELECT pg_database_size(current_database())")
        print(f"  database total: {fmt_bytes(cur.fetchone()[0])}")


# --------------------------------------------------------------------------------------------------
# HTTP measurement
# --------------------------------------------------------------------------------------------------


class HttpClient:
    """A persistent HTTP/1.1 connection with a cookie jar (Secure cookies are sent over http too).

    The ``messages`` cookie is not kept: a browser shows and clears it on the page a POST redirects to,
    which the benchmark doesn't fetch; kept, it would grow with every create until Django spills it into
    the session (a session write per request).
    """

    IGNORED_COOKIES = frozenset({"messages"})

    def __init__(self, base_url: str, cookies: dict[str, str] | None = None, timeout: float = 60):
        parts = urllib.parse.urlsplit(base_url)
        self.scheme, self.host = parts.scheme, parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.timeout = timeout
        self.cookies = dict(cookies or {})
        self.conn: http.client.HTTPConnection | None = None
        self.reconnects = 0

    def _connect(self) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self.scheme == "https" else http.client.HTTPConnection
        self.conn = cls(self.host, self.port, timeout=self.timeout)
        self.conn.connect()
        return self.conn

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        hdrs = {"User-Agent": "tickets-bench/1", "Accept": "text/html,application/json;q=0.9,*/*;q=0.8"}
        if self.cookies:
            hdrs["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        hdrs.update(headers or {})
        hdrs = {k: v for k, v in hdrs.items() if v is not None}  # None: don't send (e.g. no Cookie for API calls)
        for attempt in (1, 2):
            conn = self.conn or self._connect()
            try:
                t0 = time.perf_counter()
                conn.request(method, path, body=body, headers=hdrs)
                resp = conn.getresponse()
                data = resp.read()
                elapsed = time.perf_counter() - t0
                break
            except (
                http.client.RemoteDisconnected,
                BrokenPipeError,
                ConnectionResetError,
                http.client.CannotSendRequest,
            ):
                conn.close()
                self.conn = None
                self.reconnects += 1
                if attempt == 2:
                    raise
        for cookie in resp.headers.get_all("Set-Cookie") or []:
            pair = cookie.split(";", 1)[0]
            name, _, value = pair.partition("=")
            if name.strip() in self.IGNORED_COOKIES:
                continue
            if "max-age=0" in cookie.lower() or value in ('""', ""):
                self.cookies.pop(name.strip(), None)
            else:
                self.cookies[name.strip()] = value.strip()
        if resp.getheader("Connection", "").lower() == "close":
            conn.close()
            self.conn = None
        return resp.status, resp, data, elapsed

    def close(self) -> None:
        if self.conn:
            self.conn.close()


def multipart(fields: list[tuple[str, str]], files: list[str] = ()) -> tuple[bytes, str]:
    boundary = f"----benchboundary{uuid.uuid4().hex}"
    out = []
    for name, value in fields:
        out.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name in files:  # an empty file input, as browsers send it
        out.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename=""\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n\r\n".encode()
        )
    out.append(f"--{boundary}--\r\n".encode())
    return b"".join(out), f"multipart/form-data; boundary={boundary}"


def login(base_url: str, username: str, password: str) -> dict[str, str]:
    client = HttpClient(base_url)
    status, _, _, _ = client.request("GET", "/accounts/login/")
    if status != 200 or "csrftoken" not in client.cookies:
        sys.exit(f"run: GET /accounts/login/ answered {status} without a csrftoken cookie")
    body = urllib.parse.urlencode(
        {
            "username": username,
            "password": password,
            "csrfmiddlewaretoken": client.cookies["csrftoken"],
            "next": "/tickets/",
        }
    ).encode()
    status, _, _, _ = client.request(
        "POST",
        "/accounts/login/",
        body,
        {
            "Content-Type": "application/x-www-form-urlencoded",
            "Origin": client.origin,
            "Referer": client.origin + "/accounts/login/",
        },
    )
    if status != 302 or "sessionid" not in client.cookies:
        sys.exit(f"run: login as {username} failed ({status}); is the server using the bench database?")
    client.close()
    return client.cookies


class CpuMeter:
    """CPU time of the measured server and of its PostgreSQL backends, from /proc (same machine only).

    On a shared machine wall-clock latency includes waiting for a CPU; the CPU time a request costs does
    not, so it is the number to compare between runs taken under different load. The server is the
    process listening on the --base-url port (and its children); the backends are every
    ``postgres: <user> <bench database> ...`` process. Polled every 0.2 s so that backends which close
    their connection mid-run (CONN_MAX_AGE) are still counted.
    """

    def __init__(self, port: int, dbname: str):
        self.dbname = dbname
        self.server_pids = self._listeners(port)
        self.tick = os.sysconf("SC_CLK_TCK")
        self.first: dict[int, float] = {}
        self.last: dict[int, tuple[str, float]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @staticmethod
    def _listeners(port: int) -> list[int]:
        try:
            import psutil
        except ImportError:
            return []
        pids = set()
        with contextlib.suppress(Exception):
            for c in psutil.net_connections(kind="tcp"):
                if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port and c.pid:
                    pids.add(c.pid)
                    pids.update(ch.pid for ch in psutil.Process(c.pid).children(recursive=True))
        return sorted(pids)

    def _cpu(self, pid: int) -> float | None:
        try:
            with open(f"/proc/{pid}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / self.tick
        except (OSError, IndexError, ValueError):
            return None

    def _backends(self) -> list[int]:
        pids = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as fh:
                    cmd = fh.read(200)
            except OSError:
                continue
            if cmd.startswith(b"postgres: "):
                parts = cmd.split()
                if len(parts) > 2 and parts[2].decode(errors="replace") == self.dbname:
                    pids.append(int(entry))
        return pids

    def _sample(self, initial: bool = False) -> None:
        for kind, pids in (("app", self.server_pids), ("db", self._backends())):
            for pid in pids:
                cpu = self._cpu(pid)
                if cpu is None:
                    continue
                if initial:
                    self.first[pid] = cpu
                self.last[pid] = (kind, cpu)

    def _poll(self) -> None:
        while not self._stop.wait(0.2):
            self._sample()

    @property
    def available(self) -> bool:
        return bool(self.server_pids) and Path("/proc").is_dir()

    def start(self) -> None:
        self.first, self.last = {}, {}
        self._stop.clear()
        self._sample(initial=True)
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def stop(self) -> tuple[float, float]:
        """(server CPU seconds, database CPU seconds) since start()."""
        self._stop.set()
        if self._thread:
            self._thread.join()
        self._sample()
        used = {"app": 0.0, "db": 0.0}
        for pid, (kind, cpu) in self.last.items():
            used[kind] += cpu - self.first.get(pid, 0.0)  # a backend born during the run: all its CPU
        return used["app"], used["db"]


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[max(0, math.ceil(q * len(sorted_values)) - 1)]


@dataclass
class Result:
    name: str
    what: str
    times: list[float] = field(default_factory=list)
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    bytes: int = 0
    wall: float = 0.0
    queries: int | None = None
    load: tuple[float, float, float] = (0, 0, 0)
    reconnects: int = 0
    app_cpu: float | None = None  # seconds, whole run
    db_cpu: float | None = None
    probe: float | None = None  # cpu_probe() right after the endpoint, ms

    def stats(self) -> dict:
        t = sorted(x * 1000 for x in self.times)
        return {
            "n": len(t),
            "p50": percentile(t, 0.50),
            "p95": percentile(t, 0.95),
            "p99": percentile(t, 0.99),
            "max": t[-1] if t else float("nan"),
            "mean": statistics.fmean(t) if t else float("nan"),
            "rps": len(t) / self.wall if self.wall else float("nan"),
            "errors": self.errors,
            "avg_kb": self.bytes / max(1, len(t)) / 1024,
            "app_cpu_ms": None if self.app_cpu is None else self.app_cpu * 1000 / max(1, len(t)),
            "db_cpu_ms": None if self.db_cpu is None else self.db_cpu * 1000 / max(1, len(t)),
        }


@dataclass
class Target:
    org_slug: str
    username: str
    tickets: list[str]  # public ids, any status
    commentable: list[str]  # public ids of open / in-progress tickets (of the write organization)
    api_key: str
    write_org_slug: str
    write_username: str


def resolve_write_org(org_slug: str, write_org: str) -> str:
    """``auto``: the next bench organization (bench-0001 -> bench-0002) when it exists, else the same one.

    Writing elsewhere keeps the organization the reads are measured on exactly as seeded: every create
    adds a ticket and every comment bumps a ticket's updated_at, which would change the list pages
    from one run to the next.
    """
    if write_org != "auto":
        return write_org or org_slug
    from portal.models import Organization

    m = re.fullmatch(r"bench-(\d{4})", org_slug)
    if m:
        nxt = f"bench-{int(m.group(1)) % 9999 + 1:04d}"
        if Organization.objects.filter(slug=nxt).exists():
            return nxt
    return org_slug


def prepare_target(org_slug: str, member: int, write_org: str = "auto") -> Target:
    django_setup()
    from django.contrib.auth import get_user_model

    from portal import services as portal_services
    from portal.models import Membership, Organization
    from tickets.models import Ticket

    org = Organization.objects.filter(slug=org_slug).first()
    if org is None:
        sys.exit(f"run: organization {org_slug!r} not found; seed first")
    user = get_user_model().objects.get(username=f"{org_slug}-{member}@{USER_DOMAIN}")
    membership = Membership.objects.get(organization=org, user=user)
    _, key = portal_services.api_token_create(
        membership=membership, name=f"tickets bench {datetime.now(UTC):%Y-%m-%d %H:%M:%S}"
    )
    tickets = [str(p) for p in Ticket.objects.for_organization(org).values_list("public_id", flat=True)]
    write_slug = resolve_write_org(org_slug, write_org)
    write_org_obj = Organization.objects.get(slug=write_slug)
    commentable = [
        str(p)
        for p in Ticket.objects.for_organization(write_org_obj)
        .filter(status__in=["open", "in_progress"])
        .values_list("public_id", flat=True)
    ]
    return Target(
        org_slug, user.username, tickets, commentable, key, write_slug, f"{write_slug}-{member}@{USER_DOMAIN}"
    )


def endpoint_plan(target: Target, terms: list[str]) -> list[tuple[str, str, object]]:
    """(name, description, request factory): each factory returns method, path, body, headers."""
    r = random.Random(7)

    def list_full(_c):
        return "GET", "/tickets/?status=open&priority=high&sort=updated", None, {}

    def list_htmx(_c):
        return (
            "GET",
            "/tickets/?status=open&priority=high&sort=updated",
            None,
            {"HX-Request": "true", "HX-Target": "ticket-results"},
        )

    def list_all(_c):
        return "GET", "/tickets/", None, {}

    def api_list(_c):
        return (
            "GET",
            "/api/v1/tickets/?page_size=50&status=open&sort=priority",
            None,
            # An API client: the token only, none of the browser's cookies.
            {"Authorization": f"Token {target.api_key}", "Accept": "application/json", "Cookie": None},
        )

    def search(_c):
        return "GET", "/tickets/?" + urllib.parse.urlencode({"q": r.choice(terms)}), None, {}

    def search_htmx(_c):
        return "GET", "/tickets/?" + urllib.parse.urlencode({"q": r.choice(terms)}), None, {"HX-Request": "true"}

    def detail(_c):
        return "GET", f"/tickets/{r.choice(target.tickets)}/", None, {}

    def create(c):
        body, ctype = multipart(
            [
                ("csrfmiddlewaretoken", c.cookies.get("csrftoken", "")),
                ("subject", subject_for(r, "technical")),
                ("description", " ".join(description_sentence(r, "technical") for _ in range(3))),
                ("priority", r.choice(["low", "medium", "medium", "high"])),
                ("category", r.choice(list(CATEGORIES))),
            ],
            ["attachments"],
        )
        return (
            "POST",
            "/tickets/new/",
            body,
            {"Content-Type": ctype, "Origin": c.origin, "Referer": c.origin + "/tickets/new/"},
        )

    def comment(c):
        body, ctype = multipart([("body", customer_reply(r))], ["attachments"])
        pid = r.choice(target.commentable)
        return (
            "POST",
            f"/tickets/{pid}/comments/",
            body,
            {
                "Content-Type": ctype,
                "HX-Request": "true",
                "X-CSRFToken": c.cookies.get("csrftoken", ""),
                "Origin": c.origin,
                "Referer": f"{c.origin}/tickets/{pid}/",
            },
        )

    return [
        ("list", "GET /tickets/?status=open&priority=high&sort=updated (full page, 25 rows)", list_full),
        ("list_htmx", "same, htmx partial (HX-Request)", list_htmx),
        ("list_unfiltered", "GET /tickets/ (default page, no filter)", list_all),
        ("api_list", "GET /api/v1/tickets/?page_size=50&status=open&sort=priority (token)", api_list),
        ("search", "GET /tickets/?q=<word> <prefix> (full page)", search),
        ("search_htmx", "same, htmx partial (search as you type)", search_htmx),
        ("detail", "GET /tickets/<uuid>/ (random ticket of the org)", detail),
        ("create", "POST /tickets/new/ (multipart, 302)", create),
        ("comment", "POST /tickets/<uuid>/comments/ (htmx, open ticket)", comment),
    ]


def measure(
    base_url: str,
    cookies: dict,
    name: str,
    what: str,
    factory,
    requests: int,
    warmup: int,
    concurrency: int,
    meter: CpuMeter | None = None,
) -> Result:
    """Warm up sequentially (connection, caches, plans), then time ``requests`` requests on ``concurrency`` connections."""
    result = Result(name, what)
    warm = HttpClient(base_url, cookies)
    for _ in range(warmup):
        method, path, body, headers = factory(warm)
        with contextlib.suppress(Exception):
            warm.request(method, path, body, headers)
    warm.close()
    lock = threading.Lock()
    left = [requests]

    def worker() -> None:
        client = HttpClient(base_url, cookies)
        while True:
            with lock:
                if left[0] <= 0:
                    break
                left[0] -= 1
                method, path, body, headers = factory(client)
            try:
                status, _, data, elapsed = client.request(method, path, body, headers)
            except Exception as exc:
                status, data, elapsed = 599, str(exc).encode(), 0.0
            with lock:
                result.times.append(elapsed)
                result.bytes += len(data)
                if not 200 <= status < 400:
                    result.errors += 1
                    if len(result.error_samples) < 3:
                        result.error_samples.append(f"{status} {method} {path}: {data[:300]!r}")
        with lock:
            result.reconnects += client.reconnects
        client.close()

    if meter:
        meter.start()
    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result.wall = time.perf_counter() - t0
    if meter:
        result.app_cpu, result.db_cpu = meter.stop()
    result.load = os.getloadavg()
    result.probe = cpu_probe()
    return result


def print_results(results: list[Result], size: dict, header: str) -> None:
    print()
    print(header)
    print(size_line(size))
    print(
        f"{'endpoint':<16}{'n':>5}{'p50':>8}{'p95':>8}{'p99':>8}{'max':>8}{'mean':>8}{'req/s':>7}{'err':>5}{'KiB':>7}"
        f"{'queries':>8}{'app CPU':>9}{'db CPU':>8}{'probe':>7}  load(1m)"
    )
    for res in results:
        s = res.stats()
        q = "-" if res.queries is None else str(res.queries)
        app = "-" if s["app_cpu_ms"] is None else f"{s['app_cpu_ms']:.1f}"
        db = "-" if s["db_cpu_ms"] is None else f"{s['db_cpu_ms']:.1f}"
        probe = "-" if res.probe is None else f"{res.probe:.1f}"
        print(
            f"{res.name:<16}{s['n']:>5}{s['p50']:>8.1f}{s['p95']:>8.1f}{s['p99']:>8.1f}{s['max']:>8.1f}{s['mean']:>8.1f}"
            f"{s['rps']:>7.1f}{s['errors']:>5}{s['avg_kb']:>7.1f}{q:>8}{app:>9}{db:>8}{probe:>7}  {res.load[0]:.2f}"
        )
        for sample in res.error_samples:
            print(f"    error: {sample}")
    print(
        "(ms; p50/p95/p99 nearest-rank; errors = responses outside 2xx/3xx; app/db CPU = CPU ms per request of the "
        "server process and of its PostgreSQL backends, independent of how busy the machine is; probe = ms of CPU "
        "for a fixed Python workload right after the endpoint: the machine's speed at the time, lower is faster)"
    )


def markdown_results(results: list[Result], size: dict, header: str) -> str:
    lines = [
        f"**{header}**",
        "",
        size_line(size),
        "",
        "| endpoint | n | p50 ms | p95 ms | p99 ms | max ms | req/s | errors | queries | app CPU ms | db CPU ms | probe ms | load |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for res in results:
        s = res.stats()
        q = "-" if res.queries is None else str(res.queries)
        app = "-" if s["app_cpu_ms"] is None else f"{s['app_cpu_ms']:.1f}"
        db = "-" if s["db_cpu_ms"] is None else f"{s['db_cpu_ms']:.1f}"
        probe = "-" if res.probe is None else f"{res.probe:.1f}"
        lines.append(
            f"| {res.name} | {s['n']} | {s['p50']:.1f} | {s['p95']:.1f} | {s['p99']:.1f} | {s['max']:.1f} | "
            f"{s['rps']:.1f} | {s['errors']} | {q} | {app} | {db} | {probe} | {res.load[0]:.1f} |"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> list[Result]:
    target = prepare_target(args.org, args.member, args.write_org)
    if not target.commentable:
        sys.exit("run: the organization has no open ticket to comment on")
    terms = search_terms(40, seed=11)
    print(machine_line())
    print(code_line())
    print(
        f"target: {args.base_url}; reads as {target.username} ({args.org}), creates and comments as "
        f"{target.write_username} ({target.write_org_slug}); API_THROTTLE_RATE must be high on the server "
        f"(e.g. 1000000/hour), the API list is throttled at 100/hour per organization by default"
    )
    cookies = login(args.base_url, target.username, BENCH_PASSWORD)
    write_cookies = (
        cookies
        if target.write_username == target.username
        else login(args.base_url, target.write_username, BENCH_PASSWORD)
    )
    counts = {} if args.no_queries else query_counts(args.org, args.member, quiet=True, write_org=target.write_org_slug)
    results = []
    only = set(args.only.split(",")) if args.only else None
    parts = urllib.parse.urlsplit(args.base_url)
    meter = None
    if parts.hostname in ("127.0.0.1", "localhost", "::1") and not args.no_cpu:
        from django.db import connection

        meter = CpuMeter(parts.port or 80, connection.settings_dict["NAME"])
        if meter.available:
            print(f"CPU accounting: server pid(s) {meter.server_pids}, PostgreSQL backends of {meter.dbname}")
        else:
            meter = None
    for name, what, factory in endpoint_plan(target, terms):
        if only and name not in only:
            continue
        jar = write_cookies if name in ("create", "comment") else cookies
        res = measure(args.base_url, jar, name, what, factory, args.requests, args.warmup, args.concurrency, meter)
        res.queries = counts.get(name)
        s = res.stats()
        cpu = "" if s["app_cpu_ms"] is None else f"  CPU/req app {s['app_cpu_ms']:.1f} db {s['db_cpu_ms']:.1f} ms"
        print(
            f"  {name:<16} p50 {s['p50']:7.1f}  p95 {s['p95']:7.1f}  p99 {s['p99']:7.1f}  max {s['max']:7.1f} ms  "
            f"errors {s['errors']}{cpu}  load {res.load[0]:.2f}",
            flush=True,
        )
        results.append(res)
    conn = pg_connect(autocommit=True)
    size = data_size(conn, args.org)
    conn.close()
    header = f"{args.label or args.base_url}: {args.requests} requests per endpoint, concurrency {args.concurrency}, warm-up {args.warmup}"
    print_results(results, size, header)
    if counts:
        print(
            "queries per request (in-process, django.test.Client + CaptureQueriesContext): "
            + ", ".join(f"{k} {v}" for k, v in counts.items())
        )
    md = markdown_results(results, size, header)
    if args.markdown:
        with open(args.markdown, "a") as fh:
            fh.write(md + "\n\n")
    if args.json:
        with open(args.json, "a") as fh:
            fh.write(
                json.dumps(
                    {
                        "header": header,
                        "size": size,
                        "load": os.getloadavg(),
                        "results": {r.name: r.stats() | {"queries": r.queries, "probe_ms": r.probe} for r in results},
                    }
                )
                + "\n"
            )
    if any(r.errors for r in results):
        print("run: ERRORS above: every request must answer 2xx/3xx")
    broker_note()
    return results


def broker_note() -> None:
    """Creates and comments publish events; without a worker their dispatch messages wait in the broker."""
    from django.conf import settings

    with contextlib.suppress(Exception):
        import redis

        waiting = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_timeout=2).llen("celery")
        if waiting:
            print(
                f"note: {waiting:,} Celery messages wait in the 'celery' queue of {settings.CELERY_BROKER_URL} "
                f"(event dispatch for the bench's creates/comments; no worker runs). If that Redis db is shared, "
                f"a worker there would pick them up: remove them, or use REDIS_DB=<a db of your own>."
            )


# --------------------------------------------------------------------------------------------------
# Queries per request (in-process)
# --------------------------------------------------------------------------------------------------


TRANSACTION_CONTROL = {"BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE"}


def query_counts(
    org_slug: str,
    member: int,
    quiet: bool = False,
    explain: bool = False,
    verbose: bool = False,
    write_org: str = "auto",
) -> dict[str, int]:
    """Each endpoint through django.test.Client against the same database, counting queries."""
    django_setup()
    import logging

    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from portal import services as portal_services
    from portal.models import Membership, Organization
    from tickets.models import Ticket

    logging.getLogger("portal.request").setLevel(logging.WARNING)  # the JSON access log of every request
    org = Organization.objects.get(slug=org_slug)
    user = get_user_model().objects.get(username=f"{org_slug}-{member}@{USER_DOMAIN}")
    _, key = portal_services.api_token_create(
        membership=Membership.objects.get(organization=org, user=user), name="tickets bench queries"
    )
    host = (
        "testserver"
        if "testserver" in settings.ALLOWED_HOSTS or "*" in settings.ALLOWED_HOSTS
        else settings.ALLOWED_HOSTS[0]
    )
    client = Client(SERVER_NAME=host)
    client.force_login(user)
    some = Ticket.objects.for_organization(org).values_list("public_id", flat=True).first()
    write_slug = resolve_write_org(org_slug, write_org)
    writer = Client(SERVER_NAME=host)
    writer.force_login(get_user_model().objects.get(username=f"{write_slug}-{member}@{USER_DOMAIN}"))
    tickets = list(
        Ticket.objects.for_organization(Organization.objects.get(slug=write_slug))
        .filter(status__in=["open", "in_progress"])
        .values_list("public_id", flat=True)[:50]
    )
    # A term with hits in this organization, so the search page runs its row query as well as the count.
    from tickets.selectors import search_query

    candidates = search_terms(12, seed=11)
    term = next(
        (t for t in candidates if Ticket.objects.for_organization(org).filter(search_vector=search_query(t)).exists()),
        candidates[0],
    )
    r = random.Random(3)
    cases = [
        ("list", "get", "/tickets/?status=open&priority=high&sort=updated", {}, {}),
        ("list_htmx", "get", "/tickets/?status=open&priority=high&sort=updated", {}, {"HX-Request": "true"}),
        ("list_unfiltered", "get", "/tickets/", {}, {}),
        (
            "api_list",
            "get",
            "/api/v1/tickets/?page_size=50&status=open&sort=priority",
            {},
            {"Authorization": f"Token {key}"},
        ),
        ("search", "get", "/tickets/?" + urllib.parse.urlencode({"q": term}), {}, {}),
        ("search_htmx", "get", "/tickets/?" + urllib.parse.urlencode({"q": term}), {}, {"HX-Request": "true"}),
        ("detail", "get", f"/tickets/{some}/", {}, {}),
        (
            "create",
            "post",
            "/tickets/new/",
            {
                "subject": subject_for(r, "technical"),
                "description": description_sentence(r, "technical"),
                "priority": "high",
                "category": "technical",
            },
            {},
        ),
        ("comment", "post", f"/tickets/{tickets[1]}/comments/", {"body": customer_reply(r)}, {"HX-Request": "true"}),
    ]
    counts: dict[str, int] = {}
    plans: list[tuple[str, str, float]] = []
    api_client = Client(SERVER_NAME=host)  # API clients send the token only, no session cookie
    for name, method, path, data, headers in cases:
        c = api_client if path.startswith("/api/") else writer if method == "post" else client
        if method == "get":
            c.get(path, headers=headers)  # warm: first-request caches (content types, policies)
        with CaptureQueriesContext(connection) as ctx:
            response = getattr(c, method)(path, data=data, headers=headers) if data else c.get(path, headers=headers)
        ok = 200 <= response.status_code < 400
        if not ok:
            print(f"queries: {name} answered HTTP {response.status_code}; its query count is not meaningful")
        counts[name] = len(ctx.captured_queries)
        control = sum(1 for q in ctx.captured_queries if q["sql"].split(None, 1)[0].upper() in TRANSACTION_CONTROL)
        if not quiet:
            total_ms = sum(float(q["time"]) for q in ctx.captured_queries) * 1000
            extra = f" ({counts[name] - control} without BEGIN/COMMIT/SAVEPOINT)" if control else ""
            print(
                f"{name:<16}{counts[name]:>3} queries{extra}  {total_ms:5.0f} ms in the database  "
                f"HTTP {response.status_code}{'' if ok else '  <-- ERROR'}  {method.upper()} {path}"
            )
            if verbose:
                for q in ctx.captured_queries:
                    print(f"      {float(q['time']) * 1000:7.2f} ms  {q['sql'][:300]}")
        for q in ctx.captured_queries:
            sql = q["sql"]
            if explain and sql.lstrip().upper().startswith("SELECT") and "FOR UPDATE" not in sql.upper():
                plans.append((name, sql, float(q["time"]) * 1000))
    if explain:
        print("\nEXPLAIN (ANALYZE, BUFFERS) of every SELECT those requests ran:")
        with connection.cursor() as cur:
            for name, sql, ms in plans:
                cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
                plan = "\n".join(f"      {row[0]}" for row in cur.fetchall())
                print(f"\n[{name}] {ms:.2f} ms when captured\n  {sql[:600]}\n{plan}")
    return counts


# --------------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)

    def seed_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--orgs", type=int, default=1000)
        p.add_argument("--comments", type=float, default=3, help="mean comments per ticket (0..2×mean, uniform)")
        p.add_argument("--members", type=int, default=5, help="users per organization (the first is its admin)")
        p.add_argument("--agents", type=int, default=50, help="support agents (is_staff), the assignees")
        p.add_argument("--team", type=int, default=5, help="agents working on each organization's tickets")
        p.add_argument("--days", type=int, default=730, help="created_at spread")
        p.add_argument("--chunk", type=int, default=20000, help="tickets per COPY/INSERT chunk (one transaction)")
        p.add_argument("--jobs", type=int, default=2, help="loader processes")
        p.add_argument("--seed", type=int, default=42)
        p.add_argument("--keep-indexes", action="store_true", help="don't drop/recreate secondary indexes")
        p.add_argument("--keep-triggers", action="store_true", help="don't skip FK triggers (session_replication_role)")
        p.add_argument(
            "--verify", type=int, default=200, help="tickets whose search_vector is checked against the service"
        )

    p_seed = sub.add_parser("seed", help="seed bench organizations, users, tickets and comments")
    p_seed.add_argument("--tickets", type=int, default=1_000_000)
    p_seed.add_argument("--reset", action="store_true", help="remove earlier bench data first")
    seed_args(p_seed)

    sub.add_parser("reset", help="remove every bench-* organization and user")

    def run_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--base-url", default="http://127.0.0.1:8000")
        p.add_argument("--requests", type=int, default=300)
        p.add_argument("--warmup", type=int, default=20)
        p.add_argument("--concurrency", type=int, default=1)
        p.add_argument("--org", default="bench-0001")
        p.add_argument("--member", type=int, default=2, help="which member logs in (1 is the admin)")
        p.add_argument(
            "--write-org",
            default="auto",
            help="organization that creates and comments (auto: the next bench org, so --org stays as seeded)",
        )
        p.add_argument("--only", default="", help="comma-separated endpoints")
        p.add_argument("--label", default="")
        p.add_argument("--no-queries", action="store_true")
        p.add_argument("--no-cpu", action="store_true", help="don't read the server's CPU time from /proc")
        p.add_argument("--markdown", help="append a markdown table to this file")
        p.add_argument("--json", help="append one JSON line per run to this file")

    p_run = sub.add_parser("run", help="measure the endpoints over HTTP")
    run_args(p_run)

    p_q = sub.add_parser("queries", help="queries per request, in-process")
    p_q.add_argument("--org", default="bench-0001")
    p_q.add_argument("--member", type=int, default=2)
    p_q.add_argument("--write-org", default="auto")
    p_q.add_argument("--explain", action="store_true", help="EXPLAIN (ANALYZE, BUFFERS) every SELECT")
    p_q.add_argument("--verbose", action="store_true", help="print every query with its time")

    p_all = sub.add_parser("all", help="seed --reset and run at each size (default 10k/10 orgs, 1M/1000 orgs)")
    p_all.add_argument("--sizes", default="10000:10,1000000:1000", help="tickets:orgs,...")
    seed_args(p_all)
    run_args(p_all)

    args = parser.parse_args()
    for name in ("markdown", "json"):
        if getattr(args, name, None):
            setattr(args, name, os.path.abspath(getattr(args, name)))
    # Celery puts the working directory first on sys.path when portal.celery is imported: work from ROOT so
    # the application code comes from ROOT (BENCH_PROJECT_ROOT) and nowhere else.
    os.chdir(ROOT)
    if args.cmd == "seed":
        seed(args)
    elif args.cmd == "reset":
        reset()
    elif args.cmd == "run":
        run(args)
    elif args.cmd == "queries":
        counts = query_counts(
            args.org, args.member, explain=args.explain, verbose=args.verbose, write_org=args.write_org
        )
        over = {k: v for k, v in counts.items() if v > 8}
        print("over the 8-queries target: " + (", ".join(f"{k} ({v})" for k, v in over.items()) if over else "none"))
    elif args.cmd == "all":
        label = args.label
        for spec in args.sizes.split(","):
            tickets, orgs = (int(x) for x in spec.split(":"))
            args.tickets, args.orgs, args.reset = tickets, orgs, True
            seed(args)
            args.label = f"{label + ' ' if label else ''}{tickets:,} tickets / {orgs:,} orgs"
            run(args)


if __name__ == "__main__":
    main()
