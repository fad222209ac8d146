/* int2, int4, int8, oid */
#include "oxpg/codecs.h"

PyObject *oxpg_decode_int2(OxpgState *st, const char *data, int len)
{
    if (OXPG_UNLIKELY(len != 2))
        return oxpg_decode_malformed(st, "int2", len);
    return PyLong_FromLong((int16_t)oxpg_load_u16(data));
}

PyObject *oxpg_decode_int4(OxpgState *st, const char *data, int len)
{
    if (OXPG_UNLIKELY(len != 4))
        return oxpg_decode_malformed(st, "int4", len);
    return PyLong_FromLong((int32_t)oxpg_load_u32(data));
}

PyObject *oxpg_decode_int8(OxpgState *st, const char *data, int len)
{
    if (OXPG_UNLIKELY(len != 8))
        return oxpg_decode_malformed(st, "int8", len);
    return PyLong_FromLongLong((int64_t)oxpg_load_u64(data));
}

PyObject *oxpg_decode_oid(OxpgState *st, const char *data, int len)
{
    if (OXPG_UNLIKELY(len != 4))
        return oxpg_decode_malformed(st, "oid", len);
    return PyLong_FromUnsignedLong(oxpg_load_u32(data));
}
