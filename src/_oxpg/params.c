/* Python objects -> libpq parameter arrays. Exact built-in types take the inline
 * fast path; everything else goes through encode_other(), kept out of line, which
 * classifies the value (a Type: what PostgreSQL type it goes as) and writes its
 * binary form. Lists and tuples become arrays of their elements' common Type
 * (params_array.c).
 * Mapping and edge cases: docs/types.md. */
#include "oxpg/params.h"
#include "params_parts.h"
#include "oxpg/codecs.h"
#include "oxpg/errors.h"
#include "oxpg/pg_oids.h"

#include <limits.h>


/* ------------------------------------------------------------------ the arrays */

static int setup(OxpgParams *p, Py_ssize_t n)
{
    p->count = (int)n;
    oxpg_wbuf_init(&p->arena, p->arena_inline, sizeof(p->arena_inline));
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
    oxpg_wbuf_free(&p->arena);
    p->types = p->types_inline;
    p->values = p->values_inline;
    p->lengths = p->lengths_inline;
    p->formats = p->formats_inline;
    p->offsets = p->offsets_inline;
    p->count = 0;
}

/* Append size bytes to the arena. The pointer is valid until the next put, which
 * is why values are recorded as offsets until encoding is finished. */
static inline char *put(OxpgParams *p, size_t size)
{
    return oxpg_wbuf_put(&p->arena, size);
}

/* Room for parameter i's whole binary value of size bytes. */
static char *reserve(OxpgParams *p, int i, size_t size)
{
    size_t start = p->arena.used;
    char *at = put(p, size);
    if (at == NULL)
        return NULL;
    p->offsets[i] = start;
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

int oxpg_params_error(OxpgState *st, int i, const char *what)
{
    PyErr_Format(st->DataError, "parameter $%d: %s", i + 1, what);
    return -1;
}

/* Parameter i's value is everything put since start: record it. */
int oxpg_params_finish(OxpgState *st, OxpgParams *p, int i, size_t start, Oid type, int format)
{
    size_t size = p->arena.used - start;
    if (size > INT_MAX)
        return oxpg_params_error(st, i, "value is too large to send (over 2 GiB)");
    p->offsets[i] = start;
    p->lengths[i] = (int)size;
    p->formats[i] = format;
    p->types[i] = type;
    return 0;
}

/* ------------------------------------------------------------- the fast path */

static int encode_int(OxpgState *st, OxpgParams *p, int i, PyObject *v)
{
    int overflow = 0;
    long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (x == -1 && PyErr_Occurred())
        return -1;
    if (overflow) {
        /* Beyond int8: numeric keeps every digit. */
        size_t start = p->arena.used;
        if (oxpg_encode_numeric_from_long(st, v, &p->arena) < 0) {
            char prefix[32];
            PyOS_snprintf(prefix, sizeof(prefix), "parameter $%d", i + 1);
            return oxpg_reraise_as(st->DataError, prefix);
        }
        return oxpg_params_finish(st, p, i, start, OXPG_NUMERICOID, FORMAT_BINARY);
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

/* The UTF-8 form of a str that PostgreSQL text can hold, or NULL with DataError. */
static const char *text_utf8(OxpgState *st, int i, PyObject *v, Py_ssize_t *size)
{
    const char *utf8 = PyUnicode_AsUTF8AndSize(v, size);
    if (utf8 == NULL) {
        char prefix[32];
        PyOS_snprintf(prefix, sizeof(prefix), "parameter $%d", i + 1);
        oxpg_reraise_as(st->DataError, prefix);
        return NULL;
    }
    /* libpq reads text parameters as C strings: a NUL would silently cut the value,
     * and the server refuses it in binary text anyway. */
    if (memchr(utf8, '\0', (size_t)*size) != NULL) {
        oxpg_params_error(st, i, "str contains a NUL character (\\x00), which PostgreSQL text cannot store; "
                           "send bytes for binary data");
        return NULL;
    }
    if (*size > INT_MAX) {
        oxpg_params_error(st, i, "str is too large to send (over 2 GiB)");
        return NULL;
    }
    return utf8;
}

static int encode_str(OxpgState *st, OxpgParams *p, int i, PyObject *v)
{
    Py_ssize_t size;
    const char *utf8 = text_utf8(st, i, v, &size);
    if (utf8 == NULL)
        return -1;
    /* OID 0: the server infers the type from the context, so '2024-01-02' works as a date. */
    set_external(p, i, 0, utf8, (int)size, FORMAT_TEXT);
    return 0;
}

/* ------------------------------------------------------ classifying a value */

static const Oid kind_oids[][2] = {
    /* element, array */
    [K_BOOL] = {OXPG_BOOLOID, OXPG_BOOLARRAYOID},
    [K_FLOAT] = {OXPG_FLOAT8OID, OXPG_FLOAT8ARRAYOID},
    [K_NUMERIC] = {OXPG_NUMERICOID, OXPG_NUMERICARRAYOID},
    [K_TEXT] = {OXPG_TEXTOID, OXPG_TEXTARRAYOID},
    [K_BYTEA] = {OXPG_BYTEAOID, OXPG_BYTEAARRAYOID},
    [K_DATE] = {OXPG_DATEOID, OXPG_DATEARRAYOID},
    [K_TIMESTAMP] = {OXPG_TIMESTAMPOID, OXPG_TIMESTAMPARRAYOID},
    [K_TIMESTAMPTZ] = {OXPG_TIMESTAMPTZOID, OXPG_TIMESTAMPTZARRAYOID},
    [K_TIME] = {OXPG_TIMEOID, OXPG_TIMEARRAYOID},
    [K_TIMETZ] = {OXPG_TIMETZOID, OXPG_TIMETZARRAYOID},
    [K_INTERVAL] = {OXPG_INTERVALOID, OXPG_INTERVALARRAYOID},
    [K_UUID] = {OXPG_UUIDOID, OXPG_UUIDARRAYOID},
    [K_JSON] = {OXPG_JSONOID, OXPG_JSONARRAYOID},
    [K_JSONB] = {OXPG_JSONBOID, OXPG_JSONBARRAYOID},
    [K_INET] = {OXPG_INETOID, OXPG_INETARRAYOID},
    [K_CIDR] = {OXPG_CIDROID, OXPG_CIDRARRAYOID},
};

static const Oid range_oids[][2] = {
    [R_NUM] = {OXPG_NUMRANGEOID, OXPG_NUMRANGEARRAYOID},
    [R_DATE] = {OXPG_DATERANGEOID, OXPG_DATERANGEARRAYOID},
    [R_TS] = {OXPG_TSRANGEOID, OXPG_TSRANGEARRAYOID},
    [R_TSTZ] = {OXPG_TSTZRANGEOID, OXPG_TSTZRANGEARRAYOID},
};

/* The type OID (array: 1 for the array type), 0 when the value goes as text. */
Oid oxpg_params_type_oid(const Type *t, int array)
{
    if (t->kind == K_INT) {
        if (!array)
            return t->int_oid;
        return t->int_oid == OXPG_INT4OID ? OXPG_INT4ARRAYOID
               : t->int_oid == OXPG_INT8OID ? OXPG_INT8ARRAYOID
                                            : OXPG_NUMERICARRAYOID;
    }
    if (t->kind == K_RANGE) {
        if (t->range == R_UNTYPED || t->range == R_INT || t->range == R_OTHER)
            return 0;
        return range_oids[t->range][array];
    }
    if (t->kind == K_NULL || t->kind == K_ARRAY)
        return 0;
    return kind_oids[t->kind][array];
}

int oxpg_params_is_sequence(PyObject *v)
{
    return PyList_Check(v) || PyTuple_Check(v);
}

/* utcoffset() of an aware value as a new reference, Py_None when naive, NULL on error. */
static PyObject *utcoffset(OxpgState *st, PyObject *v)
{
    /* The tzinfo field itself (datetime and time subclasses share the layout): no
     * attribute lookup, and UTC, the common aware zone, needs no method call. */
    PyDateTime_CAPI *dt = st->datetime_api;
    PyObject *tz = PyObject_TypeCheck(v, dt->DateTimeType) ? PyDateTime_DATE_GET_TZINFO(v) : PyDateTime_TIME_GET_TZINFO(v);
    if (tz == Py_None)
        Py_RETURN_NONE;
    if (tz == st->utc)
        return dt->Delta_FromDelta(0, 0, 0, 1, dt->DeltaType);
    PyObject *off = PyObject_CallMethodNoArgs(v, st->str_utcoffset);
    if (off != NULL && off != Py_None && !PyObject_TypeCheck(off, st->datetime_api->DeltaType)) {
        Py_DECREF(off);
        PyErr_SetString(PyExc_TypeError, "utcoffset() did not return a timedelta");
        return NULL;
    }
    return off;
}

/* 1 aware, 0 naive, -1 error. */
static int is_aware(OxpgState *st, PyObject *v)
{
    PyObject *off = utcoffset(st, v);
    if (off == NULL)
        return -1;
    int aware = off != Py_None;
    Py_DECREF(off);
    return aware;
}

static Oid int_width(PyObject *v, int *error)
{
    int overflow = 0;
    long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
    *error = x == -1 && PyErr_Occurred();
    if (overflow)
        return OXPG_NUMERICOID;
    return x >= INT32_MIN && x <= INT32_MAX ? OXPG_INT4OID : OXPG_INT8OID;
}

/* A bound's class for RangeKind; -1 on error. */
typedef enum { B_NONE, B_INT, B_DECIMAL, B_DATE, B_TS, B_TSTZ, B_OTHER } BoundKind;

static int bound_kind(OxpgState *st, PyObject *v)
{
    PyDateTime_CAPI *dt = st->datetime_api;
    if (v == Py_None)
        return B_NONE;
    if (PyLong_Check(v) && !PyBool_Check(v))
        return B_INT;
    if (PyObject_TypeCheck(v, dt->DateTimeType)) {
        int aware = is_aware(st, v);
        return aware < 0 ? -1 : aware ? B_TSTZ : B_TS;
    }
    if (PyObject_TypeCheck(v, dt->DateType))
        return B_DATE;
    int is = PyObject_IsInstance(v, st->decimal_type);
    if (is < 0)
        return -1;
    return is ? B_DECIMAL : B_OTHER;
}

static int range_kind(OxpgState *st, int i, PyObject *v, RangeKind *out)
{
    PyObject *empty = PyObject_GetAttr(v, st->str_isempty);
    if (empty == NULL)
        return -1;
    int is_empty = PyObject_IsTrue(empty);
    Py_DECREF(empty);
    if (is_empty < 0)
        return -1;
    if (is_empty) {
        *out = R_UNTYPED;
        return 0;
    }
    PyObject *lower = PyObject_GetAttr(v, st->str_lower);
    PyObject *upper = lower != NULL ? PyObject_GetAttr(v, st->str_upper) : NULL;
    int rc = -1;
    if (upper == NULL)
        goto done;
    int lk = bound_kind(st, lower);
    int uk = lk < 0 ? -1 : bound_kind(st, upper);
    if (uk < 0)
        goto done;
    if (lk == B_NONE || uk == B_NONE || lk == uk) {
        int k = lk == B_NONE ? uk : lk;
        if (k == B_OTHER && lk == uk && Py_TYPE(lower) != Py_TYPE(upper))
            goto mixed;
        static const RangeKind by_bound[] = {[B_NONE] = R_UNTYPED, [B_INT] = R_INT, [B_DECIMAL] = R_NUM,
                                             [B_DATE] = R_DATE,    [B_TS] = R_TS,   [B_TSTZ] = R_TSTZ,
                                             [B_OTHER] = R_OTHER};
        *out = by_bound[k];
        rc = 0;
        goto done;
    }
    if ((lk == B_INT && uk == B_DECIMAL) || (lk == B_DECIMAL && uk == B_INT)) {
        *out = R_NUM;
        rc = 0;
        goto done;
    }
mixed:
    PyErr_Format(st->DataError, "parameter $%d: Range bounds have different types ('%.100s' and '%.100s')",
                 i + 1, Py_TYPE(lower)->tp_name, Py_TYPE(upper)->tp_name);
done:
    Py_XDECREF(lower);
    Py_XDECREF(upper);
    return rc;
}

/* container: the list/tuple v is an element of, NULL at the top level. */
static int unsupported(OxpgState *st, int i, PyObject *v, PyObject *container)
{
    if (container != NULL)
        PyErr_Format(st->DataError, "parameter $%d: cannot send a value of type '%.200s' (an element of a %.100s) "
                     "to PostgreSQL", i + 1, Py_TYPE(v)->tp_name, Py_TYPE(container)->tp_name);
    else
        PyErr_Format(st->DataError, "parameter $%d: cannot send a value of type '%.200s' to PostgreSQL", i + 1,
                     Py_TYPE(v)->tp_name);
    return -1;
}

/* Classify one value (an array element when container is not NULL). */
int oxpg_params_classify(OxpgState *st, int i, PyObject *v, Type *t, PyObject *container)
{
    PyDateTime_CAPI *dt = st->datetime_api;
    t->int_oid = 0;
    t->range = R_UNTYPED;
    if (v == Py_None) {
        t->kind = K_NULL;
    } else if (PyBool_Check(v)) {
        t->kind = K_BOOL;
    } else if (PyLong_Check(v)) {
        int error;
        t->kind = K_INT;
        t->int_oid = int_width(v, &error);
        if (error)
            return -1;
    } else if (PyFloat_Check(v)) {
        t->kind = K_FLOAT;
    } else if (PyUnicode_Check(v)) {
        t->kind = K_TEXT;
    } else if (PyBytes_Check(v) || PyByteArray_Check(v) || PyMemoryView_Check(v)) {
        t->kind = K_BYTEA;
    } else if (PyObject_TypeCheck(v, dt->DateTimeType)) {
        /* datetime before date: a datetime is a date. */
        int aware = is_aware(st, v);
        if (aware < 0)
            return -1;
        t->kind = aware ? K_TIMESTAMPTZ : K_TIMESTAMP;
    } else if (PyObject_TypeCheck(v, dt->DateType)) {
        t->kind = K_DATE;
    } else if (PyObject_TypeCheck(v, dt->TimeType)) {
        int aware = is_aware(st, v);
        if (aware < 0)
            return -1;
        t->kind = aware ? K_TIMETZ : K_TIME;
    } else if (PyObject_TypeCheck(v, dt->DeltaType)) {
        t->kind = K_INTERVAL;
    } else if (PyDict_Check(v)) {
        t->kind = K_JSONB;
    } else if (PyObject_TypeCheck(v, (PyTypeObject *)st->jsonb_wrapper)) {
        /* Jsonb before Json: it is a subclass. */
        t->kind = K_JSONB;
    } else if (PyObject_TypeCheck(v, (PyTypeObject *)st->json_wrapper)) {
        t->kind = K_JSON;
    } else if (PyObject_TypeCheck(v, (PyTypeObject *)st->range_type)) {
        t->kind = K_RANGE;
        if (range_kind(st, i, v, &t->range) < 0)
            return -1;
    } else if (oxpg_params_is_sequence(v)) {
        t->kind = K_ARRAY;
    } else if (oxpg_is_ip(st, v)) {
        t->kind = PyObject_TypeCheck(v, (PyTypeObject *)st->ipv4_network) ||
                          PyObject_TypeCheck(v, (PyTypeObject *)st->ipv6_network)
                      ? K_CIDR
                      : K_INET;
    } else {
        int is = PyObject_IsInstance(v, st->decimal_type);
        if (is < 0)
            return -1;
        if (is) {
            t->kind = K_NUMERIC;
            return 0;
        }
        if ((is = PyObject_IsInstance(v, st->uuid_type)) < 0)
            return -1;
        if (!is)
            return unsupported(st, i, v, container);
        t->kind = K_UUID;
    }
    return 0;
}

/* ------------------------------------------------------------ binary writers */
/* Each appends one value's binary form to the arena; -1 with an exception set. */

static inline int write_u32(OxpgParams *p, uint32_t x)
{
    return oxpg_wbuf_u32(&p->arena, x);
}

static inline int write_u64(OxpgParams *p, uint64_t x)
{
    return oxpg_wbuf_u64(&p->arena, x);
}

static inline int write_bytes(OxpgParams *p, const char *data, size_t size)
{
    return oxpg_wbuf_bytes(&p->arena, data, size);
}

/* Prefix the pending exception with the parameter: DataError "parameter $N: ...". */
static int wrap_error(OxpgState *st, int i)
{
    char prefix[32];
    PyOS_snprintf(prefix, sizeof(prefix), "parameter $%d", i + 1);
    return oxpg_reraise_as(st->DataError, prefix);
}

static int write_numeric_from(OxpgState *st, OxpgParams *p, int i, PyObject *v, int from_long)
{
    int rc = from_long ? oxpg_encode_numeric_from_long(st, v, &p->arena)
                       : oxpg_encode_numeric_from_decimal(st, v, &p->arena);
    return rc < 0 ? wrap_error(st, i) : 0;
}

static int write_int(OxpgState *st, OxpgParams *p, int i, PyObject *v, Oid width)
{
    if (width == OXPG_NUMERICOID)
        return write_numeric_from(st, p, i, v, 1);
    long long x = PyLong_AsLongLong(v);
    if (x == -1 && PyErr_Occurred())
        return wrap_error(st, i);
    if (width == OXPG_INT4OID) {
        /* Classified as fitting; checked again, never truncated. */
        if (x < INT32_MIN || x > INT32_MAX)
            return oxpg_params_error(st, i, "a list changed while it was being sent (an int grew)");
        return write_u32(p, (uint32_t)(int32_t)x);
    }
    return write_u64(p, (uint64_t)x);
}

static int write_double(OxpgParams *p, double d)
{
    uint64_t bits;
    memcpy(&bits, &d, 8);
    return write_u64(p, bits);
}

/* A float8 element; ints in a float list must convert exactly. */
static int write_float(OxpgState *st, OxpgParams *p, int i, PyObject *v)
{
    if (PyLong_Check(v)) {
        int overflow = 0;
        long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
        if (x == -1 && PyErr_Occurred())
            return -1;
        if (overflow || x > (INT64_C(1) << 53) || x < -(INT64_C(1) << 53))
            return oxpg_params_error(st, i, "a list mixes floats with an int float8 cannot hold exactly "
                                      "(beyond 2**53); use Decimal for exact values");
        return write_double(p, (double)x);
    }
    double d = PyFloat_AsDouble(v);
    if (d == -1.0 && PyErr_Occurred())
        return -1;
    return write_double(p, d);
}

static int write_text(OxpgState *st, OxpgParams *p, int i, PyObject *v)
{
    Py_ssize_t size;
    const char *utf8 = text_utf8(st, i, v, &size);
    return utf8 == NULL ? -1 : write_bytes(p, utf8, (size_t)size);
}

static int write_buffer(OxpgState *st, OxpgParams *p, int i, PyObject *v)
{
    /* bytearray and memoryview may change while the GIL is released: copy them.
     * Strided views (memoryview(b)[::2]) are accepted and gathered in C order. */
    Py_buffer view;
    if (PyObject_GetBuffer(v, &view, PyBUF_FULL_RO) < 0)
        return -1;
    int rc = -1;
    if (view.len > INT_MAX) {
        oxpg_params_error(st, i, "bytes value is too large to send (over 2 GiB)");
        goto done;
    }
    size_t start = p->arena.used;
    if (put(p, (size_t)view.len) == NULL)
        goto done;
    if (PyBuffer_ToContiguous(p->arena.data + start, &view, view.len, 'C') < 0)
        goto done;
    rc = 0;
done:
    PyBuffer_Release(&view);
    return rc;
}

/* Microseconds east of UTC from a timedelta returned by utcoffset(). */
static int64_t offset_microseconds(PyObject *delta)
{
    return ((int64_t)PyDateTime_DELTA_GET_DAYS(delta) * 86400 + PyDateTime_DELTA_GET_SECONDS(delta)) * 1000000 +
           PyDateTime_DELTA_GET_MICROSECONDS(delta);
}

/* datetime -> timestamp (naive) or timestamptz (aware). *aware is what the caller
 * expects (array elements must all agree), or -1 to take and report what v is. */
static int write_datetime(OxpgState *st, OxpgParams *p, int i, PyObject *v, int *want_aware)
{
    PyObject *off = utcoffset(st, v);
    if (off == NULL)
        return -1;
    int64_t off_us = off != Py_None ? offset_microseconds(off) : 0;
    int aware = off != Py_None;
    Py_DECREF(off);
    if (*want_aware < 0)
        *want_aware = aware;
    else if (aware != *want_aware)
        return oxpg_params_error(st, i, "a list mixes naive and aware datetimes (timestamp and timestamptz)");
    return oxpg_encode_timestamp(&p->arena, v, off_us);
}

/* time -> time (naive) or timetz (aware); *aware as for write_datetime. */
static int write_time(OxpgState *st, OxpgParams *p, int i, PyObject *v, int *want_aware)
{
    PyObject *off = utcoffset(st, v);
    if (off == NULL)
        return -1;
    int aware = off != Py_None;
    int64_t off_us = aware ? offset_microseconds(off) : 0;
    Py_DECREF(off);
    if (*want_aware < 0)
        *want_aware = aware;
    else if (aware != *want_aware)
        return oxpg_params_error(st, i, "a list mixes naive and aware times (time and timetz)");
    return oxpg_encode_time(st, &p->arena, v, aware, off_us) < 0 ? wrap_error(st, i) : 0;
}

static int write_ip(OxpgState *st, OxpgParams *p, int i, PyObject *v)
{
    Oid oid;
    return oxpg_encode_ip(st, v, &p->arena, &oid) < 0 ? wrap_error(st, i) : 0;
}

/* The writers read datetime fields with unchecked macros, so a value must still be
 * of the class it was classified as: a list can change between classification and
 * writing (an element's utcoffset() or __str__ may run any code). */
static int still_of_kind(OxpgState *st, int i, PyObject *v, Kind kind)
{
    PyDateTime_CAPI *dt = st->datetime_api;
    int ok = 1;
    switch (kind) {
    case K_DATE:
        ok = PyObject_TypeCheck(v, dt->DateType) && !PyObject_TypeCheck(v, dt->DateTimeType);
        break;
    case K_TIMESTAMP:
    case K_TIMESTAMPTZ:
        ok = PyObject_TypeCheck(v, dt->DateTimeType);
        break;
    case K_TIME:
    case K_TIMETZ:
        ok = PyObject_TypeCheck(v, dt->TimeType);
        break;
    case K_INTERVAL:
        ok = PyObject_TypeCheck(v, dt->DeltaType);
        break;
    case K_BOOL:
        ok = PyBool_Check(v);
        break;
    case K_INT:
        ok = PyLong_Check(v);
        break;
    default:
        break;
    }
    return ok ? 0 : oxpg_params_error(st, i, "a list changed while it was being sent (an element's type changed)");
}

#define RANGE_EMPTY 0x01
#define RANGE_LB_INC 0x02
#define RANGE_UB_INC 0x04
#define RANGE_LB_INF 0x08
#define RANGE_UB_INF 0x10

/* A range bound: int32 length, then the subtype's binary form. */
static int write_bound(OxpgState *st, OxpgParams *p, int i, PyObject *v, RangeKind kind)
{
    size_t len_at = p->arena.used;
    if (put(p, 4) == NULL)
        return -1;
    size_t start = p->arena.used;
    int rc;
    /* Read again from the Range: check the class it was classified by. */
    switch (kind) {
    case R_NUM:
        rc = write_numeric_from(st, p, i, v, PyLong_Check(v));
        break;
    case R_DATE:
        rc = still_of_kind(st, i, v, K_DATE) < 0 ? -1 : oxpg_encode_date(&p->arena, v);
        break;
    case R_TS:
    case R_TSTZ: {
        int aware = kind == R_TSTZ;
        rc = still_of_kind(st, i, v, K_TIMESTAMP) < 0 ? -1 : write_datetime(st, p, i, v, &aware);
        break;
    }
    default:
        PyErr_SetString(PyExc_SystemError, "oxpg: no binary form for this range bound");
        rc = -1;
    }
    if (rc < 0)
        return -1;
    oxpg_store_u32(p->arena.data + len_at, (uint32_t)(p->arena.used - start));
    return 0;
}

/* A Range in binary, as the range type of kind (R_UNTYPED fits any). */
static int write_range(OxpgState *st, OxpgParams *p, int i, PyObject *v, RangeKind kind)
{
    PyObject *lower = NULL, *upper = NULL;
    int rc = -1, flags = 0;
    PyObject *empty = PyObject_GetAttr(v, st->str_isempty);
    int is_empty = empty != NULL ? PyObject_IsTrue(empty) : -1;
    Py_XDECREF(empty);
    if (is_empty < 0)
        return -1;
    if (is_empty)
        return write_bytes(p, "\x01", 1);
    if ((lower = PyObject_GetAttr(v, st->str_lower)) == NULL || (upper = PyObject_GetAttr(v, st->str_upper)) == NULL)
        goto done;
    PyObject *names[2] = {st->str_lower_inc, st->str_upper_inc};
    int bits[2] = {RANGE_LB_INC, RANGE_UB_INC};
    for (int k = 0; k < 2; k++) {
        PyObject *inc = PyObject_GetAttr(v, names[k]);
        int yes = inc != NULL ? PyObject_IsTrue(inc) : -1;
        Py_XDECREF(inc);
        if (yes < 0)
            goto done;
        flags |= yes ? bits[k] : 0;
    }
    /* An infinite bound is never inclusive. */
    if (lower == Py_None)
        flags = (flags & ~RANGE_LB_INC) | RANGE_LB_INF;
    if (upper == Py_None)
        flags = (flags & ~RANGE_UB_INC) | RANGE_UB_INF;
    char *at = put(p, 1);
    if (at == NULL)
        goto done;
    *at = (char)flags;
    if (lower != Py_None && write_bound(st, p, i, lower, kind) < 0)
        goto done;
    if (upper != Py_None && write_bound(st, p, i, upper, kind) < 0)
        goto done;
    rc = 0;
done:
    Py_XDECREF(lower);
    Py_XDECREF(upper);
    return rc;
}

/* One non-None value of type t in binary. */
int oxpg_params_write_value(OxpgState *st, OxpgParams *p, int i, PyObject *v, const Type *t)
{
    if (still_of_kind(st, i, v, t->kind) < 0)
        return -1;
    switch (t->kind) {
    case K_BOOL:
        return write_bytes(p, v == Py_True ? "\x01" : "\x00", 1);
    case K_INT:
        return write_int(st, p, i, v, t->int_oid);
    case K_FLOAT:
        return write_float(st, p, i, v);
    case K_NUMERIC:
        return write_numeric_from(st, p, i, v, PyLong_Check(v));
    case K_TEXT:
        return write_text(st, p, i, v);
    case K_BYTEA:
        return write_buffer(st, p, i, v);
    case K_DATE:
        return oxpg_encode_date(&p->arena, v);
    case K_TIMESTAMP:
    case K_TIMESTAMPTZ: {
        int aware = t->kind == K_TIMESTAMPTZ;
        return write_datetime(st, p, i, v, &aware);
    }
    case K_TIME:
    case K_TIMETZ: {
        int aware = t->kind == K_TIMETZ;
        return write_time(st, p, i, v, &aware);
    }
    case K_INTERVAL:
        return oxpg_encode_interval(&p->arena, v);
    case K_UUID:
        return oxpg_encode_uuid(st, &p->arena, v) < 0 ? wrap_error(st, i) : 0;
    case K_JSON:
    case K_JSONB:
        return oxpg_encode_json(st, &p->arena, v, t->kind == K_JSONB) < 0 ? wrap_error(st, i) : 0;
    case K_INET:
    case K_CIDR:
        return write_ip(st, p, i, v);
    case K_RANGE:
        return write_range(st, p, i, v, t->range);
    default:
        PyErr_SetString(PyExc_SystemError, "oxpg: no binary writer for this kind");
        return -1;
    }
}

/* -------------------------------------------------------------- text forms */

/* Append the UTF-8 of str(v), refusing NUL; as_element quotes it for an array literal. */
int oxpg_params_write_str_form(OxpgState *st, OxpgParams *p, int i, PyObject *v, int as_element)
{
    PyObject *s = PyObject_Str(v);
    if (s == NULL)
        return wrap_error(st, i);
    int rc = -1;
    Py_ssize_t size;
    const char *utf8 = text_utf8(st, i, s, &size);
    if (utf8 == NULL)
        goto done;
    if (!as_element) {
        rc = write_bytes(p, utf8, (size_t)size);
        goto done;
    }
    /* Always quoted: backslash-escape the quote and backslash characters. */
    if (write_bytes(p, "\"", 1) < 0)
        goto done;
    for (Py_ssize_t k = 0; k < size; k++) {
        if ((utf8[k] == '"' || utf8[k] == '\\') && write_bytes(p, "\\", 1) < 0)
            goto done;
        if (write_bytes(p, utf8 + k, 1) < 0)
            goto done;
    }
    rc = write_bytes(p, "\"", 1);
done:
    Py_DECREF(s);
    return rc;
}

/* A text-format parameter is a C string to libpq: end it with a NUL that its
 * length does not count. */
int oxpg_params_finish_text(OxpgState *st, OxpgParams *p, int i, size_t start)
{
    size_t size = p->arena.used - start;
    if (write_bytes(p, "", 1) < 0)
        return -1;
    if (size > INT_MAX)
        return oxpg_params_error(st, i, "value is too large to send (over 2 GiB)");
    p->offsets[i] = start;
    p->lengths[i] = (int)size;
    p->formats[i] = FORMAT_TEXT;
    p->types[i] = 0;
    return 0;
}

/* ----------------------------------------------------------- the slow path */

/* Subclasses and the less common types: kept out of the inlined fast path. */
/* ------------------------------------------------------ registered encoders */

/* A value whose class (or a base class: the first in its MRO) has an encoder
 * registered through oxpg.types: encoder(v) gives str (text format) or bytes
 * (binary), sent with the registered type's OID; None sends NULL. Returns 1 when
 * no encoder applies, else 0 or -1. */
static int encode_registered(OxpgState *st, OxpgParams *p, int i, PyObject *v, PyObject *encoders)
{
    PyObject *mro = Py_TYPE(v)->tp_mro;
    PyObject *entry = NULL;
    for (Py_ssize_t k = 0; mro != NULL && k < PyTuple_GET_SIZE(mro) && entry == NULL; k++) {
        entry = PyDict_GetItemWithError(encoders, PyTuple_GET_ITEM(mro, k));
        if (entry == NULL && PyErr_Occurred())
            return -1;
    }
    if (entry == NULL)
        return 1;
    if (!PyTuple_Check(entry) || PyTuple_GET_SIZE(entry) != 3) {
        PyErr_SetString(PyExc_TypeError, "internal error: malformed encoder registration");
        return -1;
    }
    Py_INCREF(entry); /* the encoder may change the registrations while it runs */
    int rc = -1;
    Oid oid = (Oid)PyLong_AsUnsignedLong(PyTuple_GET_ITEM(entry, 0));
    int binary = PyTuple_GET_ITEM(entry, 2) == Py_True;
    PyObject *out = PyErr_Occurred() ? NULL : PyObject_CallOneArg(PyTuple_GET_ITEM(entry, 1), v);
    if (out == NULL)
        goto done;
    size_t start = p->arena.used;
    if (out == Py_None) {
        set_external(p, i, 0, NULL, 0, FORMAT_BINARY);
        rc = 0;
    } else if (binary) {
        Py_buffer view;
        if (!PyBytes_Check(out) && !PyByteArray_Check(out)) {
            PyErr_Format(st->DataError, "parameter $%d: the binary encoder registered for %.200s returned %.200s, "
                         "not bytes", i + 1, Py_TYPE(v)->tp_name, Py_TYPE(out)->tp_name);
            goto done;
        }
        if (PyObject_GetBuffer(out, &view, PyBUF_SIMPLE) < 0)
            goto done;
        rc = write_bytes(p, view.buf, (size_t)view.len);
        PyBuffer_Release(&view);
        if (rc == 0)
            rc = oxpg_params_finish(st, p, i, start, oid, FORMAT_BINARY);
    } else {
        if (!PyUnicode_Check(out)) {
            PyErr_Format(st->DataError, "parameter $%d: the text encoder registered for %.200s returned %.200s, "
                         "not str", i + 1, Py_TYPE(v)->tp_name, Py_TYPE(out)->tp_name);
            goto done;
        }
        Py_ssize_t size;
        const char *utf8 = text_utf8(st, i, out, &size);
        if (utf8 == NULL)
            goto done;
        rc = write_bytes(p, utf8, (size_t)size);
        if (rc == 0)
            rc = oxpg_params_finish_text(st, p, i, start);
        if (rc == 0)
            p->types[i] = oid;
    }
done:
    Py_XDECREF(out);
    Py_DECREF(entry);
    return rc;
}

static OXPG_NOINLINE int encode_other(OxpgState *st, OxpgParams *p, int i, PyObject *v, PyObject *encoders)
{
    PyDateTime_CAPI *dt = st->datetime_api;
    size_t start = p->arena.used;
    Type t;
    int rc;
    if (encoders != NULL && PyDict_GET_SIZE(encoders) > 0 && (rc = encode_registered(st, p, i, v, encoders)) != 1) {
        /* handled (or failed) by a registered encoder */
    } else if (PyObject_TypeCheck(v, dt->DateTimeType) || PyObject_TypeCheck(v, dt->TimeType)) {
        /* Common enough to skip oxpg_params_classify(): one utcoffset() call, not two. */
        int is_datetime = PyObject_TypeCheck(v, dt->DateTimeType);
        int aware = -1;
        rc = is_datetime ? write_datetime(st, p, i, v, &aware) : write_time(st, p, i, v, &aware);
        if (rc == 0)
            rc = oxpg_params_finish(st, p, i, start,
                        is_datetime ? (aware ? OXPG_TIMESTAMPTZOID : OXPG_TIMESTAMPOID)
                                    : (aware ? OXPG_TIMETZOID : OXPG_TIMEOID),
                        FORMAT_BINARY);
    } else if ((rc = oxpg_params_classify(st, i, v, &t, NULL)) == 0) {
        switch (t.kind) {
        case K_ARRAY:
            rc = oxpg_params_encode_array(st, p, i, v);
            break;
        case K_TEXT:
            rc = encode_str(st, p, i, v); /* str subclasses: text with OID 0, like str */
            break;
        case K_INT:
            rc = encode_int(st, p, i, v); /* int subclasses (IntEnum, ...) */
            break;
        case K_FLOAT:
            rc = encode_float(p, i, v);
            break;
        default: {
            Oid oid = oxpg_params_type_oid(&t, 0);
            if (oid == 0) {
                /* A Range without a binary type: its text form, for the context to parse. */
                rc = oxpg_params_write_str_form(st, p, i, v, 0);
                if (rc == 0)
                    rc = oxpg_params_finish_text(st, p, i, start);
            } else {
                rc = oxpg_params_write_value(st, p, i, v, &t);
                if (rc == 0)
                    rc = oxpg_params_finish(st, p, i, start, oid, FORMAT_BINARY);
            }
        }
        }
    }
    if (rc == 0)
        return 0;
    /* Errors from Python code (a tzinfo, json.dumps, Decimal) name the parameter too. */
    if (!PyErr_ExceptionMatches(st->DataError) && PyErr_ExceptionMatches(PyExc_Exception) &&
        !PyErr_ExceptionMatches(PyExc_MemoryError))
        return wrap_error(st, i);
    return -1;
}

static inline int encode_one(OxpgState *st, OxpgParams *p, int i, PyObject *v, PyObject *encoders)
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
            return oxpg_params_error(st, i, "bytes value is too large to send (over 2 GiB)");
        set_external(p, i, OXPG_BYTEAOID, PyBytes_AS_STRING(v), (int)PyBytes_GET_SIZE(v), FORMAT_BINARY);
        return 0;
    }
    return encode_other(st, p, i, v, encoders);
}

int oxpg_params_encode(OxpgState *st, OxpgParams *p, PyObject *const *args, Py_ssize_t n, PyObject *encoders)
{
    if (n > OXPG_MAX_PARAMS) {
        PyErr_Format(st->ProgrammingError, "too many parameters: %zd (PostgreSQL accepts at most %d)", n,
                     OXPG_MAX_PARAMS);
        p->types = p->types_inline;
        oxpg_wbuf_init(&p->arena, p->arena_inline, sizeof(p->arena_inline));
        return -1;
    }
    if (setup(p, n) < 0)
        goto fail;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (encode_one(st, p, (int)i, args[i], encoders) < 0)
            goto fail;
    }
    /* The arena no longer moves: turn offsets into pointers. */
    for (Py_ssize_t i = 0; i < n; i++) {
        if (p->offsets[i] != SIZE_MAX)
            p->values[i] = p->arena.data + p->offsets[i];
    }
    return 0;
fail:
    oxpg_params_free(p);
    return -1;
}
