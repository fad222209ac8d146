/* Ranges -> oxpg.types.Range, multiranges -> list of Range.
 * A range is a codec kind wrapping its element decoder: the wire form does not name
 * the element type, so each built-in range type has a thin decoder below that passes
 * the right one. Range wire form: a flags byte, then for each bound that is present
 * int32 length and the element's binary form. Multirange: int32 count, then per
 * range int32 length and the range's bytes. */
#include "oxpg/codecs.h"
#include "oxpg/rcursor.h"

#define RANGE_EMPTY 0x01
#define RANGE_LB_INC 0x02
#define RANGE_UB_INC 0x04
#define RANGE_LB_INF 0x08
#define RANGE_UB_INF 0x10
#define RANGE_LB_NULL 0x20 /* no lower bound value sent (as range_send's macros say) */
#define RANGE_UB_NULL 0x40
/* 0x80 (RANGE_CONTAIN_EMPTY) only matters inside GiST indexes: ignored, as range_recv does. */

/* One bound's value (or None when absent); NULL with an exception set. A present
 * bound is never NULL on the wire. */
static PyObject *read_bound(OxpgState *st, OxpgReadCursor *in, int present, oxpg_decode_fn element,
                            const char *type_name, int len)
{
    if (!present)
        return Py_NewRef(Py_None);
    const char *bound;
    int32_t blen;
    if (oxpg_rc_value(in, &bound, &blen) < 0 || bound == NULL)
        return oxpg_decode_malformed(st, type_name, len);
    return element(st, bound, blen);
}

static PyObject *decode_range(OxpgState *st, const char *data, int len, oxpg_decode_fn element,
                              const char *type_name)
{
    if (OXPG_UNLIKELY(len < 1))
        return oxpg_decode_malformed(st, type_name, len);
    if (OXPG_UNLIKELY(st->range_empty == NULL)) {
        /* oxpg.types registers the Range class; importing oxpg does that. */
        PyErr_SetString(st->InterfaceError, "range values need oxpg.types: import oxpg");
        return NULL;
    }
    unsigned flags = (unsigned char)data[0];
    if (flags & RANGE_EMPTY) {
        if (len != 1)
            return oxpg_decode_malformed(st, type_name, len);
        return Py_NewRef(st->range_empty);
    }
    OxpgReadCursor in = oxpg_rc(data + 1, len - 1);
    PyObject *lower = NULL, *upper = NULL, *value = NULL;
    lower = read_bound(st, &in, !(flags & (RANGE_LB_INF | RANGE_LB_NULL)), element, type_name, len);
    if (lower == NULL)
        goto done;
    upper = read_bound(st, &in, !(flags & (RANGE_UB_INF | RANGE_UB_NULL)), element, type_name, len);
    if (upper == NULL)
        goto done;
    if (!oxpg_rc_done(&in)) {
        oxpg_decode_malformed(st, type_name, len);
        goto done;
    }
    /* Range(lower, upper, bounds); an absent bound is never inclusive there. */
    PyObject *bounds = st->range_bounds[((flags & RANGE_LB_INC) ? 2 : 0) + ((flags & RANGE_UB_INC) ? 1 : 0)];
    PyObject *args[3] = {lower, upper, bounds};
    value = PyObject_Vectorcall(st->range_type, args, 3, NULL);
done:
    Py_XDECREF(lower);
    Py_XDECREF(upper);
    return value;
}

static PyObject *decode_multirange(OxpgState *st, const char *data, int len, oxpg_decode_fn element,
                                   const char *type_name)
{
    OxpgReadCursor in = oxpg_rc(data, len);
    int32_t count;
    /* Each range takes at least its length word and flags byte. */
    if (OXPG_UNLIKELY(oxpg_rc_i32(&in, &count) < 0 || count < 0 || count > oxpg_rc_left(&in) / 5))
        return oxpg_decode_malformed(st, type_name, len);
    PyObject *list = PyList_New(count);
    if (list == NULL)
        return NULL;
    for (int32_t k = 0; k < count; k++) {
        const char *range_data;
        int32_t rlen;
        if (oxpg_rc_value(&in, &range_data, &rlen) < 0 || range_data == NULL)
            goto malformed;
        PyObject *range = decode_range(st, range_data, rlen, element, type_name);
        if (range == NULL)
            goto fail;
        PyList_SET_ITEM(list, k, range);
    }
    if (!oxpg_rc_done(&in))
        goto malformed;
    return list;
malformed:
    oxpg_decode_malformed(st, type_name, len);
fail:
    Py_DECREF(list);
    return NULL;
}

#define OXPG_RANGE_DECODERS(prefix, element)                                          \
    PyObject *oxpg_decode_##prefix##range(OxpgState *st, const char *data, int len)      \
    {                                                                                  \
        return decode_range(st, data, len, element, #prefix "range");                 \
    }                                                                                  \
    PyObject *oxpg_decode_##prefix##multirange(OxpgState *st, const char *data, int len) \
    {                                                                                  \
        return decode_multirange(st, data, len, element, #prefix "multirange");       \
    }

OXPG_RANGE_DECODERS(int4, oxpg_decode_int4)
OXPG_RANGE_DECODERS(int8, oxpg_decode_int8)
OXPG_RANGE_DECODERS(num, oxpg_decode_numeric)
OXPG_RANGE_DECODERS(date, oxpg_decode_date)
OXPG_RANGE_DECODERS(ts, oxpg_decode_timestamp)
OXPG_RANGE_DECODERS(tstz, oxpg_decode_timestamptz)
