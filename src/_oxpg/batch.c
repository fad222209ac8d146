/* executemany(): the whole batch in one libpq pipeline, so one round trip and one
 * implicit transaction: outside a transaction block the batch is all or nothing. */
#include "oxpg/client.h"
#include "oxpg/cancel.h"
#include "oxpg/compat.h"
#include "oxpg/conn.h"
#include "oxpg/errors.h"
#include "oxpg/params.h"
#include "oxpg/sqlscan.h"
#include "oxpg/wait.h"

#include <stdlib.h>

/* What each command queued in the pipeline was, to read its results back. */
#define CMD_PREPARE (-1)
#define CMD_ABORT (-2)
#define CMD_GUARD (-3)

typedef struct {
    long *kinds; /* row index (0-based) or CMD_* */
    long count;
    long cap;
} CommandLog;

static int log_command(CommandLog *log, long kind)
{
    if (log->count == log->cap) {
        long cap = log->cap ? log->cap * 2 : 256;
        long *grown = PyMem_Realloc(log->kinds, (size_t)cap * sizeof(long));
        if (grown == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        log->kinds = grown;
        log->cap = cap;
    }
    log->kinds[log->count++] = kind;
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

/* Queue the rows. Returns 0, or -1 with an exception set (a bad row, the iterator
 * raised, a signal, a timeout) after which the batch must be aborted. */
static int queue_rows(OxpgClient *self, OxpgCall *call, const char *sql, Py_ssize_t sql_len, PyObject *first,
                      PyObject *rows, CommandLog *log)
{
    OxpgState *st = self->st;
    PGconn *conn = self->conn;
    Oid *prepared = NULL;
    int nprepared = -1;
    int rc = -1;
    PyObject *row;
    long index = 0;
    Py_ssize_t checked_count = -1;
    /* first is the row the caller peeked at (owned); then the rest of the iterator. */
    for (row = first; row != NULL; row = PyIter_Next(rows)) {
        /* A str, a set or a dict iterates too, but as characters, in no order or as
         * keys: only real sequences are rows of parameters. */
        if (!PySequence_Check(row) || PyUnicode_Check(row) || PyBytes_Check(row) || PyByteArray_Check(row)) {
            PyErr_Format(PyExc_TypeError, "executemany: each row of parameters must be a tuple or list, not %.200s",
                         Py_TYPE(row)->tp_name);
            Py_DECREF(row);
            goto done;
        }
        PyObject *seq = PySequence_Fast(row, "executemany: each row of parameters must be a sequence");
        Py_DECREF(row);
        if (seq == NULL)
            goto done;
        Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
        OxpgParams params;
        /* The SQL does not change within a batch: count its placeholders once per
         * row length, not once per row. */
        if ((n != checked_count && oxpg_client_check_param_count(self, sql, sql_len, n) < 0) ||
            oxpg_params_encode(st, &params, PySequence_Fast_ITEMS(seq), n, self->types.encoders) < 0) {
            Py_DECREF(seq);
            goto done;
        }
        checked_count = n;
        int ok = 1;
        if (!fits_prepared(&params, prepared, nprepared)) {
            PyMem_Free(prepared);
            prepared = PyMem_Malloc(sizeof(Oid) * (size_t)(n > 0 ? n : 1));
            ok = prepared != NULL && PQsendPrepare(conn, "", sql, params.count, params.types) &&
                 log_command(log, CMD_PREPARE) == 0;
            if (prepared != NULL)
                memcpy(prepared, params.types, sizeof(Oid) * (size_t)params.count);
            nprepared = params.count;
        }
        ok = ok && PQsendQueryPrepared(conn, "", params.count, params.values, params.lengths, params.formats, 1) &&
             log_command(log, index) == 0;
        oxpg_params_free(&params);
        Py_DECREF(seq);
        if (!ok) {
            if (!PyErr_Occurred())
                oxpg_conn_send_failed(self, "could not queue the statement");
            goto done;
        }
        index++;
        /* Keep the output buffer from growing with the whole batch. */
        if (index % 128 == 0 && oxpg_wait_flush(self, call) < 0)
            goto done;
    }
    if (!PyErr_Occurred())
        rc = 0;
done:
    if (rc < 0 && PyErr_Occurred())
        annotate_row(st, index);
    PyMem_Free(prepared);
    return rc;
}

typedef struct {
    const CommandLog *log;
    long command;          /* index of the command whose results are being read */
    long error_command;    /* the command that failed first, -1 when none */
    unsigned long long affected;
} BatchRead;

static OxpgReadStep batch_result(OxpgClient *self, OxpgCall *call, PGresult *r, void *ctx)
{
    (void)self;
    BatchRead *read = ctx;
    if (r == NULL) {
        read->command++; /* end of one command's results */
        return OXPG_READ_MORE;
    }
    ExecStatusType status = PQresultStatus(r);
    if (status == PGRES_PIPELINE_SYNC) {
        PQclear(r);
        return OXPG_READ_STOP;
    }
    if (oxpg_result_is_error(r)) {
        if (call->error == NULL)
            read->error_command = read->command;
        oxpg_call_keep_error(call, r);
        return OXPG_READ_MORE;
    }
    if ((status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) && read->command < read->log->count &&
        read->log->kinds[read->command] >= 0) {
        const char *count = PQcmdTuples(r);
        if (count != NULL && *count != '\0')
            read->affected += strtoull(count, NULL, 10);
    }
    PQclear(r);
    return OXPG_READ_MORE;
}

/* Read every result up to the pipeline's sync and leave pipeline mode. Returns 0
 * when every command succeeded (*affected summed), or -1 with an exception set.
 * pending: our own exception (a bad row, the iterator raised, Ctrl-C, a timeout)
 * that made the batch abort; it explains the failure better than the server's
 * errors, which were only its consequence. */
static int read_pipeline(OxpgClient *self, OxpgCall *call, const CommandLog *log, PyObject *pending,
                         unsigned long long *affected)
{
    OxpgState *st = self->st;
    BatchRead read = {log, 0, -1, 0};
    int rc = oxpg_wait_read(self, call, batch_result, &read);
    if (rc == 0 && PQexitPipelineMode(self->conn) != 1) {
        oxpg_client_lost(self);
        rc = -1;
    }
    if (rc == 0)
        self->syncs_pending = 0;
    if (rc == 0 && oxpg_conn_encoding_changed(self)) {
        /* The guard failed and the batch was rolled back; settle says why. */
        oxpg_call_clear(call);
        Py_XDECREF(pending);
        return -1;
    }
    if (pending != NULL) {
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
        long kind = read.error_command < log->count ? log->kinds[read.error_command] : CMD_ABORT;
        if (kind == CMD_GUARD) {
            oxpg_call_clear(call);
            return oxpg_conn_raise_encoding_guard(self);
        }
        oxpg_conn_raise_error(self, call);
        oxpg_call_clear(call);
        if (kind >= 0)
            annotate_row(st, kind);
        return -1;
    }
    *affected = read.affected;
    return 0;
}

static PyObject *executemany_locked(OxpgClient *self, OxpgCall *call, const char *sql, Py_ssize_t sql_len,
                                    PyObject *rows)
{
    PGconn *conn = self->conn;
    CommandLog log = {NULL, 0, 0};
    unsigned long long affected = 0;
    PyObject *out = NULL;
    /* No rows, nothing sent: not even an empty pipeline. */
    PyObject *first = PyIter_Next(rows);
    if (first == NULL) {
        if (PyErr_Occurred()) {
            annotate_row(self->st, 0);
            return NULL;
        }
        return PyLong_FromLong(0);
    }
    if (oxpg_client_reset_single_row(self, call) < 0) {
        Py_DECREF(first);
        return NULL;
    }
    if (PQenterPipelineMode(conn) != 1) {
        Py_DECREF(first);
        oxpg_raise_conn_error(self->st, self->st->InterfaceError, conn, "cannot start a pipeline");
        return NULL;
    }
    PyObject *pending = NULL;
    if (queue_rows(self, call, sql, sql_len, first, rows, &log) < 0) {
        if (self->conn == NULL)
            goto done;
        /* Nothing may commit: a statement that always fails aborts the implicit
         * transaction (or the caller's transaction) that the queued rows are in. */
        pending = oxpg_err_take();
        if (!PQsendQueryParams(conn,
                               "DO $oxpg$BEGIN RAISE EXCEPTION 'oxpg: executemany aborted by the client'; END$oxpg$",
                               0, NULL, NULL, NULL, NULL, 0) ||
            log_command(&log, CMD_ABORT) < 0) {
            Py_XDECREF(pending);
            oxpg_client_lost(self);
            goto done;
        }
    }
    /* A row that changed client_encoding must not commit the rows after it, which
     * the server read in the other encoding: the guard fails, the sync rolls back. */
    if (!PQsendQueryParams(conn, oxpg_conn_encoding_guard_sql, 0, NULL, NULL, NULL, NULL, 1) ||
        log_command(&log, CMD_GUARD) < 0 || oxpg_conn_pipeline_sync(self) < 0) {
        Py_XDECREF(pending);
        if (self->conn != NULL)
            oxpg_client_lost(self);
        goto done;
    }
    if (read_pipeline(self, call, &log, pending, &affected) == 0)
        out = PyLong_FromUnsignedLongLong(affected);
done:
    PyMem_Free(log.kinds);
    if (oxpg_wait_settle(self) < 0)
        Py_CLEAR(out);
    return out;
}

const char oxpg_executemany_doc[] =
             "executemany($self, sql, seq_of_params, /, *, timeout=None)\n--\n\n"
             "Run one statement once per row of parameters (any iterable of sequences,\n"
             "generators included) in a single pipeline: one round trip for the batch.\n"
             "Outside a transaction the batch is all or nothing; a failing row raises\n"
             "with its number in the message and as exc.executemany_row (1-based).\n"
             "Returns the total number of rows affected. timeout covers the whole batch\n"
             "(None: the client's command_timeout; float('inf'): none).";

PyObject *oxpg_client_executemany(OxpgClient *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    OxpgState *st = self->st;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    double timeout = self->command_timeout;
    if (kwnames != NULL && oxpg_client_parse_timeout(self, args, nargs, kwnames, &timeout) < 0)
        return NULL;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "executemany() takes the SQL statement and an iterable of parameter rows");
        return NULL;
    }
    Py_ssize_t sql_len;
    const char *sql = oxpg_client_sql(self, args[0], &sql_len);
    if (sql == NULL)
        return NULL;
    PyObject *rows = PyObject_GetIter(args[1]);
    if (rows == NULL)
        return NULL;
    /* COPY needs its data (or gives its rows) between statements, which a pipeline
     * cannot do; the server would wait for COPY data that never comes. */
    if (oxpg_sql_is_copy(sql, (size_t)sql_len)) {
        Py_DECREF(rows);
        PyErr_SetString(st->NotSupportedError, "executemany() cannot run COPY; nothing was sent");
        return NULL;
    }
    PyObject *out = NULL;
    if (oxpg_client_lock(self) == 0) {
        OxpgCall call;
        oxpg_call_init(&call, timeout);
        if (oxpg_client_check_usable(self) == 0) {
            oxpg_stream_abandon(self);
            out = self->conn != NULL ? executemany_locked(self, &call, sql, sql_len, rows) : NULL;
            if (out == NULL && !PyErr_Occurred())
                PyErr_SetString(st->OperationalError, "the connection was lost");
        }
        oxpg_client_unlock(self);
    }
    Py_DECREF(rows);
    return out;
}

