"""Query limits: depth and complexity (a validation rule), page sizes, aliases and tokens.

Complexity counts every selected field once, times the page size of the connection it sits
in: ``tickets(first: 50) { edges { node { subject } } }`` costs 1 + 50 x 3. A ``first`` given
as a variable is unknown while validating, so it counts as the largest page. Introspection is
allowed and counted like any other query (the standard introspection query is well inside).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationRule,
)

from graphql_api import errors

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20
PAGINATED_FIELDS = frozenset({"tickets", "notifications"})  # connections: cost x page size
MAX_ALIASES = 30
MAX_TOKENS = 5000


def max_depth() -> int:
    return getattr(settings, "GRAPHQL_MAX_DEPTH", 15)


def max_complexity() -> int:
    return getattr(settings, "GRAPHQL_MAX_COMPLEXITY", 5000)


def page_size(first: int | None) -> int:
    if first is None:
        return DEFAULT_PAGE_SIZE
    if not 1 <= first <= MAX_PAGE_SIZE:
        raise errors.ApiError(f"first must be between 1 and {MAX_PAGE_SIZE}.", field="first")
    return first


def _multiplier(node: FieldNode) -> int:
    for argument in node.arguments or ():
        if argument.name.value == "first":
            if isinstance(argument.value, IntValueNode):
                return max(1, min(int(argument.value.value), MAX_PAGE_SIZE))
            return MAX_PAGE_SIZE
    return DEFAULT_PAGE_SIZE if node.name.value in PAGINATED_FIELDS else 1


class _Measure:
    def __init__(self, fragments: dict[str, FragmentDefinitionNode]) -> None:
        self.fragments = fragments

    def selections(self, selection_set: SelectionSetNode | None, visiting: frozenset[str]) -> tuple[int, int]:
        """(depth, cost) of a selection set."""
        depth = cost = 0
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, FieldNode):
                child_depth, child_cost = self.selections(selection.selection_set, visiting)
                depth = max(depth, 1 + child_depth)
                cost += 1 + _multiplier(selection) * child_cost
            elif isinstance(selection, InlineFragmentNode):
                d, c = self.selections(selection.selection_set, visiting)
                depth, cost = max(depth, d), cost + c
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if fragment is None or name in visiting:
                    continue  # unknown fragments and cycles are reported by the standard rules
                d, c = self.selections(fragment.selection_set, visiting | {name})
                depth, cost = max(depth, d), cost + c
        return depth, cost


class CostLimitRule(ValidationRule):
    def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
        fragments = {
            d.name.value: d for d in self.context.document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        depth, cost = _Measure(fragments).selections(node.selection_set, frozenset())
        if depth > max_depth():
            self.report_error(
                GraphQLError(
                    f"The query is {depth} levels deep; the limit is {max_depth()}.",
                    node,
                    extensions={"code": errors.QUERY_TOO_DEEP, "depth": depth, "limit": max_depth()},
                )
            )
        if cost > max_complexity():
            self.report_error(
                GraphQLError(
                    f"The query's complexity is {cost}; the limit is {max_complexity()}. "
                    "Ask for fewer fields or smaller pages (first).",
                    node,
                    extensions={"code": errors.QUERY_TOO_COMPLEX, "complexity": cost, "limit": max_complexity()},
                )
            )
