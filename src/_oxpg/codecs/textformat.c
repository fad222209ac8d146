/* Decoders for results that had to come in text format (a column type without binary
 * output, e.g. aclitem). Types whose text form does not depend on server settings get
 * their Python value; the rest (dates and times follow DateStyle) stay str. */
#include "oxpg/codecs.h"
#include "oxpg/errors.h"
#include "oxpg/pg_oids.h"

/* libpq NUL-terminates every value, text or binary, so data[len] == '\0'. */

static PyObject *text_bool(OxpgState *st, const char *data, int len)
{
    if (len == 1 && (data[0] == 't' || data[0] == 'f'))
        return Py_NewRef(data[0] == 't' ? Py_True : Py_False);
    return oxpg_decode_malformed(st, "bool", len);
}

static PyObject *text_int(OxpgState *st, const char *data, int len)
{
    PyObject *value = PyLong_FromString(data, NULL, 10);
    if (value == NULL)
        oxpg_reraise_as(st->DataError, "malformed integer text");
    (void)len;
    return value;
}

static PyObject *text_float(OxpgState *st, const char *data, int len)
{
    PyObject *s = PyUnicode_FromStringAndSize(data, len);
    if (s == NULL) {
        oxpg_reraise_as(st->DataError, "malformed float text"); /* not UTF-8 */
        return NULL;
    }
    PyObject *value = PyFloat_FromString(s);
    Py_DECREF(s);
    if (value == NULL)
        oxpg_reraise_as(st->DataError, "malformed float text");
    return value;
}

static PyObject *call_with_text(OxpgState *st, PyObject *callable, const char *data, int len)
{
    PyObject *s = PyUnicode_DecodeUTF8(data, len, NULL);
    if (s == NULL) {
        oxpg_reraise_as(st->DataError, "text value is not valid UTF-8");
        return NULL;
    }
    PyObject *value = PyObject_CallOneArg(callable, s);
    Py_DECREF(s);
    if (value == NULL)
        oxpg_reraise_as(st->DataError, "malformed text value");
    return value;
}

static PyObject *text_numeric(OxpgState *st, const char *data, int len)
{
    return call_with_text(st, st->decimal_type, data, len);
}

static PyObject *text_uuid(OxpgState *st, const char *data, int len)
{
    return call_with_text(st, st->uuid_type, data, len);
}

static PyObject *text_json(OxpgState *st, const char *data, int len)
{
    return call_with_text(st, st->json_loads, data, len);
}

oxpg_decode_fn oxpg_text_decoder(Oid oid)
{
    switch (oid) {
    case OXPG_BOOLOID:
        return text_bool;
    case OXPG_INT2OID:
    case OXPG_INT4OID:
    case OXPG_INT8OID:
    case OXPG_OIDOID:
        return text_int;
    case OXPG_FLOAT4OID:
    case OXPG_FLOAT8OID:
        return text_float;
    case OXPG_NUMERICOID:
        return text_numeric;
    case OXPG_UUIDOID:
        return text_uuid;
    case OXPG_JSONOID:
    case OXPG_JSONBOID:
        return text_json;
    default:
        return NULL;
    }
}
