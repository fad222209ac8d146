/* What params.c and params_array.c share: how a value is classified (the PostgreSQL
 * type it goes as) and written. Private to the two. */
#ifndef OXPG_PARAMS_PARTS_H
#define OXPG_PARAMS_PARTS_H

#include "oxpg/params.h"

#define FORMAT_TEXT 0
#define FORMAT_BINARY 1
#define MAXDIM 6 /* PostgreSQL's MAXDIM */

/* What a value goes as. Lists and tuples are K_ARRAY at the top level and
 * dimensions inside an array. */
typedef enum {
    K_NULL, /* None: no type of its own */
    K_BOOL,
    K_INT, /* oid says int4, int8 or numeric */
    K_FLOAT,
    K_NUMERIC,
    K_TEXT,
    K_BYTEA,
    K_DATE,
    K_TIMESTAMP,
    K_TIMESTAMPTZ,
    K_TIME,
    K_TIMETZ,
    K_INTERVAL,
    K_UUID,
    K_JSON,
    K_JSONB,
    K_INET,
    K_CIDR,
    K_RANGE, /* range says which */
    K_ARRAY,
} Kind;

/* A Range's type, from its bounds. R_UNTYPED (empty, or both bounds infinite) fits
 * every range type; R_INT goes as text so the context picks int4range, int8range or
 * numrange (PostgreSQL has no casts between range types); R_OTHER (float, str, ...
 * bounds) goes as PostgreSQL's text form for a user-defined range type. */
typedef enum { R_UNTYPED, R_INT, R_NUM, R_DATE, R_TS, R_TSTZ, R_OTHER } RangeKind;

typedef struct {
    Kind kind;
    Oid int_oid;     /* K_INT: the narrowest of int4, int8, numeric that holds it */
    RangeKind range; /* K_RANGE */
} Type;

/* DataError "parameter $N: what"; returns -1. */
int oxpg_params_error(OxpgState *st, int i, const char *what);
/* Parameter i's value is everything put since start: record it. */
int oxpg_params_finish(OxpgState *st, OxpgParams *p, int i, size_t start, Oid type, int format);
/* The same for a text-format value (NUL-terminated for libpq). */
int oxpg_params_finish_text(OxpgState *st, OxpgParams *p, int i, size_t start);
int oxpg_params_is_sequence(PyObject *v);
/* The Type v goes as (container: the list it is an element of, for messages). */
int oxpg_params_classify(OxpgState *st, int i, PyObject *v, Type *t, PyObject *container);
/* t's OID, or its array type's. */
Oid oxpg_params_type_oid(const Type *t, int array);
/* Append v's binary form as t. */
int oxpg_params_write_value(OxpgState *st, OxpgParams *p, int i, PyObject *v, const Type *t);
/* Append the UTF-8 of str(v); as_element quotes it for an array literal. */
int oxpg_params_write_str_form(OxpgState *st, OxpgParams *p, int i, PyObject *v, int as_element);
/* A list or tuple as parameter i: a binary array of its elements' common type, or
 * an array literal when they go as text (params_array.c). */
int oxpg_params_encode_array(OxpgState *st, OxpgParams *p, int i, PyObject *v);

#endif
