/* The query operation (include/oxpg/query_op.h). Each round trip is sent, read by
 * the read op, and handed to the next function, which sends the next round trip or
 * finishes. The statement's path through the statement cache:
 *
 *   describe (first run on this client: the result format is chosen before anything
 *   runs) -> unnamed run (below the prepare threshold)
 *         -> close evicted statements, prepare (+ describe inferred parameter types)
 *            -> run by name -> (server lost it, or DDL changed it) -> unnamed run
 *   -> catalog lookups of the result's types -> text forms -> decode
 *      (-> lookup of a nested type met while decoding -> decode again)
 * The result steps (lookups, text forms, decoding) are in ops/query_result.c.
 */
#include "oxpg/query_op.h"
#include "query_steps.h"
#include "oxpg/compat.h"
#include "oxpg/conn.h"
#include "oxpg/errors.h"
#include "oxpg/pg_oids.h"
#include "oxpg/stmtcache.h"
#include "oxpg/typecache.h"
#include "oxpg/wait.h"

#include <stdlib.h>

/* ---- round trips ------------------------------------------------------------- */

static OxpgReadStep keep_last(OxpgClient *self, OxpgCall *call, PGresult *r, void *ctx)
{
    (void)self;
    OxpgQueryOp *q = ctx;
    if (r == NULL)
        return OXPG_READ_STOP;
    if (oxpg_result_is_error(r)) {
        oxpg_call_keep_error(call, r);
    } else {
        PQclear(q->last);
        q->last = r;
    }
    return OXPG_READ_MORE;
}

/* Describing, in pipeline mode: Parse's result, then Describe's (kept), then the
 * sync; the first error explains the rest. */
static OxpgReadStep keep_description(OxpgClient *self, OxpgCall *call, PGresult *r, void *ctx)
{
    (void)self;
    OxpgQueryOp *q = ctx;
    if (r == NULL) /* in the caller's pipeline, Describe's end is the end */
        return q->in_pipeline && ++q->ends_seen == 2 ? OXPG_READ_STOP : OXPG_READ_MORE;
    ExecStatusType status = PQresultStatus(r);
    if (status == PGRES_PIPELINE_SYNC) {
        PQclear(r);
        return OXPG_READ_STOP;
    }
    if (status == PGRES_PIPELINE_ABORTED) {
        q->aborted = 1;
        PQclear(r);
    } else if (oxpg_result_is_error(r)) {
        oxpg_call_keep_error(call, r);
    } else if (status == PGRES_COMMAND_OK && q->results_seen++ == 1) {
        PQclear(q->last);
        q->last = r;
    } else {
        PQclear(r);
    }
    return OXPG_READ_MORE;
}

/* What was just sent is read next, then next runs. sent: the libpq send call's
 * result (0: it failed, and the op fails with why). */
static int expect(OxpgClient *self, OxpgQueryOp *q, int sent, oxpg_result_fn consume, oxpg_query_next_fn next)
{
    /* In the caller's pipeline the server sends results only when asked to. */
    if (sent && q->in_pipeline)
        sent = PQsendFlushRequest(self->conn);
    if (!sent)
        return oxpg_conn_send_failed(self, "could not send the query");
    if (q->last != NULL) {
        PQclear(q->last);
        q->last = NULL;
    }
    q->results_seen = 0;
    q->ends_seen = 0;
    q->call->copy_refused = 0;
    oxpg_read_op_clear(&q->read);
    oxpg_read_op_init(&q->read, q->call, consume, q);
    q->next = next;
    return 0;
}

/* The round trip's outcome: its last result, or NULL with its error raised. */
PGresult *oxpg_query_take_result(OxpgClient *self, OxpgQueryOp *q)
{
    OxpgState *st = self->st;
    OxpgCall *call = q->call;
    PGresult *last = q->last;
    q->last = NULL;
    /* Our own refusal explains a COPY FROM STDIN's error (the server reports the
     * CopyFail we sent as 57014), so it goes first. */
    if (call->copy_refused && self->conn != NULL)
        PyErr_SetString(st->NotSupportedError, "COPY is not supported by query()/execute() yet");
    else if (call->error != NULL)
        oxpg_conn_raise_error(self, call);
    else if (last == NULL || PQresultStatus(last) == PGRES_EMPTY_QUERY)
        PyErr_SetString(st->ProgrammingError, "empty query: the statement has no SQL command");
    else
        return last;
    PQclear(last);
    oxpg_call_clear(call);
    return NULL;
}

int oxpg_query_send_params(OxpgClient *self, OxpgQueryOp *q, const char *sql, int nparams, const Oid *types,
                       const char *const *values, const int *lengths, const int *formats, int result_format,
                       oxpg_query_next_fn next)
{
    PGconn *conn = self->conn;
    int sent;
    Py_BEGIN_ALLOW_THREADS
    sent = PQsendQueryParams(conn, sql, nparams, types, values, lengths, formats, result_format);
    Py_END_ALLOW_THREADS
    return expect(self, q, sent, keep_last, next);
}

static int send_simple(OxpgClient *self, OxpgQueryOp *q, const char *sql, oxpg_query_next_fn next)
{
    PGconn *conn = self->conn;
    int sent;
    Py_BEGIN_ALLOW_THREADS
    sent = PQsendQuery(conn, sql);
    Py_END_ALLOW_THREADS
    return expect(self, q, sent, keep_last, next);
}

/* ---- the pending error -------------------------------------------------------- */

/* The pending oxpg exception's SQLSTATE and the start of its message, copied, the
 * exception left in place. Returns 0 when there is none (or it has no SQLSTATE). */
static int pending_error(OxpgState *st, char sqlstate[6], char *message, size_t cap)
{
    if (!PyErr_Occurred() || !PyErr_ExceptionMatches(st->DatabaseError))
        return 0;
    PyObject *exc = oxpg_err_take();
    PyObject *code = PyObject_GetAttrString(exc, "sqlstate");
    PyObject *text = PyObject_Str(exc);
    const char *code_utf8 = code != NULL && PyUnicode_Check(code) ? PyUnicode_AsUTF8(code) : NULL;
    const char *text_utf8 = text != NULL ? PyUnicode_AsUTF8(text) : NULL;
    int found = code_utf8 != NULL && strlen(code_utf8) == 5 && text_utf8 != NULL;
    if (found) {
        memcpy(sqlstate, code_utf8, 6);
        PyOS_snprintf(message, cap, "%s", text_utf8);
    }
    PyErr_Clear();
    Py_XDECREF(code);
    Py_XDECREF(text);
    oxpg_err_restore(exc);
    return found;
}

/* The server refuses binary output for a column type without a send function
 * (aclitem) at the statement's first row: after it started running, with whatever
 * it did so far done (a nextval, an advisory lock, a FETCH's move). So the format is
 * chosen before the statement runs (describe) and such a failure is never run
 * again: it only happens when the description went stale (a table changed by
 * another session) or could not tell (an anonymous record's fields), and the error
 * then says so. The statement is described afresh on its next run. */
static void explain_no_binary_output(OxpgClient *self, OxpgQueryOp *q)
{
    char code[6], message[128];
    if (q->format != 1 || self->conn == NULL || !pending_error(self->st, code, message, sizeof(message)) ||
        strcmp(code, "42883") != 0 || strstr(message, "no binary output function") == NULL)
        return;
    if (q->stmt != NULL)
        q->stmt->described = 0;
    PyObject *exc = oxpg_err_take();
    PyObject *r = PyObject_CallMethod(exc, "add_note", "s",
                                      "oxpg asked for binary results because the statement's columns had binary "
                                      "output when it was described (an anonymous record's fields are not); it "
                                      "was not run again, since it may have done something already. Cast the "
                                      "column to text; if a table changed, running it again describes it afresh.");
    Py_XDECREF(r);
    PyErr_Clear();
    oxpg_err_restore(exc);
}

/* ---- the statement cache's rules ----------------------------------------------- */

/* Parameters sent with OID 0 (str, NULL, some ranges) got their types from the
 * context when the statement was prepared; a table recreated with other column
 * types since then makes them wrong (42804), where the unprepared statement would
 * infer afresh. */
static int has_inferred_types(const OxpgStatement *stmt)
{
    for (int i = 0; i < stmt->nparams; i++) {
        if (stmt->param_types[i] == 0)
            return 1;
    }
    return 0;
}

/* True when the pending exception says the server no longer has our prepared
 * statement as it was: its result type changed under DDL (0A000, "cached plan must
 * not change result type") or it is gone (26000: DEALLOCATE behind our back, or a
 * pooler moved us to another server session). */
static int statement_invalidated(OxpgState *st, const OxpgStatement *stmt, int *gone)
{
    char code[6], message[128];
    *gone = 0;
    if (!pending_error(st, code, message, sizeof(message)))
        return 0;
    if (strcmp(code, "26000") == 0)
        return *gone = 1;
    if (strcmp(code, "0A000") == 0)
        return strstr(message, "cached plan must not change result type") != NULL;
    /* An enum or domain dropped and created anew: the statement names the old OID,
     * which no unprepared run would. */
    if (strcmp(code, "XX000") == 0)
        return strstr(message, "cache lookup failed for type") != NULL;
    /* A type mismatch (42xxx, found while the statement is analysed or planned again,
     * before it runs) may mean the inferred types went stale: worth one unprepared
     * try. Not a data error (22xxx): that may come from a statement already running. */
    return has_inferred_types(stmt) && strncmp(code, "42", 2) == 0;
}

/* A str goes untyped (OID 0) and takes the type the server infers from the
 * statement's context, which a prepared statement keeps. DDL since then, by any
 * session, can change the context without any message saying so. Inferred as text
 * or varchar, a stale type cannot change a value: no assignment or implicit cast
 * from them to another type family exists, so a changed context makes the
 * statement fail (42804, 42883) and the cache runs it afresh. Inferred as anything
 * else (numeric, timestamptz, an enum), a stale type would convert silently (2.5
 * rounded into a column recreated as int): such values always get a fresh Parse.
 * docs/decisions.md has the reasoning and the residual case. */
static int infers_values(const OxpgParams *p)
{
    for (int i = 0; i < p->count; i++) {
        if (p->types[i] == 0 && p->values[i] != NULL)
            return 1;
    }
    return 0;
}

/* Drop q->stmt from the cache, keeping the pending exception. */
static void forget_statement(OxpgClient *self, OxpgQueryOp *q, int server_dropped_it)
{
    PyObject *pending = oxpg_err_take();
    if (server_dropped_it)
        q->stmt->name[0] = '\0'; /* nothing to DEALLOCATE */
    oxpg_cache_forget(&self->cache, q->stmt);
    q->stmt = NULL;
    PyErr_Clear();
    oxpg_err_restore(pending);
}

/* What to do when the server lost (26000) or never had (42P05: the name was taken)
 * a statement we prepared. */
#define POOLER_HINT                                                                                              \
    "behind a transaction-mode pooler such as PgBouncer, which moves a client between server sessions, "     \
    "connect with statement_cache_size=0"

/* Replace the pending error with InvalidCachedStatementError: the same diagnostics
 * (callers that retry by SQLSTATE still see 0A000, 26000, ...), a message that says
 * what to do. lost: the server lost the statement rather than DDL changing it. */
static void raise_invalid_cached(OxpgState *st, int lost)
{
    PyObject *cause = oxpg_err_take();
    if (cause == NULL)
        return;
    PyObject *text = PyObject_Str(cause);
    PyObject *message =
        text == NULL ? NULL
        : lost       ? PyUnicode_FromFormat("%U: the server session does not hold this statement as oxpg's cache "
                                            "prepared it (%s); the transaction is now aborted: roll back and run "
                                            "it again",
                                            text, POOLER_HINT)
                     : PyUnicode_FromFormat("%U: a cached prepared statement became invalid inside a transaction, "
                                            "which is now aborted; roll back and run it again (oxpg dropped the "
                                            "statement from its cache)",
                                            text);
    PyObject *exc = message != NULL ? PyObject_CallOneArg(st->InvalidCachedStatementError, message) : NULL;
    PyObject *attrs = PyObject_GetAttrString(cause, "__dict__");
    PyObject *mine = exc != NULL ? PyObject_GetAttrString(exc, "__dict__") : NULL;
    if (attrs != NULL && mine != NULL && PyDict_Check(mine))
        PyDict_Update(mine, attrs);
    Py_XDECREF(text);
    Py_XDECREF(message);
    Py_XDECREF(attrs);
    Py_XDECREF(mine);
    if (exc == NULL) {
        PyErr_Clear();
        oxpg_err_restore(cause);
        return;
    }
    PyErr_Clear();
    PyException_SetCause(exc, Py_NewRef(cause));
    PyException_SetContext(exc, cause); /* steals cause */
    oxpg_err_restore(exc);
}

/* Log, once per client, that the server lost a statement of ours (handled: it ran
 * unprepared) and what to do when that keeps happening. The pending exception, if
 * any, survives; a failing log handler is not the caller's business. */
static void warn_lost(OxpgClient *self, const char *sqlstate)
{
    if (self->cache.warned_lost)
        return;
    self->cache.warned_lost = 1;
    PyObject *pending = oxpg_err_take();
    PyObject *logging = PyImport_ImportModule("logging");
    PyObject *logger = logging != NULL ? PyObject_CallMethod(logging, "getLogger", "s", "oxpg") : NULL;
    PyObject *r = logger != NULL ? PyObject_CallMethod(logger, "warning", "ss",
                                                       "a prepared statement of oxpg's cache was missing from the "
                                                       "server session, or its name was taken there (SQLSTATE %s); "
                                                       "oxpg ran the statement unprepared. If this repeats: "
                                                       POOLER_HINT,
                                                       sqlstate)
                                 : NULL;
    Py_XDECREF(r);
    Py_XDECREF(logger);
    Py_XDECREF(logging);
    PyErr_Clear();
    oxpg_err_restore(pending);
}

/* True when the pending error is 42P05: a statement of that name already exists in
 * the server session, and it is not ours. */
static int name_taken(OxpgState *st)
{
    char code[6], message[8];
    return pending_error(st, code, message, sizeof(message)) && strcmp(code, "42P05") == 0;
}

/* ---- describing ------------------------------------------------------------------ */

static int described(OxpgClient *self, OxpgQueryOp *q);
static int single_row_reset(OxpgClient *self, OxpgQueryOp *q);

/* Parse sql as the unnamed statement and describe it in one round trip: pipeline
 * mode lets both go before the sync. */
static int send_describe(OxpgClient *self, OxpgQueryOp *q, oxpg_query_next_fn after)
{
    PGconn *conn = self->conn;
    q->in_pipeline = PQpipelineStatus(conn) != PQ_PIPELINE_OFF;
    q->after_lookup = after;
    if (self->single_row_used && !q->in_pipeline) {
        /* The stream's single-row flag would split the pipeline's results; any query
         * outside pipeline mode resets it, and an empty one costs the server nothing. */
        return expect(self, q, PQsendQuery(conn, ""), oxpg_conn_discard_result, single_row_reset);
    }
    const OxpgParams *p = q->params;
    int sent;
    Py_BEGIN_ALLOW_THREADS
    sent = (q->in_pipeline || PQenterPipelineMode(conn) == 1) &&
           PQsendPrepare(conn, "", q->sql, p->count, p->types) == 1 && PQsendDescribePrepared(conn, "") == 1;
    Py_END_ALLOW_THREADS
    if (sent && !q->in_pipeline && oxpg_conn_pipeline_sync(self) < 0)
        return -1;
    return expect(self, q, sent, keep_description, described);
}

static int single_row_reset(OxpgClient *self, OxpgQueryOp *q)
{
    if (q->call->error != NULL) {
        oxpg_conn_raise_error(self, q->call);
        oxpg_call_clear(q->call);
        return -1;
    }
    self->single_row_used = 0;
    return send_describe(self, q, q->after_lookup);
}

static int described(OxpgClient *self, OxpgQueryOp *q)
{
    if (!q->in_pipeline && PQexitPipelineMode(self->conn) != 1) {
        PyErr_Format(self->st->InterfaceError, "could not leave pipeline mode after describing a statement: %s",
                     PQerrorMessage(self->conn));
        return -1;
    }
    OxpgCall *call = q->call;
    if (call->error != NULL && q->in_pipeline) {
        /* The pipeline reports it as the statement's own outcome. */
        q->res = call->error;
        call->error = NULL;
        q->describe_failed = 1;
        return 1;
    }
    if (call->error != NULL) {
        oxpg_conn_raise_error(self, call);
        oxpg_call_clear(call);
        return -1;
    }
    if (q->aborted && q->in_pipeline)
        return 1; /* nothing described: the statement will be skipped too */
    if (q->last == NULL) {
        PyErr_SetString(self->st->InterfaceError, "the server sent no description of the statement");
        return -1;
    }
    PQclear(q->res);
    q->res = q->last;
    q->last = NULL;
    return oxpg_query_look_up_columns(self, q, q->res, 1, q->after_lookup);
}

static int description_complete(OxpgClient *self, OxpgQueryOp *q)
{
    (void)self;
    return q->lookup_failed ? -1 : 1;
}

/* A described statement whose rows will be read without stopping (a stream, a
 * pipeline) cannot look up the field types of an anonymous record as query() does
 * when it meets them: every user type is looked up now instead (once per client). */
static int description_looked_up(OxpgClient *self, OxpgQueryOp *q)
{
    if (q->lookup_failed)
        return -1;
    for (int c = 0; q->res != NULL && c < PQnfields(q->res); c++) {
        Oid oid = PQftype(q->res, c);
        if (oid == OXPG_RECORDOID || oid == OXPG_RECORDARRAYOID)
            return oxpg_query_learn_user_types(self, q, description_complete);
    }
    return 1;
}

/* ---- running the statement ---------------------------------------------------------- */

static int plan_run(OxpgClient *self, OxpgQueryOp *q);
static int ran_unnamed(OxpgClient *self, OxpgQueryOp *q);
static int ran_by_name(OxpgClient *self, OxpgQueryOp *q);
static int evicted_closed(OxpgClient *self, OxpgQueryOp *q);
static int evicted_rolled_back(OxpgClient *self, OxpgQueryOp *q);
static int prepare_named(OxpgClient *self, OxpgQueryOp *q);
static int prepared(OxpgClient *self, OxpgQueryOp *q);
static int inferred_described(OxpgClient *self, OxpgQueryOp *q);
static int statement_ended(OxpgClient *self, OxpgQueryOp *q, PGresult *res);

static int send_unnamed(OxpgClient *self, OxpgQueryOp *q)
{
    if (q->simple)
        return send_simple(self, q, q->sql, ran_unnamed);
    const OxpgParams *p = q->params;
    return oxpg_query_send_params(self, q, q->sql, p->count, p->types, p->values, p->lengths, p->formats, q->format,
                       ran_unnamed);
}

static int send_by_name(OxpgClient *self, OxpgQueryOp *q)
{
    PGconn *conn = self->conn;
    const OxpgParams *p = q->params;
    int sent;
    Py_BEGIN_ALLOW_THREADS
    sent = PQsendQueryPrepared(conn, q->stmt->name, p->count, p->values, p->lengths, p->formats, q->format);
    Py_END_ALLOW_THREADS
    return expect(self, q, sent, keep_last, ran_by_name);
}

static int format_known(OxpgClient *self, OxpgQueryOp *q)
{
    if (q->lookup_failed)
        return -1;
    q->stmt->text_results = (char)oxpg_client_describe_needs_text(self, q->res);
    q->stmt->text_forms = (char)oxpg_client_describe_text_forms(self, q->res);
    q->stmt->described = 1;
    PQclear(q->res);
    q->res = NULL;
    q->format = q->stmt->text_results ? 0 : 1;
    return plan_run(self, q);
}

/* The statement's first round trip. Text for results nobody decodes (execute():
 * any column type comes as text) and for statements with a column that cannot come
 * as binary; binary otherwise. A statement this client has not run before is
 * described first (one more round trip, once per cache entry), since a column
 * without binary output fails only once the statement runs. */
static int begin(OxpgClient *self, OxpgQueryOp *q)
{
    if (q->mode == OXPG_QUERY_DESCRIBE)
        return send_describe(self, q, description_looked_up);
    int rows_wanted = q->mode != OXPG_QUERY_EXECUTE;
    if (q->stmt == NULL) {
        q->format = rows_wanted && !q->simple;
        return send_unnamed(self, q);
    }
    if (!rows_wanted) {
        q->format = 0;
        return plan_run(self, q);
    }
    if (!q->stmt->described)
        return send_describe(self, q, format_known);
    q->format = q->stmt->text_results ? 0 : 1;
    return plan_run(self, q);
}

#define CLOSE_SAVEPOINT "_oxpg_deallocate"

/* DEALLOCATE the statements the cache evicted, before preparing one more, so the
 * server never holds more than the cache's capacity. Their failures are not the
 * caller's business: the names are dropped and the server frees them with the
 * session. A statement may be gone already (a pooler moved us to another server
 * session, or DEALLOCATE behind our back): inside a transaction a savepoint keeps
 * that failure from aborting the caller's transaction. */
static int close_evicted(OxpgClient *self, OxpgQueryOp *q)
{
    OxpgStatementCache *cache = &self->cache;
    PGTransactionStatusType ts = PQtransactionStatus(self->conn);
    if (cache->n_to_close == 0 || (ts != PQTRANS_IDLE && ts != PQTRANS_INTRANS))
        return prepare_named(self, q);
    int in_transaction = ts == PQTRANS_INTRANS;
    static const char begin_sp[] = "SAVEPOINT " CLOSE_SAVEPOINT ";";
    static const char end_sp[] = "RELEASE SAVEPOINT " CLOSE_SAVEPOINT ";";
    size_t each = sizeof("DEALLOCATE ;") - 1 + OXPG_STATEMENT_NAME_SIZE;
    char *sql = PyMem_Malloc((size_t)cache->n_to_close * each + sizeof(begin_sp) + sizeof(end_sp));
    if (sql == NULL) {
        cache->n_to_close = 0; /* the server frees them with the session */
        return prepare_named(self, q);
    }
    char *out = sql;
    if (in_transaction)
        out += sprintf(out, "%s", begin_sp);
    for (int i = 0; i < cache->n_to_close; i++)
        out += sprintf(out, "DEALLOCATE %s;", cache->to_close[i]);
    if (in_transaction)
        sprintf(out, "%s", end_sp);
    cache->n_to_close = 0;
    q->evicting_in_transaction = in_transaction;
    int rc = send_simple(self, q, sql, evicted_closed);
    PyMem_Free(sql);
    return rc;
}

static int evicted_closed(OxpgClient *self, OxpgQueryOp *q)
{
    PGresult *r = oxpg_query_take_result(self, q);
    if (r == NULL && self->conn != NULL && q->evicting_in_transaction) {
        /* Prepared statements are not transactional: those deallocated stay so. */
        PyErr_Clear();
        return send_simple(self, q,
                           "ROLLBACK TO SAVEPOINT " CLOSE_SAVEPOINT ";" "RELEASE SAVEPOINT " CLOSE_SAVEPOINT,
                           evicted_rolled_back);
    }
    PQclear(r);
    return prepare_named(self, q);
}

static int evicted_rolled_back(OxpgClient *self, OxpgQueryOp *q)
{
    PQclear(oxpg_query_take_result(self, q));
    return prepare_named(self, q);
}

/* Evicted statements are closed (or given up): prepare q->stmt under a fresh name. */
static int prepare_named(OxpgClient *self, OxpgQueryOp *q)
{
    if (self->conn == NULL)
        return -1; /* the connection died: that is what to report */
    PyErr_Clear();
    OxpgStatement *stmt = q->stmt;
    oxpg_cache_name(&self->cache, stmt);
    PGconn *conn = self->conn;
    const OxpgParams *p = q->params;
    int sent;
    Py_BEGIN_ALLOW_THREADS
    sent = PQsendPrepare(conn, stmt->name, q->sql, p->count, p->types);
    Py_END_ALLOW_THREADS
    if (!sent)
        stmt->name[0] = '\0'; /* nothing to close on the server */
    return expect(self, q, sent, keep_last, prepared);
}

/* Run it unprepared once more when that cannot change its outcome: the server lost
 * it (26000), never had it (42P05: the name was taken) or DDL changed it. Outside a
 * transaction nothing ran and nothing was lost; inside one the failure aborted the
 * transaction, so only the caller can retry. */
static int run_unprepared_again(OxpgClient *self, OxpgQueryOp *q, int lost)
{
    char code[6] = "", message[8];
    if (lost)
        pending_error(self->st, code, message, sizeof(message));
    forget_statement(self, q, lost);
    if (PQtransactionStatus(self->conn) == PQTRANS_IDLE) {
        PyErr_Clear();
        if (lost)
            warn_lost(self, code);
        return send_unnamed(self, q);
    }
    raise_invalid_cached(self->st, lost);
    return statement_ended(self, q, NULL);
}

static int prepare_failed(OxpgClient *self, OxpgQueryOp *q)
{
    if (self->conn == NULL || !name_taken(self->st))
        return statement_ended(self, q, NULL);
    return run_unprepared_again(self, q, 1);
}

static int prepared(OxpgClient *self, OxpgQueryOp *q)
{
    PGresult *r = oxpg_query_take_result(self, q);
    if (r == NULL) {
        q->stmt->name[0] = '\0'; /* nothing to close on the server */
        return prepare_failed(self, q);
    }
    PQclear(r);
    self->cache.prepared++;
    if (!has_inferred_types(q->stmt))
        return plan_run(self, q);
    /* Ask the server which types it inferred for the untyped parameters. */
    PGconn *conn = self->conn;
    int sent;
    Py_BEGIN_ALLOW_THREADS
    sent = PQsendDescribePrepared(conn, q->stmt->name);
    Py_END_ALLOW_THREADS
    return expect(self, q, sent, keep_last, inferred_described);
}

static int inferred_described(OxpgClient *self, OxpgQueryOp *q)
{
    PGresult *r = oxpg_query_take_result(self, q);
    if (r == NULL)
        return prepare_failed(self, q);
    int n = PQnparams(r);
    for (int i = 0; i < n && i < q->stmt->nparams; i++) {
        Oid inferred = PQparamtype(r, i);
        if (q->stmt->param_types[i] == 0 && inferred != OXPG_TEXTOID && inferred != OXPG_VARCHAROID)
            q->stmt->infers_non_text = 1;
    }
    PQclear(r);
    return plan_run(self, q);
}

/* Which way the cached statement runs: unnamed until it has been used
 * prepare_threshold times, then prepared once and run by name. */
static int plan_run(OxpgClient *self, OxpgQueryOp *q)
{
    OxpgStatement *stmt = q->stmt;
    OxpgStatementCache *cache = &self->cache;
    if (stmt->name[0] == '\0') {
        if (cache->capacity == 0 || stmt->uses < (unsigned long)cache->threshold)
            return send_unnamed(self, q);
        /* Make room first (stmt is the newest, never the one evicted), so the server
         * never holds more than the cache's capacity of statements. */
        if (oxpg_cache_trim(cache) < 0)
            return -1;
        return close_evicted(self, q);
    }
    if (stmt->infers_non_text && infers_values(q->params))
        return send_unnamed(self, q);
    return send_by_name(self, q);
}

static int ran_unnamed(OxpgClient *self, OxpgQueryOp *q)
{
    PGresult *r = oxpg_query_take_result(self, q);
    if (r == NULL)
        explain_no_binary_output(self, q);
    return statement_ended(self, q, r);
}

static int ran_by_name(OxpgClient *self, OxpgQueryOp *q)
{
    PGresult *r = oxpg_query_take_result(self, q);
    if (r != NULL || self->conn == NULL)
        return statement_ended(self, q, r);
    explain_no_binary_output(self, q);
    int gone = 0;
    if (!statement_invalidated(self->st, q->stmt, &gone))
        return statement_ended(self, q, NULL);
    /* 26000: only this statement is gone. 0A000: its result type changed under DDL.
     * 42 with inferred types: they may be stale. Each fails before the statement
     * runs, so it is prepared afresh; if the unprepared run fails the same way, that
     * error is the caller's, as it would have been without the cache. */
    return run_unprepared_again(self, q, gone);
}

/* ---- the result -------------------------------------------------------------------- */


/* The statement's run is over (res NULL: it failed, the exception is set). A
 * statement that never succeeded is not kept in the cache, and the cache is trimmed
 * only after a success, so a rejected statement cannot push out a good one. */
static int statement_ended(OxpgClient *self, OxpgQueryOp *q, PGresult *res)
{
    if (q->stmt != NULL && self->conn != NULL) {
        if (res == NULL && !q->stmt->succeeded) {
            forget_statement(self, q, 0);
        } else if (res != NULL) {
            q->stmt->succeeded = 1;
            if (oxpg_cache_trim(&self->cache) < 0) {
                PQclear(res);
                return -1;
            }
        }
    }
    /* The statement changed the session (DISCARD ALL, DDL, client_encoding): the
     * cache may be emptied, so the entry is not used from here. */
    if (OXPG_UNLIKELY(self->notes != 0)) {
        q->stmt = NULL;
        if (oxpg_wait_settle(self) < 0) {
            PQclear(res);
            return -1;
        }
    }
    if (res == NULL)
        return -1;
    q->res = res;
    if (q->mode == OXPG_QUERY_EXECUTE) {
        q->out = oxpg_result_rowcount(res);
        return q->out != NULL ? 1 : -1;
    }
    /* A statement run before with this result shape has its columns resolved. */
    if (q->stmt != NULL && oxpg_columns_match(&q->stmt->columns, res, &self->types)) {
        q->cols = &q->stmt->columns;
        return oxpg_query_types_looked_up(self, q);
    }
    return oxpg_query_look_up_columns(self, q, res, 0, oxpg_query_types_looked_up);
}

/* ---- driving ----------------------------------------------------------------------- */

/* The op failed: a statement that never succeeded is not worth its cache entry,
 * whichever round trip failed (its description, its preparation or its run). */
static void failed(OxpgClient *self, OxpgQueryOp *q)
{
    q->status = OXPG_IO_FAILED;
    if (q->stmt != NULL && !q->stmt->succeeded && self->conn != NULL)
        forget_statement(self, q, 0);
}

int oxpg_query_op_start(OxpgClient *self, OxpgQueryOp *q, OxpgCall *call, PyObject *sql_obj, const char *sql,
                        Py_ssize_t sql_len, const OxpgParams *params, int simple, OxpgQueryMode mode,
                        long row_base)
{
    memset(q, 0, sizeof(*q));
    q->call = call;
    q->sql_obj = sql_obj;
    q->sql = sql;
    q->params = params;
    q->simple = simple;
    q->mode = mode;
    q->row_base = row_base;
    q->status = OXPG_IO_WANT_READ;
    oxpg_read_op_init(&q->read, call, keep_last, q);
    if (!simple && mode != OXPG_QUERY_DESCRIBE) {
        q->stmt = oxpg_cache_get(&self->cache, sql_obj, params->count, params->types);
        if (q->stmt == NULL && PyErr_Occurred())
            goto fail;
    }
    /* Counting placeholders scans the SQL: once per cached statement is enough (the
     * same text with the same number of parameters passes or fails alike). */
    if (q->stmt == NULL || !q->stmt->params_checked) {
        if (oxpg_client_check_param_count(self, sql, sql_len, params->count) < 0) {
            if (q->stmt != NULL && !q->stmt->succeeded)
                oxpg_cache_forget(&self->cache, q->stmt);
            q->stmt = NULL;
            goto fail;
        }
        if (q->stmt != NULL)
            q->stmt->params_checked = 1;
    }
    int rc = begin(self, q);
    if (rc == 0)
        return 0;
    if (rc > 0) {
        q->status = OXPG_IO_DONE;
        return 0;
    }
fail:
    failed(self, q);
    return -1;
}

OxpgIO oxpg_query_op_step(OxpgClient *self, OxpgQueryOp *q)
{
    while (q->status == OXPG_IO_WANT_READ) {
        OxpgIO io = oxpg_read_op_step(self, &q->read);
        if (io == OXPG_IO_WANT_READ || io == OXPG_IO_WANT_WRITE)
            return io;
        oxpg_query_next_fn next = q->next;
        q->next = NULL;
        /* A failed read (lost connection, timeout, interrupt) ends the op: nothing
         * more is sent. */
        int rc = io == OXPG_IO_FAILED || next == NULL ? -1 : next(self, q);
        if (rc > 0)
            q->status = OXPG_IO_DONE;
        else if (rc < 0)
            failed(self, q);
    }
    if (q->status == OXPG_IO_FAILED && !PyErr_Occurred())
        PyErr_SetString(self->st->OperationalError, "the connection was lost");
    return (OxpgIO)q->status;
}

PyObject *oxpg_query_op_take(OxpgQueryOp *q, PGresult **described)
{
    if (described != NULL) {
        *described = q->res;
        q->res = NULL;
        Py_RETURN_NONE;
    }
    PyObject *out = q->out;
    q->out = NULL;
    return out;
}

void oxpg_query_op_free(OxpgQueryOp *q)
{
    /* Most of these are NULL after a plain statement: checked here, not by calls. */
    if (q->last != NULL)
        PQclear(q->last);
    if (q->res != NULL)
        PQclear(q->res);
    q->last = q->res = NULL;
    if (q->text_sql != NULL || q->text.chunks != NULL)
        oxpg_query_free_text_forms(q);
    if (q->local.columns != NULL)
        oxpg_columns_clear(&q->local);
    if (q->ask != NULL) {
        PyMem_Free(q->ask);
        q->ask = NULL;
    }
    Py_CLEAR(q->pending);
    Py_CLEAR(q->out);
    oxpg_read_op_clear(&q->read);
}

int oxpg_query_op_clear(OxpgClient *self, OxpgQueryOp *q)
{
    oxpg_query_op_free(q);
    /* The client's own round trips (catalog, text forms) go through the same
     * bookkeeping; a lost connection took its prepared statements with it. */
    if (OXPG_UNLIKELY(self->notes != 0 || self->conn == NULL))
        return oxpg_wait_settle(self);
    return 0;
}

PGresult *oxpg_client_describe(OxpgClient *self, OxpgCall *call, const char *sql, const OxpgParams *p)
{
    OxpgQueryOp q;
    PGresult *described = NULL;
    if (oxpg_query_op_start(self, &q, call, NULL, sql, (Py_ssize_t)strlen(sql), p, 0, OXPG_QUERY_DESCRIBE, 0) == 0 &&
        oxpg_wait_query(self, &q) == 0)
        Py_XDECREF(oxpg_query_op_take(&q, &described));
    if (oxpg_query_op_clear(self, &q) < 0) {
        PQclear(described);
        described = NULL;
    }
    return described;
}
