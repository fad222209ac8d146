/* Python objects -> libpq parameter arrays. Exact built-in types take the inline
 * fast path; everything else goes through encode_other(), kept out of line. */
#include "oxpg/params.h"
#include "oxpg/codecs.h"
#include "oxpg/errors.h"
#include "oxpg/pg_oids.h"

#include <limits.h>

#define FORMAT_TEXT 0
#define FORMAT_BINARY 1

static int setup(OxpgParams *p, Py_ssize_t n)
{
    p->count = (int)n;
    p->arena = p->arena_inline;
    p->arena_used = 0;
    p->arena_cap = sizeof(p->arena_inline);
    if (n <= OXPG_SMALL_PARAMS) {
        p->types = p->types_inline;
        p->values = p->values_inline;
        p->lengths = p->lengths_inline;
        p->formats = p->formats_inline;
        p->offsets = p->offsets_inline;
        return 0;
    }
    p->types = PyMem_Calloc((size_t)n, sizeof(Oid));
    p->values = PyMem_Calloc((size_t)n, sizeof(char *));
    p->lengths = PyMem_Calloc((size_t)n, sizeof(int));
    p->formats = PyMem_Calloc((size_t)n, sizeof(int));
    p->offsets = PyMem_Calloc((size_t)n, sizeof(size_t));
    if (!p->types || !p->values || !p->lengths || !p->formats || !p->offsets) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

void oxpg_params_free(OxpgParams *p)
{
    if (p->types != p->types_inline) {
        PyMem_Free(p->types);
        PyMem_Free((void *)p->values);
        PyMem_Free(p->lengths);
        PyMem_Free(p->formats);
        PyMem_Free(p->offsets);
    }
    if (p->arena != p->arena_inline)
        PyMem_Free(p->arena);
    p->types = p->types_inline;
    p->values = p->values_inline;
    p->lengths = p->lengths_inline;
    p->formats = p->formats_inline;
    p->offsets = p->offsets_inline;
    p->arena = p->arena_inline;
    p->count = 0;
}

/* Room for size bytes in the arena; the pointer is valid until the next reserve,
 * which is why values are recorded as offsets until encoding is finished. */
static char *reserve(OxpgParams *p, int i, size_t size)
{
    if (p->arena_cap - p->arena_used < size) {
        size_t cap = p->arena_cap * 2;
        while (cap - p->arena_used < size)
            cap *= 2;
        char *grown = PyMem_Malloc(cap);
        if (grown == NULL) {
            PyErr_NoMemory();
            return NULL;
        }
        memcpy(grown, p->arena, p->arena_used);
        if (p->arena != p->arena_inline)
            PyMem_Free(p->arena);
        p->arena = grown;
        p->arena_cap = cap;
    }
    char *at = p->arena + p->arena_used;
    p->offsets[i] = p->arena_used;
    p->arena_used += size;
    p->lengths[i] = (int)size;
    p->formats[i] = FORMAT_BINARY;
    return at;
}

static void set_external(OxpgParams *p, int i, Oid type, const char *data, int len, int format)
{
    p->types[i] = type;
    p->values[i] = data;
    p->lengths[i] = len;
    p->formats[i] = format;
    p->offsets[i] = SIZE_MAX;
}

static int param_error(OxpgState *st, int i, const char *what)
{
    PyErr_Format(st->DataError, "parameter $%d: %s", i + 1, what);
    return -1;
}

static int encode_int(OxpgState *st, OxpgParams *p, int i, PyObject *v)
{
    int overflow = 0;
    long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (x == -1 && PyErr_Occurred())
        return -1;
    if (overflow) {
        /* Beyond int8: numeric keeps every digit. */
        char *buf = NULL;
        int len = 0;
        if (oxpg_encode_numeric_from_long(st, v, &buf, &len) < 0) {
            char prefix[32];
            PyOS_snprintf(prefix, sizeof(prefix), "parameter $%d", i + 1);
            return oxpg_reraise_as(st->DataError, prefix);
        }
        char *at = reserve(p, i, (size_t)len);
        if (at != NULL)
            memcpy(at, buf, (size_t)len);
        PyMem_Free(buf);
        p->types[i] = OXPG_NUMERICOID;
        return at == NULL ? -1 : 0;
    }
    /* int4 when it fits, so substr(s, $1) and $1 + $2 resolve as users expect. */
    if (x >= INT32_MIN && x <= INT32_MAX) {
        char *at = reserve(p, i, 4);
        if (at == NULL)
            return -1;
        oxpg_store_u32(at, (uint32_t)(int32_t)x);
        p->types[i] = OXPG_INT4OID;
        return 0;
    }
    char *at = reserve(p, i, 8);
    if (at == NULL)
        return -1;
    oxpg_store_u64(at, (uint64_t)(int64_t)x);
    p->types[i] = OXPG_INT8OID;
    return 0;
}

static int encode_float(OxpgParams *p, int i, PyObject *v)
{
    double d = PyFloat_AsDouble(v);
    if (d == -1.0 && PyErr_Occurred())
        return -1;
    char *at = reserve(p, i, 8);
    if (at == NULL)
        return -1;
    uint64_t bits;
    memcpy(&bits, &d, 8);
    oxpg_store_u64(at, bits);
    p->types[i] = OXPG_FLOAT8OID;
    return 0;
}

static int encode_str(OxpgState *st, OxpgParams *p, int i, PyObject *v)
{
    Py_ssize_t size;
    const char *utf8 = PyUnicode_AsUTF8AndSize(v, &size);
    if (utf8 == NULL) {
        char prefix[32];
        PyOS_snprintf(prefix, sizeof(prefix), "parameter $%d", i + 1);
        return oxpg_reraise_as(st->DataError, prefix);
    }
    /* libpq reads text parameters as C strings: a NUL would silently cut the value. */
    if (memchr(utf8, '\0', (size_t)size) != NULL)
        return param_error(st, i, "str contains a NUL character (\\x00), which PostgreSQL text cannot store; "
                                  "send bytes for binary data");
    if (size > INT_MAX)
        return param_error(st, i, "str is too large to send (over 2 GiB)");
    /* OID 0: the server infers the type from the context, so '2024-01-02' works as a date. */
    set_external(p, i, 0, utf8, (int)size, FORMAT_TEXT);
    return 0;
}

static int encode_buffer(OxpgState *st, OxpgParams *p, int i, PyObject *v)
{
    /* bytearray and memoryview may change while the GIL is released: copy them. */
    Py_buffer view;
    /* Strided views (memoryview(b)[::2]) are accepted and gathered in C order. */
    if (PyObject_GetBuffer(v, &view, PyBUF_FULL_RO) < 0)
        return -1;
    int rc = -1;
    if (view.len > INT_MAX) {
        param_error(st, i, "bytes value is too large to send (over 2 GiB)");
        goto done;
    }
    char *at = reserve(p, i, (size_t)view.len);
    if (at == NULL)
        goto done;
    if (PyBuffer_ToContiguous(at, &view, view.len, 'C') < 0)
        goto done;
    p->types[i] = OXPG_BYTEAOID;
    rc = 0;
done:
    PyBuffer_Release(&view);
    return rc;
}

/* Seconds east of UTC from a timedelta returned by utcoffset(). */
static int64_t offset_microseconds(PyObject *delta)
{
    return ((int64_t)PyDateTime_DELTA_GET_DAYS(delta) * 86400 + PyDateTime_DELTA_GET_SECONDS(delta)) * 1000000 +
           PyDateTime_DELTA_GET_MICROSECONDS(delta);
}

/* utcoffset() of an aware value as a new reference, Py_None when naive, NULL on error. */
static PyObject *utcoffset(OxpgState *st, PyObject *v)
{
    PyObject *tz = PyObject_GetAttrString(v, "tzinfo");
    if (tz == NULL)
        return NULL;
    int naive = tz == Py_None;
    Py_DECREF(tz);
    if (naive)
        Py_RETURN_NONE;
    PyObject *off = PyObject_CallMethodNoArgs(v, st->str_utcoffset);
    if (off != NULL && off != Py_None && !PyObject_TypeCheck(off, st->datetime_api->DeltaType)) {
        Py_DECREF(off);
        PyErr_SetString(PyExc_TypeError, "utcoffset() did not return a timedelta");
        return NULL;
    }
    return off;
}

static int encode_datetime(OxpgState *st, OxpgParams *p, int i, PyObject *v)
{
    int64_t days = oxpg_ymd_to_ordinal(PyDateTime_GET_YEAR(v), PyDateTime_GET_MONTH(v), PyDateTime_GET_DAY(v)) -
                   OXPG_PG_EPOCH_ORDINAL;
    int64_t secs = days * 86400 + PyDateTime_DATE_GET_HOUR(v) * 3600 + PyDateTime_DATE_GET_MINUTE(v) * 60 +
                   PyDateTime_DATE_GET_SECOND(v);
    int64_t usecs = secs * 1000000 + PyDateTime_DATE_GET_MICROSECOND(v);
    PyObject *off = utcoffset(st, v);
    if (off == NULL)
        return -1;
    Oid oid = OXPG_TIMESTAMPOID;
    if (off != Py_None) {
        usecs -= offset_microseconds(off);
        oid = OXPG_TIMESTAMPTZOID;
    }
    Py_DECREF(off);
    char *at = reserve(p, i, 8);
    if (at == NULL)
        return -1;
    oxpg_store_u64(at, (uint64_t)usecs);
    p->types[i] = oid;
    return 0;
}

static int encode_date(OxpgParams *p, int i, PyObject *v)
{
    int64_t days = oxpg_ymd_to_ordinal(PyDateTime_GET_YEAR(v), PyDateTime_GET_MONTH(v), PyDateTime_GET_DAY(v)) -
                   OXPG_PG_EPOCH_ORDINAL;
    char *at = reserve(p, i, 4);
    if (at == NULL)
        return -1;
    oxpg_store_u32(at, (uint32_t)(int32_t)days);
    p->types[i] = OXPG_DATEOID;
    return 0;
}

static int encode_time(OxpgState *st, OxpgParams *p, int i, PyObject *v)
{
    int64_t usecs = ((int64_t)PyDateTime_TIME_GET_HOUR(v) * 3600 + PyDateTime_TIME_GET_MINUTE(v) * 60 +
                     PyDateTime_TIME_GET_SECOND(v)) * 1000000 +
                    PyDateTime_TIME_GET_MICROSECOND(v);
    PyObject *off = utcoffset(st, v);
    if (off == NULL)
        return -1;
    if (off == Py_None) {
        Py_DECREF(off);
        char *at = reserve(p, i, 8);
        if (at == NULL)
            return -1;
        oxpg_store_u64(at, (uint64_t)usecs);
        p->types[i] = OXPG_TIMEOID;
        return 0;
    }
    /* timetz stores the zone as seconds west of UTC, the opposite sign of utcoffset(). */
    int64_t off_us = offset_microseconds(off);
    Py_DECREF(off);
    if (off_us % 1000000 != 0)
        return param_error(st, i, "timetz offsets must be whole seconds");
    char *at = reserve(p, i, 12);
    if (at == NULL)
        return -1;
    oxpg_store_u64(at, (uint64_t)usecs);
    oxpg_store_u32(at + 8, (uint32_t)(int32_t)(-off_us / 1000000));
    p->types[i] = OXPG_TIMETZOID;
    return 0;
}

static int encode_timedelta(OxpgParams *p, int i, PyObject *v)
{
    int64_t usecs = (int64_t)PyDateTime_DELTA_GET_SECONDS(v) * 1000000 + PyDateTime_DELTA_GET_MICROSECONDS(v);
    char *at = reserve(p, i, 16);
    if (at == NULL)
        return -1;
    oxpg_store_u64(at, (uint64_t)usecs);
    oxpg_store_u32(at + 8, (uint32_t)(int32_t)PyDateTime_DELTA_GET_DAYS(v));
    oxpg_store_u32(at + 12, 0); /* months: a timedelta has none */
    p->types[i] = OXPG_INTERVALOID;
    return 0;
}

static int encode_decimal(OxpgState *st, OxpgParams *p, int i, PyObject *v)
{
    char *buf = NULL;
    int len = 0;
    if (oxpg_encode_numeric_from_decimal(st, v, &buf, &len) < 0) {
        char prefix[32];
        PyOS_snprintf(prefix, sizeof(prefix), "parameter $%d", i + 1);
        return oxpg_reraise_as(st->DataError, prefix);
    }
    char *at = reserve(p, i, (size_t)len);
    if (at != NULL)
        memcpy(at, buf, (size_t)len);
    PyMem_Free(buf);
    p->types[i] = OXPG_NUMERICOID;
    return at == NULL ? -1 : 0;
}

static int encode_uuid(OxpgState *st, OxpgParams *p, int i, PyObject *v)
{
    PyObject *raw = PyObject_GetAttr(v, st->str_bytes);
    if (raw == NULL)
        return -1;
    int rc = -1;
    if (!PyBytes_Check(raw) || PyBytes_GET_SIZE(raw) != 16) {
        param_error(st, i, "UUID.bytes is not 16 bytes");
        goto done;
    }
    char *at = reserve(p, i, 16);
    if (at == NULL)
        goto done;
    memcpy(at, PyBytes_AS_STRING(raw), 16);
    p->types[i] = OXPG_UUIDOID;
    rc = 0;
done:
    Py_DECREF(raw);
    return rc;
}

/* Subclasses and the less common types: kept out of the inlined fast path. */
static OXPG_NOINLINE int encode_other(OxpgState *st, OxpgParams *p, int i, PyObject *v)
{
    PyDateTime_CAPI *dt = st->datetime_api;
    if (PyLong_Check(v))
        return encode_int(st, p, i, v);
    if (PyFloat_Check(v))
        return encode_float(p, i, v);
    if (PyUnicode_Check(v))
        return encode_str(st, p, i, v);
    if (PyBytes_Check(v) || PyByteArray_Check(v) || PyMemoryView_Check(v))
        return encode_buffer(st, p, i, v);
    /* datetime before date: a datetime is a date. */
    if (PyObject_TypeCheck(v, dt->DateTimeType))
        return encode_datetime(st, p, i, v);
    if (PyObject_TypeCheck(v, dt->DateType))
        return encode_date(p, i, v);
    if (PyObject_TypeCheck(v, dt->TimeType))
        return encode_time(st, p, i, v);
    if (PyObject_TypeCheck(v, dt->DeltaType))
        return encode_timedelta(p, i, v);
    int is = PyObject_IsInstance(v, st->decimal_type);
    if (is < 0)
        return -1;
    if (is)
        return encode_decimal(st, p, i, v);
    if ((is = PyObject_IsInstance(v, st->uuid_type)) < 0)
        return -1;
    if (is)
        return encode_uuid(st, p, i, v);
    PyErr_Format(st->DataError, "parameter $%d: cannot send a value of type '%.200s' to PostgreSQL", i + 1,
                 Py_TYPE(v)->tp_name);
    return -1;
}

static inline int encode_one(OxpgState *st, OxpgParams *p, int i, PyObject *v)
{
    PyTypeObject *type = Py_TYPE(v);
    if (v == Py_None) {
        set_external(p, i, 0, NULL, 0, FORMAT_BINARY);
        return 0;
    }
    if (type == &PyUnicode_Type)
        return encode_str(st, p, i, v);
    /* bool before int: True must not go as int4 1. */
    if (type == &PyBool_Type) {
        char *at = reserve(p, i, 1);
        if (at == NULL)
            return -1;
        *at = (char)(v == Py_True);
        p->types[i] = OXPG_BOOLOID;
        return 0;
    }
    if (type == &PyLong_Type)
        return encode_int(st, p, i, v);
    if (type == &PyFloat_Type)
        return encode_float(p, i, v);
    if (type == &PyBytes_Type) {
        if (PyBytes_GET_SIZE(v) > INT_MAX)
            return param_error(st, i, "bytes value is too large to send (over 2 GiB)");
        set_external(p, i, OXPG_BYTEAOID, PyBytes_AS_STRING(v), (int)PyBytes_GET_SIZE(v), FORMAT_BINARY);
        return 0;
    }
    return encode_other(st, p, i, v);
}

int oxpg_params_encode(OxpgState *st, OxpgParams *p, PyObject *const *args, Py_ssize_t n)
{
    if (n > OXPG_MAX_PARAMS) {
        PyErr_Format(st->ProgrammingError, "too many parameters: %zd (PostgreSQL accepts at most %d)", n,
                     OXPG_MAX_PARAMS);
        p->types = p->types_inline;
        p->arena = p->arena_inline;
        return -1;
    }
    if (setup(p, n) < 0)
        goto fail;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (encode_one(st, p, (int)i, args[i]) < 0)
            goto fail;
    }
    /* The arena no longer moves: turn offsets into pointers. */
    for (Py_ssize_t i = 0; i < n; i++) {
        if (p->offsets[i] != SIZE_MAX)
            p->values[i] = p->arena + p->offsets[i];
    }
    return 0;
fail:
    oxpg_params_free(p);
    return -1;
}
