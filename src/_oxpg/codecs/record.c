/* record (anonymous composites: ROW(...), whole-row references) -> tuple.
 * Wire form: int32 field count, then per field: type OID, int32 length (-1 NULL),
 * value bytes. Fields decode through the same codec table. */
#include "oxpg/codecs.h"

static PyObject *decode_record(OxpgState *st, const char *data, int len)
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
            const OxpgCodec *codec = oxpg_codec_lookup(oid);
            if (codec == NULL) {
                PyErr_Format(st->DataError,
                             "record field %d has type OID %u, which oxpg cannot decode inside a record yet; "
                             "cast the record or that field to text in SQL",
                             (int)f + 1, (unsigned)oid);
                goto fail;
            }
            value = codec->decode_binary(st, p, flen);
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
PyObject *oxpg_decode_record(OxpgState *st, const char *data, int len)
{
    if (oxpg_enter_nested(st, "record") < 0)
        return NULL;
    PyObject *value = decode_record(st, data, len);
    Py_LeaveRecursiveCall();
    return value;
}
