"""The SQL of ``query``: which filters each view takes, its time column and its order.

Everything here is generic over ``projections.tables.VIEWS``: a filter applies to a view
exactly when the view's table has the filter's column among its public fields
(``FILTER_COLUMNS``), so a view or column added to ``tables.py`` takes its filters with
no change here. ``VIEW_ORDER`` names each view's time column and total order; a view
not in it is ordered by its primary key and has no time column.

No SQL is built from a client's text: column names come only from ``FILTER_COLUMNS``,
``VIEW_ORDER`` and the tables; every value is a ``?`` parameter.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from projections import tables as t
from projections.query_columns import (
    DEFAULT_LIMIT,
    FILTER_COLUMNS,
    SEQ_COLUMN,
    VIEW_ORDER,
    ViewOrder,
    attrs_condition,
    filters_of,
    order_of,
    prefix_bounds,
    time_bound,
    time_key,
    utc_key,
)

if TYPE_CHECKING:
    from projections.query_params import ViewQuery

__all__ = [
    "DEFAULT_LIMIT",
    "FILTER_COLUMNS",
    "SEQ_COLUMN",
    "VIEW_ORDER",
    "ViewOrder",
    "build_sql",
    "count_sql",
    "filters_of",
    "order_of",
    "time_bound",
    "time_key",
    "where_sql",
]

def _time_conditions(column: str, kind: str, value: str, name: str,
                     op: str) -> tuple[list[str], list[Any]]:
    """``since`` (op ``>=``) or ``until`` (``<=``) on a view's time column."""
    if kind == "date":
        if len(value) != 10:
            time_bound(value, name)  # checked; the date as written is compared
        return [f"{column} {op} ?"], [value[:10]]
    moment = time_bound(value, name, end_of_day=op == "<=")
    return [f"{time_key(column)} {op} ?"], [utc_key(moment)]


def where_sql(q: ViewQuery, max_seq: int | None = None) -> tuple[str, list[Any]]:
    """`` WHERE ...`` (or ``""``) and its params for a checked query; ``max_seq`` keeps
    only the rows of an append-only view written by events up to that seq."""
    where: list[str] = []
    params: list[Any] = []
    if max_seq is not None:
        where.append(f"{SEQ_COLUMN[q.view]} <= ?")
        params.append(max_seq)
    for name, column in FILTER_COLUMNS.items():
        value = getattr(q, name)
        if value is None:
            continue
        if name == "symbol_prefix":
            low, high = prefix_bounds(value)
            where.append(f"{column} >= ? AND {column} < CAST(? AS TEXT)")
            params += [low, high]
        elif name == "attrs":
            for key, item in value.items():
                sql, more = attrs_condition(column, key, item)
                where.append(sql)
                params += more
        elif name == "updated_since":
            conditions, more = _time_conditions(column, "time", value, name, ">=")
            where += conditions
            params += more
        else:
            where.append(f"{column} = ?")
            params.append(value)
    spec = order_of(q.view)
    for name, op in (("since", ">="), ("until", "<=")):
        value = getattr(q, name)
        if value is not None and spec.time is not None:
            conditions, more = _time_conditions(spec.time, spec.kind, value, name, op)
            where += conditions
            params += more
    return (" WHERE " + " AND ".join(where) if where else ""), params


def _order_terms(view: str) -> list[str]:
    spec = order_of(view)
    return [time_key(c) if c == spec.time and spec.kind == "time" else c for c in spec.order]


def build_sql(q: ViewQuery, max_seq: int | None = None) -> tuple[str, list[Any]]:
    """The SELECT of one page of a checked query: its rows in the view's order.

    With ``order`` or ``offset``: ascending (or descending) from ``offset``, at most
    ``limit`` rows. With neither: the ``limit`` most recent rows, oldest first.
    """
    where, params = where_sql(q, max_seq)
    table = t.VIEWS[q.view]
    sql = f"{table.select_sql()}{where}"
    terms = _order_terms(q.view)
    ascending = ", ".join(terms)
    descending = ", ".join(f"{term} DESC" for term in terms)
    limit = DEFAULT_LIMIT if q.limit is None else q.limit
    if q.paged:
        direction = descending if q.order == "desc" else ascending
        return (f"{sql} ORDER BY {direction} LIMIT ? OFFSET ?",
                [*params, limit, q.offset or 0])
    # The most recent rows, put back oldest first: the outer ORDER BY sees only
    # ``limit`` rows.
    columns = ", ".join(table.column_names)
    return (f"SELECT {columns} FROM ({sql} ORDER BY {descending} LIMIT ?) AS page "
            f"ORDER BY {ascending}", [*params, limit])


def count_sql(q: ViewQuery, max_seq: int | None = None) -> tuple[str, list[Any]]:
    """``SELECT count(*)`` of the rows a checked query matches, before offset and limit."""
    where, params = where_sql(q, max_seq)
    return f"SELECT count(*) FROM {t.VIEWS[q.view].name}{where}", params
