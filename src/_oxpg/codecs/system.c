/* PostgreSQL's internal identifiers: pg_lsn -> str, xid/xid8/cid -> int,
 * tid -> (block, offset). */
#include "oxpg/codecs.h"

#include <stdio.h>

/* pg_lsn: a uint64 WAL position, printed as two hex halves: '0/16B6C50'. */
PyObject *oxpg_decode_pg_lsn(OxpgState *st, const char *data, int len)
{
    if (OXPG_UNLIKELY(len != 8))
        return oxpg_decode_malformed(st, "pg_lsn", len);
    uint64_t lsn = oxpg_load_u64(data);
    char text[24];
    int n = snprintf(text, sizeof(text), "%X/%X", (unsigned)(lsn >> 32), (unsigned)(lsn & 0xFFFFFFFFu));
    return PyUnicode_FromStringAndSize(text, n);
}

/* xid: a 32-bit transaction id (wraps around; compare xid8 for ordering). */
PyObject *oxpg_decode_xid(OxpgState *st, const char *data, int len)
{
    if (OXPG_UNLIKELY(len != 4))
        return oxpg_decode_malformed(st, "xid", len);
    return PyLong_FromUnsignedLong(oxpg_load_u32(data));
}

/* cid: a command id within a transaction, unsigned 32-bit. */
PyObject *oxpg_decode_cid(OxpgState *st, const char *data, int len)
{
    if (OXPG_UNLIKELY(len != 4))
        return oxpg_decode_malformed(st, "cid", len);
    return PyLong_FromUnsignedLong(oxpg_load_u32(data));
}

/* xid8: the 64-bit transaction id (epoch and xid). */
PyObject *oxpg_decode_xid8(OxpgState *st, const char *data, int len)
{
    if (OXPG_UNLIKELY(len != 8))
        return oxpg_decode_malformed(st, "xid8", len);
    return PyLong_FromUnsignedLongLong(oxpg_load_u64(data));
}

/* tid: a row's physical position, uint32 block number and uint16 line pointer. */
PyObject *oxpg_decode_tid(OxpgState *st, const char *data, int len)
{
    if (OXPG_UNLIKELY(len != 6))
        return oxpg_decode_malformed(st, "tid", len);
    return Py_BuildValue("(kI)", (unsigned long)oxpg_load_u32(data), (unsigned)oxpg_load_u16(data + 4));
}
