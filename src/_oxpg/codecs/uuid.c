/* uuid -> uuid.UUID */
#include "oxpg/codecs.h"

/* The 128-bit value as a Python int, from two 64-bit halves (public API only). */
static PyObject *uuid_int(const char *data)
{
    PyObject *hi = PyLong_FromUnsignedLongLong(oxpg_load_u64(data));
    PyObject *lo = PyLong_FromUnsignedLongLong(oxpg_load_u64(data + 8));
    PyObject *shift = PyLong_FromLong(64);
    PyObject *shifted = NULL;
    PyObject *value = NULL;
    if (hi == NULL || lo == NULL || shift == NULL)
        goto done;
    if ((shifted = PyNumber_Lshift(hi, shift)) == NULL)
        goto done;
    value = PyNumber_Or(shifted, lo);
done:
    Py_XDECREF(hi);
    Py_XDECREF(lo);
    Py_XDECREF(shift);
    Py_XDECREF(shifted);
    return value;
}

PyObject *oxpg_decode_uuid(OxpgState *st, const char *data, int len)
{
    if (OXPG_UNLIKELY(len != 16))
        return oxpg_decode_malformed(st, "uuid", len);
    /* UUID(int=...) skips the bytes-argument parsing of UUID(bytes=...). */
    PyObject *value = uuid_int(data);
    if (value == NULL)
        return NULL;
    PyObject *kwnames = Py_BuildValue("(s)", "int");
    PyObject *result = NULL;
    if (kwnames != NULL) {
        PyObject *args[2] = {NULL, value};
        result = PyObject_Vectorcall(st->uuid_type, args + 1, 0 | PY_VECTORCALL_ARGUMENTS_OFFSET, kwnames);
        Py_DECREF(kwnames);
    }
    Py_DECREF(value);
    return result;
}

int oxpg_encode_uuid(OxpgState *st, OxpgWriteBuffer *w, PyObject *v)
{
    PyObject *raw = PyObject_GetAttr(v, st->str_bytes);
    if (raw == NULL)
        return -1;
    int rc = -1;
    if (!PyBytes_Check(raw) || PyBytes_GET_SIZE(raw) != 16)
        PyErr_SetString(st->DataError, "UUID.bytes is not 16 bytes");
    else
        rc = oxpg_wbuf_bytes(w, PyBytes_AS_STRING(raw), 16);
    Py_DECREF(raw);
    return rc;
}
