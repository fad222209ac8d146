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
