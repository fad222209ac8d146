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
    OXPG_AT(OXPG_JSONBOID, 24),
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
