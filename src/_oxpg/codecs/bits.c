/* bit, varbit -> str of '0' and '1' (what PostgreSQL prints).
 * Wire form: int32 bit count, then the bits packed 8 per byte, first bit in the
 * high-order bit, the last byte padded with zeros. */
#include "oxpg/codecs.h"

PyObject *oxpg_decode_bits(OxpgState *st, const char *data, int len)
{
    if (OXPG_UNLIKELY(len < 4))
        return oxpg_decode_malformed(st, "bit", len);
    int32_t nbits = (int32_t)oxpg_load_u32(data);
    if (OXPG_UNLIKELY(nbits < 0 || ((int64_t)nbits + 7) / 8 != (int64_t)len - 4))
        return oxpg_decode_malformed(st, "bit", len);
    PyObject *s = PyUnicode_New(nbits, 127);
    if (s == NULL)
        return NULL;
    Py_UCS1 *out = PyUnicode_1BYTE_DATA(s);
    const unsigned char *bytes = (const unsigned char *)data + 4;
    for (int32_t k = 0; k < nbits; k++)
        out[k] = (Py_UCS1)('0' + ((bytes[k >> 3] >> (7 - (k & 7))) & 1));
    return s;
}
