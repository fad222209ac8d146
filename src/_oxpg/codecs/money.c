/* money -> decimal.Decimal with two decimals.
 * The wire form is an int64 count of the currency's smallest unit, whose size comes
 * from the server's lc_monetary. oxpg assumes 2 fractional digits (cents), true for
 * the C/POSIX locale and most currencies; under a locale with 0 or 3 (lc_monetary
 * ja_JP, ar_BH) the value would be scaled wrongly: read such money as numeric
 * (`col::numeric`). docs/types.md says so. */
#include "oxpg/codecs.h"

#include <stdio.h>

PyObject *oxpg_decode_money(OxpgState *st, const char *data, int len)
{
    if (OXPG_UNLIKELY(len != 8))
        return oxpg_decode_malformed(st, "money", len);
    int64_t cents = (int64_t)oxpg_load_u64(data);
    /* The magnitude as unsigned: -INT64_MIN does not fit an int64. */
    uint64_t magnitude = cents < 0 ? (uint64_t)0 - (uint64_t)cents : (uint64_t)cents;
    char text[32];
    int n = snprintf(text, sizeof(text), "%s%llu.%02llu", cents < 0 ? "-" : "",
                     (unsigned long long)(magnitude / 100), (unsigned long long)(magnitude % 100));
    PyObject *s = PyUnicode_FromStringAndSize(text, n);
    if (s == NULL)
        return NULL;
    PyObject *value = PyObject_CallOneArg(st->decimal_type, s);
    Py_DECREF(s);
    return value;
}
