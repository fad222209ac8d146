/* PGresult -> Python rows, one decoder per column resolved once per result (or once
 * per cached statement). */
#ifndef OXPG_RESULT_H
#define OXPG_RESULT_H

#include "oxpg/codecs.h"
#include "oxpg/typecache.h"

/* Values of columns that have no binary decoder, as text, fetched from the server
 * (row-major order over the non-NULL cells of those columns), split in chunks of
 * OXPG_TEXT_CHUNK rows. */
#define OXPG_TEXT_CHUNK 32767

typedef struct {
    PGresult **chunks;
    int count;
} OxpgTextForms;

typedef struct {
    Oid type;
    int format;
    oxpg_decode_fn decode; /* NULL: via says how (the client's types, text forms) */
    int via;               /* OxpgVia */
    const char *type_name;
    char own_type_name[64]; /* type_name of a type the catalog named */
    PyObject *name;  /* shared by every row */
    int in_timezone; /* a timestamptz: shown in the session's time zone */
} OxpgColumn;

/* How to decode the rows of one result shape. */
typedef struct {
    int count;
    int duplicate_names; /* 1 + index of a repeated column name, 0 when none */
    int needs_text;      /* some column has no binary decoder */
    long row_base;       /* rows of the statement before this result's first (error messages) */
    /* The session's TimeZone for timestamptz values, borrowed and set before each
     * decode; NULL keeps them in UTC (the decoder's own result). */
    PyObject *timezone;
    /* The client's type knowledge (borrowed; the client outlives its columns), and
     * its generation when the columns were resolved. NULL: static table only. */
    OxpgTypeCache *types;
    unsigned generation;
    OxpgColumn *columns;
} OxpgColumns;

/* Describe res's columns into cols (freed with oxpg_columns_clear); types may be NULL. */
int oxpg_columns_init(OxpgColumns *cols, const PGresult *res, OxpgTypeCache *types);
void oxpg_columns_clear(OxpgColumns *cols);
/* Nonzero when cols still describes res (same count, types and formats) and the
 * client's type knowledge has not changed since. */
int oxpg_columns_match(const OxpgColumns *cols, const PGresult *res, const OxpgTypeCache *types);
/* Nonzero when column c's values come from the text forms. */
int oxpg_column_needs_text(const OxpgColumns *cols, int c);

/* list[dict] (column order kept) or list[tuple]; text may be NULL when no column needs it.
 * A row that cannot be decoded fails the whole list, unless keep_errors: then its
 * DataError (naming row cols->row_base + its index + 1) takes its place and the rows
 * after it are decoded too, so a caller handing rows out in order (a server-side
 * cursor) gives every row before it, raises, and goes on with the next. */
PyObject *oxpg_result_rows(OxpgState *st, const PGresult *res, const OxpgColumns *cols, const OxpgTextForms *text,
                           int as_dicts, int keep_errors);

/* A text-format result read where query() reads binary and fetches the text forms of
 * the columns without a binary decoder (stream(), pipeline()): those columns are the
 * server's output text here too; every other column must decode from text to the
 * value its binary form gives, or DataError (naming who) refuses the result rather
 * than return something query() would not. */
int oxpg_columns_check_text_forms(OxpgState *st, const OxpgTypeCache *types, const OxpgColumns *cols,
                                   const char *who);

/* Row r of res as a dict or tuple (no text forms: the caller checked needs_text). */
PyObject *oxpg_result_row(OxpgState *st, const PGresult *res, const OxpgColumns *cols, int r, int as_dicts);

/* Affected row count of a command result (0 when the command reports none). */
PyObject *oxpg_result_rowcount(const PGresult *res);

#endif
