/* record (anonymous composites: ROW(...), whole-row references) -> tuple.
 * Wire form: int32 field count, then per field: type OID, int32 length (-1 NULL),
 * value bytes. Fields decode through the same codec table. */
#include "oxpg/codecs.h"
#include "oxpg/errors.h"
#include "oxpg/rcursor.h"

static PyObject *decode_record(OxpgState *st, const char *data, int len, const OxpgNested *nested)
{
    OxpgReadCursor in = oxpg_rc(data, len);
    int32_t nfields;
    /* Each field needs at least 8 bytes of header: bounds the tuple's size. */
    if (OXPG_UNLIKELY(oxpg_rc_i32(&in, &nfields) < 0 || nfields < 0 || nfields > oxpg_rc_left(&in) / 8))
        return oxpg_decode_malformed(st, "record", len);
    PyObject *tuple = PyTuple_New(nfields);
    if (tuple == NULL)
        return NULL;
    for (int32_t f = 0; f < nfields; f++) {
        uint32_t oid;
        const char *field;
        int32_t flen;
        if (oxpg_rc_u32(&in, &oid) < 0 || oxpg_rc_value(&in, &field, &flen) < 0)
            goto malformed;
        PyObject *value;
        if (field == NULL) {
            value = Py_NewRef(Py_None);
        } else {
            oxpg_decode_fn plain = nested->plain(nested->ctx, (Oid)oid);
            value = plain != NULL ? plain(st, field, flen) : nested->decode(nested->ctx, st, (Oid)oid, field, flen);
            if (value == NULL && plain == NULL && PyErr_ExceptionMatches(st->DataError)) {
                /* Plain C: no Python object is made while the exception is set. */
                char prefix[32];
                PyOS_snprintf(prefix, sizeof(prefix), "record field %d", (int)f + 1);
                oxpg_reraise_as(st->DataError, prefix);
            }
        }
        if (value == NULL)
            goto fail;
        PyTuple_SET_ITEM(tuple, f, value);
    }
    if (!oxpg_rc_done(&in))
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
