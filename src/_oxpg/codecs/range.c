/* Ranges -> oxpg.types.Range, multiranges -> list of Range.
 * A range is a codec kind wrapping its element decoder: the wire form does not name
 * the element type, so each built-in range type has a thin decoder below that passes
 * the right one. Range wire form: a flags byte, then for each bound that is present
 * int32 length and the element's binary form. Multirange: int32 count, then per
 * range int32 length and the range's bytes. */
#include "oxpg/codecs.h"

#define RANGE_EMPTY 0x01
#define RANGE_LB_INC 0x02
#define RANGE_UB_INC 0x04
#define RANGE_LB_INF 0x08
#define RANGE_UB_INF 0x10
#define RANGE_LB_NULL 0x20 /* no lower bound value sent (as range_send's macros say) */
#define RANGE_UB_NULL 0x40
/* 0x80 (RANGE_CONTAIN_EMPTY) only matters inside GiST indexes: ignored, as range_recv does. */

/* One bound's value (or None when absent), advancing *p; NULL with an exception set. */
static PyObject *read_bound(OxpgState *st, const char **p, const char *end, int present, oxpg_decode_fn element,
                            const char *type_name, int len)
{
    if (!present)
        return Py_NewRef(Py_None);
    if (end - *p < 4)
        return oxpg_decode_malformed(st, type_name, len);
    int32_t blen = (int32_t)oxpg_load_u32(*p);
    *p += 4;
    if (blen < 0 || blen > end - *p)
        return oxpg_decode_malformed(st, type_name, len);
    PyObject *value = element(st, *p, blen);
    *p += blen;
    return value;
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
    const char *p = data + 1;
    const char *end = data + len;
    PyObject *lower = NULL, *upper = NULL, *value = NULL;
    lower = read_bound(st, &p, end, !(flags & (RANGE_LB_INF | RANGE_LB_NULL)), element, type_name, len);
    if (lower == NULL)
        goto done;
    upper = read_bound(st, &p, end, !(flags & (RANGE_UB_INF | RANGE_UB_NULL)), element, type_name, len);
    if (upper == NULL)
        goto done;
    if (p != end) {
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
    if (OXPG_UNLIKELY(len < 4))
        return oxpg_decode_malformed(st, type_name, len);
    int32_t count = (int32_t)oxpg_load_u32(data);
    /* Each range takes at least its length word and flags byte. */
    if (OXPG_UNLIKELY(count < 0 || count > (len - 4) / 5))
        return oxpg_decode_malformed(st, type_name, len);
    PyObject *list = PyList_New(count);
    if (list == NULL)
        return NULL;
    const char *p = data + 4;
    const char *end = data + len;
    for (int32_t k = 0; k < count; k++) {
        if (end - p < 4)
            goto malformed;
        int32_t rlen = (int32_t)oxpg_load_u32(p);
        p += 4;
        if (rlen < 0 || rlen > end - p)
            goto malformed;
        PyObject *range = decode_range(st, p, rlen, element, type_name);
        if (range == NULL)
            goto fail;
        PyList_SET_ITEM(list, k, range);
        p += rlen;
    }
    if (p != end)
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
