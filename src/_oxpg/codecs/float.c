/* float4, float8: IEEE 754 on the wire, so NaN, infinities and -0.0 survive. */
#include "oxpg/codecs.h"

PyObject *oxpg_decode_float4(OxpgState *st, const char *data, int len)
{
    if (OXPG_UNLIKELY(len != 4))
        return oxpg_decode_malformed(st, "float4", len);
    uint32_t bits = oxpg_load_u32(data);
    float f;
    memcpy(&f, &bits, 4);
    return PyFloat_FromDouble((double)f);
}

PyObject *oxpg_decode_float8(OxpgState *st, const char *data, int len)
{
    if (OXPG_UNLIKELY(len != 8))
        return oxpg_decode_malformed(st, "float8", len);
    uint64_t bits = oxpg_load_u64(data);
    double d;
    memcpy(&d, &bits, 8);
    return PyFloat_FromDouble(d);
}
