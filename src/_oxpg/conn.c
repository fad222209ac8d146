/* The connection core's result path. Every result of every statement, whichever
 * call sent it (query, stream, pipeline, executemany, the client's own catalog and
 * text-form round trips), comes through oxpg_conn_next, which keeps the books a
 * session's state needs. The read operation (ops/read_op.c) is built on it, and
 * waiting is the drivers' business (wait.c). Nothing here waits, except the cancel
 * request (cancel.c, bounded by the call's grace). */
#include "oxpg/conn.h"
#include "oxpg/cancel.h"
#include "oxpg/compat.h"
#include "oxpg/errors.h"
#include "oxpg/read_op.h"

#include <stdlib.h>



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

/* A command tag that may change what a cached statement or a catalog type
 * describes, or that dropped the session's prepared statements; decided on the
 * first bytes, so INSERT/UPDATE/SELECT cost a switch. DDL run inside DO blocks and
 * functions reports no tag of its own and is not seen here: the server's 0A000,
 * 26000 and XX000 cover what it breaks. */
static void note_command(OxpgClient *self, const PGresult *r)
{
    const char *tag = PQcmdStatus((PGresult *)r);
    int schema = 0;
    switch (tag[0]) {
    case 'A':
        schema = starts_with(tag, "ALTER ");
        break;
    case 'C':
        schema = tag[1] == 'R' && starts_with(tag, "CREATE ");
        break;
    case 'I':
        schema = tag[1] == 'M' && starts_with(tag, "IMPORT ");
        break;
    case 'D':
        if (strcmp(tag, "DISCARD ALL") == 0)
            self->notes |= OXPG_NOTE_STATEMENTS_GONE | OXPG_NOTE_TYPES_STALE;
        else if (strcmp(tag, "DEALLOCATE ALL") == 0)
            self->notes |= OXPG_NOTE_STATEMENTS_GONE;
        else if (strcmp(tag, "DISCARD TEMP") == 0)
            self->notes |= OXPG_NOTE_TYPES_STALE;
        else
            schema = starts_with(tag, "DROP ");
        break;
    case 'R':
        /* Rolling back a transaction that changed the schema undoes the change, and
         * statements prepared since then describe what no longer exists. */
        if (self->ddl_in_transaction && strcmp(tag, "ROLLBACK") == 0)
            self->notes |= OXPG_NOTE_SCHEMA_CHANGED | OXPG_NOTE_TYPES_STALE;
        break;
    default:
        break;
    }
    if (OXPG_UNLIKELY(schema)) {
        self->ddl_in_transaction = 1; /* remembered for a ROLLBACK */
        self->notes |= OXPG_NOTE_SCHEMA_CHANGED | OXPG_NOTE_TYPES_STALE;
    }
}

/* ReadyForQuery was read (a statement's end, or a pipeline sync): the server's
 * ParameterStatus reports (client_encoding among them) come just before it. */
static void note_ready(OxpgClient *self)
{
    PGconn *conn = self->conn;
    if (OXPG_UNLIKELY(PQclientEncoding(conn) != OXPG_PG_UTF8))
        self->notes |= OXPG_NOTE_ENCODING;
    if (OXPG_UNLIKELY(self->ddl_in_transaction)) {
        PGTransactionStatusType ts = PQtransactionStatus(conn);
        /* An error rolled back (or dooms) the transaction that changed the schema. */
        if (ts == PQTRANS_INERROR || self->error_since_ready)
            self->notes |= OXPG_NOTE_SCHEMA_CHANGED | OXPG_NOTE_TYPES_STALE;
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
    return (self->notes & OXPG_NOTE_ENCODING) != 0;
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

void oxpg_call_raise_timeout(OxpgClient *self, const OxpgCall *call)
{
    char message[160];
    PyOS_snprintf(message, sizeof(message),
                  "the statement did not finish within its timeout of %.3g s and was cancelled on the server",
                  call->timeout);
    PyErr_SetString(self->st->QueryTimeoutError, message);
}

/* ---- ending a statement early ----------------------------------------------- */

/* How long a cancelled statement may take to finish before the connection is given
 * up: a timeout's error must come within 10% of it (at least 0.1 s), Ctrl-C's
 * within a second at most, whatever the timeout. A server that cannot be reached
 * (a network black hole) costs the connection, never the caller's time. */
double oxpg_call_grace(const OxpgCall *call)
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

void oxpg_conn_send_cancel(OxpgClient *self, double seconds)
{
    oxpg_cancel_request(self->conn, seconds);
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

int oxpg_conn_raise_encoding_guard(OxpgClient *self)
{
    PyErr_SetString(self->st->InterfaceError,
                    "a statement changed client_encoding, which must stay UTF8 with oxpg: the transaction it "
                    "ran in was rolled back (outside a transaction block nothing of the batch was committed; "
                    "inside one, roll it back)");
    return -1;
}
