/* date, time, timetz, timestamp, timestamptz, interval.
 * PostgreSQL counts from 2000-01-01 in microseconds (days for date); Python from
 * 0001-01-01. Values Python cannot hold raise DataError: never a wrong value. */
#include "oxpg/codecs.h"

#define ORDINAL_MAX 3652059 /* date(9999, 12, 31).toordinal() */
#define UNIX_EPOCH_ORDINAL 719163

/* Howard Hinnant's days-from-civil and its inverse, shifted to Python ordinals. */
int64_t oxpg_ymd_to_ordinal(int year, int month, int day)
{
    int64_t y = year - (month <= 2);
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468 + UNIX_EPOCH_ORDINAL;
}

void oxpg_ordinal_to_ymd(int64_t ordinal, int *year, int *month, int *day)
{
    int64_t z = ordinal - UNIX_EPOCH_ORDINAL + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1;
    int64_t m = mp < 10 ? mp + 3 : mp - 9;
    *year = (int)(yoe + era * 400 + (m <= 2));
    *month = (int)m;
    *day = (int)d;
}

/* usecs = *days * OXPG_USECS_PER_DAY + *rest with 0 <= *rest < a day, computed
 * without overflow for any int64 (multiplying the floored days back can overflow
 * near INT64_MIN: found by tests/fuzz). */
static void split_days(int64_t usecs, int64_t *days, int64_t *rest)
{
    *days = usecs / OXPG_USECS_PER_DAY;
    *rest = usecs % OXPG_USECS_PER_DAY;
    if (*rest < 0) {
        *rest += OXPG_USECS_PER_DAY;
        *days -= 1;
    }
}

static PyObject *out_of_range(OxpgState *st, const char *type_name)
{
    PyErr_Format(st->DataError,
                 "%s value out of Python's range (years 1-9999); cast it to text in SQL to read it", type_name);
    return NULL;
}

static PyObject *make_datetime(OxpgState *st, int64_t usecs, PyObject *tz, const char *type_name)
{
    PyDateTime_CAPI *dt = st->datetime_api;
    int year, month, day;
    if (usecs == INT64_MAX || usecs == INT64_MIN) {
        /* 'infinity' / '-infinity': the extremes Python has. */
        int max = usecs == INT64_MAX;
        return dt->DateTime_FromDateAndTime(max ? 9999 : 1, max ? 12 : 1, max ? 31 : 1, max ? 23 : 0,
                                            max ? 59 : 0, max ? 59 : 0, max ? 999999 : 0, tz, dt->DateTimeType);
    }
    int64_t days, rest;
    split_days(usecs, &days, &rest);
    int64_t ordinal = days + OXPG_PG_EPOCH_ORDINAL;
    if (ordinal < 1 || ordinal > ORDINAL_MAX)
        return out_of_range(st, type_name);
    oxpg_ordinal_to_ymd(ordinal, &year, &month, &day);
    int64_t secs = rest / 1000000;
    return dt->DateTime_FromDateAndTime(year, month, day, (int)(secs / 3600), (int)(secs / 60 % 60),
                                        (int)(secs % 60), (int)(rest % 1000000), tz, dt->DateTimeType);
}

PyObject *oxpg_decode_date(OxpgState *st, const char *data, int len)
{
    if (OXPG_UNLIKELY(len != 4))
        return oxpg_decode_malformed(st, "date", len);
    int32_t days = (int32_t)oxpg_load_u32(data);
    int year, month, day;
    if (days == INT32_MAX) {
        year = 9999, month = 12, day = 31;
    } else if (days == INT32_MIN) {
        year = 1, month = 1, day = 1;
    } else {
        int64_t ordinal = (int64_t)days + OXPG_PG_EPOCH_ORDINAL;
        if (ordinal < 1 || ordinal > ORDINAL_MAX)
            return out_of_range(st, "date");
        oxpg_ordinal_to_ymd(ordinal, &year, &month, &day);
    }
    return st->datetime_api->Date_FromDate(year, month, day, st->datetime_api->DateType);
}

PyObject *oxpg_decode_timestamp(OxpgState *st, const char *data, int len)
{
    if (OXPG_UNLIKELY(len != 8))
        return oxpg_decode_malformed(st, "timestamp", len);
    return make_datetime(st, (int64_t)oxpg_load_u64(data), Py_None, "timestamp");
}

PyObject *oxpg_decode_timestamptz(OxpgState *st, const char *data, int len)
{
    if (OXPG_UNLIKELY(len != 8))
        return oxpg_decode_malformed(st, "timestamptz", len);
    return make_datetime(st, (int64_t)oxpg_load_u64(data), st->utc, "timestamptz");
}

static PyObject *make_time(OxpgState *st, int64_t usecs, PyObject *tz, const char *type_name)
{
    if (usecs < 0 || usecs >= OXPG_USECS_PER_DAY) {
        /* PostgreSQL allows 24:00:00; datetime.time does not. */
        PyErr_Format(st->DataError, "%s value %lld microseconds is outside datetime.time's range "
                     "(24:00:00 cannot be represented)", type_name, (long long)usecs);
        return NULL;
    }
    int64_t secs = usecs / 1000000;
    return st->datetime_api->Time_FromTime((int)(secs / 3600), (int)(secs / 60 % 60), (int)(secs % 60),
                                           (int)(usecs % 1000000), tz, st->datetime_api->TimeType);
}

PyObject *oxpg_decode_time(OxpgState *st, const char *data, int len)
{
    if (OXPG_UNLIKELY(len != 8))
        return oxpg_decode_malformed(st, "time", len);
    return make_time(st, (int64_t)oxpg_load_u64(data), Py_None, "time");
}

PyObject *oxpg_decode_timetz(OxpgState *st, const char *data, int len)
{
    if (OXPG_UNLIKELY(len != 12))
        return oxpg_decode_malformed(st, "timetz", len);
    int64_t usecs = (int64_t)oxpg_load_u64(data);
    /* The zone is stored as seconds west of UTC; Python wants the offset east. */
    int32_t west = (int32_t)oxpg_load_u32(data + 8);
    if (west <= -86400 || west >= 86400)
        return oxpg_decode_malformed(st, "timetz", len);
    PyDateTime_CAPI *dt = st->datetime_api;
    PyObject *delta = dt->Delta_FromDelta(0, -west, 0, 1, dt->DeltaType);
    if (delta == NULL)
        return NULL;
    PyObject *tz = dt->TimeZone_FromTimeZone(delta, NULL);
    Py_DECREF(delta);
    if (tz == NULL)
        return NULL;
    PyObject *value = make_time(st, usecs, tz, "timetz");
    Py_DECREF(tz);
    return value;
}

PyObject *oxpg_decode_interval(OxpgState *st, const char *data, int len)
{
    if (OXPG_UNLIKELY(len != 16))
        return oxpg_decode_malformed(st, "interval", len);
    int64_t usecs = (int64_t)oxpg_load_u64(data);
    int32_t days = (int32_t)oxpg_load_u32(data + 8);
    int32_t months = (int32_t)oxpg_load_u32(data + 12);
    /* Months have no fixed length: whole years count 365 days and the months left
     * over 30 days each, so '1 year' is 365 days and '1 mon' 30 (psycopg does the same). */
    int64_t day_part, rest;
    split_days(usecs, &day_part, &rest);
    int64_t total_days = (int64_t)(months / 12) * 365 + (int64_t)(months % 12) * 30 + days + day_part;
    if (total_days > 999999999 || total_days < -999999999) {
        PyErr_SetString(st->DataError, "interval value out of datetime.timedelta's range (999999999 days)");
        return NULL;
    }
    return st->datetime_api->Delta_FromDelta((int)total_days, (int)(rest / 1000000), (int)(rest % 1000000), 1,
                                             st->datetime_api->DeltaType);
}

/* ---- encoders ------------------------------------------------------------------ */

static int is_date_max(PyObject *v)
{
    return PyDateTime_GET_YEAR(v) == 9999 && PyDateTime_GET_MONTH(v) == 12 && PyDateTime_GET_DAY(v) == 31;
}

static int is_date_min(PyObject *v)
{
    return PyDateTime_GET_YEAR(v) == 1 && PyDateTime_GET_MONTH(v) == 1 && PyDateTime_GET_DAY(v) == 1;
}

static int64_t pg_days(PyObject *v)
{
    return oxpg_ymd_to_ordinal(PyDateTime_GET_YEAR(v), PyDateTime_GET_MONTH(v), PyDateTime_GET_DAY(v)) -
           OXPG_PG_EPOCH_ORDINAL;
}

int oxpg_encode_timestamp(OxpgWriteBuffer *w, PyObject *v, int64_t offset_us)
{
    int h = PyDateTime_DATE_GET_HOUR(v), mi = PyDateTime_DATE_GET_MINUTE(v), s = PyDateTime_DATE_GET_SECOND(v);
    int us = PyDateTime_DATE_GET_MICROSECOND(v);
    if (is_date_max(v) && h == 23 && mi == 59 && s == 59 && us == 999999)
        return oxpg_wbuf_u64(w, (uint64_t)INT64_MAX);
    if (is_date_min(v) && h == 0 && mi == 0 && s == 0 && us == 0)
        return oxpg_wbuf_u64(w, (uint64_t)INT64_MIN);
    int64_t usecs = ((pg_days(v) * 86400 + h * 3600 + mi * 60 + s) * 1000000 + us) - offset_us;
    return oxpg_wbuf_u64(w, (uint64_t)usecs);
}

int oxpg_encode_date(OxpgWriteBuffer *w, PyObject *v)
{
    if (is_date_max(v))
        return oxpg_wbuf_u32(w, (uint32_t)INT32_MAX);
    if (is_date_min(v))
        return oxpg_wbuf_u32(w, (uint32_t)INT32_MIN);
    return oxpg_wbuf_u32(w, (uint32_t)(int32_t)pg_days(v));
}

int oxpg_encode_time(OxpgState *st, OxpgWriteBuffer *w, PyObject *v, int aware, int64_t offset_us)
{
    int64_t usecs = ((int64_t)PyDateTime_TIME_GET_HOUR(v) * 3600 + PyDateTime_TIME_GET_MINUTE(v) * 60 +
                     PyDateTime_TIME_GET_SECOND(v)) * 1000000 +
                    PyDateTime_TIME_GET_MICROSECOND(v);
    if (aware && offset_us % 1000000 != 0) {
        PyErr_SetString(st->DataError, "timetz offsets must be whole seconds");
        return -1;
    }
    if (oxpg_wbuf_u64(w, (uint64_t)usecs) < 0)
        return -1;
    /* timetz stores the zone as seconds west of UTC, the opposite sign of utcoffset(). */
    return aware ? oxpg_wbuf_u32(w, (uint32_t)(int32_t)(-offset_us / 1000000)) : 0;
}

int oxpg_encode_interval(OxpgWriteBuffer *w, PyObject *v)
{
    int64_t usecs = (int64_t)PyDateTime_DELTA_GET_SECONDS(v) * 1000000 + PyDateTime_DELTA_GET_MICROSECONDS(v);
    char *at = oxpg_wbuf_put(w, 16);
    if (at == NULL)
        return -1;
    oxpg_store_u64(at, (uint64_t)usecs);
    oxpg_store_u32(at + 8, (uint32_t)(int32_t)PyDateTime_DELTA_GET_DAYS(v));
    oxpg_store_u32(at + 12, 0); /* months: a timedelta has none */
    return 0;
}
