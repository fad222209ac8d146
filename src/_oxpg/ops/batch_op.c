/* The batch operation (executemany): reset the single-row flag a stream left, queue
 * every row in one pipeline (flushing as it goes, reading meanwhile), then read the
 * results up to the pipeline's sync. A row that cannot be sent, or an exception
 * from the caller's iterator, aborts the batch with a statement that always fails,
 * so nothing of it commits. */
#include "oxpg/batch_op.h"
#include "oxpg/compat.h"
#include "oxpg/conn.h"
#include "oxpg/errors.h"
#include "oxpg/params.h"
#include "oxpg/sqlscan.h"
#include "oxpg/wait.h"

#include <stdlib.h>

enum {
    PHASE_RESET,   /* reading the empty query that resets libpq's single-row flag */
    PHASE_QUEUE,   /* pulling rows and queuing them */
    PHASE_FLUSH,   /* flushing what was queued (reading meanwhile) before queuing more */
    PHASE_RESULTS, /* reading every result up to the sync */
};

/* What a queued command that is not a row was. */
#define CMD_PREPARE (-1)
#define CMD_ABORT (-2)
#define CMD_GUARD (-3)

/* Rows queued between two flushes: keeps libpq's output buffer from growing with
 * the whole batch. */
#define ROWS_PER_FLUSH 128

static const char abort_sql[] =
    "DO $oxpg$BEGIN RAISE EXCEPTION 'oxpg: executemany aborted by the client'; END$oxpg$";

static int log_command(OxpgBatchOp *op, long kind)
{
    if (op->count == op->cap) {
        long cap = op->cap ? op->cap * 2 : 256;
        long *grown = PyMem_Realloc(op->kinds, (size_t)cap * sizeof(long));
        if (grown == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        op->kinds = grown;
        op->cap = cap;
    }
    op->kinds[op->count++] = kind;
    return 0;
}

/* Say which row (0-based index) the pending exception is about: as the attribute
 * executemany_row (1-based) and, for oxpg's own errors, in the message. */
static void annotate_row(OxpgState *st, long index)
{
    PyObject *exc = oxpg_err_take();
    if (exc == NULL)
        return;
    PyObject *row = PyLong_FromLong(index + 1);
    if (row != NULL)
        PyObject_SetAttrString(exc, "executemany_row", row);
    Py_XDECREF(row);
    if (PyObject_TypeCheck(exc, (PyTypeObject *)st->Error)) {
        PyObject *text = PyObject_Str(exc);
        PyObject *message = text != NULL ? PyUnicode_FromFormat("executemany row %ld: %U", index + 1, text) : NULL;
        PyObject *args = message != NULL ? PyTuple_Pack(1, message) : NULL;
        if (args != NULL)
            PyObject_SetAttrString(exc, "args", args);
        Py_XDECREF(text);
        Py_XDECREF(message);
        Py_XDECREF(args);
    }
    PyErr_Clear();
    oxpg_err_restore(exc);
}

/* A row's parameters fit the unnamed statement prepared for `prepared` when every
 * type matches; a NULL (sent without type) fits any. */
static int fits_prepared(const OxpgParams *p, const Oid *prepared, int nprepared)
{
    if (prepared == NULL || p->count != nprepared)
        return 0;
    for (int i = 0; i < p->count; i++) {
        if (p->types[i] != prepared[i] && p->values[i] != NULL)
            return 0;
    }
    return 1;
}

/* Queue one row (a new reference, taken). Returns 0, or -1 with an exception set. */
static int queue_row(OxpgClient *self, OxpgBatchOp *op, PyObject *row)
{
    OxpgState *st = self->st;
    PGconn *conn = self->conn;
    /* A str, a set or a dict iterates too, but as characters, in no order or as
     * keys: only real sequences are rows of parameters. */
    if (!PySequence_Check(row) || PyUnicode_Check(row) || PyBytes_Check(row) || PyByteArray_Check(row)) {
        PyErr_Format(PyExc_TypeError, "executemany: each row of parameters must be a tuple or list, not %.200s",
                     Py_TYPE(row)->tp_name);
        Py_DECREF(row);
        return -1;
    }
    PyObject *seq = PySequence_Fast(row, "executemany: each row of parameters must be a sequence");
    Py_DECREF(row);
    if (seq == NULL)
        return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    OxpgParams params;
    /* The SQL does not change within a batch: count its placeholders once per row
     * length, not once per row. */
    if ((n != op->checked_count && oxpg_client_check_param_count(self, op->sql, op->sql_len, n) < 0) ||
        oxpg_params_encode(st, &params, PySequence_Fast_ITEMS(seq), n, self->types.encoders) < 0) {
        Py_DECREF(seq);
        return -1;
    }
    op->checked_count = n;
    int ok = 1;
    if (!fits_prepared(&params, op->prepared, op->nprepared)) {
        PyMem_Free(op->prepared);
        op->prepared = PyMem_Malloc(sizeof(Oid) * (size_t)(n > 0 ? n : 1));
        ok = op->prepared != NULL && PQsendPrepare(conn, "", op->sql, params.count, params.types) &&
             log_command(op, CMD_PREPARE) == 0;
        if (op->prepared != NULL)
            memcpy(op->prepared, params.types, sizeof(Oid) * (size_t)params.count);
        else if (!PyErr_Occurred())
            PyErr_NoMemory();
        op->nprepared = params.count;
    }
    ok = ok && PQsendQueryPrepared(conn, "", params.count, params.values, params.lengths, params.formats, 1) &&
         log_command(op, op->index) == 0;
    oxpg_params_free(&params);
    Py_DECREF(seq);
    if (!ok) {
        if (!PyErr_Occurred())
            oxpg_conn_send_failed(self, "could not queue the statement");
        return -1;
    }
    op->index++;
    return 0;
}

static OxpgReadStep batch_result(OxpgClient *self, OxpgCall *call, PGresult *r, void *ctx)
{
    (void)self;
    OxpgBatchOp *op = ctx;
    if (r == NULL) {
        op->command++; /* end of one command's results */
        return OXPG_READ_MORE;
    }
    ExecStatusType status = PQresultStatus(r);
    if (status == PGRES_PIPELINE_SYNC) {
        PQclear(r);
        return OXPG_READ_STOP;
    }
    if (oxpg_result_is_error(r)) {
        if (call->error == NULL)
            op->error_command = op->command;
        oxpg_call_keep_error(call, r);
        return OXPG_READ_MORE;
    }
    if ((status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) && op->command < op->count &&
        op->kinds[op->command] >= 0) {
        const char *count = PQcmdTuples(r);
        if (count != NULL && *count != '\0')
            op->affected += strtoull(count, NULL, 10);
    }
    PQclear(r);
    return OXPG_READ_MORE;
}

/* Every row is queued (or the batch aborted): end it with the client_encoding guard
 * and the sync, and read the results. A row that changed client_encoding must not
 * commit the rows after it, which the server read in the other encoding: the guard
 * fails, the sync rolls back. Returns 0, or -1 with an exception set. */
static int end_batch(OxpgClient *self, OxpgBatchOp *op)
{
    if (!PQsendQueryParams(self->conn, oxpg_conn_encoding_guard_sql, 0, NULL, NULL, NULL, NULL, 1) ||
        log_command(op, CMD_GUARD) < 0 || oxpg_conn_pipeline_sync(self) < 0) {
        if (self->conn != NULL)
            oxpg_client_lost(self);
        if (!PyErr_Occurred())
            PyErr_SetString(self->st->OperationalError, "the connection was lost while queuing the batch");
        return -1;
    }
    oxpg_read_op_clear(&op->read);
    oxpg_read_op_init(&op->read, op->call, batch_result, op);
    op->phase = PHASE_RESULTS;
    return 0;
}

/* Queuing failed (a bad row, the iterator raised, the driver interrupted): nothing
 * may commit. A statement that always fails aborts the implicit transaction (or the
 * caller's transaction) the queued rows are in. The exception is kept as the
 * batch's, with the row it is about. Returns 0 (read the results), or -1 with an
 * exception set (the connection is gone). */
static int abort_batch(OxpgClient *self, OxpgBatchOp *op)
{
    annotate_row(self->st, op->index);
    if (self->conn == NULL)
        return -1;
    op->pending = oxpg_err_take();
    if (!PQsendQueryParams(self->conn, abort_sql, 0, NULL, NULL, NULL, NULL, 0) || log_command(op, CMD_ABORT) < 0) {
        oxpg_client_lost(self);
        PyErr_Clear();
        oxpg_err_restore(op->pending);
        op->pending = NULL;
        return -1;
    }
    return end_batch(self, op);
}

/* Queue rows until the batch is all queued (then end it) or a flush is due. Returns
 * 0, or -1 with an exception set. */
static int queue_rows(OxpgClient *self, OxpgBatchOp *op)
{
    long until = op->index + ROWS_PER_FLUSH;
    while (op->index < until) {
        PyObject *row = op->next_row;
        op->next_row = NULL;
        if (row == NULL && (row = PyIter_Next(op->rows)) == NULL)
            return PyErr_Occurred() ? abort_batch(self, op) : end_batch(self, op);
        if (queue_row(self, op, row) < 0)
            return abort_batch(self, op);
    }
    oxpg_read_op_clear(&op->read);
    oxpg_read_op_init(&op->read, op->call, oxpg_conn_discard_result, NULL);
    op->read.flush_only = 1;
    op->phase = PHASE_FLUSH;
    return 0;
}

static int enter_pipeline(OxpgClient *self, OxpgBatchOp *op)
{
    if (PQenterPipelineMode(self->conn) != 1) {
        oxpg_raise_conn_error(self->st, self->st->InterfaceError, self->conn, "cannot start a pipeline");
        return -1;
    }
    op->phase = PHASE_QUEUE;
    return 0;
}

int oxpg_batch_check_sql(OxpgClient *self, const char *sql, Py_ssize_t sql_len)
{
    /* The server would wait for COPY data that never comes. */
    if (oxpg_sql_is_copy(sql, (size_t)sql_len)) {
        PyErr_SetString(self->st->NotSupportedError, "executemany() cannot run COPY; nothing was sent");
        return -1;
    }
    return 0;
}

int oxpg_batch_op_start(OxpgClient *self, OxpgBatchOp *op, OxpgCall *call, const char *sql, Py_ssize_t sql_len,
                        PyObject *rows)
{
    memset(op, 0, sizeof(*op));
    op->call = call;
    op->sql = sql;
    op->sql_len = sql_len;
    op->rows = Py_NewRef(rows);
    op->nprepared = -1;
    op->checked_count = -1;
    op->error_command = -1;
    op->status = OXPG_IO_WANT_READ;
    oxpg_read_op_init(&op->read, call, oxpg_conn_discard_result, NULL);
    /* No rows, nothing sent: not even an empty pipeline. */
    op->next_row = PyIter_Next(rows);
    if (op->next_row == NULL) {
        if (PyErr_Occurred()) {
            annotate_row(self->st, 0);
            op->status = OXPG_IO_FAILED;
            return -1;
        }
        op->out = PyLong_FromLong(0);
        op->status = op->out != NULL ? OXPG_IO_DONE : OXPG_IO_FAILED;
        return op->out != NULL ? 0 : -1;
    }
    if (self->single_row_used) {
        /* libpq's single-row flag, left by a stream, would split the pipeline's
         * results; any query outside pipeline mode resets it, and an empty one costs
         * the server nothing. */
        if (!PQsendQuery(self->conn, "")) {
            oxpg_conn_send_failed(self, "could not send the query");
            op->status = OXPG_IO_FAILED;
            return -1;
        }
        op->phase = PHASE_RESET;
        return 0;
    }
    if (enter_pipeline(self, op) < 0) {
        op->status = OXPG_IO_FAILED;
        return -1;
    }
    return 0;
}

/* The results up to the sync were read (rc 0) or reading failed (-1, an exception
 * set): leave pipeline mode and say how the batch went. */
static int results_read(OxpgClient *self, OxpgBatchOp *op, int rc)
{
    OxpgCall *call = op->call;
    PyObject *pending = op->pending;
    op->pending = NULL;
    if (rc == 0 && PQexitPipelineMode(self->conn) != 1) {
        oxpg_client_lost(self);
        rc = -1;
    }
    if (rc == 0)
        self->syncs_pending = 0;
    if (rc == 0 && oxpg_conn_encoding_changed(self)) {
        /* The guard failed and the batch was rolled back: settling sets the encoding
         * back and raises InterfaceError saying so. */
        oxpg_call_clear(call);
        Py_XDECREF(pending);
        if (oxpg_wait_settle(self) == 0 && !PyErr_Occurred())
            PyErr_SetString(self->st->InterfaceError, "client_encoding changed in the batch; nothing was committed");
        return -1;
    }
    if (pending != NULL) {
        /* Our own exception made the batch abort: it explains the failure better
         * than the server's errors, which were only its consequence. */
        oxpg_call_clear(call);
        PyErr_Clear();
        oxpg_err_restore(pending);
        return -1;
    }
    if (rc < 0) {
        oxpg_call_clear(call);
        return -1;
    }
    if (call->error != NULL) {
        long kind = op->error_command < op->count && op->error_command >= 0 ? op->kinds[op->error_command] : CMD_ABORT;
        if (kind == CMD_GUARD) {
            oxpg_call_clear(call);
            return oxpg_conn_raise_encoding_guard(self);
        }
        oxpg_conn_raise_error(self, call);
        oxpg_call_clear(call);
        if (kind >= 0)
            annotate_row(self->st, kind);
        return -1;
    }
    op->out = PyLong_FromUnsignedLongLong(op->affected);
    return op->out != NULL ? 0 : -1;
}

/* One step of the phase the op is in. Returns the IO status to hand the driver, or
 * -1 to go on with the next phase at once (nothing to wait for). */
static int step_phase(OxpgClient *self, OxpgBatchOp *op)
{
    OxpgIO io;
    switch (op->phase) {
    case PHASE_RESET:
        io = oxpg_read_op_step(self, &op->read);
        if (io == OXPG_IO_WANT_READ || io == OXPG_IO_WANT_WRITE)
            return io;
        if (io == OXPG_IO_DONE && op->call->error != NULL) {
            oxpg_conn_raise_error(self, op->call);
            io = OXPG_IO_FAILED;
        }
        oxpg_call_clear(op->call);
        if (io == OXPG_IO_FAILED)
            return OXPG_IO_FAILED;
        self->single_row_used = 0;
        return enter_pipeline(self, op) < 0 ? OXPG_IO_FAILED : -1;
    case PHASE_QUEUE:
        return queue_rows(self, op) < 0 ? OXPG_IO_FAILED : -1;
    case PHASE_FLUSH:
        io = oxpg_read_op_step(self, &op->read);
        if (io == OXPG_IO_WANT_READ || io == OXPG_IO_WANT_WRITE)
            return io;
        if (io == OXPG_IO_FAILED)
            return OXPG_IO_FAILED; /* the connection is gone: nothing can be aborted */
        op->phase = PHASE_QUEUE;
        return -1;
    default:
        io = oxpg_read_op_step(self, &op->read);
        if (io == OXPG_IO_WANT_READ || io == OXPG_IO_WANT_WRITE)
            return io;
        if (results_read(self, op, io == OXPG_IO_DONE ? 0 : -1) < 0)
            return OXPG_IO_FAILED;
        return OXPG_IO_DONE;
    }
}

OxpgIO oxpg_batch_op_step(OxpgClient *self, OxpgBatchOp *op)
{
    while (op->status == OXPG_IO_WANT_READ) {
        int io = step_phase(self, op);
        if (io == OXPG_IO_WANT_READ || io == OXPG_IO_WANT_WRITE)
            return (OxpgIO)io;
        if (io == OXPG_IO_DONE || io == OXPG_IO_FAILED)
            op->status = io;
    }
    if (op->status == OXPG_IO_FAILED && !PyErr_Occurred())
        PyErr_SetString(self->st->OperationalError, "the connection was lost");
    return (OxpgIO)op->status;
}

void oxpg_batch_op_interrupt(OxpgClient *self, OxpgBatchOp *op)
{
    if (op->status != OXPG_IO_WANT_READ) {
        PyErr_Clear();
        return;
    }
    if (op->phase == PHASE_QUEUE || op->phase == PHASE_FLUSH) {
        /* Part of the batch may be running already: abort it, then cancel and
         * drain like any statement. */
        if (abort_batch(self, op) < 0) {
            op->status = OXPG_IO_FAILED;
            return;
        }
        PyObject *pending = op->pending;
        op->pending = NULL;
        oxpg_err_restore(pending);
    }
    oxpg_read_op_interrupt(self, &op->read);
}

PyObject *oxpg_batch_op_take(OxpgBatchOp *op)
{
    PyObject *out = op->out;
    op->out = NULL;
    return out;
}

void oxpg_batch_op_free(OxpgBatchOp *op)
{
    PyMem_Free(op->kinds);
    PyMem_Free(op->prepared);
    op->kinds = NULL;
    op->prepared = NULL;
    Py_CLEAR(op->rows);
    Py_CLEAR(op->next_row);
    Py_CLEAR(op->pending);
    Py_CLEAR(op->out);
    oxpg_read_op_clear(&op->read);
}

int oxpg_batch_op_clear(OxpgClient *self, OxpgBatchOp *op)
{
    oxpg_batch_op_free(op);
    return oxpg_wait_settle(self);
}
