/* The OID-keyed codec table: C function pointers only, so it is shared across
 * threads and interpreters without locking. */
#ifndef OXPG_CODECS_H
#define OXPG_CODECS_H

#include "oxpg/module.h"
#include "oxpg/wbuf.h"

/* Binary decoder: bytes of one non-NULL value -> new reference, or NULL with an
 * exception set. Decoders validate len themselves: the server is not trusted. */
typedef PyObject *(*oxpg_decode_fn)(OxpgState *st, const char *data, int len);

typedef struct {
    Oid oid;
    Oid array_oid;
    const char *name;
    oxpg_decode_fn decode_binary;
} OxpgCodec;

/* NULL when oxpg has no binary decoder for oid. */
const OxpgCodec *oxpg_codec_lookup(Oid oid);
/* oxpg_codec_lookup's decoder, shaped as an OxpgNested resolver (ctx unused). */
oxpg_decode_fn oxpg_static_decoder(void *ctx, Oid oid);

/* Enter one level of a nested value (record, array); DataError when too deep. Pair
 * a 0 return with Py_LeaveRecursiveCall(). */
int oxpg_enter_nested(OxpgState *st, const char *type_name);

/* Raise DataError for a value whose binary form has the wrong size or shape. */
PyObject *oxpg_decode_malformed(OxpgState *st, const char *type_name, int len);

PyObject *oxpg_decode_bool(OxpgState *st, const char *data, int len);
PyObject *oxpg_decode_int2(OxpgState *st, const char *data, int len);
PyObject *oxpg_decode_int4(OxpgState *st, const char *data, int len);
PyObject *oxpg_decode_int8(OxpgState *st, const char *data, int len);
PyObject *oxpg_decode_oid(OxpgState *st, const char *data, int len);
PyObject *oxpg_decode_float4(OxpgState *st, const char *data, int len);
PyObject *oxpg_decode_float8(OxpgState *st, const char *data, int len);
PyObject *oxpg_decode_numeric(OxpgState *st, const char *data, int len);
PyObject *oxpg_decode_text(OxpgState *st, const char *data, int len);
PyObject *oxpg_decode_char(OxpgState *st, const char *data, int len);
PyObject *oxpg_decode_bytea(OxpgState *st, const char *data, int len);
PyObject *oxpg_decode_date(OxpgState *st, const char *data, int len);
PyObject *oxpg_decode_time(OxpgState *st, const char *data, int len);
PyObject *oxpg_decode_timetz(OxpgState *st, const char *data, int len);
PyObject *oxpg_decode_timestamp(OxpgState *st, const char *data, int len);
PyObject *oxpg_decode_timestamptz(OxpgState *st, const char *data, int len);
PyObject *oxpg_decode_interval(OxpgState *st, const char *data, int len);
PyObject *oxpg_decode_uuid(OxpgState *st, const char *data, int len);
PyObject *oxpg_decode_json(OxpgState *st, const char *data, int len);
PyObject *oxpg_decode_jsonb(OxpgState *st, const char *data, int len);
PyObject *oxpg_decode_record(OxpgState *st, const char *data, int len);
PyObject *oxpg_decode_void(OxpgState *st, const char *data, int len);
PyObject *oxpg_decode_array(OxpgState *st, const char *data, int len);
PyObject *oxpg_decode_inet(OxpgState *st, const char *data, int len);
PyObject *oxpg_decode_cidr(OxpgState *st, const char *data, int len);
PyObject *oxpg_decode_macaddr(OxpgState *st, const char *data, int len);
PyObject *oxpg_decode_macaddr8(OxpgState *st, const char *data, int len);
PyObject *oxpg_decode_bits(OxpgState *st, const char *data, int len); /* bit and varbit */
PyObject *oxpg_decode_money(OxpgState *st, const char *data, int len);
PyObject *oxpg_decode_pg_lsn(OxpgState *st, const char *data, int len);
PyObject *oxpg_decode_xid(OxpgState *st, const char *data, int len);
PyObject *oxpg_decode_xid8(OxpgState *st, const char *data, int len);
PyObject *oxpg_decode_cid(OxpgState *st, const char *data, int len);
PyObject *oxpg_decode_tid(OxpgState *st, const char *data, int len);
PyObject *oxpg_decode_point(OxpgState *st, const char *data, int len);
PyObject *oxpg_decode_line(OxpgState *st, const char *data, int len);
PyObject *oxpg_decode_lseg(OxpgState *st, const char *data, int len);
PyObject *oxpg_decode_box(OxpgState *st, const char *data, int len);
PyObject *oxpg_decode_path(OxpgState *st, const char *data, int len);
PyObject *oxpg_decode_polygon(OxpgState *st, const char *data, int len);
PyObject *oxpg_decode_circle(OxpgState *st, const char *data, int len);
PyObject *oxpg_decode_int4range(OxpgState *st, const char *data, int len);
PyObject *oxpg_decode_int8range(OxpgState *st, const char *data, int len);
PyObject *oxpg_decode_numrange(OxpgState *st, const char *data, int len);
PyObject *oxpg_decode_daterange(OxpgState *st, const char *data, int len);
PyObject *oxpg_decode_tsrange(OxpgState *st, const char *data, int len);
PyObject *oxpg_decode_tstzrange(OxpgState *st, const char *data, int len);
PyObject *oxpg_decode_int4multirange(OxpgState *st, const char *data, int len);
PyObject *oxpg_decode_int8multirange(OxpgState *st, const char *data, int len);
PyObject *oxpg_decode_nummultirange(OxpgState *st, const char *data, int len);
PyObject *oxpg_decode_datemultirange(OxpgState *st, const char *data, int len);
PyObject *oxpg_decode_tsmultirange(OxpgState *st, const char *data, int len);
PyObject *oxpg_decode_tstzmultirange(OxpgState *st, const char *data, int len);

/* Nested values (array elements, record fields) of a type the static table may not
 * know: the per-client decoders (typecache.c) pass their own. */
typedef struct {
    /* A decoder for every value of oid (resolved once per array), or NULL. */
    oxpg_decode_fn (*plain)(void *ctx, Oid oid);
    /* Decode one value of oid when plain gave NULL; NULL with an exception set. */
    PyObject *(*decode)(void *ctx, OxpgState *st, Oid oid, const char *data, int len);
    void *ctx;
} OxpgNested;

/* oxpg_decode_array / oxpg_decode_record with elements / fields decoded through
 * nested (the static versions use the static table alone). */
PyObject *oxpg_decode_array_with(OxpgState *st, const char *data, int len, const OxpgNested *nested);
PyObject *oxpg_decode_record_with(OxpgState *st, const char *data, int len, const OxpgNested *nested);

/* hstore (an extension type, found by name per client): dict[str, str | None]. */
PyObject *oxpg_decode_hstore(OxpgState *st, const char *data, int len);

/* Text-format decoders, used when a result had to be fetched as text (a column
 * type without binary output, such as aclitem): NULL when the type stays str. */
oxpg_decode_fn oxpg_text_decoder(Oid oid);

/* ---- encoders -------------------------------------------------------------------
 * Each appends one value's binary form to w and returns 0, or -1 with an exception
 * set (DataError or ValueError saying what is wrong with the value; the caller adds
 * where it was: "parameter $2", a COPY row and column). Used by params.c; binary
 * COPY rows reuse them. The caller has checked the value's class. */
int oxpg_encode_numeric_from_decimal(OxpgState *st, PyObject *value, OxpgWriteBuffer *w);
int oxpg_encode_numeric_from_long(OxpgState *st, PyObject *value, OxpgWriteBuffer *w);
/* 1 when v is an ipaddress address, interface or network, else 0. */
int oxpg_is_ip(OxpgState *st, PyObject *v);
/* An ipaddress object -> inet (addresses, interfaces) or cidr (networks); sets *oid. */
int oxpg_encode_ip(OxpgState *st, PyObject *v, OxpgWriteBuffer *w, Oid *oid);
/* datetime -> timestamp/timestamptz, offset_us (its utcoffset) subtracted;
 * datetime.max and datetime.min go as infinity and -infinity, what those decode to. */
int oxpg_encode_timestamp(OxpgWriteBuffer *w, PyObject *v, int64_t offset_us);
/* date -> date; date.max and date.min as infinity and -infinity. */
int oxpg_encode_date(OxpgWriteBuffer *w, PyObject *v);
/* time -> time, or timetz when aware (offset_us from its utcoffset, whole seconds). */
int oxpg_encode_time(OxpgState *st, OxpgWriteBuffer *w, PyObject *v, int aware, int64_t offset_us);
/* timedelta -> interval (no months). */
int oxpg_encode_interval(OxpgWriteBuffer *w, PyObject *v);
/* uuid.UUID -> uuid. */
int oxpg_encode_uuid(OxpgState *st, OxpgWriteBuffer *w, PyObject *v);
/* dict, or an oxpg.types Json/Jsonb wrapper -> json text (jsonb: after its version
 * byte), serialized by the wrapper's dumps or the module's json.dumps. */
int oxpg_encode_json(OxpgState *st, OxpgWriteBuffer *w, PyObject *v, int jsonb);

/* Days since 0001-01-01 (ordinal 1) <-> civil date, proleptic Gregorian. */
void oxpg_ordinal_to_ymd(int64_t ordinal, int *year, int *month, int *day);
int64_t oxpg_ymd_to_ordinal(int year, int month, int day);

#endif
