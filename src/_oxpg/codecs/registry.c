/* The OID-keyed table of built-in binary decoders. Function pointers only: no
 * Python objects, so one table serves every thread and interpreter.
 *
 * OXPG_CODECS lists every entry once; the table and its OID index are both expanded
 * from it, so they cannot disagree. X(id, oid, array oid, name, decoder). */
#include "oxpg/codecs.h"
#include "oxpg/pg_oids.h"

#define OXPG_CODECS(X)                                                                             \
    X(bool, OXPG_BOOLOID, OXPG_BOOLARRAYOID, "bool", oxpg_decode_bool)                              \
    X(bytea, OXPG_BYTEAOID, OXPG_BYTEAARRAYOID, "bytea", oxpg_decode_bytea)                         \
    X(char, OXPG_CHAROID, OXPG_CHARARRAYOID, "char", oxpg_decode_char)                              \
    X(name, OXPG_NAMEOID, OXPG_NAMEARRAYOID, "name", oxpg_decode_text)                              \
    X(int8, OXPG_INT8OID, OXPG_INT8ARRAYOID, "int8", oxpg_decode_int8)                              \
    X(int2, OXPG_INT2OID, OXPG_INT2ARRAYOID, "int2", oxpg_decode_int2)                              \
    X(int4, OXPG_INT4OID, OXPG_INT4ARRAYOID, "int4", oxpg_decode_int4)                              \
    X(text, OXPG_TEXTOID, OXPG_TEXTARRAYOID, "text", oxpg_decode_text)                              \
    X(oid, OXPG_OIDOID, OXPG_OIDARRAYOID, "oid", oxpg_decode_oid)                                   \
    X(tid, OXPG_TIDOID, OXPG_TIDARRAYOID, "tid", oxpg_decode_tid)                                   \
    X(xid, OXPG_XIDOID, OXPG_XIDARRAYOID, "xid", oxpg_decode_xid)                                   \
    X(cid, OXPG_CIDOID, OXPG_CIDARRAYOID, "cid", oxpg_decode_cid)                                   \
    X(xid8, OXPG_XID8OID, OXPG_XID8ARRAYOID, "xid8", oxpg_decode_xid8)                              \
    X(json, OXPG_JSONOID, OXPG_JSONARRAYOID, "json", oxpg_decode_json)                              \
    X(xml, OXPG_XMLOID, OXPG_XMLARRAYOID, "xml", oxpg_decode_text)                                  \
    X(float4, OXPG_FLOAT4OID, OXPG_FLOAT4ARRAYOID, "float4", oxpg_decode_float4)                    \
    X(float8, OXPG_FLOAT8OID, OXPG_FLOAT8ARRAYOID, "float8", oxpg_decode_float8)                    \
    X(unknown, OXPG_UNKNOWNOID, 0, "unknown", oxpg_decode_text)                                     \
    X(bpchar, OXPG_BPCHAROID, OXPG_BPCHARARRAYOID, "bpchar", oxpg_decode_text)                      \
    X(varchar, OXPG_VARCHAROID, OXPG_VARCHARARRAYOID, "varchar", oxpg_decode_text)                  \
    X(date, OXPG_DATEOID, OXPG_DATEARRAYOID, "date", oxpg_decode_date)                              \
    X(time, OXPG_TIMEOID, OXPG_TIMEARRAYOID, "time", oxpg_decode_time)                              \
    X(timestamp, OXPG_TIMESTAMPOID, OXPG_TIMESTAMPARRAYOID, "timestamp", oxpg_decode_timestamp)     \
    X(timestamptz, OXPG_TIMESTAMPTZOID, OXPG_TIMESTAMPTZARRAYOID, "timestamptz",                    \
      oxpg_decode_timestamptz)                                                                      \
    X(interval, OXPG_INTERVALOID, OXPG_INTERVALARRAYOID, "interval", oxpg_decode_interval)          \
    X(timetz, OXPG_TIMETZOID, OXPG_TIMETZARRAYOID, "timetz", oxpg_decode_timetz)                    \
    X(numeric, OXPG_NUMERICOID, OXPG_NUMERICARRAYOID, "numeric", oxpg_decode_numeric)               \
    X(uuid, OXPG_UUIDOID, OXPG_UUIDARRAYOID, "uuid", oxpg_decode_uuid)                              \
    X(jsonb, OXPG_JSONBOID, OXPG_JSONBARRAYOID, "jsonb", oxpg_decode_jsonb)                         \
    X(record, OXPG_RECORDOID, OXPG_RECORDARRAYOID, "record", oxpg_decode_record)                    \
    /* Its binary form is its text, and it refuses binary input, so the text-form                 \
     * fallback cannot serve it. */                                                                \
    X(pg_node_tree, OXPG_PGNODETREEOID, 0, "pg_node_tree", oxpg_decode_text)                        \
    X(void, OXPG_VOIDOID, 0, "void", oxpg_decode_void)                                              \
    X(inet, OXPG_INETOID, OXPG_INETARRAYOID, "inet", oxpg_decode_inet)                              \
    X(cidr, OXPG_CIDROID, OXPG_CIDRARRAYOID, "cidr", oxpg_decode_cidr)                              \
    X(macaddr, OXPG_MACADDROID, OXPG_MACADDRARRAYOID, "macaddr", oxpg_decode_macaddr)               \
    X(macaddr8, OXPG_MACADDR8OID, OXPG_MACADDR8ARRAYOID, "macaddr8", oxpg_decode_macaddr8)          \
    X(bit, OXPG_BITOID, OXPG_BITARRAYOID, "bit", oxpg_decode_bits)                                  \
    X(varbit, OXPG_VARBITOID, OXPG_VARBITARRAYOID, "varbit", oxpg_decode_bits)                      \
    X(money, OXPG_MONEYOID, OXPG_MONEYARRAYOID, "money", oxpg_decode_money)                         \
    X(pg_lsn, OXPG_PG_LSNOID, OXPG_PG_LSNARRAYOID, "pg_lsn", oxpg_decode_pg_lsn)                    \
    X(point, OXPG_POINTOID, OXPG_POINTARRAYOID, "point", oxpg_decode_point)                         \
    X(line, OXPG_LINEOID, OXPG_LINEARRAYOID, "line", oxpg_decode_line)                              \
    X(lseg, OXPG_LSEGOID, OXPG_LSEGARRAYOID, "lseg", oxpg_decode_lseg)                              \
    X(box, OXPG_BOXOID, OXPG_BOXARRAYOID, "box", oxpg_decode_box)                                   \
    X(path, OXPG_PATHOID, OXPG_PATHARRAYOID, "path", oxpg_decode_path)                              \
    X(polygon, OXPG_POLYGONOID, OXPG_POLYGONARRAYOID, "polygon", oxpg_decode_polygon)               \
    X(circle, OXPG_CIRCLEOID, OXPG_CIRCLEARRAYOID, "circle", oxpg_decode_circle)                    \
    X(int4range, OXPG_INT4RANGEOID, OXPG_INT4RANGEARRAYOID, "int4range", oxpg_decode_int4range)     \
    X(int8range, OXPG_INT8RANGEOID, OXPG_INT8RANGEARRAYOID, "int8range", oxpg_decode_int8range)     \
    X(numrange, OXPG_NUMRANGEOID, OXPG_NUMRANGEARRAYOID, "numrange", oxpg_decode_numrange)          \
    X(daterange, OXPG_DATERANGEOID, OXPG_DATERANGEARRAYOID, "daterange", oxpg_decode_daterange)     \
    X(tsrange, OXPG_TSRANGEOID, OXPG_TSRANGEARRAYOID, "tsrange", oxpg_decode_tsrange)               \
    X(tstzrange, OXPG_TSTZRANGEOID, OXPG_TSTZRANGEARRAYOID, "tstzrange", oxpg_decode_tstzrange)     \
    X(int4multirange, OXPG_INT4MULTIRANGEOID, OXPG_INT4MULTIRANGEARRAYOID, "int4multirange",        \
      oxpg_decode_int4multirange)                                                                   \
    X(int8multirange, OXPG_INT8MULTIRANGEOID, OXPG_INT8MULTIRANGEARRAYOID, "int8multirange",        \
      oxpg_decode_int8multirange)                                                                   \
    X(nummultirange, OXPG_NUMMULTIRANGEOID, OXPG_NUMMULTIRANGEARRAYOID, "nummultirange",            \
      oxpg_decode_nummultirange)                                                                    \
    X(datemultirange, OXPG_DATEMULTIRANGEOID, OXPG_DATEMULTIRANGEARRAYOID, "datemultirange",        \
      oxpg_decode_datemultirange)                                                                   \
    X(tsmultirange, OXPG_TSMULTIRANGEOID, OXPG_TSMULTIRANGEARRAYOID, "tsmultirange",                \
      oxpg_decode_tsmultirange)                                                                     \
    X(tstzmultirange, OXPG_TSTZMULTIRANGEOID, OXPG_TSTZMULTIRANGEARRAYOID, "tstzmultirange",        \
      oxpg_decode_tstzmultirange)                                                                   \
    /* Arrays: one decoder for all, the element type is in the data. */                            \
    OXPG_ARRAYS(X)

/* The array type of every element type above that has one. */
#define OXPG_ARRAYS(X)                                                                             \
    X(bool_array, OXPG_BOOLARRAYOID, 0, "bool[]", oxpg_decode_array)                                \
    X(bytea_array, OXPG_BYTEAARRAYOID, 0, "bytea[]", oxpg_decode_array)                             \
    X(char_array, OXPG_CHARARRAYOID, 0, "char[]", oxpg_decode_array)                                \
    X(name_array, OXPG_NAMEARRAYOID, 0, "name[]", oxpg_decode_array)                                \
    X(int8_array, OXPG_INT8ARRAYOID, 0, "int8[]", oxpg_decode_array)                                \
    X(int2_array, OXPG_INT2ARRAYOID, 0, "int2[]", oxpg_decode_array)                                \
    X(int4_array, OXPG_INT4ARRAYOID, 0, "int4[]", oxpg_decode_array)                                \
    X(text_array, OXPG_TEXTARRAYOID, 0, "text[]", oxpg_decode_array)                                \
    X(oid_array, OXPG_OIDARRAYOID, 0, "oid[]", oxpg_decode_array)                                   \
    X(tid_array, OXPG_TIDARRAYOID, 0, "tid[]", oxpg_decode_array)                                   \
    X(xid_array, OXPG_XIDARRAYOID, 0, "xid[]", oxpg_decode_array)                                   \
    X(cid_array, OXPG_CIDARRAYOID, 0, "cid[]", oxpg_decode_array)                                   \
    X(xid8_array, OXPG_XID8ARRAYOID, 0, "xid8[]", oxpg_decode_array)                                \
    X(json_array, OXPG_JSONARRAYOID, 0, "json[]", oxpg_decode_array)                                \
    X(xml_array, OXPG_XMLARRAYOID, 0, "xml[]", oxpg_decode_array)                                   \
    X(float4_array, OXPG_FLOAT4ARRAYOID, 0, "float4[]", oxpg_decode_array)                          \
    X(float8_array, OXPG_FLOAT8ARRAYOID, 0, "float8[]", oxpg_decode_array)                          \
    X(bpchar_array, OXPG_BPCHARARRAYOID, 0, "bpchar[]", oxpg_decode_array)                          \
    X(varchar_array, OXPG_VARCHARARRAYOID, 0, "varchar[]", oxpg_decode_array)                       \
    X(date_array, OXPG_DATEARRAYOID, 0, "date[]", oxpg_decode_array)                                \
    X(time_array, OXPG_TIMEARRAYOID, 0, "time[]", oxpg_decode_array)                                \
    X(timestamp_array, OXPG_TIMESTAMPARRAYOID, 0, "timestamp[]", oxpg_decode_array)                 \
    X(timestamptz_array, OXPG_TIMESTAMPTZARRAYOID, 0, "timestamptz[]", oxpg_decode_array)           \
    X(interval_array, OXPG_INTERVALARRAYOID, 0, "interval[]", oxpg_decode_array)                    \
    X(timetz_array, OXPG_TIMETZARRAYOID, 0, "timetz[]", oxpg_decode_array)                          \
    X(numeric_array, OXPG_NUMERICARRAYOID, 0, "numeric[]", oxpg_decode_array)                       \
    X(uuid_array, OXPG_UUIDARRAYOID, 0, "uuid[]", oxpg_decode_array)                                \
    X(jsonb_array, OXPG_JSONBARRAYOID, 0, "jsonb[]", oxpg_decode_array)                             \
    X(record_array, OXPG_RECORDARRAYOID, 0, "record[]", oxpg_decode_array)                          \
    X(inet_array, OXPG_INETARRAYOID, 0, "inet[]", oxpg_decode_array)                                \
    X(cidr_array, OXPG_CIDRARRAYOID, 0, "cidr[]", oxpg_decode_array)                                \
    X(macaddr_array, OXPG_MACADDRARRAYOID, 0, "macaddr[]", oxpg_decode_array)                       \
    X(macaddr8_array, OXPG_MACADDR8ARRAYOID, 0, "macaddr8[]", oxpg_decode_array)                    \
    X(bit_array, OXPG_BITARRAYOID, 0, "bit[]", oxpg_decode_array)                                   \
    X(varbit_array, OXPG_VARBITARRAYOID, 0, "varbit[]", oxpg_decode_array)                          \
    X(money_array, OXPG_MONEYARRAYOID, 0, "money[]", oxpg_decode_array)                             \
    X(pg_lsn_array, OXPG_PG_LSNARRAYOID, 0, "pg_lsn[]", oxpg_decode_array)                          \
    X(point_array, OXPG_POINTARRAYOID, 0, "point[]", oxpg_decode_array)                             \
    X(line_array, OXPG_LINEARRAYOID, 0, "line[]", oxpg_decode_array)                                \
    X(lseg_array, OXPG_LSEGARRAYOID, 0, "lseg[]", oxpg_decode_array)                                \
    X(box_array, OXPG_BOXARRAYOID, 0, "box[]", oxpg_decode_array)                                   \
    X(path_array, OXPG_PATHARRAYOID, 0, "path[]", oxpg_decode_array)                                \
    X(polygon_array, OXPG_POLYGONARRAYOID, 0, "polygon[]", oxpg_decode_array)                       \
    X(circle_array, OXPG_CIRCLEARRAYOID, 0, "circle[]", oxpg_decode_array)                          \
    X(int4range_array, OXPG_INT4RANGEARRAYOID, 0, "int4range[]", oxpg_decode_array)                 \
    X(int8range_array, OXPG_INT8RANGEARRAYOID, 0, "int8range[]", oxpg_decode_array)                 \
    X(numrange_array, OXPG_NUMRANGEARRAYOID, 0, "numrange[]", oxpg_decode_array)                    \
    X(daterange_array, OXPG_DATERANGEARRAYOID, 0, "daterange[]", oxpg_decode_array)                 \
    X(tsrange_array, OXPG_TSRANGEARRAYOID, 0, "tsrange[]", oxpg_decode_array)                       \
    X(tstzrange_array, OXPG_TSTZRANGEARRAYOID, 0, "tstzrange[]", oxpg_decode_array)                 \
    X(int4multirange_array, OXPG_INT4MULTIRANGEARRAYOID, 0, "int4multirange[]", oxpg_decode_array)  \
    X(int8multirange_array, OXPG_INT8MULTIRANGEARRAYOID, 0, "int8multirange[]", oxpg_decode_array)  \
    X(nummultirange_array, OXPG_NUMMULTIRANGEARRAYOID, 0, "nummultirange[]", oxpg_decode_array)     \
    X(datemultirange_array, OXPG_DATEMULTIRANGEARRAYOID, 0, "datemultirange[]", oxpg_decode_array)  \
    X(tsmultirange_array, OXPG_TSMULTIRANGEARRAYOID, 0, "tsmultirange[]", oxpg_decode_array)        \
    X(tstzmultirange_array, OXPG_TSTZMULTIRANGEARRAYOID, 0, "tstzmultirange[]", oxpg_decode_array)

/* Position of each entry in codecs[]. */
enum {
#define OXPG_POSITION(id, oid, array_oid, name, decode) POS_##id,
    OXPG_CODECS(OXPG_POSITION)
#undef OXPG_POSITION
    N_CODECS
};

static const OxpgCodec codecs[N_CODECS] = {
#define OXPG_ENTRY(id, oid, array_oid, name, decode) [POS_##id] = {oid, array_oid, name, decode},
    OXPG_CODECS(OXPG_ENTRY)
#undef OXPG_ENTRY
};

/* Built-in OIDs are below FirstGenbkiObjectId (10000); the index covers the ones we
 * decode (the highest is a multirange array, 6157). */
#define INDEX_SIZE 8192

/* OID -> 1 + position in codecs[], 0 for none; constant data, read-only. */
_Static_assert(N_CODECS < 255, "index_by_oid holds positions in an unsigned char");
static const unsigned char index_by_oid[INDEX_SIZE] = {
#define OXPG_INDEX(id, oid, array_oid, name, decode) [oid] = POS_##id + 1,
    OXPG_CODECS(OXPG_INDEX)
#undef OXPG_INDEX
};

const OxpgCodec *oxpg_codec_lookup(Oid oid)
{
    if (oid >= INDEX_SIZE || index_by_oid[oid] == 0)
        return NULL;
    const OxpgCodec *codec = &codecs[index_by_oid[oid] - 1];
    return codec->oid == oid ? codec : NULL;
}

PyObject *oxpg_decode_malformed(OxpgState *st, const char *type_name, int len)
{
    PyErr_Format(st->DataError, "malformed binary %s value (%d bytes)", type_name, len);
    return NULL;
}

int oxpg_enter_nested(OxpgState *st, const char *type_name)
{
    if (Py_EnterRecursiveCall(" while decoding a nested value") == 0)
        return 0;
    if (PyErr_ExceptionMatches(PyExc_RecursionError)) {
        PyErr_Clear();
        PyErr_Format(st->DataError, "%s value nested too deeply to decode", type_name);
    }
    return -1;
}

oxpg_decode_fn oxpg_static_decoder(void *ctx, Oid oid)
{
    (void)ctx;
    const OxpgCodec *codec = oxpg_codec_lookup(oid);
    return codec != NULL ? codec->decode_binary : NULL;
}
