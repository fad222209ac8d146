/* Arrays of any decodable element type -> (nested) lists.
 * Wire form: int32 ndim, int32 has-nulls flag, element type OID, then per dimension
 * int32 length and int32 lower bound, then each element as int32 length (-1 NULL)
 * and bytes. Lower bounds are not kept: a Python list always starts at 0. */
#include "oxpg/codecs.h"
#include "oxpg/rcursor.h"

#define MAXDIM 6 /* PostgreSQL's MAXDIM */

typedef struct {
    OxpgState *st;
    oxpg_decode_fn plain; /* every element's decoder, or NULL: nested->decode each */
    const OxpgNested *nested;
    Oid element_oid;
    OxpgReadCursor in; /* the elements */
    const int32_t *dims;
    int ndim;
} ArrayReader;

static PyObject *read_element(ArrayReader *r)
{
    const char *data;
    int32_t len;
    if (oxpg_rc_value(&r->in, &data, &len) < 0)
        return NULL;
    if (data == NULL)
        return Py_NewRef(Py_None);
    return r->plain != NULL ? r->plain(r->st, data, len)
                            : r->nested->decode(r->nested->ctx, r->st, r->element_oid, data, len);
}

/* The list for dimension d; NULL with an exception set, or NULL without one when
 * the bytes ran out (the caller reports malformed data). */
static PyObject *read_dimension(ArrayReader *r, int d)
{
    PyObject *list = PyList_New(r->dims[d]);
    if (list == NULL)
        return NULL;
    for (int32_t i = 0; i < r->dims[d]; i++) {
        PyObject *item = d + 1 == r->ndim ? read_element(r) : read_dimension(r, d + 1);
        if (item == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, i, item);
    }
    return list;
}

static PyObject *decode_array(OxpgState *st, const char *data, int len, const OxpgNested *nested)
{
    OxpgReadCursor in = oxpg_rc(data, len);
    int32_t ndim, flags;
    uint32_t element_oid;
    if (oxpg_rc_i32(&in, &ndim) < 0 || oxpg_rc_i32(&in, &flags) < 0 || oxpg_rc_u32(&in, &element_oid) < 0 ||
        ndim < 0 || ndim > MAXDIM || (flags != 0 && flags != 1))
        return oxpg_decode_malformed(st, "array", len);
    if (ndim == 0)
        return oxpg_rc_done(&in) ? PyList_New(0) : oxpg_decode_malformed(st, "array", len);
    int32_t dims[MAXDIM];
    int64_t total = 1;
    for (int d = 0; d < ndim; d++) {
        int32_t lower_bound;
        if (oxpg_rc_i32(&in, &dims[d]) < 0 || oxpg_rc_i32(&in, &lower_bound) < 0 || dims[d] < 0)
            return oxpg_decode_malformed(st, "array", len);
        total *= dims[d];
        /* Every element takes at least its 4-byte length: bounds the allocation
         * (checked per dimension, so the product cannot overflow). */
        if (total > (int64_t)(len / 4))
            return oxpg_decode_malformed(st, "array", len);
    }
    if (total > oxpg_rc_left(&in) / 4)
        return oxpg_decode_malformed(st, "array", len);
    oxpg_decode_fn plain = nested->plain(nested->ctx, (Oid)element_oid);
    ArrayReader r = {st, plain, nested, (Oid)element_oid, in, dims, ndim};
    PyObject *list = read_dimension(&r, 0);
    if (list == NULL) {
        if (!PyErr_Occurred())
            oxpg_decode_malformed(st, "array", len);
        return NULL;
    }
    if (!oxpg_rc_done(&r.in)) {
        Py_DECREF(list);
        return oxpg_decode_malformed(st, "array", len);
    }
    return list;
}

/* Records and arrays nest (a record of arrays of records...): the depth is bounded
 * like Python's own recursion, so a crafted value cannot overflow the C stack. */
PyObject *oxpg_decode_array_with(OxpgState *st, const char *data, int len, const OxpgNested *nested)
{
    if (oxpg_enter_nested(st, "array") < 0)
        return NULL;
    PyObject *value = decode_array(st, data, len, nested);
    Py_LeaveRecursiveCall();
    return value;
}

/* The static table alone (oxpg_static_decoder): elements of other types raise DataError. */
static PyObject *static_unknown(void *ctx, OxpgState *st, Oid oid, const char *data, int len)
{
    (void)ctx;
    (void)data;
    (void)len;
    PyErr_Format(st->DataError,
                 "array elements have type OID %u, which oxpg cannot decode inside an array yet; "
                 "cast the array to text in SQL",
                 (unsigned)oid);
    return NULL;
}

PyObject *oxpg_decode_array(OxpgState *st, const char *data, int len)
{
    static const OxpgNested nested = {oxpg_static_decoder, static_unknown, NULL};
    return oxpg_decode_array_with(st, data, len, &nested);
}
