/* record (anonymous composites: ROW(...), whole-row references) -> tuple.
 * Wire form: int32 field count, then per field: type OID, int32 length (-1 NULL),
 * value bytes. Fields decode through the same codec table. */
#include "oxpg/codecs.h"
#include "oxpg/errors.h"

static PyObject *decode_record(OxpgState *st, const char *data, int len, const OxpgNested *nested)
{
    if (OXPG_UNLIKELY(len < 4))
        return oxpg_decode_malformed(st, "record", len);
    int32_t nfields = (int32_t)oxpg_load_u32(data);
    /* Each field needs at least 8 bytes of header. */
    if (OXPG_UNLIKELY(nfields < 0 || nfields > (len - 4) / 8))
        return oxpg_decode_malformed(st, "record", len);
    PyObject *tuple = PyTuple_New(nfields);
    if (tuple == NULL)
        return NULL;
    const char *p = data + 4;
    const char *end = data + len;
    for (int32_t f = 0; f < nfields; f++) {
        if (end - p < 8)
            goto malformed;
        Oid oid = oxpg_load_u32(p);
        int32_t flen = (int32_t)oxpg_load_u32(p + 4);
        p += 8;
        PyObject *value;
        if (flen == -1) {
            value = Py_NewRef(Py_None);
        } else {
            if (flen < 0 || flen > end - p)
                goto malformed;
            oxpg_decode_fn plain = nested->plain(nested->ctx, oid);
            value = plain != NULL ? plain(st, p, flen) : nested->decode(nested->ctx, st, oid, p, flen);
            if (value == NULL && plain == NULL && PyErr_ExceptionMatches(st->DataError)) {
                PyObject *prefix = PyUnicode_FromFormat("record field %d", (int)f + 1);
                if (prefix != NULL) {
                    oxpg_reraise_as(st->DataError, PyUnicode_AsUTF8(prefix));
                    Py_DECREF(prefix);
                }
            }
            p += flen;
        }
        if (value == NULL)
            goto fail;
        PyTuple_SET_ITEM(tuple, f, value);
    }
    if (p != end)
        goto malformed;
    return tuple;
malformed:
    oxpg_decode_malformed(st, "record", len);
fail:
    Py_DECREF(tuple);
    return NULL;
}

/* Records and arrays nest (a record of arrays of records...): the depth is bounded
 * like Python's own recursion, so a crafted value cannot overflow the C stack. */
PyObject *oxpg_decode_record_with(OxpgState *st, const char *data, int len, const OxpgNested *nested)
{
    if (oxpg_enter_nested(st, "record") < 0)
        return NULL;
    PyObject *value = decode_record(st, data, len, nested);
    Py_LeaveRecursiveCall();
    return value;
}

/* The static table alone (oxpg_static_decoder): fields of other types raise DataError. */
static PyObject *static_unknown(void *ctx, OxpgState *st, Oid oid, const char *data, int len)
{
    (void)ctx;
    (void)data;
    (void)len;
    PyErr_Format(st->DataError,
                 "type OID %u, which oxpg cannot decode inside a record yet; "
                 "cast the record or that field to text in SQL",
                 (unsigned)oid);
    return NULL;
}

PyObject *oxpg_decode_record(OxpgState *st, const char *data, int len)
{
    static const OxpgNested nested = {oxpg_static_decoder, static_unknown, NULL};
    return oxpg_decode_record_with(st, data, len, &nested);
}
