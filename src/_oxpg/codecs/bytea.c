/* bytea */
#include "oxpg/codecs.h"

PyObject *oxpg_decode_bytea(OxpgState *st, const char *data, int len)
{
    (void)st;
    return PyBytes_FromStringAndSize(data, len);
}
