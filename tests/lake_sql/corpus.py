"""Typical analyst queries, each with its expected answer computed without our translation.

An expected answer is either DuckDB SQL written by hand over the raw Arrow tables (``tx``,
``merchants``, ``kpis``), or a Python function of the raw rows where the engines' semantics
are the point (whole-unit vs boundary date differences, integer division, NULL ordering).
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from tests.lake_sql.lake_data import LakeData

Rows = list[tuple[Any, ...]]
TX = "bronze.bank_card_transactions"


@dataclass(frozen=True)
class Case:
    name: str
    query: str
    expected: str | Callable[[LakeData], Rows]
    #: False when the query has no ORDER BY: rows are compared as multisets.
    ordered: bool = True


def _rows(data: LakeData) -> list[dict[str, Any]]:
    return data.transactions.to_pylist()


def _by_card(data: LakeData) -> dict[str, list[datetime]]:
    times: dict[str, list[datetime]] = {}
    for r in _rows(data):
        times.setdefault(r["card_id"], []).append(r["event_time"])
    return dict(sorted(times.items()))


def _whole_days(data: LakeData) -> Rows:
    return [(c, int((max(t) - min(t)).total_seconds() // 86400)) for c, t in _by_card(data).items()]


def _day_boundaries(data: LakeData) -> Rows:
    return [(c, (max(t).date() - min(t).date()).days) for c, t in _by_card(data).items()]


def _hour_boundaries(data: LakeData) -> Rows:
    def hour(t: datetime) -> datetime:
        return t.replace(minute=0, second=0, microsecond=0)

    return [
        (c, int((hour(max(t)) - hour(min(t))).total_seconds() // 3600)) for c, t in _by_card(data).items()
    ]


def _gaps(data: LakeData) -> Rows:
    rows = sorted((r["event_time"], r["event_id"]) for r in _rows(data) if r["card_id"] == "c003")
    out: Rows = []
    for i, (t, event_id) in enumerate(rows):
        out.append((event_id, None if i == 0 else int((t - rows[i - 1][0]).total_seconds())))
    return out


def _last_days(data: LakeData) -> Rows:
    latest = max(r["event_time"] for r in _rows(data))
    return [(sum(1 for r in _rows(data) if r["event_time"] >= latest - timedelta(days=3)),)]


def _strings(data: LakeData) -> Rows:
    rows = sorted(_rows(data), key=lambda r: r["event_id"])[:25]
    return [
        (
            r["event_id"],
            r["merchant"]["name"].upper(),
            r["merchant"]["name"].strip(),
            len(r["merchant"]["name"]),
            r["card_id"][1:3],
            r["merchant"]["name"].find("M0") + 1,
            r["merchant"]["merchant_id"].split("0")[1],
            f"{r['channel']}/{r['status']}",
            str(r["_partition"]).rjust(3, "0"),
            r["channel"].replace("O", "0"),
            r["status"].lower(),
        )
        for r in rows
    ]


def _page(data: LakeData) -> Rows:
    return [(r["event_id"], r["amount"]) for r in sorted(_rows(data), key=lambda r: r["event_id"])[5:15]]


def _ny_hours(data: LakeData) -> Rows:
    zone = ZoneInfo("America/New_York")
    return sorted(Counter(r["event_time"].astimezone(zone).hour for r in _rows(data)).items())


def _distinct(data: LakeData) -> Rows:
    rows = _rows(data)
    return [(len({r["card_id"] for r in rows}), len({r["merchant"]["merchant_id"] for r in rows}))]


def _offset_buckets(data: LakeData, neg: int) -> Rows:
    counts = Counter(r["_offset"] // 100 for r in _rows(data))
    return [(bucket, n, neg, 3) for bucket, n in sorted(counts.items())]


def _months(data: LakeData) -> Rows:
    totals: dict[str, Decimal] = {}
    for r in _rows(data):
        if r["amount"] is not None:
            key = r["event_time"].strftime("%Y-%m")
            totals[key] = totals.get(key, Decimal(0)) + r["amount"]
    return sorted(totals.items())


def _dow_hour(data: LakeData, sunday_zero: bool) -> Rows:
    def dow(t: datetime) -> int:
        return t.isoweekday() % 7 if sunday_zero else t.isoweekday()

    return sorted(Counter((dow(r["event_time"]), r["event_time"].hour) for r in _rows(data)).items())


def _flatten(pairs: Rows) -> Rows:
    return [(*key, n) for key, n in pairs]


def _cities_desc(data: LakeData) -> Rows:
    rows = [r for r in _rows(data) if r["card_id"] in ("c001", "c002", "c003")]
    with_city = sorted((r for r in rows if r["merchant"]["city"]), key=lambda r: r["event_id"])
    with_city.sort(key=lambda r: r["merchant"]["city"], reverse=True)
    without = sorted((r for r in rows if not r["merchant"]["city"]), key=lambda r: r["event_id"])
    return [(r["event_id"], r["merchant"]["city"]) for r in [*with_city, *without]][:40]


def _top_amounts_nulls_first(data: LakeData) -> Rows:
    rows = _rows(data)
    nulls = sorted(r["event_id"] for r in rows if r["amount"] is None)
    valued = sorted((r for r in rows if r["amount"] is not None), key=lambda r: r["event_id"])
    valued.sort(key=lambda r: r["amount"], reverse=True)
    return [(e, None) for e in nulls][:5] + [(r["event_id"], r["amount"]) for r in valued][
        : max(0, 5 - len(nulls))
    ]


def _fees_desc(data: LakeData) -> Rows:
    rows = _rows(data)
    nulls = sorted(r["event_id"] for r in rows if r["fee"] is None)
    valued = sorted((r for r in rows if r["fee"] is not None), key=lambda r: r["event_id"])
    valued.sort(key=lambda r: r["fee"], reverse=True)
    ordered = [(e, None) for e in nulls] + [(r["event_id"], r["fee"]) for r in valued]
    return ordered[:20]


def _listagg_distinct(data: LakeData) -> Rows:
    by_status: dict[str, set[str]] = {}
    for r in _rows(data):
        by_status.setdefault(r["status"], set()).add(r["channel"])
    return [(s, ",".join(sorted(c))) for s, c in sorted(by_status.items())]


def _listagg_card(data: LakeData) -> Rows:
    ids = sorted(r["event_id"] for r in _rows(data) if r["card_id"] == "c005")
    return [("c005", "|".join(ids))]


def _trunc_days(data: LakeData) -> Rows:
    return sorted(Counter(r["event_time"].date() for r in _rows(data)).items())


def _ny_convert(data: LakeData) -> Rows:
    zone = ZoneInfo("America/New_York")
    rows = sorted(_rows(data), key=lambda r: r["event_id"])[:10]
    return [
        (
            r["event_id"],
            r["event_time"].astimezone(zone).replace(tzinfo=None),
            r["event_time"].strftime("%Y-%m-%d"),
        )
        for r in rows
    ]


def _median_fee(data: LakeData) -> Rows:
    by_channel: dict[str, list[float]] = {}
    for r in _rows(data):
        if r["fee"] is not None:
            by_channel.setdefault(r["channel"], []).append(r["fee"])
    return [(c, statistics.median(v)) for c, v in sorted(by_channel.items())]


def _redshift_strings(data: LakeData) -> Rows:
    rows = sorted(_rows(data), key=lambda r: r["event_id"])[:20]
    return [
        (
            r["card_id"].find("0") + 1,
            len(r["merchant"]["name"]),
            r["event_id"][:3],
            r["event_id"][-2:],
            r["channel"].upper(),
            r["card_id"][1:3],
            f"{r['card_id']}-{r['channel']}",
        )
        for r in rows
    ]


ATHENA: list[Case] = [
    Case(
        "daily totals",
        f"SELECT date_trunc('day', event_time) AS day, count(*) AS n, sum(amount) AS total "
        f"FROM awsdatacatalog.{TX} GROUP BY 1 ORDER BY 1",
        "SELECT date_trunc('day', event_time), count(*), sum(amount) FROM tx GROUP BY 1 ORDER BY 1",
    ),
    Case(
        "approved per day and channel",
        f"SELECT date(event_time) AS day, channel, count_if(status = 'APPROVED') AS approved, count(*) AS n "
        f"FROM {TX} GROUP BY 1, 2 ORDER BY 1, 2",
        "SELECT CAST(event_time AS DATE), channel, count(*) FILTER (WHERE status = 'APPROVED'), count(*) "
        "FROM tx GROUP BY 1, 2 ORDER BY 1, 2",
    ),
    Case(
        "running total per card (window)",
        "SELECT card_id, event_id, sum(amount) OVER (PARTITION BY card_id ORDER BY event_time, event_id "
        f"ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS running FROM {TX} "
        "WHERE card_id IN ('c001', 'c002') ORDER BY card_id, event_time, event_id",
        "SELECT card_id, event_id, sum(amount) OVER (PARTITION BY card_id ORDER BY event_time, event_id "
        "ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) FROM tx WHERE card_id IN ('c001', 'c002') "
        "ORDER BY card_id, event_time, event_id",
    ),
    Case(
        "top merchants per country (CTE, row_number)",
        "WITH totals AS (SELECT merchant.country AS country, merchant.merchant_id AS merchant_id, "
        f"sum(amount) AS total FROM {TX} GROUP BY 1, 2), ranked AS (SELECT *, row_number() OVER "
        "(PARTITION BY country ORDER BY total DESC, merchant_id) AS rn FROM totals) "
        "SELECT country, merchant_id, total FROM ranked WHERE rn <= 3 ORDER BY country, rn",
        "WITH totals AS (SELECT merchant.country AS country, merchant.merchant_id AS merchant_id, "
        "sum(amount) AS total FROM tx GROUP BY 1, 2), ranked AS (SELECT *, row_number() OVER "
        "(PARTITION BY country ORDER BY total DESC NULLS LAST, merchant_id) AS rn FROM totals) "
        "SELECT country, merchant_id, total FROM ranked WHERE rn <= 3 ORDER BY country, rn",
    ),
    Case(
        "seconds since the card's previous transaction (lag, date_diff)",
        "SELECT event_id, date_diff('second', lag(event_time) OVER (PARTITION BY card_id ORDER BY event_time, "
        f"event_id), event_time) AS gap_s FROM {TX} WHERE card_id = 'c003' ORDER BY event_time, event_id",
        _gaps,
    ),
    Case(
        "whole days between first and last use (date_diff counts whole days)",
        f"SELECT card_id, date_diff('day', min(event_time), max(event_time)) FROM {TX} GROUP BY card_id ORDER BY card_id",
        _whole_days,
    ),
    Case(
        "last three days (date_add, scalar subquery)",
        f"SELECT count(*) FROM {TX} WHERE event_time >= date_add('day', -3, (SELECT max(event_time) FROM {TX}))",
        _last_days,
    ),
    Case(
        "calendar arithmetic on literals",
        "SELECT date_add('month', 1, DATE '2024-01-31'), date_add('hour', 36, TIMESTAMP '2024-02-28 00:00:00'), "
        "date_diff('month', DATE '2024-01-31', DATE '2024-02-29'), date_diff('month', DATE '2024-01-15', "
        "DATE '2024-02-14'), date_diff('day', TIMESTAMP '2024-01-01 23:00:00', TIMESTAMP '2024-01-02 01:00:00')",
        # Trino's month difference follows Joda: Jan 31 -> Feb 29 (end of month) is one month.
        lambda _: [(date(2024, 2, 29), datetime(2024, 2, 29, 12, 0), 1, 0, 0)],
    ),
    Case(
        "amount buckets (CASE)",
        "SELECT CASE WHEN amount IS NULL THEN 'unknown' WHEN amount < 0 THEN 'refund' WHEN amount < 100 THEN "
        f"'small' WHEN amount < 1000 THEN 'medium' ELSE 'large' END AS bucket, count(*) AS n FROM {TX} "
        "GROUP BY 1 ORDER BY 1",
        "SELECT CASE WHEN amount IS NULL THEN 'unknown' WHEN amount < 0 THEN 'refund' WHEN amount < 100 THEN "
        "'small' WHEN amount < 1000 THEN 'medium' ELSE 'large' END, count(*) FROM tx GROUP BY 1 ORDER BY 1",
    ),
    Case(
        "string functions",
        "SELECT event_id, upper(merchant.name), trim(merchant.name), length(merchant.name), substr(card_id, 2, 2), "
        "strpos(merchant.name, 'M0'), split_part(merchant.merchant_id, '0', 2), concat(channel, '/', status), "
        "lpad(CAST(_partition AS VARCHAR), 3, '0'), replace(channel, 'O', '0'), lower(status) "
        f"FROM {TX} ORDER BY event_id LIMIT 25",
        _strings,
    ),
    Case(
        "join bronze to silver, by risk tier",
        f"SELECT m.risk_tier, count(*) AS n, sum(t.amount) AS total FROM {TX} t JOIN silver.merchants m "
        "ON t.merchant.merchant_id = m.merchant_id GROUP BY m.risk_tier ORDER BY m.risk_tier",
        "SELECT m.risk_tier, count(*), sum(t.amount) FROM tx t JOIN merchants m "
        "ON t.merchant.merchant_id = m.merchant_id GROUP BY m.risk_tier ORDER BY m.risk_tier NULLS LAST",
    ),
    Case(
        "left join with coalesce",
        f"SELECT t.merchant.merchant_id AS merchant_id, coalesce(m.risk_tier, -1) AS tier, count(*) AS n FROM {TX} AS t "
        "LEFT JOIN awsdatacatalog.silver.merchants AS m ON m.merchant_id = t.merchant.merchant_id GROUP BY 1, 2 ORDER BY 1",
        "SELECT t.merchant.merchant_id, coalesce(m.risk_tier, -1), count(*) FROM tx AS t "
        "LEFT JOIN merchants AS m ON m.merchant_id = t.merchant.merchant_id GROUP BY 1, 2 ORDER BY 1",
    ),
    Case(
        "average of daily counts (CTE)",
        f"WITH daily AS (SELECT date(event_time) AS day, count(*) AS n FROM {TX} GROUP BY 1) "
        "SELECT avg(n), max(n), min(day) FROM daily",
        "WITH daily AS (SELECT CAST(event_time AS DATE) AS day, count(*) AS n FROM tx GROUP BY 1) "
        "SELECT avg(n), max(n), min(day) FROM daily",
    ),
    Case(
        "page (LIMIT / OFFSET)",
        f"SELECT event_id, amount FROM {TX} ORDER BY event_id OFFSET 5 LIMIT 10",
        _page,
    ),
    Case(
        "unix times (from_unixtime, to_unixtime)",
        "SELECT from_unixtime(1706745600), to_unixtime(TIMESTAMP '2024-02-01 00:00:00 UTC'), "
        f"from_unixtime(to_unixtime(event_time)) = event_time FROM {TX} WHERE event_id = 'e000001'",
        lambda _: [(datetime(2024, 2, 1, tzinfo=UTC), 1706745600.0, True)],
    ),
    Case(
        "local hour in New York (at_timezone)",
        f"SELECT hour(at_timezone(event_time, 'America/New_York')) AS ny_hour, count(*) FROM {TX} GROUP BY 1 ORDER BY 1",
        _ny_hours,
    ),
    Case(
        "distinct counts (approx_distinct is answered exactly)",
        f"SELECT approx_distinct(card_id), count(DISTINCT merchant.merchant_id) FROM {TX}",
        _distinct,
    ),
    Case(
        "busy cards (HAVING)",
        f"SELECT card_id, count(*) AS n FROM {TX} GROUP BY card_id HAVING count(*) > 25 ORDER BY n DESC, card_id",
        "SELECT card_id, count(*) AS n FROM tx GROUP BY card_id HAVING count(*) > 25 ORDER BY n DESC, card_id",
    ),
    Case(
        "integer division truncates",
        f"SELECT _offset / 100 AS bucket, count(*) AS n, -7 / 2, 7 / 2 FROM {TX} GROUP BY 1 ORDER BY 1",
        lambda d: _offset_buckets(d, -3),
    ),
    Case(
        "monthly totals (date_format)",
        f"SELECT date_format(event_time, '%Y-%m') AS month, sum(amount) FROM {TX} GROUP BY 1 ORDER BY 1",
        _months,
    ),
    Case(
        "approved vs declined (UNION ALL)",
        f"SELECT 'approved' AS kind, count(*) AS n FROM {TX} WHERE status = 'APPROVED' UNION ALL "
        f"SELECT 'declined', count(*) FROM {TX} WHERE status = 'DECLINED' ORDER BY kind",
        "SELECT 'approved' AS kind, count(*) FROM tx WHERE status = 'APPROVED' UNION ALL "
        "SELECT 'declined', count(*) FROM tx WHERE status = 'DECLINED' ORDER BY kind",
    ),
    Case(
        "IN subquery and BETWEEN",
        f"SELECT count(*), sum(amount) FROM {TX} WHERE merchant.merchant_id IN "
        "(SELECT merchant_id FROM silver.merchants WHERE risk_tier = 2) AND amount BETWEEN 10 AND 500",
        "SELECT count(*), sum(amount) FROM tx WHERE merchant.merchant_id IN "
        "(SELECT merchant_id FROM merchants WHERE risk_tier = 2) AND amount BETWEEN 10 AND 500",
    ),
    Case(
        "ISO day of week and hour",
        f"SELECT day_of_week(event_time), extract(hour FROM event_time), count(*) FROM {TX} GROUP BY 1, 2 ORDER BY 1, 2",
        lambda d: _flatten(_dow_hour(d, sunday_zero=False)),
    ),
    Case(
        "rounded averages of doubles",
        f"SELECT channel, round(avg(CAST(amount AS DOUBLE)), 2), round(avg(fee), 3), round(stddev(fee), 4) FROM {TX} "
        "GROUP BY channel ORDER BY channel",
        "SELECT channel, round(avg(CAST(amount AS DOUBLE)), 2), round(avg(fee), 3), round(stddev_samp(fee), 4) "
        "FROM tx GROUP BY channel ORDER BY channel",
    ),
    Case(
        "regexp filter, DESC puts NULLs last",
        f"SELECT event_id, merchant.city FROM {TX} WHERE regexp_like(card_id, '^c00[1-3]$') "
        "ORDER BY merchant.city DESC, event_id LIMIT 40",
        _cities_desc,
    ),
    Case(
        "quoted identifiers",
        'SELECT "channel", count(*) AS "N" FROM "awsdatacatalog"."bronze"."bank_card_transactions" '
        'GROUP BY "channel" ORDER BY 1',
        "SELECT channel, count(*) FROM tx GROUP BY channel ORDER BY 1",
    ),
    Case(
        "gold table, unqualified name",
        "SELECT pattern, sum(alerts) FROM fraud_kpis_daily GROUP BY pattern",
        "SELECT pattern, sum(alerts) FROM kpis GROUP BY pattern",
        ordered=False,
    ),
]

REDSHIFT: list[Case] = [
    Case(
        "GETDATE",
        f"SELECT DATEDIFF(day, GETDATE(), GETDATE()), COUNT(*) FROM {TX} WHERE event_time < GETDATE()",
        "SELECT 0, count(*) FROM tx",
    ),
    Case(
        "last three days (DATEADD)",
        f"SELECT COUNT(*) FROM {TX} WHERE event_time >= DATEADD(day, -3, (SELECT MAX(event_time) FROM {TX}))",
        _last_days,
    ),
    Case(
        "DATEDIFF counts day boundaries",
        f"SELECT card_id, DATEDIFF(day, MIN(event_time), MAX(event_time)) FROM {TX} GROUP BY card_id ORDER BY card_id",
        _day_boundaries,
    ),
    Case(
        "DATEDIFF counts hour boundaries",
        f"SELECT card_id, DATEDIFF(hour, MIN(event_time), MAX(event_time)) FROM {TX} GROUP BY card_id ORDER BY card_id",
        _hour_boundaries,
    ),
    Case(
        "NVL on a struct field",
        f"SELECT NVL(t.merchant.city, 'n/a') AS city, COUNT(*) FROM {TX} t GROUP BY 1 ORDER BY 1",
        "SELECT coalesce(merchant.city, 'n/a') AS city, count(*) FROM tx GROUP BY 1 ORDER BY 1",
    ),
    Case(
        "LISTAGG DISTINCT",
        f"SELECT status, LISTAGG(DISTINCT channel, ',') WITHIN GROUP (ORDER BY channel) FROM {TX} "
        "GROUP BY status ORDER BY status",
        _listagg_distinct,
    ),
    Case(
        "LISTAGG",
        f"SELECT card_id, LISTAGG(event_id, '|') WITHIN GROUP (ORDER BY event_id) FROM {TX} WHERE card_id = 'c005' "
        "GROUP BY card_id",
        _listagg_card,
    ),
    Case(
        "TRUNC(timestamp) is the day",
        f"SELECT TRUNC(event_time) AS day, COUNT(*) FROM {TX} GROUP BY 1 ORDER BY 1",
        _trunc_days,
    ),
    Case(
        "TRUNC(number)",
        f"SELECT event_id, TRUNC(fee), TRUNC(fee, 1) FROM {TX} ORDER BY event_id LIMIT 30",
        "SELECT event_id, trunc(fee), trunc(fee * 10) / 10 FROM tx ORDER BY event_id LIMIT 30",
    ),
    Case(
        "monthly counts (DATE_TRUNC)",
        f"SELECT DATE_TRUNC('month', event_time) AS month, COUNT(*) FROM {TX} GROUP BY 1 ORDER BY 1",
        "SELECT date_trunc('month', event_time), count(*) FROM tx GROUP BY 1 ORDER BY 1",
    ),
    Case(
        "TOP with DESC (NULLs first in Redshift)",
        f"SELECT TOP 5 event_id, amount FROM {TX} ORDER BY amount DESC, event_id",
        _top_amounts_nulls_first,
    ),
    Case(
        "window ranking",
        "SELECT card_id, event_id, ROW_NUMBER() OVER (PARTITION BY card_id ORDER BY event_time, event_id) AS rn, "
        "SUM(fee) OVER (PARTITION BY card_id) AS card_fees FROM bronze.bank_card_transactions "
        "WHERE card_id IN ('c010', 'c011') ORDER BY card_id, rn",
        "SELECT card_id, event_id, row_number() OVER (PARTITION BY card_id ORDER BY event_time, event_id) AS rn, "
        "sum(fee) OVER (PARTITION BY card_id) FROM tx WHERE card_id IN ('c010', 'c011') ORDER BY card_id, rn",
    ),
    Case(
        "DECODE",
        f"SELECT DECODE(channel, 'POS', 'in store', 'ECOM', 'online', 'other') AS kind, COUNT(*) FROM {TX} "
        "GROUP BY 1 ORDER BY 1",
        "SELECT CASE channel WHEN 'POS' THEN 'in store' WHEN 'ECOM' THEN 'online' ELSE 'other' END, count(*) "
        "FROM tx GROUP BY 1 ORDER BY 1",
    ),
    Case(
        "NVL2 and CASE",
        f"SELECT NVL2(fee, 'fee', 'no fee') AS f, CASE WHEN card_present THEN 'present' ELSE 'remote' END AS p, "
        f"COUNT(*) FROM {TX} GROUP BY 1, 2 ORDER BY 1, 2",
        "SELECT CASE WHEN fee IS NULL THEN 'no fee' ELSE 'fee' END, CASE WHEN card_present THEN 'present' "
        "ELSE 'remote' END, count(*) FROM tx GROUP BY 1, 2 ORDER BY 1, 2",
    ),
    Case(
        "string functions",
        f"SELECT CHARINDEX('0', card_id), LEN(merchant.name), LEFT(event_id, 3), RIGHT(event_id, 2), UPPER(channel), "
        f"SUBSTRING(card_id, 2, 2), card_id || '-' || channel FROM {TX} ORDER BY event_id LIMIT 20",
        _redshift_strings,
    ),
    Case(
        "Spectrum schema (gold) joined to bronze",
        f"SELECT k.day, k.alerts, COUNT(t.event_id) FROM spectrum.fraud_kpis_daily k LEFT JOIN {TX} t "
        "ON TRUNC(t.event_time) = k.day WHERE k.pattern = 'card_testing' GROUP BY k.day, k.alerts ORDER BY k.day",
        "SELECT k.day, k.alerts, count(t.event_id) FROM kpis k LEFT JOIN tx t ON CAST(t.event_time AS DATE) = k.day "
        "WHERE k.pattern = 'card_testing' GROUP BY k.day, k.alerts ORDER BY k.day",
    ),
    Case(
        "CTE with average of doubles",
        f"WITH per_card AS (SELECT card_id, SUM(fee) AS fees FROM {TX} GROUP BY card_id) "
        "SELECT ROUND(AVG(fees), 4), MAX(fees) FROM per_card",
        "WITH per_card AS (SELECT card_id, sum(fee) AS fees FROM tx GROUP BY card_id) "
        "SELECT round(avg(fees), 4), max(fees) FROM per_card",
    ),
    Case(
        "integer division and modulo",
        f"SELECT _offset / 100 AS bucket, COUNT(*), -7 / 2, 7 / 2 FROM {TX} GROUP BY 1 ORDER BY 1",
        lambda d: _offset_buckets(d, -3),
    ),
    Case(
        "CONVERT_TIMEZONE and TO_CHAR",
        "SELECT event_id, CONVERT_TIMEZONE('UTC', 'America/New_York', event_time), TO_CHAR(event_time, 'YYYY-MM-DD') "
        f"FROM {TX} ORDER BY event_id LIMIT 10",
        _ny_convert,
    ),
    Case(
        "DESC puts NULLs first",
        f"SELECT event_id, fee FROM {TX} ORDER BY fee DESC, event_id LIMIT 20",
        _fees_desc,
    ),
    Case(
        "APPROXIMATE COUNT(DISTINCT) is answered exactly",
        f"SELECT APPROXIMATE COUNT(DISTINCT card_id), COUNT(DISTINCT merchant.merchant_id) FROM {TX}",
        _distinct,
    ),
    Case(
        "DATE_PART(dow) and EXTRACT(hour)",
        f"SELECT DATE_PART(dow, event_time), EXTRACT(hour FROM event_time), COUNT(*) FROM {TX} GROUP BY 1, 2 ORDER BY 1, 2",
        lambda d: _flatten(_dow_hour(d, sunday_zero=True)),
    ),
    Case(
        "MEDIAN",
        f"SELECT channel, MEDIAN(fee) FROM {TX} GROUP BY channel ORDER BY channel",
        _median_fee,
    ),
    Case(
        "page (LIMIT / OFFSET)",
        f"SELECT event_id, amount FROM {TX} ORDER BY event_id LIMIT 10 OFFSET 5",
        _page,
    ),
    Case(
        "silver through its own schema name",
        "SELECT risk_tier, COUNT(*) FROM silver.merchants GROUP BY risk_tier",
        "SELECT risk_tier, count(*) FROM merchants GROUP BY risk_tier",
        ordered=False,
    ),
]
