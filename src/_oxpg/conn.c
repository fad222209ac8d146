/* The connection core's result path. Every result of every statement, whichever
 * call sent it (query, stream, pipeline, executemany, the client's own catalog and
 * text-form round trips), comes through oxpg_conn_next, and every call reads its
 * results with oxpg_conn_read: one place for waiting, timeouts, Ctrl-C, lost
 * connections, COPY refusal and the bookkeeping a session's state needs. */
#include "oxpg/conn.h"
#include "oxpg/cancel.h"
#include "oxpg/compat.h"
#include "oxpg/errors.h"
#include "oxpg/wait.h"

#include <stdlib.h>

/* PG_UTF8 in PostgreSQL's encoding enum (stable across versions). */
#define PG_UTF8 6

/* Bits of OxpgClient.notes, set by oxpg_conn_next, acted on by oxpg_conn_settle. */
#define NOTE_STATEMENTS_GONE 1u /* the server dropped every prepared statement */
#define NOTE_SCHEMA_CHANGED 2u  /* this session changed (or rolled back) the schema */
#define NOTE_TYPES_STALE 4u     /* temporary or altered types: ask the catalog again */
#define NOTE_ENCODING 8u        /* client_encoding is no longer UTF8 */

/* Division by zero unless the session still talks UTF-8. current_setting() is
 * stable, so the planner cannot fold it away: it runs where it stands. */
const char oxpg_conn_encoding_guard_sql[] =
    "SELECT 1/(pg_catalog.current_setting('client_encoding')='UTF8')::int";

void oxpg_call_init(OxpgCall *call, double timeout)
{
    call->timeout = timeout;
    call->deadline = timeout > 0 ? oxpg_monotonic() + timeout : -1;
    call->error = NULL;
    call->copy_refused = 0;
}

void oxpg_call_clear(OxpgCall *call)
{
    PQclear(call->error);
    call->error = NULL;
}

int oxpg_result_is_error(const PGresult *r)
{
    ExecStatusType status = PQresultStatus(r);
    return status == PGRES_FATAL_ERROR || status == PGRES_BAD_RESPONSE || status == PGRES_NONFATAL_ERROR;
}

void oxpg_call_keep_error(OxpgCall *call, PGresult *r)
{
    if (call->error == NULL)
        call->error = r;
    else
        PQclear(r);
}

/* ---- bookkeeping ------------------------------------------------------------- */

static int starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Command tags that may change what a cached statement or a catalog type
 * describes. DDL run inside DO blocks and functions reports no tag of its own and
 * is not seen here: the server's 0A000 and 26000 cover what it breaks. */
static int is_schema_change(const char *tag)
{
    switch (tag[0]) {
    case 'A':
        return starts_with(tag, "ALTER ");
    case 'C':
        return starts_with(tag, "CREATE ");
    case 'D':
        return starts_with(tag, "DROP ");
    case 'I':
        return starts_with(tag, "IMPORT ");
    default:
        return 0;
    }
}

static void note_command(OxpgClient *self, const PGresult *r)
{
    const char *tag = PQcmdStatus((PGresult *)r);
    /* SELECT, INSERT, UPDATE, ... : nothing to note, decided on the first byte. */
    switch (tag[0]) {
    case 'A':
    case 'C':
    case 'D':
    case 'I':
    case 'R':
        break;
    default:
        return;
    }
    if (strcmp(tag, "DISCARD ALL") == 0 || strcmp(tag, "DEALLOCATE ALL") == 0) {
        self->notes |= NOTE_STATEMENTS_GONE;
        if (tag[1] == 'I')
            self->notes |= NOTE_TYPES_STALE;
    } else if (strcmp(tag, "DISCARD TEMP") == 0) {
        self->notes |= NOTE_TYPES_STALE;
    } else if (is_schema_change(tag)) {
        /* Remembered for the transaction: rolling it back undoes the change, and
         * statements prepared since then describe what no longer exists. */
        self->ddl_in_transaction = 1;
        self->notes |= NOTE_SCHEMA_CHANGED | NOTE_TYPES_STALE;
    } else if (strcmp(tag, "ROLLBACK") == 0 && self->ddl_in_transaction) {
        self->notes |= NOTE_SCHEMA_CHANGED | NOTE_TYPES_STALE;
    }
}

/* ReadyForQuery was read (a statement's end, or a pipeline sync): the server's
 * ParameterStatus reports (client_encoding among them) come just before it. */
static void note_ready(OxpgClient *self)
{
    PGconn *conn = self->conn;
    if (OXPG_UNLIKELY(PQclientEncoding(conn) != PG_UTF8))
        self->notes |= NOTE_ENCODING;
    if (OXPG_UNLIKELY(self->ddl_in_transaction)) {
        PGTransactionStatusType ts = PQtransactionStatus(conn);
        /* An error rolled back (or dooms) the transaction that changed the schema. */
        if (ts == PQTRANS_INERROR || self->error_since_ready)
            self->notes |= NOTE_SCHEMA_CHANGED | NOTE_TYPES_STALE;
        if (ts == PQTRANS_IDLE)
            self->ddl_in_transaction = 0;
    }
    self->error_since_ready = 0;
}

PGresult *oxpg_conn_next(OxpgClient *self)
{
    PGconn *conn = self->conn;
    PGresult *r = PQgetResult(conn);
    if (r == NULL) {
        /* Outside pipeline mode the end of a statement is its ReadyForQuery. */
        if (PQpipelineStatus(conn) == PQ_PIPELINE_OFF)
            note_ready(self);
        return NULL;
    }
    switch (PQresultStatus(r)) {
    case PGRES_COMMAND_OK:
    case PGRES_TUPLES_OK:
        note_command(self, r);
        break;
    case PGRES_FATAL_ERROR:
    case PGRES_BAD_RESPONSE:
    case PGRES_NONFATAL_ERROR:
        self->error_since_ready = 1;
        break;
    case PGRES_PIPELINE_SYNC:
        if (self->syncs_pending > 0)
            self->syncs_pending--;
        note_ready(self);
        break;
    default:
        break;
    }
    return r;
}

int oxpg_conn_encoding_changed(const OxpgClient *self)
{
    return (self->notes & NOTE_ENCODING) != 0;
}

int oxpg_conn_pipeline_sync(OxpgClient *self)
{
    if (!PQpipelineSync(self->conn))
        return oxpg_conn_send_failed(self, "could not send a pipeline sync");
    self->syncs_pending++;
    return 0;
}

/* ---- sending ------------------------------------------------------------------ */

int oxpg_conn_send_failed(OxpgClient *self, const char *what)
{
    if (self->conn == NULL || PQstatus(self->conn) == CONNECTION_BAD)
        oxpg_client_lost(self);
    else
        oxpg_raise_conn_error(self->st, self->st->OperationalError, self->conn, what);
    return -1;
}

static void raise_timeout(OxpgClient *self, const OxpgCall *call)
{
    char message[160];
    PyOS_snprintf(message, sizeof(message),
                  "the statement did not finish within its timeout of %.3g s and was cancelled on the server",
                  call->timeout);
    PyErr_SetString(self->st->QueryTimeoutError, message);
}

int oxpg_conn_flush(OxpgClient *self, OxpgCall *call)
{
    PGconn *conn = self->conn;
    for (;;) {
        int flushed = PQflush(conn);
        if (flushed == 0)
            return 0;
        if (flushed < 0) {
            oxpg_client_lost(self);
            return -1;
        }
        OxpgWaitStatus ws = oxpg_wait_socket(conn, OXPG_WAIT_READ | OXPG_WAIT_WRITE, call->deadline);
        if (ws == OXPG_WAIT_TIMEOUT)
            raise_timeout(self, call);
        if (ws == OXPG_WAIT_ERROR || ws == OXPG_WAIT_TIMEOUT)
            return -1;
        if (ws != OXPG_WAIT_READY || !PQconsumeInput(conn)) {
            oxpg_client_lost(self);
            return -1;
        }
    }
}

/* ---- ending a statement early ----------------------------------------------- */

/* How long a cancelled statement may take to finish before the connection is given
 * up: a timeout's error must come within 10% of it (at least 0.1 s), Ctrl-C's
 * within a second at most, whatever the timeout. A server that cannot be reached (a network black hole)
 * costs the connection, never the caller's time. */
static double grace(const OxpgCall *call)
{
    if (call->deadline >= 0 && call->timeout > 0) {
        double grace = call->timeout * 0.1 > 0.1 ? call->timeout * 0.1 : 0.1;
        /* Interrupted before the deadline (Ctrl-C under a long command_timeout):
         * never longer than without a timeout. */
        if (grace > 1.0 && oxpg_monotonic() < call->deadline)
            grace = 1.0;
        return grace;
    }
    return 1.0;
}

/* Read and discard to the end of the statement (outside pipeline mode) or to the
 * pipeline's last sync, then leave pipeline mode. COPY data is discarded, COPY
 * input failed. Signals are not checked: an exception is already on its way.
 * Returns -1 when the connection had to be given up. */
static int drain(OxpgClient *self, double deadline)
{
    PGconn *conn = self->conn;
    int pipeline = PQpipelineStatus(conn) != PQ_PIPELINE_OFF;
    /* Nothing after the last sync ran yet; ask for an end to read up to. */
    if (pipeline && self->syncs_pending == 0 && oxpg_conn_pipeline_sync(self) < 0) {
        PyErr_Clear();
        return -1;
    }
    int synced_tail = 0;
    for (;;) {
        if (pipeline && self->syncs_pending == 0) {
            if (PQexitPipelineMode(conn) == 1)
                return 0;
            /* Statements queued after the last sync are still to come: one more
             * sync ends them (once; failing again means out of step). */
            if (synced_tail++ || oxpg_conn_pipeline_sync(self) < 0) {
                PyErr_Clear();
                return -1;
            }
            continue;
        }
        if (oxpg_wait_result_nointr(conn, deadline) != OXPG_WAIT_READY)
            return -1;
        PGresult *r = oxpg_conn_next(self);
        if (r == NULL) {
            if (!pipeline)
                return 0;
            continue;
        }
        ExecStatusType status = PQresultStatus(r);
        PQclear(r);
        if (status == PGRES_COPY_IN) {
            if (PQputCopyEnd(conn, "oxpg: query cancelled") < 0)
                return -1;
        } else if (status == PGRES_COPY_OUT) {
            char *buf = NULL;
            int got;
            while ((got = PQgetCopyData(conn, &buf, 1)) > 0)
                PQfreemem(buf);
            if (got == -2)
                return -1;
            if (got == 0 && oxpg_wait_socket(conn, OXPG_WAIT_READ, deadline) == OXPG_WAIT_READY) {
                if (!PQconsumeInput(conn))
                    return -1;
            }
        }
        if (PQstatus(conn) == CONNECTION_BAD)
            return -1;
    }
}

/* An exception is pending mid-statement (timeout, Ctrl-C, a value that cannot be
 * decoded): cancel the statement on the server and drain, keeping the exception.
 * A connection that cannot be brought back in step is closed. */
static void interrupt(OxpgClient *self, const OxpgCall *call)
{
    PyObject *pending = oxpg_err_take();
    double until = oxpg_monotonic() + grace(call);
    oxpg_cancel_request(self->conn, until - oxpg_monotonic());
    if (drain(self, until) < 0) {
        self->broken = 1;
        oxpg_client_finish(self);
    }
    oxpg_err_restore(pending);
}

void oxpg_conn_interrupt(OxpgClient *self, const OxpgCall *call)
{
    if (self->conn != NULL)
        interrupt(self, call);
}

/* A COPY the calling API cannot serve: end it without losing step (input is
 * failed, output read and dropped). Returns 0, or -1 with an exception set. */
static int refuse_copy(OxpgClient *self, OxpgCall *call, ExecStatusType status)
{
    PGconn *conn = self->conn;
    call->copy_refused = 1;
    if (status == PGRES_COPY_IN) {
        if (PQputCopyEnd(conn, "oxpg: COPY FROM STDIN is not supported by this call") < 0) {
            oxpg_client_lost(self);
            return -1;
        }
        return 0;
    }
    char *buf = NULL;
    for (;;) {
        int got;
        while ((got = PQgetCopyData(conn, &buf, 1)) > 0)
            PQfreemem(buf);
        if (got == -1)
            return 0;
        if (got == -2) {
            oxpg_client_lost(self);
            return -1;
        }
        OxpgWaitStatus ws = oxpg_wait_socket(conn, OXPG_WAIT_READ, call->deadline);
        if (ws == OXPG_WAIT_TIMEOUT)
            raise_timeout(self, call);
        if (ws == OXPG_WAIT_ERROR || ws == OXPG_WAIT_TIMEOUT) {
            interrupt(self, call);
            return -1;
        }
        if (ws != OXPG_WAIT_READY || !PQconsumeInput(conn)) {
            oxpg_client_lost(self);
            return -1;
        }
    }
}

/* ---- the read loop ----------------------------------------------------------- */

int oxpg_conn_read(OxpgClient *self, OxpgCall *call, oxpg_result_fn consume, void *ctx)
{
    PGconn *conn = self->conn;
    int ends_in_a_row = 0;
    for (;;) {
        OxpgWaitStatus ws = oxpg_wait_result(conn, call->deadline);
        if (OXPG_UNLIKELY(ws != OXPG_WAIT_READY)) {
            if (ws == OXPG_WAIT_TIMEOUT)
                raise_timeout(self, call);
            if (ws == OXPG_WAIT_ERROR || ws == OXPG_WAIT_TIMEOUT)
                interrupt(self, call);
            else
                oxpg_client_raise_lost(self, call->error);
            return -1;
        }
        PGresult *r = oxpg_conn_next(self);
        if (r != NULL) {
            ExecStatusType status = PQresultStatus(r);
            if (OXPG_UNLIKELY(status == PGRES_COPY_IN || status == PGRES_COPY_OUT)) {
                PQclear(r);
                int in_pipeline = PQpipelineStatus(conn) != PQ_PIPELINE_OFF;
                if (refuse_copy(self, call, status) < 0) {
                    if (in_pipeline && self->conn == NULL) {
                        PyErr_Clear();
                        PyErr_SetString(self->st->NotSupportedError,
                                        "COPY cannot run inside a pipeline; the connection had to be closed");
                    }
                    return -1;
                }
                continue;
            }
            ends_in_a_row = 0;
        } else if (PQpipelineStatus(conn) == PQ_PIPELINE_OFF || ++ends_in_a_row == 2) {
            /* The statement is over (in a pipeline: two ends in a row mean nothing
             * queued is left, so reading on would never stop). */
            OxpgReadStep step = consume(self, call, NULL, ctx);
            if (step == OXPG_READ_FAIL) {
                return -1;
            }
            return 0;
        }
        OxpgReadStep step = consume(self, call, r, ctx);
        if (OXPG_LIKELY(step == OXPG_READ_MORE))
            continue;
        if (step == OXPG_READ_STOP)
            return 0;
        /* The consumer failed (out of memory, a value Python cannot hold): end the
         * statement so the client stays in step. */
        if (self->conn != NULL)
            interrupt(self, call);
        return -1;
    }
}

int oxpg_conn_raise_error(OxpgClient *self, OxpgCall *call)
{
    OxpgState *st = self->st;
    const PGresult *error = call->error;
    /* FATAL: the server is ending the session, whether or not the socket has said
     * so yet. */
    const char *severity = PQresultErrorField(error, PG_DIAG_SEVERITY_NONLOCALIZED);
    int lost = self->conn == NULL || PQstatus(self->conn) == CONNECTION_BAD ||
               (severity != NULL && (strcmp(severity, "FATAL") == 0 || strcmp(severity, "PANIC") == 0));
    oxpg_raise_result_error(st, error, lost ? st->OperationalError : st->DatabaseError);
    if (lost && self->conn != NULL)
        oxpg_client_lost(self);
    return -1;
}

/* ---- settling a call ------------------------------------------------------------ */

OxpgReadStep oxpg_conn_discard_result(OxpgClient *self, OxpgCall *call, PGresult *r, void *ctx)
{
    (void)self;
    (void)ctx;
    if (r != NULL && oxpg_result_is_error(r))
        oxpg_call_keep_error(call, r);
    else
        PQclear(r);
    return OXPG_READ_MORE;
}

/* Replace the pending exception (if any, kept as the context) with InterfaceError. */
static void raise_encoding_error(OxpgClient *self, PyObject *cause, const char *message)
{
    PyErr_SetString(self->st->InterfaceError, message);
    if (cause != NULL) {
        PyObject *exc = oxpg_err_take();
        PyException_SetContext(exc, cause); /* steals cause */
        oxpg_err_restore(exc);
    }
}

/* PostgreSQL must keep talking UTF-8 to us: a changed client_encoding is set back.
 * Returns 0 when it already is back (a rollback undid the change), else raises. */
static int restore_encoding(OxpgClient *self)
{
    PGconn *conn = self->conn;
    if (PQclientEncoding(conn) == PG_UTF8)
        return 0;
    PyObject *cause = oxpg_err_take();
    if (cause != NULL && !PyErr_GivenExceptionMatches(cause, self->st->Error)) {
        /* KeyboardInterrupt and the like are the caller's business: keep them, and
         * set the encoding back at the end of the next call. */
        self->notes |= NOTE_ENCODING;
        oxpg_err_restore(cause);
        return -1;
    }
    if (PQtransactionStatus(conn) == PQTRANS_INERROR) {
        /* Nothing but a rollback runs now, and it undoes a change made inside the
         * block; the next call checks again. */
        self->notes |= NOTE_ENCODING;
        raise_encoding_error(self, cause,
                             "client_encoding must stay UTF8 with oxpg; the transaction is aborted: roll it "
                             "back (which also undoes the change)");
        return -1;
    }
    OxpgCall call;
    oxpg_call_init(&call, 5.0);
    int restored = 0;
    if (PQsendQuery(conn, "SET client_encoding TO 'UTF8'") &&
        oxpg_conn_read(self, &call, oxpg_conn_discard_result, NULL) == 0 && call.error == NULL)
        restored = self->conn != NULL && PQclientEncoding(self->conn) == PG_UTF8;
    oxpg_call_clear(&call);
    PyErr_Clear();
    if (!restored && self->conn != NULL) {
        self->broken = 1;
        oxpg_client_finish(self);
    }
    raise_encoding_error(self, cause,
                         restored ? "client_encoding must stay UTF8 with oxpg; the setting was changed back to "
                                    "UTF8 (a pipeline or executemany batch that changed it was not committed)"
                                  : "client_encoding must stay UTF8 with oxpg, and it could not be set back; the "
                                    "connection was closed");
    return -1;
}

int oxpg_conn_raise_encoding_guard(OxpgClient *self)
{
    PyErr_SetString(self->st->InterfaceError,
                    "a statement changed client_encoding, which must stay UTF8 with oxpg: the transaction it "
                    "ran in was rolled back (outside a transaction block nothing of the batch was committed; "
                    "inside one, roll it back)");
    return -1;
}

int oxpg_conn_settle(OxpgClient *self)
{
    if (OXPG_LIKELY(self->notes == 0 && self->conn != NULL))
        return 0;
    if (self->conn == NULL) {
        /* A lost connection took its prepared statements with it. */
        self->notes = 0;
        self->ddl_in_transaction = 0;
        return oxpg_cache_reset(&self->cache, 0);
    }
    unsigned notes = self->notes;
    self->notes = 0;
    int rc = 0;
    if (notes & (NOTE_STATEMENTS_GONE | NOTE_SCHEMA_CHANGED)) {
        PyObject *pending = oxpg_err_take();
        rc = oxpg_cache_reset(&self->cache, !(notes & NOTE_STATEMENTS_GONE));
        if (pending != NULL) {
            PyErr_Clear();
            oxpg_err_restore(pending);
            rc = -1;
        }
    }
    if (notes & NOTE_TYPES_STALE)
        oxpg_types_forget_catalog(&self->types);
    if (notes & NOTE_ENCODING)
        rc = restore_encoding(self);
    if (self->conn == NULL)
        oxpg_cache_reset(&self->cache, 0);
    return rc < 0 || PyErr_Occurred() ? -1 : 0;
}
