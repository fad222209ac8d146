/* bool, and void (the absence of a value) */
#include "oxpg/codecs.h"

PyObject *oxpg_decode_bool(OxpgState *st, const char *data, int len)
{
    if (OXPG_UNLIKELY(len != 1 || (data[0] != 0 && data[0] != 1)))
        return oxpg_decode_malformed(st, "bool", len);
    return Py_NewRef(data[0] ? Py_True : Py_False);
}

/* void (functions returning nothing, e.g. pg_sleep) -> None. */
PyObject *oxpg_decode_void(OxpgState *st, const char *data, int len)
{
    (void)data;
    if (OXPG_UNLIKELY(len != 0))
        return oxpg_decode_malformed(st, "void", len);
    Py_RETURN_NONE;
}
