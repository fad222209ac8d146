/* numeric <-> decimal.Decimal (and int beyond int8 -> numeric).
 * Wire form: ndigits, weight, sign, dscale (uint16 each), then ndigits base-10000
 * digits; weight is the power of 10000 of the first digit. */
#include "oxpg/codecs.h"

#define NUMERIC_POS 0x0000
#define NUMERIC_NEG 0x4000
#define NUMERIC_NAN 0xC000
#define NUMERIC_PINF 0xD000
#define NUMERIC_NINF 0xF000
#define DSCALE_MAX 0x3FFF
#define NBASE 10000

static PyObject *decimal_from_ascii(OxpgState *st, const char *text, Py_ssize_t len)
{
    PyObject *s = PyUnicode_FromStringAndSize(text, len);
    if (s == NULL)
        return NULL;
    PyObject *value = PyObject_CallOneArg(st->decimal_type, s);
    Py_DECREF(s);
    /* A Decimal refers to nothing but its type, and is a container to the collector
     * only for that (since Python 3.13): untracked, it can hide no cycle, as on 3.12,
     * and the rows holding it can be untracked too (result.c). Nothing tracks a
     * Decimal again. The type test spares 3.11 and 3.12 the call. */
    if (value != NULL && PyType_IS_GC(Py_TYPE(value)))
        PyObject_GC_UnTrack(value); /* a no-op when it is not tracked */
    return value;
}

/* Append group as 4 digits (or without leading zeros when strip is set). */
static char *put_group(char *out, int group, int strip)
{
    char buf[4] = {(char)('0' + group / 1000), (char)('0' + group / 100 % 10), (char)('0' + group / 10 % 10),
                   (char)('0' + group % 10)};
    int start = 0;
    if (strip) {
        while (start < 3 && buf[start] == '0')
            start++;
    }
    memcpy(out, buf + start, (size_t)(4 - start));
    return out + (4 - start);
}

PyObject *oxpg_decode_numeric(OxpgState *st, const char *data, int len)
{
    if (OXPG_UNLIKELY(len < 8))
        return oxpg_decode_malformed(st, "numeric", len);
    /* Unsigned: numeric_send writes up to 32768 digit groups (131072 digits). */
    int ndigits = oxpg_load_u16(data);
    int weight = (int16_t)oxpg_load_u16(data + 2);
    unsigned sign = oxpg_load_u16(data + 4);
    unsigned dscale = oxpg_load_u16(data + 6);
    if (OXPG_UNLIKELY(ndigits < 0 || len != 8 + 2 * ndigits || dscale > DSCALE_MAX))
        return oxpg_decode_malformed(st, "numeric", len);
    if (sign == NUMERIC_NAN)
        return decimal_from_ascii(st, "NaN", 3);
    if (sign == NUMERIC_PINF)
        return decimal_from_ascii(st, "Infinity", 8);
    if (sign == NUMERIC_NINF)
        return decimal_from_ascii(st, "-Infinity", 9);
    if (OXPG_UNLIKELY(sign != NUMERIC_POS && sign != NUMERIC_NEG))
        return oxpg_decode_malformed(st, "numeric", len);
    const char *digits = data + 8;
    for (int i = 0; i < ndigits; i++) {
        if (OXPG_UNLIKELY(oxpg_load_u16(digits + 2 * i) >= NBASE))
            return oxpg_decode_malformed(st, "numeric", len);
    }

    /* sign + integer part (4 chars per group) + point + fraction, all bounded by int16. */
    size_t int_groups = weight >= 0 ? (size_t)weight + 1 : 1;
    size_t cap = 1 + 4 * int_groups + 1 + dscale + 4;
    char *text = PyMem_Malloc(cap);
    if (text == NULL)
        return PyErr_NoMemory();
    char *out = text;
    if (sign == NUMERIC_NEG)
        *out++ = '-';
    if (weight < 0) {
        *out++ = '0';
    } else {
        for (int g = 0; g <= weight; g++) {
            int group = g < ndigits ? oxpg_load_u16(digits + 2 * g) : 0;
            out = put_group(out, group, g == 0);
        }
    }
    if (dscale > 0) {
        *out++ = '.';
        char *frac_start = out;
        /* Fraction groups start at digit index weight + 1 (negative weights mean
         * leading zero groups that are not stored). */
        for (int g = weight + 1; (size_t)(out - frac_start) < dscale; g++) {
            int group = (g >= 0 && g < ndigits) ? oxpg_load_u16(digits + 2 * g) : 0;
            out = put_group(out, group, 0);
        }
        out = frac_start + dscale; /* PostgreSQL prints exactly dscale digits */
    }
    PyObject *value = decimal_from_ascii(st, text, out - text);
    PyMem_Free(text);
    return value;
}

/* Pack decimal digits (0-9 each), value = digits * 10^exponent, into the wire form. */
static int pack_numeric(const unsigned char *dec, Py_ssize_t n, int64_t exponent, int negative, OxpgWriteBuffer *w)
{
    /* Drop leading zeros; an all-zero value is 0 with the scale kept. */
    Py_ssize_t first = 0;
    while (first < n && dec[first] == 0)
        first++;
    int64_t dscale = exponent < 0 ? -exponent : 0;
    if (dscale > DSCALE_MAX) {
        PyErr_SetString(PyExc_ValueError, "numeric scale is too large for PostgreSQL (at most 16383 digits)");
        return -1;
    }
    int64_t weight = 0, low = 0;
    Py_ssize_t count = n - first;
    if (count > 0) {
        /* Decimal digit k (from the left) has power (n - 1 - k) + exponent. */
        int64_t top_power = (int64_t)(n - 1 - first) + exponent;
        weight = top_power >= 0 ? top_power / 4 : -((-top_power + 3) / 4);
        low = exponent >= 0 ? exponent / 4 : -((-exponent + 3) / 4);
        if (weight > INT16_MAX || weight < INT16_MIN) {
            PyErr_SetString(PyExc_ValueError, "numeric value out of PostgreSQL's range");
            return -1;
        }
    }
    Py_ssize_t ngroups = count > 0 ? (Py_ssize_t)(weight - low + 1) : 0;
    int *groups = PyMem_Calloc(ngroups > 0 ? (size_t)ngroups : 1, sizeof(int));
    if (groups == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t k = first; k < n; k++) {
        int64_t power = (int64_t)(n - 1 - k) + exponent;
        int64_t g = power >= 0 ? power / 4 : -((-power + 3) / 4);
        int64_t within = power - g * 4;
        static const int scale[4] = {1, 10, 100, 1000};
        groups[weight - g] += dec[k] * scale[within];
    }
    /* Trailing zero groups carry no information (dscale keeps the printed scale). */
    Py_ssize_t used = ngroups;
    while (used > 0 && groups[used - 1] == 0)
        used--;
    if (used > UINT16_MAX) {
        PyMem_Free(groups);
        PyErr_SetString(PyExc_ValueError, "numeric value has too many digits for PostgreSQL");
        return -1;
    }
    char *out = oxpg_wbuf_put(w, 8 + 2 * (size_t)used);
    if (out == NULL) {
        PyMem_Free(groups);
        return -1;
    }
    oxpg_store_u16(out, (uint16_t)used);
    oxpg_store_u16(out + 2, (uint16_t)(int16_t)(used > 0 ? weight : 0));
    oxpg_store_u16(out + 4, (uint16_t)(used > 0 && negative ? NUMERIC_NEG : NUMERIC_POS));
    oxpg_store_u16(out + 6, (uint16_t)dscale);
    for (Py_ssize_t g = 0; g < used; g++)
        oxpg_store_u16(out + 8 + 2 * g, (uint16_t)groups[g]);
    PyMem_Free(groups);
    return 0;
}

static int pack_special(unsigned sign, OxpgWriteBuffer *w)
{
    char *out = oxpg_wbuf_put(w, 8);
    if (out == NULL)
        return -1;
    memset(out, 0, 8);
    oxpg_store_u16(out + 4, (uint16_t)sign);
    return 0;
}

/* A plain Decimal's str() ("-12.50", "1E+5", "NaN", "-Infinity") is C code; its
 * as_tuple() builds a named tuple through Python. Returns 1 when the text was not
 * recognised (the caller then asks as_tuple()). */
static int encode_decimal_text(PyObject *value, OxpgWriteBuffer *w)
{
    PyObject *text = PyObject_Str(value);
    if (text == NULL)
        return -1;
    Py_ssize_t len;
    const char *s = PyUnicode_AsUTF8AndSize(text, &len);
    int rc = 1;
    unsigned char *dec = NULL;
    if (s == NULL) {
        rc = -1;
        goto done;
    }
    Py_ssize_t i = 0;
    int negative = 0;
    if (i < len && (s[i] == '-' || s[i] == '+'))
        negative = s[i++] == '-';
    if (len - i == 3 && memcmp(s + i, "NaN", 3) == 0) {
        rc = pack_special(NUMERIC_NAN, w);
        goto done;
    }
    if (len - i == 8 && memcmp(s + i, "Infinity", 8) == 0) {
        rc = pack_special(negative ? NUMERIC_NINF : NUMERIC_PINF, w);
        goto done;
    }
    if ((dec = PyMem_Malloc((size_t)len + 1)) == NULL) {
        PyErr_NoMemory();
        rc = -1;
        goto done;
    }
    Py_ssize_t n = 0;
    long long exponent = 0;
    int seen_point = 0;
    for (; i < len && s[i] != 'E' && s[i] != 'e'; i++) {
        if (s[i] == '.' && !seen_point) {
            seen_point = 1;
        } else if (s[i] >= '0' && s[i] <= '9') {
            dec[n++] = (unsigned char)(s[i] - '0');
            exponent -= seen_point;
        } else {
            goto done; /* not a form we know: rc stays 1 */
        }
    }
    if (n == 0)
        goto done;
    if (i < len) {
        /* E[+-]digits, bounded long before long long could overflow. */
        int exp_negative = 0;
        long long e = 0;
        i++;
        if (i < len && (s[i] == '-' || s[i] == '+'))
            exp_negative = s[i++] == '-';
        if (i == len)
            goto done;
        for (; i < len; i++) {
            if (s[i] < '0' || s[i] > '9' || e > 1000000000000LL)
                goto done;
            e = e * 10 + (s[i] - '0');
        }
        exponent += exp_negative ? -e : e;
    }
    if (exponent > INT32_MAX || exponent < INT32_MIN) {
        PyErr_SetString(PyExc_ValueError, "numeric value out of PostgreSQL's range");
        rc = -1;
        goto done;
    }
    rc = pack_numeric(dec, n, exponent, negative, w);
done:
    PyMem_Free(dec);
    Py_DECREF(text);
    return rc;
}

int oxpg_encode_numeric_from_decimal(OxpgState *st, PyObject *value, OxpgWriteBuffer *w)
{
    if (Py_TYPE(value) == (PyTypeObject *)st->decimal_type) {
        int rc = encode_decimal_text(value, w);
        if (rc <= 0)
            return rc;
    }
    /* Subclasses (their str() may be anything) and forms not recognised above. */
    PyObject *tuple = PyObject_CallMethodNoArgs(value, st->str_as_tuple);
    unsigned char *dec = NULL;
    int rc = -1;
    if (tuple == NULL)
        return -1;
    if (!PyTuple_Check(tuple) || PyTuple_GET_SIZE(tuple) != 3) {
        PyErr_SetString(PyExc_TypeError, "Decimal.as_tuple() returned an unexpected value");
        goto done;
    }
    int negative = PyObject_IsTrue(PyTuple_GET_ITEM(tuple, 0));
    PyObject *digits = PyTuple_GET_ITEM(tuple, 1);
    PyObject *exponent = PyTuple_GET_ITEM(tuple, 2);
    if (negative < 0)
        goto done;
    if (PyUnicode_Check(exponent)) {
        /* 'n' NaN, 'N' signalling NaN, 'F' infinity. */
        if (PyUnicode_CompareWithASCIIString(exponent, "n") == 0)
            rc = pack_special(NUMERIC_NAN, w);
        else if (PyUnicode_CompareWithASCIIString(exponent, "F") == 0)
            rc = pack_special(negative ? NUMERIC_NINF : NUMERIC_PINF, w);
        else
            PyErr_SetString(PyExc_ValueError, "signalling NaN cannot be sent to PostgreSQL");
        goto done;
    }
    int overflow = 0;
    long long exp = PyLong_AsLongLongAndOverflow(exponent, &overflow);
    if (exp == -1 && PyErr_Occurred())
        goto done;
    if (overflow || exp > INT32_MAX || exp < INT32_MIN) {
        PyErr_SetString(PyExc_ValueError, "numeric value out of PostgreSQL's range");
        goto done;
    }
    if (!PyTuple_Check(digits))
        goto done;
    Py_ssize_t n = PyTuple_GET_SIZE(digits);
    if ((dec = PyMem_Malloc(n > 0 ? (size_t)n : 1)) == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t k = 0; k < n; k++) {
        long d = PyLong_AsLong(PyTuple_GET_ITEM(digits, k));
        if (d < 0 || d > 9) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_ValueError, "invalid Decimal digit");
            goto done;
        }
        dec[k] = (unsigned char)d;
    }
    rc = pack_numeric(dec, n, exp, negative, w);
done:
    PyMem_Free(dec);
    Py_DECREF(tuple);
    return rc;
}

int oxpg_encode_numeric_from_long(OxpgState *st, PyObject *value, OxpgWriteBuffer *w)
{
    /* Through Decimal rather than str(): str() of an int is capped at
     * sys.get_int_max_str_digits() digits, Decimal(int) is exact at any size. */
    PyObject *dec = PyObject_CallOneArg(st->decimal_type, value);
    if (dec == NULL)
        return -1;
    int rc = oxpg_encode_numeric_from_decimal(st, dec, w);
    Py_DECREF(dec);
    return rc;
}
