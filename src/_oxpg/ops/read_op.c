/* The read operation as a state machine that never waits (the model is libpq's own
 * PQconnectPoll): each step flushes what is queued, reads what the socket has,
 * hands every complete result to the consumer and says what it needs next. COPY
 * results the calling API cannot serve are ended without losing step; after an
 * interruption the rest of the statement (or pipeline) is read and discarded. */
#include "oxpg/read_op.h"
#include "oxpg/compat.h"

/* Where the op stands besides reading results. */
enum {
    PHASE_RESULTS = 0,  /* reading results */
    PHASE_COPY_OUT = 1, /* a refused (or cancelled) COPY TO: its data is read and dropped */
    PHASE_COPY_END = 2, /* a refused (or cancelled) COPY FROM: the CopyFail is to be queued */
};

void oxpg_read_op_init(OxpgReadOp *op, OxpgCall *call, oxpg_result_fn consume, void *ctx)
{
    op->call = call;
    op->consume = consume;
    op->ctx = ctx;
    op->phase = PHASE_RESULTS;
    op->ends_in_a_row = 0;
    op->draining = 0;
    op->flush_only = 0;
    op->stepped = 0;
    op->synced_tail = 0;
    op->drain_deadline = -1;
    op->pending = NULL;
}

void oxpg_read_op_clear(OxpgReadOp *op)
{
    Py_CLEAR(op->pending);
}

/* The drain is over: the exception that interrupted the op is raised. */
static OxpgIO drained(OxpgReadOp *op)
{
    PyErr_Clear();
    oxpg_err_restore(op->pending); /* steals it */
    op->pending = NULL;
    op->draining = 0;
    return OXPG_IO_FAILED;
}

void oxpg_read_op_abandon(OxpgClient *self, OxpgReadOp *op)
{
    if (self->conn != NULL) {
        self->broken = 1;
        oxpg_client_finish(self);
    }
    if (op->draining)
        drained(op);
}

/* The connection failed under the op. */
static OxpgIO lost(OxpgClient *self, OxpgReadOp *op)
{
    if (op->draining) {
        oxpg_read_op_abandon(self, op);
        return OXPG_IO_FAILED;
    }
    if (self->conn != NULL)
        oxpg_client_raise_lost(self, op->call->error);
    else if (!PyErr_Occurred())
        PyErr_SetString(self->st->OperationalError, "the connection was lost");
    return OXPG_IO_FAILED;
}

void oxpg_read_op_interrupt(OxpgClient *self, OxpgReadOp *op)
{
    PyObject *pending = oxpg_err_take();
    if (op->draining) {
        /* Already on the way out with an earlier exception: that one explains it. */
        Py_XDECREF(pending);
        return;
    }
    op->pending = pending;
    op->draining = 1;
    op->drain_deadline = oxpg_monotonic() + oxpg_call_grace(op->call);
    if (self->conn == NULL)
        return;
    oxpg_conn_send_cancel(self, op->drain_deadline - oxpg_monotonic());
    /* Nothing after the last sync ran yet; ask for an end to read up to. */
    if (PQpipelineStatus(self->conn) != PQ_PIPELINE_OFF && self->syncs_pending == 0 &&
        oxpg_conn_pipeline_sync(self) < 0)
        PyErr_Clear();
}

/* Flush what is queued. 0: all out; 1: more to write; -1: the connection failed. */
static int flush(PGconn *conn)
{
    int flushed = PQflush(conn);
    return flushed < 0 ? -1 : flushed > 0;
}

/* Read and drop the rows of a COPY TO. 0: done; 1: more to come; -1: failed. */
static int drop_copy_data(PGconn *conn)
{
    char *buf = NULL;
    int got;
    while ((got = PQgetCopyData(conn, &buf, 1)) > 0)
        PQfreemem(buf);
    return got == -1 ? 0 : got == 0 ? 1 : -1;
}

/* The statement is over (outside pipeline mode: its end; in a pipeline, when
 * draining: the last sync's end). */
static OxpgIO finish_drain(OxpgClient *self, OxpgReadOp *op)
{
    if (PQpipelineStatus(self->conn) != PQ_PIPELINE_OFF && PQexitPipelineMode(self->conn) != 1) {
        /* Statements queued after the last sync are still to come: one more sync
         * ends them (once; failing again means out of step). */
        if (op->synced_tail++ || oxpg_conn_pipeline_sync(self) < 0) {
            PyErr_Clear();
            oxpg_read_op_abandon(self, op);
            return OXPG_IO_FAILED;
        }
        return OXPG_IO_WANT_READ;
    }
    return drained(op);
}

/* One result while draining: dropped; the end of what must be read ends the op. */
static OxpgIO discard(OxpgClient *self, OxpgReadOp *op, PGresult *r, int *over)
{
    PGconn *conn = self->conn;
    int pipeline = PQpipelineStatus(conn) != PQ_PIPELINE_OFF;
    *over = 0;
    if (r == NULL) {
        if (!pipeline)
            *over = 1;
        return OXPG_IO_WANT_READ;
    }
    ExecStatusType status = PQresultStatus(r);
    PQclear(r);
    if (status == PGRES_COPY_IN)
        op->phase = PHASE_COPY_END;
    else if (status == PGRES_COPY_OUT)
        op->phase = PHASE_COPY_OUT;
    else if (status == PGRES_PIPELINE_SYNC && self->syncs_pending == 0)
        *over = 1;
    return OXPG_IO_WANT_READ;
}

OxpgIO oxpg_read_op_step(OxpgClient *self, OxpgReadOp *op)
{
    PGconn *conn = self->conn;
    if (conn == NULL)
        return lost(self, op);
    /* Non-blocking mode: what was sent may still sit in libpq's output buffer, and
     * reading meanwhile keeps a server that waits for us to read from stalling. */
    int more = flush(conn);
    /* Right after sending nothing can be there yet: the first step reads only what
     * libpq already holds, saving a recv() per statement. */
    if (more < 0 || (op->stepped && !PQconsumeInput(conn)))
        return lost(self, op);
    op->stepped = 1;
    if (more)
        return OXPG_IO_WANT_WRITE;
    if (op->flush_only)
        return OXPG_IO_DONE;
    for (;;) {
        if (OXPG_UNLIKELY(op->phase == PHASE_COPY_END)) {
            int put = PQputCopyEnd(conn, op->draining ? "oxpg: query cancelled"
                                                      : "oxpg: COPY FROM STDIN is not supported by this call");
            if (put < 0)
                return lost(self, op);
            if (put == 0)
                return OXPG_IO_WANT_WRITE;
            op->phase = PHASE_RESULTS;
            if ((more = flush(conn)) != 0)
                return more < 0 ? lost(self, op) : OXPG_IO_WANT_WRITE;
        } else if (OXPG_UNLIKELY(op->phase == PHASE_COPY_OUT)) {
            int left = drop_copy_data(conn);
            if (left < 0)
                return lost(self, op);
            if (left > 0)
                return OXPG_IO_WANT_READ;
            op->phase = PHASE_RESULTS;
        }
        if (PQisBusy(conn))
            return OXPG_IO_WANT_READ;
        PGresult *r = oxpg_conn_next(self);
        if (OXPG_UNLIKELY(op->draining)) {
            int over;
            discard(self, op, r, &over);
            if (over) {
                OxpgIO io = finish_drain(self, op);
                if (io != OXPG_IO_WANT_READ)
                    return io;
                continue; /* the tail's sync was sent: read up to it */
            }
            if (PQstatus(conn) == CONNECTION_BAD)
                return lost(self, op);
            continue;
        }
        if (r != NULL) {
            ExecStatusType status = PQresultStatus(r);
            if (OXPG_UNLIKELY(status == PGRES_COPY_IN || status == PGRES_COPY_OUT)) {
                PQclear(r);
                op->call->copy_refused = 1;
                op->phase = status == PGRES_COPY_IN ? PHASE_COPY_END : PHASE_COPY_OUT;
                continue;
            }
            op->ends_in_a_row = 0;
        } else if (PQpipelineStatus(conn) == PQ_PIPELINE_OFF || ++op->ends_in_a_row == 2) {
            /* The statement is over (in a pipeline: two ends in a row mean nothing
             * queued is left, so reading on would never stop). */
            return op->consume(self, op->call, NULL, op->ctx) == OXPG_READ_FAIL ? OXPG_IO_FAILED : OXPG_IO_DONE;
        }
        OxpgReadStep next = op->consume(self, op->call, r, op->ctx);
        if (OXPG_LIKELY(next == OXPG_READ_MORE))
            continue;
        if (next == OXPG_READ_STOP)
            return OXPG_IO_DONE;
        /* The consumer failed (out of memory, a value Python cannot hold): end the
         * statement so the client stays in step. */
        oxpg_read_op_interrupt(self, op);
    }
}
