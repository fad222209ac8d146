/* json, jsonb -> the objects json.loads returns */
#include "oxpg/codecs.h"
#include "oxpg/errors.h"

static PyObject *loads(OxpgState *st, const char *data, int len)
{
    PyObject *text = PyUnicode_DecodeUTF8(data, len, NULL);
    if (text == NULL) {
        oxpg_reraise_as(st->DataError, "json value is not valid UTF-8");
        return NULL;
    }
    PyObject *value = PyObject_CallOneArg(st->json_loads, text);
    Py_DECREF(text);
    if (value == NULL)
        oxpg_reraise_as(st->DataError, "cannot parse json value");
    return value;
}

PyObject *oxpg_decode_json(OxpgState *st, const char *data, int len)
{
    return loads(st, data, len);
}

PyObject *oxpg_decode_jsonb(OxpgState *st, const char *data, int len)
{
    /* jsonb's binary form is a version byte (1) followed by the text form. */
    if (OXPG_UNLIKELY(len < 1 || data[0] != 1))
        return oxpg_decode_malformed(st, "jsonb", len);
    return loads(st, data + 1, len - 1);
}

int oxpg_encode_json(OxpgState *st, OxpgWriteBuffer *w, PyObject *v, int jsonb)
{
    PyObject *obj = v, *wrapped = NULL, *dumps = st->json_dumps, *wrapper_dumps = NULL, *text = NULL;
    int rc = -1;
    if (!PyDict_Check(v)) {
        /* A Json/Jsonb wrapper: its object, and its dumps when one was given. */
        if ((obj = wrapped = PyObject_GetAttr(v, st->str_obj)) == NULL)
            return -1;
        if ((wrapper_dumps = PyObject_GetAttr(v, st->str_dumps)) == NULL)
            goto done;
        if (wrapper_dumps != Py_None)
            dumps = wrapper_dumps;
    }
    if ((text = PyObject_CallOneArg(dumps, obj)) == NULL)
        goto done;
    const char *data;
    Py_ssize_t size;
    if (PyUnicode_Check(text)) {
        if ((data = PyUnicode_AsUTF8AndSize(text, &size)) == NULL)
            goto done;
    } else if (PyBytes_Check(text)) {
        data = PyBytes_AS_STRING(text);
        size = PyBytes_GET_SIZE(text);
    } else {
        PyErr_Format(st->DataError, "the json dumps function returned '%.100s', not str or bytes",
                     Py_TYPE(text)->tp_name);
        goto done;
    }
    if (jsonb && oxpg_wbuf_u8(w, 1) < 0) /* jsonb binary format version */
        goto done;
    rc = oxpg_wbuf_bytes(w, data, (size_t)size);
done:
    Py_XDECREF(wrapped);
    Py_XDECREF(wrapper_dumps);
    Py_XDECREF(text);
    return rc;
}
