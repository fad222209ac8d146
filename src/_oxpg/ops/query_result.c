/* The query operation's result steps: catalog lookups of the result's types (and of
 * a describe's), the text forms of values without a binary decoder, and decoding,
 * with one more lookup when decoding meets a nested type nobody asked about. */
#include "query_steps.h"
#include "oxpg/compat.h"
#include "oxpg/errors.h"
#include "oxpg/stmtcache.h"
#include "oxpg/typecache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- catalog lookups ------------------------------------------------------------ */

/* Nesting deeper than a few levels of distinct user types is rare; what is left
 * unanswered decodes as text or raises DataError, never wrongly. */
#define LOOKUP_ROUNDS 8

static int lookup_round_ended(OxpgClient *self, OxpgQueryOp *q);

static int send_lookup_round(OxpgClient *self, OxpgQueryOp *q)
{
    /* '{4294967295,...}': at most 11 bytes per OID. */
    char *literal = PyMem_Malloc((size_t)q->n_ask * 11 + 3);
    if (literal == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    char *out = literal;
    *out++ = '{';
    for (int k = 0; k < q->n_ask; k++)
        out += sprintf(out, k == 0 ? "%u" : ",%u", (unsigned)q->ask[k]);
    strcpy(out, "}");
    const char *values[1] = {literal};
    int rc = oxpg_query_send_params(self, q, oxpg_types_catalog_sql, 1, NULL, values, NULL, NULL, 0, lookup_round_ended);
    PyMem_Free(literal);
    return rc;
}

/* Ask the catalog about oids (and, round by round, the types they refer to: element,
 * base and field types), storing the answers in the client's type cache; then
 * after runs, with q->lookup_failed set (and an exception) when a round failed. */
static int look_up(OxpgClient *self, OxpgQueryOp *q, const Oid *oids, int n, oxpg_query_next_fn after)
{
    q->after_lookup = after;
    q->lookup_failed = 0;
    q->lookup_round = 0;
    PyMem_Free(q->ask);
    q->ask = NULL;
    q->n_ask = 0;
    if (n == 0)
        return after(self, q);
    q->ask = PyMem_Malloc(sizeof(Oid) * (size_t)n);
    if (q->ask == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    memcpy(q->ask, oids, sizeof(Oid) * (size_t)n);
    q->n_ask = n;
    return send_lookup_round(self, q);
}

static int lookup_round_ended(OxpgClient *self, OxpgQueryOp *q)
{
    PGresult *answer = oxpg_query_take_result(self, q);
    Oid *next = NULL;
    int n_next = 0;
    int rc = answer != NULL ? oxpg_types_load(self->st, &self->types, answer, q->ask, q->n_ask, &next, &n_next) : -1;
    PQclear(answer);
    PyMem_Free(q->ask);
    q->ask = next;
    q->n_ask = n_next;
    if (rc < 0) {
        q->lookup_failed = 1;
        return q->after_lookup(self, q);
    }
    if (q->n_ask > 0 && ++q->lookup_round < LOOKUP_ROUNDS)
        return send_lookup_round(self, q);
    return q->after_lookup(self, q);
}

/* Look up the types of res's columns this client does not know yet. any_format: a
 * Describe result, whose columns all say text format. */
int oxpg_query_look_up_columns(OxpgClient *self, OxpgQueryOp *q, const PGresult *res, int any_format,
                           oxpg_query_next_fn after)
{
    int ncols = PQnfields(res);
    Oid small[16];
    Oid *unknown = ncols <= 16 ? small : PyMem_Malloc(sizeof(Oid) * (size_t)ncols);
    if (unknown == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    int n = 0;
    for (int c = 0; c < ncols; c++) {
        Oid oid = PQftype(res, c);
        if ((!any_format && PQfformat(res, c) != 1) || oxpg_types_settled(&self->types, oid))
            continue;
        int seen = 0;
        for (int k = 0; k < n && !seen; k++)
            seen = unknown[k] == oid;
        if (!seen)
            unknown[n++] = oid;
    }
    int rc = look_up(self, q, unknown, n, after);
    if (unknown != small)
        PyMem_Free(unknown);
    return rc;
}

static int user_types_listed(OxpgClient *self, OxpgQueryOp *q)
{
    PGresult *listed = oxpg_query_take_result(self, q);
    if (listed == NULL) {
        q->lookup_failed = 1;
        return q->after_lookup(self, q);
    }
    int n = PQntuples(listed), n_unknown = 0;
    Oid *unknown = PyMem_Malloc(sizeof(Oid) * (size_t)(n > 0 ? n : 1));
    if (unknown == NULL) {
        PQclear(listed);
        PyErr_NoMemory();
        return -1;
    }
    for (int r = 0; r < n; r++) {
        Oid oid = PQgetisnull(listed, r, 0) ? 0 : (Oid)strtoul(PQgetvalue(listed, r, 0), NULL, 10);
        if (oid != 0 && !oxpg_types_settled(&self->types, oid))
            unknown[n_unknown++] = oid;
    }
    PQclear(listed);
    self->types.user_types_known = 1;
    int rc = look_up(self, q, unknown, n_unknown, q->after_lookup);
    PyMem_Free(unknown);
    return rc;
}

int oxpg_query_learn_user_types(OxpgClient *self, OxpgQueryOp *q, oxpg_query_next_fn after)
{
    q->after_lookup = after;
    q->lookup_failed = 0;
    if (self->types.user_types_known)
        return after(self, q);
    return oxpg_query_send_params(self, q, oxpg_types_user_types_sql, 0, NULL, NULL, NULL, NULL, 0,
                                  user_types_listed);
}

int oxpg_client_describe_text_forms(OxpgClient *self, const PGresult *res)
{
    for (int c = 0; c < PQnfields(res); c++) {
        oxpg_decode_fn fast = NULL;
        OxpgVia via = oxpg_types_column(&self->types, PQftype(res, c), &fast);
        if (via == OXPG_VIA_TEXT || via == OXPG_VIA_TEXT_USER)
            return 1;
    }
    return 0;
}

int oxpg_client_describe_needs_text(OxpgClient *self, const PGresult *res)
{
    for (int c = 0; c < PQnfields(res); c++) {
        if (oxpg_types_need_text_results(&self->types, PQftype(res, c)))
            return 1;
    }
    return 0;
}

static int decode(OxpgClient *self, OxpgQueryOp *q);

int oxpg_query_types_looked_up(OxpgClient *self, OxpgQueryOp *q)
{
    return q->lookup_failed ? -1 : decode(self, q);
}

/* Describe res's columns, reusing the cached statement's description when it still
 * fits. Returns the columns to decode with (stmt's or q->local), NULL on error. */
static OxpgColumns *columns_for(OxpgClient *self, OxpgQueryOp *q)
{
    OxpgStatement *stmt = q->stmt;
    if (stmt != NULL && oxpg_columns_match(&stmt->columns, q->res, &self->types))
        return &stmt->columns;
    if (oxpg_columns_init(&q->local, q->res, &self->types) < 0)
        return NULL;
    if (stmt == NULL || stmt->name[0] == '\0')
        return &q->local;
    /* Prepared statements keep their description: later results skip this work. */
    oxpg_columns_clear(&stmt->columns);
    stmt->columns = q->local;
    q->local.columns = NULL;
    q->local.count = 0;
    return &stmt->columns;
}

void oxpg_query_free_text_forms(OxpgQueryOp *q)
{
    for (int i = 0; i < q->text.count; i++)
        PQclear(q->text.chunks[i]);
    PyMem_Free(q->text.chunks);
    q->text.chunks = NULL;
    q->text.count = 0;
    PyMem_Free(q->text_types);
    PyMem_Free((void *)q->text_values);
    PyMem_Free(q->text_lengths);
    PyMem_Free(q->text_formats);
    PyMem_Free(q->text_sql);
    q->text_types = NULL;
    q->text_values = NULL;
    q->text_lengths = NULL;
    q->text_formats = NULL;
    q->text_sql = NULL;
}

static int send_text_chunk(OxpgClient *self, OxpgQueryOp *q);

static int text_chunk_ended(OxpgClient *self, OxpgQueryOp *q)
{
    PGresult *chunk = oxpg_query_take_result(self, q);
    if (chunk == NULL) {
        /* Some types refuse binary input (an extension's): say what to do about it. */
        if (self->conn != NULL && PyErr_ExceptionMatches(self->st->DatabaseError))
            oxpg_reraise_as(self->st->DataError, "a column's type has no binary decoder in oxpg and the server "
                                                 "could not turn its value into text; cast that column to text "
                                                 "in SQL");
        return -1;
    }
    q->text.chunks[q->text.count++] = chunk;
    return send_text_chunk(self, q);
}

/* Values of types oxpg has no binary decoder for (extensions, user types) are sent
 * back to the server in their binary form and returned as text, one "VALUES
 * (format('%s', $1)), ..." per chunk: the type's own receive and output functions do
 * the conversion, so any type comes back usable. format() applies the output
 * function (a ::text cast may differ: inet shows its mask), schema-qualified so a
 * search_path cannot substitute another function. When every value is fetched, the
 * rows are decoded. */
static int send_text_chunk(OxpgClient *self, OxpgQueryOp *q)
{
    const PGresult *res = q->res;
    const OxpgColumns *cols = q->cols;
    int nrows = PQntuples(res), ncols = PQnfields(res);
    int n = 0;
    for (; q->text_row < nrows && n < OXPG_TEXT_CHUNK; q->text_row++, q->text_col = 0) {
        for (; q->text_col < ncols && n < OXPG_TEXT_CHUNK; q->text_col++) {
            int r = q->text_row, c = q->text_col;
            if (!oxpg_column_needs_text(cols, c) || PQgetisnull(res, r, c))
                continue;
            q->text_types[n] = PQftype(res, c);
            q->text_values[n] = PQgetvalue(res, r, c);
            q->text_lengths[n] = PQgetlength(res, r, c);
            q->text_formats[n] = 1;
            n++;
        }
        if (q->text_col < ncols)
            break; /* the chunk is full inside this row */
    }
    if (n == 0)
        return decode(self, q);
    char *out = q->text_sql + sprintf(q->text_sql, "VALUES ");
    for (int i = 0; i < n; i++)
        out += sprintf(out, i == 0 ? "(pg_catalog.format('%%s',$%d))" : ",(pg_catalog.format('%%s',$%d))", i + 1);
    return oxpg_query_send_params(self, q, q->text_sql, n, q->text_types, q->text_values, q->text_lengths, q->text_formats, 0,
                       text_chunk_ended);
}

static int fetch_text_forms(OxpgClient *self, OxpgQueryOp *q)
{
    const PGresult *res = q->res;
    int nrows = PQntuples(res), ncols = PQnfields(res);
    long total = 0;
    for (int c = 0; c < ncols; c++) {
        for (int r = 0; oxpg_column_needs_text(q->cols, c) && r < nrows; r++)
            total += !PQgetisnull(res, r, c);
    }
    int nchunks = (int)((total + OXPG_TEXT_CHUNK - 1) / OXPG_TEXT_CHUNK);
    q->text.chunks = PyMem_Calloc((size_t)(nchunks > 0 ? nchunks : 1), sizeof(PGresult *));
    q->text_types = PyMem_Calloc(OXPG_TEXT_CHUNK, sizeof(Oid));
    q->text_values = PyMem_Calloc(OXPG_TEXT_CHUNK, sizeof(char *));
    q->text_lengths = PyMem_Calloc(OXPG_TEXT_CHUNK, sizeof(int));
    q->text_formats = PyMem_Calloc(OXPG_TEXT_CHUNK, sizeof(int));
    /* At most 40 bytes per ",(pg_catalog.format('%s',$32767))" plus the VALUES keyword. */
    q->text_sql = PyMem_Malloc((size_t)OXPG_TEXT_CHUNK * 40 + 16);
    if (!q->text.chunks || !q->text_types || !q->text_values || !q->text_lengths || !q->text_formats ||
        !q->text_sql) {
        PyErr_NoMemory();
        return -1;
    }
    q->text_row = q->text_col = 0;
    return send_text_chunk(self, q);
}

static int missing_looked_up(OxpgClient *self, OxpgQueryOp *q);

/* Decode the rows (once their text forms are fetched). */
static int decode(OxpgClient *self, OxpgQueryOp *q)
{
    OxpgState *st = self->st;
    if (q->cols == NULL && (q->cols = columns_for(self, q)) == NULL)
        return -1;
    if (q->cols->needs_text && q->text.chunks == NULL)
        return fetch_text_forms(self, q);
    OxpgColumns *cols = q->cols;
    cols->timezone = oxpg_client_timezone(self);
    cols->row_base = q->row_base; /* set on every run: cached columns are shared */
    self->types.missing = 0;
    int cursor = q->mode == OXPG_QUERY_CURSOR;
    q->out = oxpg_result_rows(st, q->res, cols, &q->text, q->mode != OXPG_QUERY_TUPLES, cursor);
    /* A record field (or array element) of a type nobody asked the catalog about:
     * an anonymous record's field types are only in its data. Look it up and decode
     * again; each round learns at least one type. With the errors kept in place,
     * out holds the rows that met it. */
    Oid missing = self->types.missing;
    if ((q->out != NULL && !cursor) || missing == 0 || q->attempt == LOOKUP_ROUNDS || self->conn == NULL)
        return q->out != NULL ? 1 : -1;
    Py_CLEAR(q->pending);
    q->pending = oxpg_err_take();
    q->missing = missing;
    return look_up(self, q, &missing, 1, missing_looked_up);
}

static int missing_looked_up(OxpgClient *self, OxpgQueryOp *q)
{
    PyObject *pending = q->pending;
    q->pending = NULL;
    if (q->lookup_failed) {
        Py_XDECREF(pending);
        Py_CLEAR(q->out);
        return -1;
    }
    /* The catalog did not settle it: decoding again would meet it again. */
    if (!oxpg_types_settled(&self->types, q->missing)) {
        oxpg_err_restore(pending);
        return q->out != NULL ? 1 : -1;
    }
    Py_XDECREF(pending);
    Py_CLEAR(q->out);
    oxpg_query_free_text_forms(q);
    oxpg_columns_clear(&q->local);
    q->cols = NULL;
    q->attempt++;
    return decode(self, q);
}

