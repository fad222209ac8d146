/* Describing a statement before it runs: its result columns' types, looked up in the
 * catalog where the client does not know them, so the call can choose the result
 * format (and stream() its decoders) before anything runs on the server. */
#include "oxpg/client.h"
#include "oxpg/conn.h"
#include "oxpg/wait.h"

typedef struct {
    PGresult *described; /* the Describe's answer */
    int results_seen;    /* non-NULL results before the sync: Parse's, then Describe's */
} DescribeReading;

/* Results of Parse, Describe and the sync, in pipeline mode: each command's results
 * end with a NULL. The first error explains the rest (an aborted pipeline). */
static OxpgReadStep keep_description(OxpgClient *self, OxpgCall *call, PGresult *r, void *ctx)
{
    (void)self;
    DescribeReading *reading = ctx;
    if (r == NULL)
        return OXPG_READ_MORE;
    ExecStatusType status = PQresultStatus(r);
    if (status == PGRES_PIPELINE_SYNC) {
        PQclear(r);
        return OXPG_READ_STOP;
    }
    if (oxpg_result_is_error(r)) {
        oxpg_call_keep_error(call, r);
    } else if (status == PGRES_COMMAND_OK && reading->results_seen++ == 1) {
        PQclear(reading->described);
        reading->described = r;
    } else {
        PQclear(r);
    }
    return OXPG_READ_MORE;
}

PGresult *oxpg_client_describe(OxpgClient *self, OxpgCall *call, const char *sql, const OxpgParams *p)
{
    if (oxpg_client_reset_single_row(self, call) < 0)
        return NULL;
    PGconn *conn = self->conn;
    int sent;
    /* Parse and Describe in one round trip: pipeline mode lets both go before the sync. */
    Py_BEGIN_ALLOW_THREADS
    sent = PQenterPipelineMode(conn) == 1 && PQsendPrepare(conn, "", sql, p->count, p->types) == 1 &&
           PQsendDescribePrepared(conn, "") == 1;
    Py_END_ALLOW_THREADS
    if (!sent || oxpg_conn_pipeline_sync(self) < 0) {
        if (sent)
            return NULL; /* oxpg_conn_pipeline_sync raised */
        oxpg_conn_send_failed(self, "could not send the query");
        return NULL;
    }
    DescribeReading reading = {NULL, 0};
    int rc = oxpg_wait_read(self, call, keep_description, &reading);
    if (rc == 0 && self->conn != NULL && PQexitPipelineMode(self->conn) != 1) {
        PyErr_Format(self->st->InterfaceError, "could not leave pipeline mode after describing a statement: %s",
                     PQerrorMessage(self->conn));
        rc = -1;
    }
    if (rc == 0 && call->error != NULL) {
        oxpg_conn_raise_error(self, call);
        rc = -1;
    }
    if (rc == 0 && reading.described == NULL) {
        PyErr_SetString(self->st->InterfaceError, "the server sent no description of the statement");
        rc = -1;
    }
    if (rc == 0)
        rc = oxpg_client_resolve_described(self, call, reading.described);
    if (rc < 0) {
        PQclear(reading.described);
        return NULL;
    }
    return reading.described;
}

int oxpg_client_describe_needs_text(OxpgClient *self, const PGresult *described)
{
    for (int c = 0; c < PQnfields(described); c++) {
        if (oxpg_types_need_text_results(&self->types, PQftype(described, c)))
            return 1;
    }
    return 0;
}
