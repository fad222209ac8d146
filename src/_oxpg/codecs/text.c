/* text, varchar, bpchar, name, xml, unknown, "char" */
#include "oxpg/codecs.h"
#include "oxpg/errors.h"

PyObject *oxpg_decode_text(OxpgState *st, const char *data, int len)
{
    PyObject *s = PyUnicode_DecodeUTF8(data, len, NULL);
    /* client_encoding is UTF8, so bad bytes mean a SQL_ASCII database sent raw bytes:
     * say so instead of returning mojibake. */
    if (OXPG_UNLIKELY(s == NULL)) {
        oxpg_reraise_as(st->DataError, "text value is not valid UTF-8");
        return NULL;
    }
    return s;
}

PyObject *oxpg_decode_char(OxpgState *st, const char *data, int len)
{
    if (OXPG_UNLIKELY(len > 1))
        return oxpg_decode_malformed(st, "\"char\"", len);
    /* The empty "char" is stored as a zero byte; PostgreSQL prints it as ''. */
    if (len == 0 || data[0] == '\0')
        return PyUnicode_FromStringAndSize("", 0);
    /* Otherwise one raw byte; Latin-1 maps each byte to one code point losslessly. */
    return PyUnicode_DecodeLatin1(data, len, NULL);
}
