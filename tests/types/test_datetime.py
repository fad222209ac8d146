"""date, time, timetz, timestamp, timestamptz, interval (binary both ways).

Parameters: naive datetime -> timestamp, aware -> timestamptz (the instant is kept),
date -> date, naive time -> time, aware time -> timetz, timedelta -> interval.
Results: timestamptz -> aware datetime in UTC; interval -> timedelta with
1 month = 30 days and 1 year = 365 days; +-infinity -> the Python extremes; values
Python cannot hold -> DataError naming the column, never a wrong value.
"""

from __future__ import annotations

import gc
import zoneinfo
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import oxpg

FAST = settings(max_examples=100, deadline=None)
UTC = timezone.utc
PG_EPOCH = date(2000, 1, 1)
UNIX_EPOCH = datetime(1970, 1, 1)
US = timedelta(microseconds=1)


def tz(**kw: int) -> timezone:
    return timezone(timedelta(**kw))


def utc_wall(value: datetime) -> datetime:
    """The naive UTC wall time of an aware datetime (fold and gap safe)."""
    return value.replace(tzinfo=None) - value.utcoffset()


def epoch_seconds(naive: datetime) -> Decimal:
    return Decimal((naive - UNIX_EPOCH) // US).scaleb(-6)


def assert_same_instant(result: datetime, expected: datetime, zone: str | None = None) -> None:
    """The instant is exact; the tzinfo is the session's TimeZone (UTC unless zone says)."""
    assert type(result) is datetime
    if zone is None or zone == "UTC":
        assert result.utcoffset() == timedelta(0), "timestamptz must come back in UTC"
    else:
        assert result.tzinfo == zoneinfo.ZoneInfo(zone), "timestamptz must come back in the session's zone"
    assert result.astimezone(UTC).replace(tzinfo=None) == utc_wall(expected)


def months_as_days(months: int) -> int:
    """oxpg's documented rule: a year is 365 days, a month 30, symmetric in sign."""
    sign = -1 if months < 0 else 1
    years, rest = divmod(abs(months), 12)
    return sign * (years * 365 + rest * 30)


# ---------------------------------------------------------------------------- params


@pytest.mark.parametrize(
    ("value", "pg_type"),
    [(date(2024, 1, 2), "date"), (datetime(2024, 1, 2, 3, 4, 5), "timestamp without time zone"),
     (datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), "timestamp with time zone"),
     (datetime(2024, 1, 2, 3, 4, 5, tzinfo=zoneinfo.ZoneInfo("Europe/Paris")), "timestamp with time zone"),
     (time(3, 4, 5), "time without time zone"), (time(3, 4, 5, tzinfo=tz(hours=2)), "time with time zone"),
     (timedelta(days=1, seconds=2), "interval")],
    ids=lambda v: type(v).__name__,
)
def test_param_types(one, value, pg_type):
    assert one("SELECT pg_typeof($1)::text AS v", value) == pg_type


@given(st.dates())
@example(date.min)
@example(date.max)
@example(date(2000, 1, 1))
@example(date(1999, 12, 31))
@example(date(2000, 2, 29))
@example(date(1900, 3, 1))
@FAST
def test_date_round_trip(db, value):
    (row,) = db.query("SELECT $1::date AS v, CASE WHEN isfinite($1::date) THEN $1::date - '2000-01-01'::date END "
                      "AS days, $2::date AS parsed", value, value.isoformat())
    assert row["v"] == value and type(row["v"]) is date
    if value in (date.min, date.max):
        # date.max/date.min go in as infinity/-infinity, the values they decode from.
        assert row["days"] is None
    else:
        # The server's own arithmetic and parser agree with Python's calendar.
        assert row["days"] == (value - PG_EPOCH).days
    assert row["parsed"] == value


@given(st.datetimes())
@example(datetime.min)
@example(datetime.max)
@example(datetime(2000, 1, 1))
@example(datetime(1999, 12, 31, 23, 59, 59, 999999))
@example(datetime(1969, 12, 31, 23, 59, 59, 1))
@FAST
def test_timestamp_round_trip(db, value):
    (row,) = db.query(
        "SELECT $1::timestamp AS v, extract(epoch FROM $1::timestamp) AS epoch, $2::timestamp AS parsed",
        value, value.isoformat())
    assert row["v"] == value and type(row["v"]) is datetime and row["v"].tzinfo is None
    # datetime.max/datetime.min go in as infinity/-infinity, the values they decode from.
    infinite = {datetime.max: Decimal("Infinity"), datetime.min: Decimal("-Infinity")}
    assert row["epoch"] == (infinite[value] if value in infinite else epoch_seconds(value))
    assert row["parsed"] == value


fixed_offsets = st.integers(-(24 * 3600 - 1), 24 * 3600 - 1).map(lambda s: timezone(timedelta(seconds=s)))


@given(st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31),
                    timezones=st.one_of(st.timezones(), fixed_offsets)))
@example(datetime(2024, 3, 10, 2, 30, tzinfo=zoneinfo.ZoneInfo("America/New_York")))  # in the DST gap
@example(datetime(2024, 11, 3, 1, 30, fold=0, tzinfo=zoneinfo.ZoneInfo("America/New_York")))
@example(datetime(2024, 11, 3, 1, 30, fold=1, tzinfo=zoneinfo.ZoneInfo("America/New_York")))
@example(datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=tz(hours=5, minutes=45)))
@example(datetime(2024, 1, 2, 3, 4, 5, tzinfo=tz(hours=-9, minutes=-30, seconds=-15, microseconds=-7)))
@FAST
def test_timestamptz_keeps_the_instant(db, value):
    (row,) = db.query("SELECT $1::timestamptz AS v, extract(epoch FROM $1::timestamptz) AS epoch", value)
    assert_same_instant(row["v"], value)
    assert row["epoch"] == epoch_seconds(utc_wall(value))


@given(st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31),
                    timezones=st.integers(-15 * 60, 15 * 60).map(lambda m: timezone(timedelta(minutes=m)))))
@FAST
def test_timestamptz_decode_server_parsed_value(db, value):
    # The server parses the ISO string with its offset; independent of our encoder.
    (row,) = db.query("SELECT $1::timestamptz AS v", value.isoformat())
    assert_same_instant(row["v"], value)


def test_fold_gives_two_instants(db):
    ny = zoneinfo.ZoneInfo("America/New_York")
    first = datetime(2024, 11, 3, 1, 30, fold=0, tzinfo=ny)
    second = datetime(2024, 11, 3, 1, 30, fold=1, tzinfo=ny)
    (row,) = db.query("SELECT $2::timestamptz - $1::timestamptz AS diff", first, second)
    assert row["diff"] == timedelta(hours=1)


@given(st.times())
@example(time.min)
@example(time.max)
@example(time(12, 0, 0, 1))
@FAST
def test_time_round_trip(db, value):
    (row,) = db.query("SELECT $1::time AS v, extract(epoch FROM $1::time) AS secs, $2::time AS parsed",
                      value, value.isoformat())
    assert row["v"] == value and type(row["v"]) is time and row["v"].tzinfo is None
    secs = (value.hour * 3600 + value.minute * 60 + value.second) * 10**6 + value.microsecond
    assert row["secs"] == Decimal(secs).scaleb(-6)
    assert row["parsed"] == value


# PostgreSQL's timetz accepts offsets strictly within +-16 hours, whole seconds.
timetz_offsets = st.integers(-(16 * 3600 - 1), 16 * 3600 - 1).map(lambda s: timezone(timedelta(seconds=s)))


@given(st.times(timezones=timetz_offsets))
@example(time(12, 34, 56, 789, tzinfo=tz(hours=5, minutes=45)))
@example(time(0, 0, tzinfo=tz(hours=-15, minutes=-59, seconds=-59)))
@example(time(23, 59, 59, 999999, tzinfo=tz(hours=15, minutes=59, seconds=59)))
@FAST
def test_timetz_round_trip(db, value):
    (row,) = db.query("SELECT $1::timetz AS v, $1::timetz = $2::timetz AS same", value, value.isoformat())
    result = row["v"]
    assert type(result) is time
    assert result.replace(tzinfo=None) == value.replace(tzinfo=None)
    assert result.utcoffset() == value.utcoffset()
    assert row["same"] is True


@pytest.mark.parametrize(
    ("literal", "expected"),
    [("'12:34:56+05:30:15'", time(12, 34, 56, tzinfo=tz(hours=5, minutes=30, seconds=15))),
     ("'00:00:00.000001-03'", time(0, 0, 0, 1, tzinfo=tz(hours=-3))),
     ("'23:59:59.999999+00'", time(23, 59, 59, 999999, tzinfo=UTC))],
)
def test_timetz_decode(one, literal, expected):
    result = one(f"SELECT {literal}::timetz AS v")
    assert result.replace(tzinfo=None) == expected.replace(tzinfo=None)
    assert result.utcoffset() == expected.utcoffset()


def test_timetz_offset_with_microseconds_is_refused(db):
    with pytest.raises(oxpg.DataError, match=r"\$1"):
        db.query("SELECT $1 AS v", time(1, 2, 3, tzinfo=tz(hours=2, microseconds=1)))
    assert db.query("SELECT 1 AS ok") == [{"ok": 1}]


def test_timetz_offset_beyond_postgresql_range_is_an_error(db):
    with pytest.raises(oxpg.DataError):
        db.query("SELECT $1 AS v", time(1, 2, 3, tzinfo=tz(hours=20)))
    assert db.query("SELECT 1 AS ok") == [{"ok": 1}]


@given(st.timedeltas())
@example(timedelta.max)
@example(timedelta.min)
@example(timedelta(0))
@example(timedelta(microseconds=-1))
@example(timedelta(days=-1, seconds=1))
@FAST
def test_interval_round_trip(db, value):
    (row,) = db.query("SELECT $1::interval AS v, extract(epoch FROM $1::interval) AS secs", value)
    assert row["v"] == value and type(row["v"]) is timedelta
    assert row["secs"] == Decimal(value // US).scaleb(-6)


@given(st.integers(-120_000, 120_000), st.integers(-(10**6), 10**6), st.integers(-(10**15), 10**15))
@example(12, 0, 0)
@example(-14, 3, 0)
@example(1, -1, 0)
@example(0, 0, -1)
@FAST
def test_interval_decode(one, months, days, usecs):
    result = one("SELECT make_interval(months => $1, days => $2) + $3::int8 * interval '1 microsecond' AS v",
                 months, days, usecs)
    assert result == timedelta(days=months_as_days(months) + days, microseconds=usecs)


@pytest.mark.parametrize(
    ("literal", "expected"),
    [("1 year 2 mons 3 days 04:05:06.789",
      timedelta(days=365 + 60 + 3, hours=4, minutes=5, seconds=6, microseconds=789000)),
     ("1 year", timedelta(days=365)), ("1 mon", timedelta(days=30)), ("11 mons", timedelta(days=330)),
     ("13 mons", timedelta(days=395)), ("1 mon -1 day", timedelta(days=29)),
     ("-1 year -2 mons", -timedelta(days=425)), ("-00:00:01", timedelta(seconds=-1)),
     ("-1 days +00:00:01", timedelta(days=-1, seconds=1)), ("-3 days -04:05:06.789",
                                                             -timedelta(days=3, hours=4, minutes=5, seconds=6,
                                                                        microseconds=789000)),
     ("100 hours", timedelta(hours=100)), ("0.000001 seconds", timedelta(microseconds=1)),
     ("999999999 days 23:59:59.999999", timedelta.max), ("-999999999 days", timedelta.min),
     ("2739726 years", timedelta(days=2739726 * 365))],
)
def test_interval_literals(one, literal, expected):
    assert one(f"SELECT '{literal}'::interval AS v") == expected


# ---------------------------------------------------------------- infinity and range


def test_infinities(db):
    (row,) = db.query("SELECT 'infinity'::date AS d1, '-infinity'::date AS d2, 'infinity'::timestamp AS t1, "
                      "'-infinity'::timestamp AS t2, 'infinity'::timestamptz AS z1, '-infinity'::timestamptz AS z2")
    assert row["d1"] == date.max and row["d2"] == date.min
    assert row["t1"] == datetime.max and row["t2"] == datetime.min
    assert row["t1"].tzinfo is None
    assert row["z1"] == datetime.max.replace(tzinfo=UTC) and row["z1"].utcoffset() == timedelta(0)
    assert row["z2"] == datetime.min.replace(tzinfo=UTC) and row["z2"].utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "expr",
    ["'0001-01-01 BC'::date", "'4713-01-01 BC'::date", "'10000-01-01'::date", "'5874897-12-31'::date",
     "'10000-01-01'::timestamp", "'0001-12-31 23:59:59 BC'::timestamp", "'294276-12-31'::timestamp",
     "'10000-01-01 00:00:00+00'::timestamptz", "'0001-01-01 00:00:00+05'::timestamptz",
     "'9999-12-31 23:00:00-05'::timestamptz",
     "'1000000000 days'::interval", "'-1000000000 days'::interval", "'3000000 years'::interval",
     "'999999999 days 24:00:00'::interval", "'24:00:00'::time", "'24:00:00+02'::timetz"],
)
def test_unrepresentable_values_raise(db, expr):
    with pytest.raises(oxpg.DataError) as info:
        db.query(f"SELECT 1 AS ok, {expr} AS unrepresentable_col")
    assert "unrepresentable_col" in str(info.value)
    # Text keeps working, and so does the client.
    assert len(db.query(f"SELECT ({expr})::text AS v")[0]["v"]) > 0
    assert db.query("SELECT 1 AS ok") == [{"ok": 1}]


def test_unrepresentable_value_in_a_later_row(db):
    with pytest.raises(oxpg.DataError) as info:
        db.query("SELECT far_date FROM (VALUES ('2024-01-01'::date), ('infinity'), ('10000-01-01')) AS t(far_date)")
    assert "far_date" in str(info.value)


def test_aware_param_beyond_year_9999_in_utc(db):
    # 9999-12-31 23:00-05:00 is year 10000 in UTC: the server holds it, Python's UTC cannot.
    value = datetime(9999, 12, 31, 23, 0, tzinfo=tz(hours=-5))
    assert db.query("SELECT $1::timestamptz = '10000-01-01 04:00:00+00' AS v", value) == [{"v": True}]
    with pytest.raises(oxpg.DataError):
        db.query("SELECT $1::timestamptz AS v", value)


# ------------------------------------------------------------------ columns, filters


def test_columns_and_filters(db):
    db.execute("CREATE TEMP TABLE dt_t (d date, ts timestamp, tz timestamptz, t time, ttz timetz, i interval)")
    try:
        row = (date(2024, 1, 2), datetime(2024, 1, 2, 3, 4, 5, 6), datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
               time(3, 4, 5, 6), time(3, 4, 5, 6, tzinfo=tz(hours=1)), timedelta(days=1, microseconds=1))
        assert db.execute("INSERT INTO dt_t VALUES ($1, $2, $3, $4, $5, $6)", *row) == 1
        (got,) = db.query("SELECT * FROM dt_t")
        assert tuple(got.values()) == row
        assert db.query("SELECT count(*) AS n FROM dt_t WHERE d = $1", "2024-01-02") == [{"n": 1}]
        assert db.query("SELECT count(*) AS n FROM dt_t WHERE d = $1", date(2024, 1, 2)) == [{"n": 1}]
        assert db.query("SELECT count(*) AS n FROM dt_t WHERE ts = $1", row[1]) == [{"n": 1}]
        kathmandu = row[2].astimezone(zoneinfo.ZoneInfo("Asia/Kathmandu"))
        assert db.query("SELECT count(*) AS n FROM dt_t WHERE tz = $1", kathmandu) == [{"n": 1}]
        assert db.query("SELECT count(*) AS n FROM dt_t WHERE i = $1", timedelta(days=1, microseconds=1)) == [
            {"n": 1}]
    finally:
        db.execute("DROP TABLE dt_t")


def test_str_param_as_date(one):
    assert one("SELECT $1::date AS v", "2024-01-02") == date(2024, 1, 2)
    assert one("SELECT $1::timestamptz AS v", "2024-01-02 03:04:05+05:45") == datetime(
        2024, 1, 1, 21, 19, 5, tzinfo=UTC)


def test_now_is_now(one):
    result = one("SELECT now() AS v")
    assert abs(result - datetime.now(UTC)) < timedelta(minutes=5)


# ---------------------------------------------------------------------- settings

BATTERY = (
    "SELECT '2024-01-02'::date AS d, '2024-01-02 03:04:05.678901'::timestamp AS ts, "
    "'2024-01-02 03:04:05.678901+05:45'::timestamptz AS tz, '03:04:05.678901'::time AS t, "
    "'03:04:05.678901-02:30'::timetz AS ttz, '1 year 2 mons 3 days 04:05:06.789'::interval AS i, "
    "'-1 year -2 mons +3 days -04:05:06.789'::interval AS ni, 'infinity'::timestamptz AS inf, "
    "$1::date AS pd, $2::timestamp AS pts, $3::timestamptz AS ptz, $4::interval AS pi, $5::date AS sd"
)
BATTERY_PARAMS = (date(1, 1, 1), datetime(1999, 12, 31, 23, 59, 59, 999999),
                  datetime(2024, 6, 1, 12, 0, tzinfo=zoneinfo.ZoneInfo("America/St_Johns")),
                  timedelta(days=-5, microseconds=7), "2024-01-02")


@pytest.mark.parametrize(
    "setup",
    ["SET DateStyle TO 'SQL, DMY'", "SET DateStyle TO 'German'", "SET DateStyle TO 'Postgres, MDY'",
     "SET IntervalStyle TO 'sql_standard'", "SET IntervalStyle TO 'iso_8601'",
     "SET IntervalStyle TO 'postgres_verbose'", "SET TimeZone TO 'Asia/Kathmandu'",
     "SET TimeZone TO 'America/St_Johns'", "SET TimeZone TO 'Pacific/Chatham'", "SET TimeZone TO '-11:30'"],
)
def test_settings_do_not_change_results(db, client, setup):
    expected = db.query(BATTERY, *BATTERY_PARAMS)
    client.execute(setup)
    # Aware datetimes compare by instant: equal whatever the session's zone.
    assert client.query(BATTERY, *BATTERY_PARAMS) == expected
    # And the timestamptz result is shown in the session's zone when one is set.
    shown = client.query(BATTERY, *BATTERY_PARAMS)[0]["tz"]
    zone = setup.split("'")[1] if "TimeZone" in setup else ""
    if "/" in zone:
        assert shown.tzinfo == zoneinfo.ZoneInfo(zone)
    else:
        # POSIX-style offsets ('-11:30') have no IANA zone: the value stays in UTC.
        assert shown.utcoffset() == timedelta(0)


@pytest.mark.parametrize("zone", ["Asia/Kathmandu", "America/New_York", "Australia/Lord_Howe", "UTC"])
def test_server_time_zone_sees_the_same_instant(client, zone):
    """timestamptz honours the session's TimeZone: same instant, the session's tzinfo."""
    client.execute(f"SET TimeZone TO '{zone}'")
    value = datetime(2024, 3, 31, 1, 30, 15, 123456, tzinfo=tz(hours=-7))
    (row,) = client.query("SELECT $1::timestamptz::timestamp AS local, $1::timestamptz AS back, "
                          "'2024-01-01 00:00'::timestamptz AS midnight", value)
    assert row["local"] == value.astimezone(zoneinfo.ZoneInfo(zone)).replace(tzinfo=None)
    assert_same_instant(row["back"], value, zone)
    assert_same_instant(row["midnight"], datetime(2024, 1, 1, tzinfo=zoneinfo.ZoneInfo(zone)), zone)


def test_nulls(db):
    (row,) = db.query("SELECT NULL::date AS a, NULL::timestamp AS b, NULL::timestamptz AS c, NULL::time AS d, "
                      "NULL::timetz AS e, NULL::interval AS f")
    assert set(row.values()) == {None}


class MyDateTime(datetime):
    pass


class MyDate(date):
    pass


def test_subclasses(db):
    (row,) = db.query("SELECT pg_typeof($1)::text AS a, $1 AS av, pg_typeof($2)::text AS b, $2 AS bv",
                      MyDateTime(2024, 1, 2, 3, 4, 5), MyDate(2024, 1, 2))
    assert row == {"a": "timestamp without time zone", "av": datetime(2024, 1, 2, 3, 4, 5),
                   "b": "date", "bv": date(2024, 1, 2)}


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/New_York"])
def test_session_zone_across_dst_keeps_each_instant(client, zone):
    client.execute(f"SET TimeZone TO '{zone}'")
    # One hour apart in UTC, across the spring-forward gap of 2024.
    rows = client.query(
        "SELECT ts FROM unnest(ARRAY['2024-03-31 00:30+00', '2024-03-31 01:30+00', "
        "'2024-03-10 06:30+00', '2024-03-10 07:30+00']::timestamptz[]) ts"
    )
    values = [r["ts"] for r in rows]
    assert all(v.tzinfo == zoneinfo.ZoneInfo(zone) for v in values)
    # (Subtraction within one tzinfo is wall-clock time in Python: compare in UTC.)
    in_utc = [v.astimezone(UTC) for v in values]
    assert in_utc[1] - in_utc[0] == timedelta(hours=1) and in_utc[3] - in_utc[2] == timedelta(hours=1)
    # Berlin springs forward at 01:00Z on March 31, New York at 07:00Z on March 10.
    assert values[1].utcoffset() != values[0].utcoffset() or values[3].utcoffset() != values[2].utcoffset()


def test_infinity_stays_utc_in_any_session_zone(client):
    client.execute("SET TimeZone TO 'America/New_York'")
    (row,) = client.query("SELECT 'infinity'::timestamptz AS a, '-infinity'::timestamptz AS b")
    assert row["a"] == datetime.max.replace(tzinfo=UTC) and row["a"].utcoffset() == timedelta(0)
    assert row["b"] == datetime.min.replace(tzinfo=UTC)


def test_timestamptz_arrays_follow_the_session_zone(client):
    client.execute("SET TimeZone TO 'Asia/Kathmandu'")
    (row,) = client.query(
        "SELECT ARRAY['2024-01-01 00:00+00', NULL, 'infinity']::timestamptz[] AS flat, "
        "'{{2024-01-01 00:00+00},{2024-06-01 00:00+00}}'::timestamptz[] AS nested"
    )
    zone = zoneinfo.ZoneInfo("Asia/Kathmandu")
    first, missing, infinite = row["flat"]
    assert first.tzinfo == zone and first == datetime(2024, 1, 1, tzinfo=UTC)
    assert missing is None
    assert infinite == datetime.max.replace(tzinfo=UTC) and infinite.utcoffset() == timedelta(0)
    assert [[v.tzinfo for v in inner] for inner in row["nested"]] == [[zone], [zone]]


def test_a_decode_error_keeps_its_reason_while_the_collector_runs(db):
    """The row's DataError says why (Python 3.12+ may collect garbage inside C API calls
    made while an exception is set, and it reported and dropped the reason: '...row 2: ?')."""
    old = gc.get_threshold()
    gc.set_threshold(1)
    try:
        for _ in range(20):
            with pytest.raises(oxpg.DataError, match=r"column 'd' \(date\), row 2: date value out of Python's range"):
                db.query("SELECT CASE WHEN g = 2 THEN date '10000-01-01' ELSE date '2000-01-01' END AS d "
                         "FROM generate_series(1, 3) g ORDER BY g")
            with pytest.raises(oxpg.DataError, match=r"column 'r' \(record\), row 1: date value out of Python's range"):
                db.query("SELECT ROW(date '10000-01-01', 1) AS r")
    finally:
        gc.set_threshold(*old)
