/* Arrays of any decodable element type -> (nested) lists.
 * Wire form: int32 ndim, int32 has-nulls flag, element type OID, then per dimension
 * int32 length and int32 lower bound, then each element as int32 length (-1 NULL)
 * and bytes. Lower bounds are not kept: a Python list always starts at 0. */
#include "oxpg/codecs.h"

#define MAXDIM 6 /* PostgreSQL's MAXDIM */

typedef struct {
    OxpgState *st;
    oxpg_decode_fn plain; /* every element's decoder, or NULL: nested->decode each */
    const OxpgNested *nested;
    Oid element_oid;
    const char *p;
    const char *end;
    const int32_t *dims;
    int ndim;
} ArrayReader;

static PyObject *read_element(ArrayReader *r)
{
    if (r->end - r->p < 4)
        return NULL;
    int32_t len = (int32_t)oxpg_load_u32(r->p);
    r->p += 4;
    if (len == -1)
        return Py_NewRef(Py_None);
    if (len < 0 || len > r->end - r->p)
        return NULL;
    PyObject *value = r->plain != NULL ? r->plain(r->st, r->p, len)
                                       : r->nested->decode(r->nested->ctx, r->st, r->element_oid, r->p, len);
    r->p += len;
    return value;
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
    if (OXPG_UNLIKELY(len < 12))
        return oxpg_decode_malformed(st, "array", len);
    int32_t ndim = (int32_t)oxpg_load_u32(data);
    int32_t flags = (int32_t)oxpg_load_u32(data + 4);
    Oid element_oid = oxpg_load_u32(data + 8);
    if (ndim < 0 || ndim > MAXDIM || (flags != 0 && flags != 1) || len < 12 + 8 * ndim)
        return oxpg_decode_malformed(st, "array", len);
    if (ndim == 0)
        return PyList_New(0);
    int32_t dims[MAXDIM];
    int64_t total = 1;
    for (int d = 0; d < ndim; d++) {
        dims[d] = (int32_t)oxpg_load_u32(data + 12 + 8 * d);
        if (dims[d] < 0)
            return oxpg_decode_malformed(st, "array", len);
        total *= dims[d];
        /* Every element takes at least its 4-byte length: bounds the allocation. */
        if (total > (len - 12 - 8 * ndim) / 4)
            return oxpg_decode_malformed(st, "array", len);
    }
    oxpg_decode_fn plain = nested->plain(nested->ctx, element_oid);
    ArrayReader r = {st, plain, nested, element_oid, data + 12 + 8 * ndim, data + len, dims, ndim};
    PyObject *list = read_dimension(&r, 0);
    if (list == NULL) {
        if (!PyErr_Occurred())
            oxpg_decode_malformed(st, "array", len);
        return NULL;
    }
    if (r.p != r.end) {
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
