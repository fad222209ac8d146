/* The Client type. The only file (with wait.c) that calls blocking libpq functions;
 * every such call runs with the GIL released and the client's lock held. */
#include "oxpg/client.h"
#include "oxpg/cancel.h"
#include "oxpg/codecs.h"
#include "oxpg/compat.h"
#include "oxpg/conn.h"
#include "oxpg/errors.h"
#include "oxpg/operation.h"
#include "oxpg/params.h"
#include "oxpg/pg_oids.h"
#include "oxpg/result.h"
#include "oxpg/sqlscan.h"
#include "oxpg/stmtcache.h"
#include "oxpg/wait.h"

#include "structmember.h"

#include <math.h>
#include <stdlib.h>
#include <unistd.h>


/* RUN_CURSOR: dicts, numbered from a row offset, with each undecodable row's DataError
 * in its place (a server-side cursor's FETCH). */
typedef enum { RUN_DICTS, RUN_TUPLES, RUN_EXECUTE, RUN_CURSOR } RunMode;

/* ---- locking -------------------------------------------------------------- */

/* Take the client's lock; while another thread holds it, wait with the GIL released
 * and keep signal handlers running. */
int oxpg_client_lock(OxpgClient *self)
{
    unsigned long me = PyThread_get_thread_ident();
    /* A signal handler (or other callback) running inside our own wait would wait
     * for itself forever. Only this thread ever stores its own id, so the unlocked
     * read cannot see a stale match. */
    if (self->owner == me) {
        PyErr_SetString(self->st->InterfaceError,
                        "the Client is busy in this thread (called again from a signal handler or callback "
                        "while its statement runs); use another Client there");
        return -1;
    }
    if (!PyThread_acquire_lock(self->lock, NOWAIT_LOCK)) {
        for (;;) {
            PyLockStatus got;
            Py_BEGIN_ALLOW_THREADS
            got = PyThread_acquire_lock_timed(self->lock, 50000, 0);
            Py_END_ALLOW_THREADS
            if (got == PY_LOCK_ACQUIRED)
                break;
            if (PyErr_CheckSignals() < 0)
                return -1;
        }
    }
    self->owner = me;
    return 0;
}

void oxpg_client_unlock(OxpgClient *self)
{
    self->owner = 0;
    PyThread_release_lock(self->lock);
}

/* ---- notices ---------------------------------------------------------------- */

/* Runs inside libpq, possibly without the GIL: C data only. The client's lock is
 * held by the thread that drives libpq, which protects the ring. */
void oxpg_client_notice_receiver(void *arg, const PGresult *res)
{
    OxpgClient *self = arg;
    const char *msg = PQresultErrorMessage(res);
    size_t len = strlen(msg);
    char *copy = PyMem_RawMalloc(len + 1);
    if (copy == NULL)
        return;
    memcpy(copy, msg, len + 1);
    if (self->notice_count == OXPG_NOTICE_QUEUE) {
        PyMem_RawFree(self->notices[self->notice_head]);
        self->notices[self->notice_head] = NULL;
        self->notice_head = (self->notice_head + 1) % OXPG_NOTICE_QUEUE;
        self->notice_count--;
        self->notices_dropped++;
    }
    self->notices[(self->notice_head + self->notice_count) % OXPG_NOTICE_QUEUE] = copy;
    self->notice_count++;
}

static void clear_notices(OxpgClient *self)
{
    for (int i = 0; i < OXPG_NOTICE_QUEUE; i++) {
        PyMem_RawFree(self->notices[i]);
        self->notices[i] = NULL;
    }
    self->notice_head = 0;
    self->notice_count = 0;
}

/* ---- connection state ---------------------------------------------------- */

static int forked(OxpgClient *self)
{
    return self->pid != getpid();
}

/* Close conn. In a forked child, PQfinish would send Terminate on the parent's
 * session: leave the PGconn alone (the child's copy of the memory is all it costs). */
void oxpg_client_finish(OxpgClient *self)
{
    PGconn *conn = self->conn;
    if (conn == NULL)
        return;
    if (forked(self)) {
        self->conn = NULL;
        return;
    }
    /* cancel() in another thread may be reading conn: wait for it, without the GIL
     * (it may need the GIL to finish). */
    Py_BEGIN_ALLOW_THREADS
    if (self->cancel_lock != NULL)
        PyThread_acquire_lock(self->cancel_lock, WAIT_LOCK);
    self->conn = NULL;
    if (self->cancel_lock != NULL)
        PyThread_release_lock(self->cancel_lock);
    PQfinish(conn);
    Py_END_ALLOW_THREADS
    self->syncs_pending = 0;
}

/* Checked before taking the lock: a fork copies the lock in whatever state another
 * thread of the parent had it, so a child must never wait for it. */
int oxpg_client_check_process(OxpgClient *self)
{
    if (!forked(self))
        return 0;
    PyErr_Format(self->st->InterfaceError,
                 "this Client was opened in process %ld and cannot be used in process %ld "
                 "(after fork); open a new Client in this process",
                 (long)self->pid, (long)getpid());
    return -1;
}

/* Must hold the lock. Raises unless conn can be used. */
const char *oxpg_client_sql(OxpgClient *self, PyObject *sql, Py_ssize_t *len)
{
    OxpgState *st = self->st;
    if (!PyUnicode_Check(sql)) {
        PyErr_Format(PyExc_TypeError, "the SQL statement must be str, not %.200s", Py_TYPE(sql)->tp_name);
        return NULL;
    }
    const char *utf8 = PyUnicode_AsUTF8AndSize(sql, len);
    if (utf8 == NULL) {
        oxpg_reraise_as(st->DataError, "SQL statement");
        return NULL;
    }
    /* libpq takes the SQL as a C string: a NUL would run only the part before it. */
    if (memchr(utf8, '\0', (size_t)*len) != NULL) {
        PyErr_SetString(st->DataError, "the SQL statement contains a NUL character (\\x00); nothing was sent");
        return NULL;
    }
    if (oxpg_client_check_process(self) < 0)
        return NULL;
    return utf8;
}

int oxpg_client_check_open(OxpgClient *self)
{
    OxpgState *st = self->st;
    if (self->conn == NULL) {
        PyErr_SetString(self->broken ? st->OperationalError : st->InterfaceError,
                        self->broken ? "the connection was lost; open a new Client" : "the Client is closed");
        return -1;
    }
    return 0;
}

int oxpg_client_check_usable(OxpgClient *self)
{
    if (oxpg_client_check_open(self) < 0)
        return -1;
    /* While a pipeline is open only its own methods may send. */
    if (self->in_pipeline) {
        PyErr_SetString(self->st->InterfaceError,
                        "a pipeline is open on this client: queue statements through it, or leave its block first");
        return -1;
    }
    return 0;
}

/* The connection is gone: raise OperationalError with libpq's reason and close. */
void oxpg_client_lost(OxpgClient *self)
{
    if (!PyErr_Occurred())
        oxpg_raise_conn_error(self->st, self->st->OperationalError, self->conn, "the connection was lost");
    self->broken = 1;
    oxpg_client_finish(self);
}

/* The socket failed mid-statement. libpq may already hold the server's last words
 * (a terminated backend sends FATAL 57P01 before closing): raise those, with their
 * SQLSTATE, rather than only "connection lost". */
void oxpg_client_raise_lost(OxpgClient *self, const PGresult *error)
{
    PGconn *conn = self->conn;
    if (error != NULL) {
        oxpg_raise_result_error(self->st, error, self->st->OperationalError);
    } else if (PQstatus(conn) == CONNECTION_BAD) {
        /* The socket is closed, so this returns what is buffered without waiting. */
        PGresult *r = PQgetResult(conn);
        if (r != NULL && PQresultErrorField(r, PG_DIAG_SQLSTATE) != NULL)
            oxpg_raise_result_error(self->st, r, self->st->OperationalError);
        PQclear(r);
    }
    oxpg_client_lost(self);
}

/* ---- running a statement ---------------------------------------------------- */

/* An exception (e.g. KeyboardInterrupt) is pending mid-statement, outside any call's
 * deadline: cancel on the server, drain, keep the exception. */
void oxpg_client_cancel_and_drain(OxpgClient *self)
{
    OxpgCall call;
    oxpg_call_init(&call, -1);
    oxpg_wait_interrupt(self, &call);
}

int oxpg_client_reset_single_row(OxpgClient *self, OxpgCall *call)
{
    if (!self->single_row_used)
        return 0;
    /* Any new query resets libpq's flag outside pipeline mode: an empty one costs a
     * round trip with no work on the server, once after streams. */
    if (!PQsendQuery(self->conn, ""))
        return oxpg_conn_send_failed(self, "could not send the query");
    int rc = oxpg_wait_read(self, call, oxpg_conn_discard_result, NULL);
    oxpg_call_clear(call);
    if (rc < 0)
        return -1;
    self->single_row_used = 0;
    return 0;
}

static OxpgReadStep keep_last(OxpgClient *self, OxpgCall *call, PGresult *r, void *ctx)
{
    (void)self;
    PGresult **last = ctx;
    if (r == NULL)
        return OXPG_READ_STOP;
    if (oxpg_result_is_error(r)) {
        oxpg_call_keep_error(call, r);
    } else {
        PQclear(*last);
        *last = r;
    }
    return OXPG_READ_MORE;
}

/* Collect every result of the statement just sent; keep the last one. Returns a
 * PGresult the caller clears, or NULL with an exception set. */
PGresult *oxpg_client_collect(OxpgClient *self, OxpgCall *call)
{
    OxpgState *st = self->st;
    PGresult *last = NULL;
    call->copy_refused = 0;
    if (oxpg_wait_read(self, call, keep_last, &last) < 0)
        goto fail;
    /* Our own refusal explains a COPY FROM STDIN's error (the server reports the
     * CopyFail we sent as 57014), so it goes first. */
    if (call->copy_refused && self->conn != NULL) {
        PyErr_SetString(st->NotSupportedError, "COPY is not supported by query()/execute() yet");
        goto fail;
    }
    if (call->error != NULL) {
        oxpg_conn_raise_error(self, call);
        goto fail;
    }
    if (last == NULL || PQresultStatus(last) == PGRES_EMPTY_QUERY) {
        PyErr_SetString(st->ProgrammingError, "empty query: the statement has no SQL command");
        goto fail;
    }
    return last;
fail:
    PQclear(last);
    oxpg_call_clear(call);
    return NULL;
}

/* simple: the simple-query protocol (several statements, no parameters, text results);
 * otherwise one statement with p, results in result_format (1 binary, 0 text). */
static PGresult *send_and_collect(OxpgClient *self, OxpgCall *call, const char *sql, const OxpgParams *p,
                                  int simple, int result_format)
{
    PGconn *conn = self->conn;
    int sent;
    Py_BEGIN_ALLOW_THREADS
    if (simple)
        sent = PQsendQuery(conn, sql);
    else
        sent = PQsendQueryParams(conn, sql, p->count, p->types, p->values, p->lengths, p->formats, result_format);
    Py_END_ALLOW_THREADS
    if (!sent) {
        oxpg_conn_send_failed(self, "could not send the query");
        return NULL;
    }
    return oxpg_client_collect(self, call);
}

/* Send one "VALUES (format('%s', $1)), ..." batch and keep its result. format()
 * applies the type's output function (a ::text cast may differ: inet shows its mask),
 * schema-qualified so a search_path cannot substitute another function. */
static int send_text_chunk(OxpgClient *self, OxpgCall *call, char *sql, int n, const Oid *types,
                           const char *const *values, const int *lengths, const int *formats, OxpgTextForms *text)
{
    char *out = sql + sprintf(sql, "VALUES ");
    for (int i = 0; i < n; i++)
        out += sprintf(out, i == 0 ? "(pg_catalog.format('%%s',$%d))" : ",(pg_catalog.format('%%s',$%d))", i + 1);
    PGconn *conn = self->conn;
    int sent;
    Py_BEGIN_ALLOW_THREADS
    sent = PQsendQueryParams(conn, sql, n, types, values, lengths, formats, 0);
    Py_END_ALLOW_THREADS
    if (!sent)
        return oxpg_conn_send_failed(self, "could not send the query");
    PGresult *chunk = oxpg_client_collect(self, call);
    if (chunk == NULL) {
        /* Some types refuse binary input (pg_ndistinct): say what to do about it. */
        if (self->conn != NULL && PyErr_ExceptionMatches(self->st->DatabaseError))
            oxpg_reraise_as(self->st->DataError, "a column's type has no binary decoder in oxpg and the server "
                                                 "could not turn its value into text; cast that column to text "
                                                 "in SQL");
        return -1;
    }
    text->chunks[text->count++] = chunk;
    return 0;
}

/* Values of types oxpg has no binary decoder for (extensions, user types) are sent
 * back to the server in their binary form and returned as text: the type's own
 * receive and output functions do the conversion, so any type comes back usable. */
static int fetch_text_forms(OxpgClient *self, OxpgCall *call, const PGresult *res, const OxpgColumns *cols, OxpgTextForms *text)
{
    int nrows = PQntuples(res), ncols = PQnfields(res);
    long total = 0;
    for (int c = 0; c < ncols; c++) {
        for (int r = 0; oxpg_column_needs_text(cols, c) && r < nrows; r++)
            total += !PQgetisnull(res, r, c);
    }
    if (total == 0)
        return 0;
    int nchunks = (int)((total + OXPG_TEXT_CHUNK - 1) / OXPG_TEXT_CHUNK);
    text->chunks = PyMem_Calloc((size_t)nchunks, sizeof(PGresult *));
    Oid *types = PyMem_Calloc(OXPG_TEXT_CHUNK, sizeof(Oid));
    const char **values = PyMem_Calloc(OXPG_TEXT_CHUNK, sizeof(char *));
    int *lengths = PyMem_Calloc(OXPG_TEXT_CHUNK, sizeof(int));
    int *formats = PyMem_Calloc(OXPG_TEXT_CHUNK, sizeof(int));
    /* At most 40 bytes per ",(pg_catalog.format('%s',$32767))" plus the VALUES keyword. */
    char *sql = PyMem_Malloc((size_t)OXPG_TEXT_CHUNK * 40 + 16);
    int rc = -1;
    if (!text->chunks || !types || !values || !lengths || !formats || !sql) {
        PyErr_NoMemory();
        goto done;
    }
    int n = 0;
    for (int r = 0; r < nrows; r++) {
        for (int c = 0; c < ncols; c++) {
            if (!oxpg_column_needs_text(cols, c) || PQgetisnull(res, r, c))
                continue;
            types[n] = PQftype(res, c);
            values[n] = PQgetvalue(res, r, c);
            lengths[n] = PQgetlength(res, r, c);
            formats[n] = 1;
            if (++n == OXPG_TEXT_CHUNK) {
                if (send_text_chunk(self, call, sql, n, types, values, lengths, formats, text) < 0)
                    goto done;
                n = 0;
            }
        }
    }
    if (n > 0 && send_text_chunk(self, call, sql, n, types, values, lengths, formats, text) < 0)
        goto done;
    rc = 0;
done:
    PyMem_Free(types);
    PyMem_Free((void *)values);
    PyMem_Free(lengths);
    PyMem_Free(formats);
    PyMem_Free(sql);
    return rc;
}

static void free_text_forms(OxpgTextForms *text)
{
    for (int i = 0; i < text->count; i++)
        PQclear(text->chunks[i]);
    PyMem_Free(text->chunks);
    text->chunks = NULL;
    text->count = 0;
}

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
 * chosen before the statement runs (see result_format) and such a failure is never
 * run again: it only happens when the description oxpg had went stale (a table
 * changed by another session), and the error then says why. stmt (NULL when it was
 * dropped from the cache) is described afresh on its next run. */
static void explain_no_binary_output(OxpgClient *self, OxpgStatement *stmt)
{
    char code[6], message[128];
    if (self->conn == NULL || !pending_error(self->st, code, message, sizeof(message)) ||
        strcmp(code, "42883") != 0 || strstr(message, "no binary output function") == NULL)
        return;
    if (stmt != NULL)
        stmt->described = 0;
    PyObject *exc = oxpg_err_take();
    PyObject *r = PyObject_CallMethod(exc, "add_note", "s",
                                      "oxpg asked for binary results because the statement's columns had binary "
                                      "output when it was described; it was not run again (it may have done "
                                      "something already). Running it again describes it afresh.");
    Py_XDECREF(r);
    PyErr_Clear();
    oxpg_err_restore(exc);
}

/* One unnamed statement (or, simple, a simple-protocol script). */
static PGresult *run_unnamed(OxpgClient *self, OxpgCall *call, OxpgStatement *stmt, const char *sql,
                             const OxpgParams *p, int simple, int result_format)
{
    PGresult *res = send_and_collect(self, call, sql, p, simple, result_format);
    if (res == NULL && result_format == 1)
        explain_no_binary_output(self, stmt);
    return res;
}

/* Text for results nobody decodes (execute(): any column type comes as text) and for
 * statements with a column that cannot come as binary; binary otherwise. A statement
 * not seen before is described first (one more round trip, once per statement and
 * client), since a column without binary output fails only once the statement runs. */
static int result_format(OxpgClient *self, OxpgCall *call, OxpgStatement *stmt, const char *sql,
                         const OxpgParams *p, int rows_wanted)
{
    if (!rows_wanted)
        return 0;
    if (!stmt->described) {
        PGresult *described = oxpg_client_describe(self, call, sql, p);
        if (described == NULL)
            return -1;
        stmt->text_results = (char)oxpg_client_describe_needs_text(self, described);
        stmt->described = 1;
        PQclear(described);
    }
    return stmt->text_results ? 0 : 1;
}

/* The server ignores parameters beyond the highest $n when their types are declared,
 * so a surplus value would vanish silently. */
int oxpg_client_check_param_count(OxpgClient *self, const char *sql, Py_ssize_t sql_len, Py_ssize_t given)
{
    OxpgState *st = self->st;
    if (given == 0)
        return 0;
    /* With standard_conforming_strings off, backslashes escape in every '' string. */
    const char *scs = PQparameterStatus(self->conn, "standard_conforming_strings");
    int backslash_quotes = scs != NULL && strcmp(scs, "off") == 0;
    long used = oxpg_sql_max_placeholder(sql, (size_t)sql_len, backslash_quotes);
    if (given <= used)
        return 0;
    if (used == 0)
        PyErr_Format(st->ProgrammingError, "%zd parameter(s) given but the statement has no $n placeholder", given);
    else
        PyErr_Format(st->ProgrammingError, "%zd parameters given but the statement uses only $1..$%ld", given, used);
    return -1;
}

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

#define CLOSE_SAVEPOINT "_oxpg_deallocate"

/* DEALLOCATE the statements the cache evicted. Failures are not the caller's
 * business: the names are dropped and the server frees them with the session. A
 * statement may be gone already (a pooler moved us to another server session, or
 * DEALLOCATE behind our back): inside a transaction a savepoint keeps that failure
 * from aborting the caller's transaction. */
static void close_evicted(OxpgClient *self, OxpgCall *call)
{
    OxpgStatementCache *cache = &self->cache;
    PGTransactionStatusType ts = PQtransactionStatus(self->conn);
    if (cache->n_to_close == 0 || (ts != PQTRANS_IDLE && ts != PQTRANS_INTRANS))
        return;
    int in_transaction = ts == PQTRANS_INTRANS;
    static const char begin[] = "SAVEPOINT " CLOSE_SAVEPOINT ";";
    static const char end[] = "RELEASE SAVEPOINT " CLOSE_SAVEPOINT ";";
    size_t each = sizeof("DEALLOCATE ;") - 1 + OXPG_STATEMENT_NAME_SIZE;
    char *sql = PyMem_Malloc((size_t)cache->n_to_close * each + sizeof(begin) + sizeof(end));
    if (sql == NULL)
        return;
    char *out = sql;
    if (in_transaction)
        out += sprintf(out, "%s", begin);
    for (int i = 0; i < cache->n_to_close; i++)
        out += sprintf(out, "DEALLOCATE %s;", cache->to_close[i]);
    if (in_transaction)
        sprintf(out, "%s", end);
    cache->n_to_close = 0;
    PyObject *pending = oxpg_err_take();
    PGresult *r = send_and_collect(self, call, sql, NULL, 1, 0);
    if (r == NULL && self->conn != NULL && in_transaction) {
        /* Prepared statements are not transactional: those deallocated stay so. */
        PyErr_Clear();
        r = send_and_collect(self, call,
                             "ROLLBACK TO SAVEPOINT " CLOSE_SAVEPOINT ";" "RELEASE SAVEPOINT " CLOSE_SAVEPOINT, NULL,
                             1, 0);
    }
    PQclear(r);
    if (self->conn != NULL)
        PyErr_Clear();
    else
        Py_CLEAR(pending); /* the connection died: report that instead */
    if (pending != NULL)
        oxpg_err_restore(pending);
    PyMem_Free(sql);
}

static PGresult *send_prepared(OxpgClient *self, OxpgCall *call, OxpgStatement *stmt, const OxpgParams *p,
                               int result_format)
{
    PGconn *conn = self->conn;
    int sent;
    Py_BEGIN_ALLOW_THREADS
    sent = PQsendQueryPrepared(conn, stmt->name, p->count, p->values, p->lengths, p->formats, result_format);
    Py_END_ALLOW_THREADS
    if (!sent) {
        oxpg_conn_send_failed(self, "could not send the query");
        return NULL;
    }
    PGresult *res = oxpg_client_collect(self, call);
    if (res == NULL && result_format == 1)
        explain_no_binary_output(self, stmt);
    return res;
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

/* Ask the server which types it inferred for stmt's untyped parameters. */
static int describe_inferred(OxpgClient *self, OxpgCall *call, OxpgStatement *stmt)
{
    if (!PQsendDescribePrepared(self->conn, stmt->name))
        return oxpg_conn_send_failed(self, "could not send the query");
    PGresult *r = oxpg_client_collect(self, call);
    if (r == NULL)
        return -1;
    int n = PQnparams(r);
    for (int i = 0; i < n && i < stmt->nparams; i++) {
        Oid inferred = PQparamtype(r, i);
        if (stmt->param_types[i] == 0 && inferred != OXPG_TEXTOID && inferred != OXPG_VARCHAROID)
            stmt->infers_non_text = 1;
    }
    PQclear(r);
    return 0;
}

/* Prepare stmt on the server under a fresh name. */
static int prepare(OxpgClient *self, OxpgCall *call, OxpgStatement *stmt, const char *sql, const OxpgParams *p)
{
    /* Make room first (stmt is the newest, never the one evicted), so the server
     * never holds more than the cache's capacity of statements. */
    if (oxpg_cache_trim(&self->cache) < 0)
        return -1;
    close_evicted(self, call);
    if (self->conn == NULL)
        return -1;
    oxpg_cache_name(&self->cache, stmt);
    PGconn *conn = self->conn;
    int sent;
    Py_BEGIN_ALLOW_THREADS
    sent = PQsendPrepare(conn, stmt->name, sql, p->count, p->types);
    Py_END_ALLOW_THREADS
    PGresult *r = NULL;
    if (!sent)
        oxpg_conn_send_failed(self, "could not send the query");
    else
        r = oxpg_client_collect(self, call);
    if (r == NULL) {
        stmt->name[0] = '\0'; /* nothing to close on the server */
        return -1;
    }
    PQclear(r);
    self->cache.prepared++;
    return has_inferred_types(stmt) ? describe_inferred(self, call, stmt) : 0;
}

/* Run a statement through the cache: unnamed until it has been used
 * prepare_threshold times, then prepared once and executed by name. *stmtp becomes
 * NULL when the entry had to be dropped. */
/* Drop *stmtp from the cache, keeping the pending exception. */
static void forget_statement(OxpgClient *self, OxpgStatement **stmtp, int server_dropped_it)
{
    PyObject *pending = oxpg_err_take();
    if (server_dropped_it)
        (*stmtp)->name[0] = '\0'; /* nothing to DEALLOCATE */
    oxpg_cache_forget(&self->cache, *stmtp);
    *stmtp = NULL;
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

/* The server does not hold *stmtp as we prepared it (the pending error says why).
 * Drop it from the cache; outside a transaction nothing ran and nothing was lost,
 * so run it again unprepared. Inside one the failure aborted the transaction: only
 * the caller can retry. lost: 26000 or 42P05, nothing of ours to DEALLOCATE. */
static PGresult *run_unprepared_again(OxpgClient *self, OxpgCall *call, OxpgStatement **stmtp, const char *sql,
                                      const OxpgParams *p, int lost, int format)
{
    char code[6] = "", message[8];
    if (lost)
        pending_error(self->st, code, message, sizeof(message));
    forget_statement(self, stmtp, lost);
    if (PQtransactionStatus(self->conn) == PQTRANS_IDLE) {
        PyErr_Clear();
        if (lost)
            warn_lost(self, code);
        return run_unnamed(self, call, NULL, sql, p, 0, format);
    }
    raise_invalid_cached(self->st, lost);
    return NULL;
}

/* True when the pending error is 42P05: a statement of that name already exists in
 * the server session, and it is not ours. */
static int name_taken(OxpgState *st)
{
    char code[6], message[8];
    return pending_error(st, code, message, sizeof(message)) && strcmp(code, "42P05") == 0;
}

static PGresult *run_cached_inner(OxpgClient *self, OxpgCall *call, OxpgStatement **stmtp, const char *sql,
                                  const OxpgParams *p, int rows_wanted)
{
    OxpgStatement *stmt = *stmtp;
    OxpgStatementCache *cache = &self->cache;
    int format = result_format(self, call, stmt, sql, p, rows_wanted);
    if (format < 0)
        return NULL;
    if (stmt->name[0] == '\0') {
        if (cache->capacity == 0 || stmt->uses < (unsigned long)cache->threshold)
            return run_unnamed(self, call, stmt, sql, p, 0, format);
        if (prepare(self, call, stmt, sql, p) < 0) {
            if (self->conn == NULL || !name_taken(self->st))
                return NULL;
            return run_unprepared_again(self, call, stmtp, sql, p, 1, format);
        }
    }
    if (stmt->infers_non_text && infers_values(p))
        return run_unnamed(self, call, stmt, sql, p, 0, format);
    PGresult *res = send_prepared(self, call, stmt, p, format);
    if (res != NULL || self->conn == NULL)
        return res;
    int gone = 0;
    if (!statement_invalidated(self->st, stmt, &gone))
        return NULL;
    /* 26000: only this statement is gone. 0A000: its result type changed under DDL.
     * 42 with inferred types: they may be stale. Each fails before the statement
     * runs, so it is prepared afresh; if the unprepared run fails the same way, that
     * error is the caller's, as it would have been without the cache. */
    return run_unprepared_again(self, call, stmtp, sql, p, gone, format);
}

/* Run a statement through the cache: unnamed until it has been used
 * prepare_threshold times, then prepared once and executed by name. *stmtp becomes
 * NULL when the entry had to be dropped. A statement that never succeeded is not
 * kept, and the cache is trimmed only after a success, so a rejected statement
 * cannot push out a good one. */
static PGresult *run_cached(OxpgClient *self, OxpgCall *call, OxpgStatement **stmtp, const char *sql,
                            const OxpgParams *p, int rows_wanted)
{
    PGresult *res = run_cached_inner(self, call, stmtp, sql, p, rows_wanted);
    if (*stmtp == NULL || self->conn == NULL)
        return res;
    if (res == NULL) {
        if (!(*stmtp)->succeeded)
            forget_statement(self, stmtp, 0);
        return NULL;
    }
    (*stmtp)->succeeded = 1;
    if (oxpg_cache_trim(&self->cache) < 0) {
        PQclear(res);
        return NULL;
    }
    return res;
}

/* Ask the catalog about oids (and, round by round, the types they refer to:
 * element, base and field types), storing the answers in the client's type cache. */
static int lookup_types(OxpgClient *self, OxpgCall *call, const Oid *oids, int n)
{
    Oid *ask = PyMem_Malloc(sizeof(Oid) * (size_t)(n > 0 ? n : 1));
    if (ask == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    memcpy(ask, oids, sizeof(Oid) * (size_t)n);
    int n_ask = n;
    int rc = 0;
    /* Nesting deeper than a few levels of distinct user types is rare; what is left
     * unanswered decodes as text or raises DataError, never wrongly. */
    for (int round = 0; rc == 0 && n_ask > 0 && round < 8; round++) {
        /* '{4294967295,...}': at most 11 bytes per OID. */
        char *literal = PyMem_Malloc((size_t)n_ask * 11 + 3);
        if (literal == NULL) {
            PyErr_NoMemory();
            rc = -1;
            break;
        }
        char *out = literal;
        *out++ = '{';
        for (int k = 0; k < n_ask; k++)
            out += sprintf(out, k == 0 ? "%u" : ",%u", (unsigned)ask[k]);
        strcpy(out, "}");
        const char *values[1] = {literal};
        PGconn *conn = self->conn;
        int sent;
        Py_BEGIN_ALLOW_THREADS
        sent = PQsendQueryParams(conn, oxpg_types_catalog_sql, 1, NULL, values, NULL, NULL, 0);
        Py_END_ALLOW_THREADS
        PyMem_Free(literal);
        if (!sent) {
            rc = oxpg_conn_send_failed(self, "could not send the query");
            break;
        }
        PGresult *answer = oxpg_client_collect(self, call);
        if (answer == NULL) {
            rc = -1;
            break;
        }
        Oid *next = NULL;
        int n_next = 0;
        rc = oxpg_types_load(self->st, &self->types, answer, ask, n_ask, &next, &n_next);
        PQclear(answer);
        PyMem_Free(ask);
        ask = next;
        n_ask = n_next;
    }
    PyMem_Free(ask);
    return rc;
}

static int resolve(OxpgClient *self, OxpgCall *call, const PGresult *res, int any_format);

int oxpg_client_resolve_types(OxpgClient *self, OxpgCall *call, const PGresult *res)
{
    return resolve(self, call, res, 0);
}

int oxpg_client_resolve_described(OxpgClient *self, OxpgCall *call, const PGresult *described)
{
    return resolve(self, call, described, 1);
}

/* any_format: a Describe result, whose columns all say text format. */
static int resolve(OxpgClient *self, OxpgCall *call, const PGresult *res, int any_format)
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
    int rc = n > 0 ? lookup_types(self, call, unknown, n) : 0;
    if (unknown != small)
        PyMem_Free(unknown);
    return rc;
}

/* Describe res's columns, reusing the cached statement's description when it still
 * fits. Returns the columns to decode with (stmt's or *local's), NULL on error. */
static const OxpgColumns *columns_for(OxpgClient *self, OxpgStatement *stmt, const PGresult *res,
                                      OxpgColumns *local)
{
    if (stmt != NULL && oxpg_columns_match(&stmt->columns, res, &self->types))
        return &stmt->columns;
    if (oxpg_columns_init(local, res, &self->types) < 0)
        return NULL;
    if (stmt == NULL || stmt->name[0] == '\0')
        return local;
    /* Prepared statements keep their description: later results skip this work. */
    oxpg_columns_clear(&stmt->columns);
    stmt->columns = *local;
    local->columns = NULL;
    local->count = 0;
    return &stmt->columns;
}

/* Zone names PostgreSQL reports for UTC: no conversion needed. */
static int is_utc(const char *name)
{
    static const char *const names[] = {"UTC", "Etc/UTC", "GMT", "Etc/GMT", "UCT", "Zulu", "Etc/Universal",
                                        "Universal", "Etc/Zulu", "Etc/UCT", "Etc/GMT0", "GMT0", NULL};
    for (const char *const *n = names; *n != NULL; n++) {
        if (strcmp(name, *n) == 0)
            return 1;
    }
    return 0;
}

PyObject *oxpg_client_timezone(OxpgClient *self)
{
    const char *name = self->conn != NULL ? PQparameterStatus(self->conn, "TimeZone") : NULL;
    if (name == NULL || strlen(name) >= sizeof(self->timezone_name))
        return NULL;
    if (strcmp(name, self->timezone_name) == 0)
        return self->timezone;
    strcpy(self->timezone_name, name);
    Py_CLEAR(self->timezone);
    if (is_utc(name))
        return NULL;
    /* An IANA name (Europe/Berlin, Asia/Kathmandu): zoneinfo knows its DST rules.
     * Anything zoneinfo cannot read (a POSIX string) keeps values in UTC: the
     * instant is right either way. */
    PyObject *pending = oxpg_err_take();
    PyObject *module = PyImport_ImportModule("zoneinfo");
    if (module != NULL) {
        self->timezone = PyObject_CallMethod(module, "ZoneInfo", "s", name);
        Py_DECREF(module);
    }
    PyErr_Clear();
    oxpg_err_restore(pending);
    return self->timezone;
}

/* Lock held: send, collect and decode. */
static PyObject *run_locked(OxpgClient *self, OxpgCall *call, PyObject *sql_obj, const char *sql,
                            Py_ssize_t sql_len, OxpgParams *params, int simple, RunMode mode, long row_base)
{
    OxpgState *st = self->st;
    OxpgStatement *stmt = NULL;
    OxpgColumns local;
    memset(&local, 0, sizeof(local));
    OxpgTextForms text = {NULL, 0};
    PyObject *out = NULL;
    PGresult *res = NULL;
    if (!simple) {
        stmt = oxpg_cache_get(&self->cache, sql_obj, params->count, params->types);
        if (stmt == NULL && PyErr_Occurred())
            return NULL;
    }
    /* Counting placeholders scans the SQL: once per cached statement is enough (the
     * same text with the same number of parameters passes or fails alike). */
    if (stmt == NULL || !stmt->params_checked) {
        if (oxpg_client_check_param_count(self, sql, sql_len, params->count) < 0) {
            if (stmt != NULL && !stmt->succeeded)
                oxpg_cache_forget(&self->cache, stmt);
            return NULL;
        }
        if (stmt != NULL)
            stmt->params_checked = 1;
    }
    res = stmt != NULL ? run_cached(self, call, &stmt, sql, params, mode != RUN_EXECUTE)
                       : run_unnamed(self, call, NULL, sql, params, simple, mode != RUN_EXECUTE && !simple);
    /* The statement changed the session (DISCARD ALL, DDL, client_encoding): the
     * cache may be emptied, so stmt is not used from here. */
    if (OXPG_UNLIKELY(self->notes != 0)) {
        stmt = NULL;
        if (oxpg_wait_settle(self) < 0)
            goto done;
    }
    if (res == NULL)
        goto done;
    if (mode == RUN_EXECUTE) {
        out = oxpg_result_rowcount(res);
        goto done;
    }
    if (oxpg_client_resolve_types(self, call, res) < 0)
        goto done;
    for (int attempt = 0;; attempt++) {
        OxpgColumns *cols = (OxpgColumns *)columns_for(self, stmt, res, &local);
        if (cols == NULL || (cols->needs_text && fetch_text_forms(self, call, res, cols, &text) < 0))
            goto done;
        cols->timezone = oxpg_client_timezone(self);
        cols->row_base = row_base; /* set on every run: cached columns are shared */
        self->types.missing = 0;
        out = oxpg_result_rows(st, res, cols, &text, mode != RUN_TUPLES, mode == RUN_CURSOR);
        /* A record field (or array element) of a type nobody asked the catalog
         * about: an anonymous record's field types are only in its data. Look it up
         * and decode again; each round learns at least one type. With the errors
         * kept in place, out holds the rows that met it. */
        Oid missing = self->types.missing;
        if ((out != NULL && mode != RUN_CURSOR) || missing == 0 || attempt == 8 || self->conn == NULL)
            break;
        PyObject *pending = oxpg_err_take();
        int rc = lookup_types(self, call, &missing, 1);
        if (rc < 0) {
            Py_XDECREF(pending);
            Py_CLEAR(out);
            goto done;
        }
        oxpg_err_restore(pending);
        if (oxpg_types_settled(&self->types, missing) == 0)
            break;
        PyErr_Clear();
        Py_CLEAR(out);
        free_text_forms(&text);
        oxpg_columns_clear(&local);
    }
done:
    free_text_forms(&text);
    oxpg_columns_clear(&local);
    PQclear(res);
    /* The client's own round trips (catalog, text forms) go through the same
     * bookkeeping; a lost connection took its prepared statements with it. */
    if (OXPG_UNLIKELY(self->notes != 0 || self->conn == NULL) && oxpg_wait_settle(self) < 0)
        Py_CLEAR(out);
    return out;
}

int oxpg_client_timeout_value(const char *name, PyObject *value, double if_none, double *timeout)
{
    if (value == Py_None) {
        *timeout = if_none;
        return 0;
    }
    if (PyBool_Check(value) || !(PyLong_Check(value) || PyFloat_Check(value))) {
        PyErr_Format(PyExc_TypeError,
                     "%s must be a number of seconds, float('inf') (no timeout) or None (the client's "
                     "command_timeout), not %.200s",
                     name, Py_TYPE(value)->tp_name);
        return -1;
    }
    double seconds = PyFloat_AsDouble(value);
    if (seconds == -1.0 && PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_OverflowError))
            return -1;
        PyErr_Clear(); /* an int beyond a double: out of range below */
        seconds = OXPG_TIMEOUT_MAX * 2;
    }
    /* Infinity is the explicit "no timeout": a deadline that never comes. */
    if (isinf(seconds) && seconds > 0) {
        *timeout = -1;
        return 0;
    }
    if (!(seconds > 0) || seconds > OXPG_TIMEOUT_MAX) {
        PyErr_Format(PyExc_ValueError,
                     "%s must be more than 0 and at most %.0f seconds, or float('inf') for no timeout, not %R", name,
                     OXPG_TIMEOUT_MAX, value);
        return -1;
    }
    *timeout = seconds;
    return 0;
}

int oxpg_client_parse_timeout(OxpgClient *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                              double *timeout)
{
    *timeout = self->command_timeout;
    Py_ssize_t nkw = kwnames != NULL ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t i = 0; i < nkw; i++) {
        PyObject *name = PyTuple_GET_ITEM(kwnames, i);
        if (PyUnicode_CompareWithASCIIString(name, "timeout") != 0) {
            PyErr_Format(PyExc_TypeError, "unexpected keyword argument %R (parameters are positional: $1, $2, ...)",
                         name);
            return -1;
        }
        if (oxpg_client_timeout_value("timeout", args[nargs + i], self->command_timeout, timeout) < 0)
            return -1;
    }
    return 0;
}

static PyObject *run(OxpgClient *self, PyObject *const *args, Py_ssize_t nargs, RunMode mode, double timeout,
                     long row_base)
{
    OxpgState *st = self->st;
    if (nargs < 1) {
        PyErr_SetString(PyExc_TypeError, "missing the SQL statement (first argument)");
        return NULL;
    }
    Py_ssize_t sql_len;
    const char *sql = oxpg_client_sql(self, args[0], &sql_len);
    if (sql == NULL)
        return NULL;
    OxpgParams params;
    if (oxpg_params_encode(st, &params, args + 1, nargs - 1, self->types.encoders) < 0)
        return NULL;
    /* Without parameters execute() uses the simple protocol, which allows several
     * statements in one string; query() always uses the extended protocol for
     * binary results. */
    int simple = mode == RUN_EXECUTE && nargs == 1;
    PyObject *out = NULL;
    if (oxpg_client_lock(self) == 0) {
        /* The timeout counts from here: waiting for another thread's statement to
         * finish is not this statement's time. */
        OxpgCall call;
        oxpg_call_init(&call, timeout);
        /* Decoding happens under the lock too: the cached column descriptions it
         * uses belong to the connection's statement cache. */
        if (oxpg_client_check_usable(self) == 0) {
            oxpg_stream_abandon(self);
            out = self->conn != NULL ? run_locked(self, &call, args[0], sql, sql_len, &params, simple, mode, row_base) : NULL;
            if (out == NULL && !PyErr_Occurred())
                PyErr_SetString(st->OperationalError, "the connection was lost");
        }
        oxpg_client_unlock(self);
    }
    oxpg_params_free(&params);
    return out;
}

/* ---- Python methods -------------------------------------------------------- */

PyDoc_STRVAR(query_doc, "query($self, sql, /, *params, timeout=None)\n--\n\n"
                        "Run one statement with $1, $2, ... bound to params and return its rows\n"
                        "as a list of dicts (column order kept). timeout: seconds after which the\n"
                        "statement is cancelled on the server and QueryTimeoutError is raised;\n"
                        "None uses the client's command_timeout, float('inf') means none.");

static PyObject *Client_query(OxpgClient *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    double timeout = self->command_timeout;
    if (OXPG_UNLIKELY(kwnames != NULL) && oxpg_client_parse_timeout(self, args, nargs, kwnames, &timeout) < 0)
        return NULL;
    return run(self, args, nargs, RUN_DICTS, timeout, 0);
}

PyDoc_STRVAR(query_tuples_doc, "query_tuples($self, sql, /, *params, timeout=None)\n--\n\n"
                               "Like query() but each row is a tuple in column order.");

static PyObject *Client_query_tuples(OxpgClient *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    double timeout = self->command_timeout;
    if (OXPG_UNLIKELY(kwnames != NULL) && oxpg_client_parse_timeout(self, args, nargs, kwnames, &timeout) < 0)
        return NULL;
    return run(self, args, nargs, RUN_TUPLES, timeout, 0);
}

PyDoc_STRVAR(execute_doc, "execute($self, sql, /, *params, timeout=None)\n--\n\n"
                          "Run a statement and return the number of rows it affected (0 when the\n"
                          "command reports none). Without params, sql may hold several statements.\n"
                          "timeout: as for query().");

static PyObject *Client_execute(OxpgClient *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    double timeout = self->command_timeout;
    if (OXPG_UNLIKELY(kwnames != NULL) && oxpg_client_parse_timeout(self, args, nargs, kwnames, &timeout) < 0)
        return NULL;
    return run(self, args, nargs, RUN_EXECUTE, timeout, 0);
}

PyDoc_STRVAR(cursor_fetch_doc, "_cursor_fetch($self, row_base, sql, /, *, timeout=None)\n--\n\n"
                               "query(sql) for a server-side cursor's FETCH: rows are numbered from\n"
                               "row_base (the cursor's position) in errors, and a row that cannot be\n"
                               "decoded is its DataError in the list, the rows after it decoded too.");

static PyObject *Client_cursor_fetch(OxpgClient *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    double timeout = self->command_timeout;
    if (kwnames != NULL && oxpg_client_parse_timeout(self, args, nargs, kwnames, &timeout) < 0)
        return NULL;
    if (nargs != 2 || !PyLong_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "_cursor_fetch(row_base: int, sql: str)");
        return NULL;
    }
    long row_base = PyLong_AsLong(args[0]);
    if (row_base == -1 && PyErr_Occurred())
        return NULL;
    return run(self, args + 1, 1, RUN_CURSOR, timeout, row_base);
}

PyDoc_STRVAR(close_doc, "close($self, /)\n--\n\nClose the connection. Calling it again does nothing.");

static PyObject *Client_close(OxpgClient *self, PyObject *Py_UNUSED(ignored))
{
    if (forked(self)) {
        /* Not ours to close: forget it without touching the parent's session. */
        self->conn = NULL;
        Py_RETURN_NONE;
    }
    if (oxpg_client_lock(self) < 0)
        return NULL;
    self->in_pipeline = 0;
    PyMem_Free(self->pipeline.kinds);
    memset(&self->pipeline, 0, sizeof(self->pipeline));
    if (self->active_stream != NULL) {
        /* Its statement dies with the connection; its next() says so. */
        self->orphaned_result = 0;
        OxpgStream *stream = self->active_stream;
        self->active_stream = NULL;
        oxpg_stream_cut(stream);
    }
    oxpg_client_finish(self);
    oxpg_cache_reset(&self->cache, 0);
    oxpg_client_unlock(self);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(cancel_doc, "cancel($self, /)\n--\n\n"
                         "Ask the server to cancel the statement this client is running, from any\n"
                         "thread. The statement then raises oxpg.errors.QueryCanceled and the client\n"
                         "stays usable. Does nothing when no statement runs. Returns whether the\n"
                         "request reached the server.");

static PyObject *Client_cancel(OxpgClient *self, PyObject *Py_UNUSED(ignored))
{
    if (oxpg_client_check_process(self) < 0)
        return NULL;
    /* Not the client lock: the statement to cancel holds it. The cancel lock only
     * keeps conn from closing while its cancel handle is copied; the request travels
     * without it, or a close() (the statement's own timeout giving the connection
     * up, say) would wait for an unreachable server. */
    double deadline = oxpg_monotonic() + OXPG_CANCEL_SECONDS;
    PyLockStatus got;
    Py_BEGIN_ALLOW_THREADS
    got = PyThread_acquire_lock(self->cancel_lock, WAIT_LOCK);
    Py_END_ALLOW_THREADS
    if (got != PY_LOCK_ACQUIRED)
        return PyErr_NoMemory();
    OxpgCancel *request = self->conn != NULL ? oxpg_cancel_prepare(self->conn) : NULL;
    PyThread_release_lock(self->cancel_lock);
    int delivered = request != NULL && oxpg_cancel_deliver(request, deadline) == 0;
    return PyBool_FromLong(delivered);
}

PyDoc_STRVAR(take_notices_doc, "take_notices($self, /)\n--\n\n"
                               "Return the server notices received since the last call (oldest first)\n"
                               "and forget them. At most 64 are kept; older ones are dropped.");

static PyObject *Client_take_notices(OxpgClient *self, PyObject *Py_UNUSED(ignored))
{
    if (oxpg_client_check_process(self) < 0 || oxpg_client_lock(self) < 0)
        return NULL;
    PyObject *out = PyList_New(0);
    for (int i = 0; out != NULL && i < self->notice_count; i++) {
        const char *msg = self->notices[(self->notice_head + i) % OXPG_NOTICE_QUEUE];
        size_t len = strlen(msg);
        while (len > 0 && msg[len - 1] == '\n')
            len--;
        PyObject *s = PyUnicode_DecodeUTF8(msg, (Py_ssize_t)len, "replace");
        if (s == NULL || PyList_Append(out, s) < 0)
            Py_CLEAR(out);
        Py_XDECREF(s);
    }
    if (out != NULL)
        clear_notices(self);
    oxpg_client_unlock(self);
    return out;
}

PyDoc_STRVAR(statement_cache_info_doc, "statement_cache_info($self, /)\n--\n\n"
                                       "Counters of the prepared-statement cache: size, capacity,\n"
                                       "prepare_threshold, hits, misses, prepared, evictions.");

static PyObject *Client_statement_cache_info(OxpgClient *self, PyObject *Py_UNUSED(ignored))
{
    if (oxpg_client_check_process(self) < 0 || oxpg_client_lock(self) < 0)
        return NULL;
    PyObject *info = oxpg_cache_info(&self->cache);
    oxpg_client_unlock(self);
    return info;
}

static PyObject *Client_enter(OxpgClient *self, PyObject *Py_UNUSED(ignored))
{
    return Py_NewRef(self);
}

static PyObject *Client_exit(OxpgClient *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)args;
    (void)nargs;
    PyObject *r = Client_close(self, NULL);
    if (r == NULL)
        return NULL;
    Py_DECREF(r);
    Py_RETURN_FALSE;
}

static PyObject *Client_get_closed(OxpgClient *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(self->conn == NULL);
}

static PyObject *Client_get_broken(OxpgClient *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(self->broken);
}

/* Facts fixed at connect: never wait for the lock (a watchdog needs the pid of a
 * statement stuck holding it). Closed or lost, they raise as every use does. */
static PyObject *connection_fact(OxpgClient *self, int value)
{
    if (oxpg_client_check_process(self) < 0 || oxpg_client_check_open(self) < 0)
        return NULL;
    return PyLong_FromLong(value);
}

static PyObject *Client_get_server_version(OxpgClient *self, void *Py_UNUSED(closure))
{
    return connection_fact(self, self->server_version);
}

static PyObject *Client_get_backend_pid(OxpgClient *self, void *Py_UNUSED(closure))
{
    return connection_fact(self, self->backend_pid);
}

static PyObject *Client_get_command_timeout(OxpgClient *self, void *Py_UNUSED(closure))
{
    if (self->command_timeout < 0)
        Py_RETURN_NONE;
    return PyFloat_FromDouble(self->command_timeout);
}

PyDoc_STRVAR(check_timeout_doc, "_check_timeout($self, timeout, /)\n--\n\n"
                                "Raise TypeError or ValueError unless timeout is a value every call\n"
                                "accepts: for Python code that must refuse it before changing state.");

static PyObject *Client_check_timeout(OxpgClient *self, PyObject *value)
{
    double timeout;
    if (oxpg_client_timeout_value("timeout", value, self->command_timeout, &timeout) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *Client_get_transaction_status(OxpgClient *self, void *Py_UNUSED(closure))
{
    /* Never wait for a busy connection just to say it is busy. */
    if (self->owner == PyThread_get_thread_ident() || !PyThread_acquire_lock(self->lock, NOWAIT_LOCK))
        return PyLong_FromLong(PQTRANS_ACTIVE);
    PGTransactionStatusType status = self->conn != NULL ? PQtransactionStatus(self->conn) : PQTRANS_UNKNOWN;
    PyThread_release_lock(self->lock);
    return PyLong_FromLong(status);
}

static PyObject *Client_repr(OxpgClient *self)
{
    return PyUnicode_FromFormat("<oxpg.Client user=%R host=%R port=%R db=%R%s>", self->user, self->host, self->port,
                                self->dbname, self->conn == NULL ? " closed" : "");
}

static PyMethodDef client_methods[] = {
    {"query", (PyCFunction)(void (*)(void))Client_query, METH_FASTCALL | METH_KEYWORDS, query_doc},
    {"query_tuples", (PyCFunction)(void (*)(void))Client_query_tuples, METH_FASTCALL | METH_KEYWORDS, query_tuples_doc},
    {"execute", (PyCFunction)(void (*)(void))Client_execute, METH_FASTCALL | METH_KEYWORDS, execute_doc},
    {"executemany", (PyCFunction)(void (*)(void))oxpg_client_executemany, METH_FASTCALL | METH_KEYWORDS,
     oxpg_executemany_doc},
    {"close", (PyCFunction)Client_close, METH_NOARGS, close_doc},
    {"take_notices", (PyCFunction)Client_take_notices, METH_NOARGS, take_notices_doc},
    {"cancel", (PyCFunction)Client_cancel, METH_NOARGS, cancel_doc},
    {"stream", (PyCFunction)(void (*)(void))oxpg_client_stream, METH_FASTCALL | METH_KEYWORDS, oxpg_stream_doc},
    {"_cursor_fetch", (PyCFunction)(void (*)(void))Client_cursor_fetch, METH_FASTCALL | METH_KEYWORDS,
     cursor_fetch_doc},
    {"_start_query", (PyCFunction)(void (*)(void))oxpg_operation_start, METH_FASTCALL, oxpg_start_query_doc},
    {"_pipeline_enter", (PyCFunction)oxpg_pipeline_enter, METH_O, NULL},
    {"_pipeline_send", (PyCFunction)(void (*)(void))oxpg_pipeline_send, METH_FASTCALL, NULL},
    {"_pipeline_sync", (PyCFunction)oxpg_pipeline_sync, METH_O, NULL},
    {"_pipeline_next", (PyCFunction)(void (*)(void))oxpg_pipeline_next, METH_FASTCALL, NULL},
    {"_pipeline_exit", (PyCFunction)oxpg_pipeline_exit, METH_NOARGS, NULL},
    {"_check_timeout", (PyCFunction)Client_check_timeout, METH_O, check_timeout_doc},
    {"_set_type_decoder", (PyCFunction)(void (*)(void))oxpg_client_set_type_decoder, METH_FASTCALL, NULL},
    {"_set_type_encoder", (PyCFunction)(void (*)(void))oxpg_client_set_type_encoder, METH_FASTCALL, NULL},
    {"_type_encoders", (PyCFunction)oxpg_client_type_encoders, METH_NOARGS, NULL},
    {"statement_cache_info", (PyCFunction)Client_statement_cache_info, METH_NOARGS, statement_cache_info_doc},
    {"__enter__", (PyCFunction)Client_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)(void (*)(void))Client_exit, METH_FASTCALL, NULL},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef client_members[] = {
    {"host", T_OBJECT, offsetof(OxpgClient, host), READONLY, "Server host (or socket directory) connected to."},
    {"port", T_OBJECT, offsetof(OxpgClient, port), READONLY, "Server port, as libpq reports it (str)."},
    {"dbname", T_OBJECT, offsetof(OxpgClient, dbname), READONLY, "Database name."},
    {"user", T_OBJECT, offsetof(OxpgClient, user), READONLY, "User name."},
    {"_name_token", T_STRING_INPLACE, offsetof(OxpgClient, cache) + offsetof(OxpgStatementCache, token), READONLY,
     "Random hex digits, per client, in the names of its server-side objects (prepared statements, cursors): "
     "clients sharing a server session behind a pooler never use the same name."},
    {NULL, 0, 0, 0, NULL},
};

static PyGetSetDef client_getset[] = {
    {"closed", (getter)Client_get_closed, NULL, "True once closed or once the connection was lost.", NULL},
    {"broken", (getter)Client_get_broken, NULL, "True when the connection was lost (not closed by you).", NULL},
    {"server_version", (getter)Client_get_server_version, NULL, "Server version as an int (e.g. 150004).", NULL},
    {"backend_pid", (getter)Client_get_backend_pid, NULL, "Process id of the server backend.", NULL},
    {"command_timeout", (getter)Client_get_command_timeout, NULL,
     "The default timeout of the calls that take timeout= (seconds), or None.", NULL},
    {"_transaction_status", (getter)Client_get_transaction_status, NULL,
     "libpq's PGTransactionStatusType: 0 idle, 1 active, 2 in transaction, 3 in error, 4 unknown.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

/* ---- lifecycle ------------------------------------------------------------- */

static void Client_finalize(OxpgClient *self)
{
    if (self->conn == NULL || forked(self))
        return;
    PyObject *pending = oxpg_err_take();
    if (PyErr_ResourceWarning((PyObject *)self, 1, "unclosed %R: call close() or use 'with'", self) < 0)
        PyErr_WriteUnraisable((PyObject *)self);
    /* Nobody else holds a reference, so nobody else holds the lock. */
    oxpg_client_finish(self);
    oxpg_err_restore(pending);
}

static int Client_traverse(OxpgClient *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    /* Registered codecs may refer back to the client (a bound method). */
    return oxpg_types_traverse(&self->types, visit, arg);
}

static int Client_clear(OxpgClient *self)
{
    oxpg_types_clear_python(&self->types);
    return 0;
}

static void Client_dealloc(OxpgClient *self)
{
    if (PyObject_CallFinalizerFromDealloc((PyObject *)self) < 0)
        return; /* resurrected */
    PyTypeObject *type = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    oxpg_client_finish(self);
    clear_notices(self);
    oxpg_cache_free(&self->cache);
    oxpg_types_free(&self->types);
    PyMem_Free(self->pipeline.kinds);
    if (self->lock != NULL)
        PyThread_free_lock(self->lock);
    if (self->cancel_lock != NULL)
        PyThread_free_lock(self->cancel_lock);
    Py_CLEAR(self->timezone);
    Py_CLEAR(self->host);
    Py_CLEAR(self->port);
    Py_CLEAR(self->dbname);
    Py_CLEAR(self->user);
    type->tp_free((PyObject *)self);
    Py_DECREF(type);
}

static PyType_Slot client_slots[] = {
    {Py_tp_doc, "A connection to PostgreSQL. Create one with oxpg.connect()."},
    {Py_tp_methods, client_methods},
    {Py_tp_members, client_members},
    {Py_tp_getset, client_getset},
    {Py_tp_repr, Client_repr},
    {Py_tp_traverse, Client_traverse},
    {Py_tp_clear, Client_clear},
    {Py_tp_finalize, Client_finalize},
    {Py_tp_dealloc, Client_dealloc},
    {0, NULL},
};

PyType_Spec oxpg_client_spec = {
    .name = "oxpg._oxpg.Client",
    .basicsize = sizeof(OxpgClient),
    /* Not a base type: oxpg.Client (Python) holds one and adds the policy. */
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = client_slots,
};
