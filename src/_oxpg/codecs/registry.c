/* The OID-keyed table of built-in binary decoders. Function pointers only: no
 * Python objects, so one table serves every thread and interpreter. */
#include "oxpg/codecs.h"
#include "oxpg/pg_oids.h"

static const OxpgCodec codecs[] = {
    {OXPG_BOOLOID, 1000, "bool", oxpg_decode_bool},
    {OXPG_BYTEAOID, 1001, "bytea", oxpg_decode_bytea},
    {OXPG_CHAROID, 1002, "char", oxpg_decode_char},
    {OXPG_NAMEOID, 1003, "name", oxpg_decode_text},
    {OXPG_INT8OID, 1016, "int8", oxpg_decode_int8},
    {OXPG_INT2OID, 1005, "int2", oxpg_decode_int2},
    {OXPG_INT4OID, 1007, "int4", oxpg_decode_int4},
    {OXPG_TEXTOID, 1009, "text", oxpg_decode_text},
    {OXPG_OIDOID, 1028, "oid", oxpg_decode_oid},
    {OXPG_JSONOID, 199, "json", oxpg_decode_json},
    {OXPG_XMLOID, 143, "xml", oxpg_decode_text},
    {OXPG_FLOAT4OID, 1021, "float4", oxpg_decode_float4},
    {OXPG_FLOAT8OID, 1022, "float8", oxpg_decode_float8},
    {OXPG_UNKNOWNOID, 0, "unknown", oxpg_decode_text},
    {OXPG_BPCHAROID, 1014, "bpchar", oxpg_decode_text},
    {OXPG_VARCHAROID, 1015, "varchar", oxpg_decode_text},
    {OXPG_DATEOID, 1182, "date", oxpg_decode_date},
    {OXPG_TIMEOID, 1183, "time", oxpg_decode_time},
    {OXPG_TIMESTAMPOID, 1115, "timestamp", oxpg_decode_timestamp},
    {OXPG_TIMESTAMPTZOID, 1185, "timestamptz", oxpg_decode_timestamptz},
    {OXPG_INTERVALOID, 1187, "interval", oxpg_decode_interval},
    {OXPG_TIMETZOID, 1270, "timetz", oxpg_decode_timetz},
    {OXPG_NUMERICOID, 1231, "numeric", oxpg_decode_numeric},
    {OXPG_UUIDOID, 2951, "uuid", oxpg_decode_uuid},
    {OXPG_JSONBOID, 3807, "jsonb", oxpg_decode_jsonb},
    {OXPG_RECORDOID, 2287, "record", oxpg_decode_record},
    /* Its binary form is its text, and it refuses binary input, so the text-form
     * fallback cannot serve it. */
    {OXPG_PGNODETREEOID, 0, "pg_node_tree", oxpg_decode_text},
    {OXPG_VOIDOID, 0, "void", oxpg_decode_void},
    /* Arrays: one decoder for all, the element type is in the data. */
    {1000, 0, "bool[]", oxpg_decode_array},
    {1001, 0, "bytea[]", oxpg_decode_array},
    {1002, 0, "char[]", oxpg_decode_array},
    {1003, 0, "name[]", oxpg_decode_array},
    {1016, 0, "int8[]", oxpg_decode_array},
    {1005, 0, "int2[]", oxpg_decode_array},
    {1007, 0, "int4[]", oxpg_decode_array},
    {1009, 0, "text[]", oxpg_decode_array},
    {1028, 0, "oid[]", oxpg_decode_array},
    {199, 0, "json[]", oxpg_decode_array},
    {143, 0, "xml[]", oxpg_decode_array},
    {1021, 0, "float4[]", oxpg_decode_array},
    {1022, 0, "float8[]", oxpg_decode_array},
    {1014, 0, "bpchar[]", oxpg_decode_array},
    {1015, 0, "varchar[]", oxpg_decode_array},
    {1182, 0, "date[]", oxpg_decode_array},
    {1183, 0, "time[]", oxpg_decode_array},
    {1115, 0, "timestamp[]", oxpg_decode_array},
    {1185, 0, "timestamptz[]", oxpg_decode_array},
    {1187, 0, "interval[]", oxpg_decode_array},
    {1270, 0, "timetz[]", oxpg_decode_array},
    {1231, 0, "numeric[]", oxpg_decode_array},
    {2951, 0, "uuid[]", oxpg_decode_array},
    {3807, 0, "jsonb[]", oxpg_decode_array},
    {2287, 0, "record[]", oxpg_decode_array},
};

#define N_CODECS (sizeof(codecs) / sizeof(codecs[0]))
/* Built-in OIDs are below FirstGenbkiObjectId (10000); the index covers what we decode. */
#define INDEX_SIZE 4096

/* OID -> 1 + position in codecs[], 0 for none; built once, read-only afterwards. */
static const unsigned char index_by_oid[INDEX_SIZE] = {
#define OXPG_AT(oid, pos) [oid] = (pos) + 1
    OXPG_AT(OXPG_BOOLOID, 0),       OXPG_AT(OXPG_BYTEAOID, 1),       OXPG_AT(OXPG_CHAROID, 2),
    OXPG_AT(OXPG_NAMEOID, 3),       OXPG_AT(OXPG_INT8OID, 4),        OXPG_AT(OXPG_INT2OID, 5),
    OXPG_AT(OXPG_INT4OID, 6),       OXPG_AT(OXPG_TEXTOID, 7),        OXPG_AT(OXPG_OIDOID, 8),
    OXPG_AT(OXPG_JSONOID, 9),       OXPG_AT(OXPG_XMLOID, 10),        OXPG_AT(OXPG_FLOAT4OID, 11),
    OXPG_AT(OXPG_FLOAT8OID, 12),    OXPG_AT(OXPG_UNKNOWNOID, 13),    OXPG_AT(OXPG_BPCHAROID, 14),
    OXPG_AT(OXPG_VARCHAROID, 15),   OXPG_AT(OXPG_DATEOID, 16),       OXPG_AT(OXPG_TIMEOID, 17),
    OXPG_AT(OXPG_TIMESTAMPOID, 18), OXPG_AT(OXPG_TIMESTAMPTZOID, 19), OXPG_AT(OXPG_INTERVALOID, 20),
    OXPG_AT(OXPG_TIMETZOID, 21),    OXPG_AT(OXPG_NUMERICOID, 22),    OXPG_AT(OXPG_UUIDOID, 23),
    OXPG_AT(OXPG_JSONBOID, 24),     OXPG_AT(OXPG_RECORDOID, 25),     OXPG_AT(OXPG_PGNODETREEOID, 26),
    OXPG_AT(OXPG_VOIDOID, 27),
    OXPG_AT(1000, 28),
    OXPG_AT(1001, 29),
    OXPG_AT(1002, 30),
    OXPG_AT(1003, 31),
    OXPG_AT(1016, 32),
    OXPG_AT(1005, 33),
    OXPG_AT(1007, 34),
    OXPG_AT(1009, 35),
    OXPG_AT(1028, 36),
    OXPG_AT(199, 37),
    OXPG_AT(143, 38),
    OXPG_AT(1021, 39),
    OXPG_AT(1022, 40),
    OXPG_AT(1014, 41),
    OXPG_AT(1015, 42),
    OXPG_AT(1182, 43),
    OXPG_AT(1183, 44),
    OXPG_AT(1115, 45),
    OXPG_AT(1185, 46),
    OXPG_AT(1187, 47),
    OXPG_AT(1270, 48),
    OXPG_AT(1231, 49),
    OXPG_AT(2951, 50),
    OXPG_AT(3807, 51),
    OXPG_AT(2287, 52),
#undef OXPG_AT
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
