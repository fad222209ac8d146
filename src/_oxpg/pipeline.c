/* The C half of Client.pipeline(): libpq pipeline mode. Statements are queued
 * without waiting; results are read back strictly in order, one command at a time.
 * The policy (result objects, claiming, draining at exit) is in oxpg/pipeline.py. */
#include "oxpg/client.h"
#include "oxpg/compat.h"
#include "oxpg/cancel.h"
#include "oxpg/errors.h"
#include "oxpg/params.h"
#include "oxpg/result.h"
#include "oxpg/wait.h"

#include <stdlib.h>

/* Kinds of queued commands, as _pipeline_send's first argument. */
#define KIND_DICTS 0
#define KIND_TUPLES 1
#define KIND_EXECUTE 2
#define KIND_SYNC 3

/* Lock held. */
static int check_in_pipeline(OxpgClient *self)
{
    if (oxpg_client_check_open(self) < 0)
        return -1;
    if (!self->in_pipeline) {
        PyErr_SetString(self->st->InterfaceError, "the pipeline is not open");
        return -1;
    }
    return 0;
}

static int log_kind(OxpgClient *self, int kind)
{
    OxpgPipelineLog *log = &self->pipeline;
    if (log->count == log->cap) {
        int cap = log->cap ? log->cap * 2 : 64;
        int *grown = PyMem_Realloc(log->kinds, (size_t)cap * sizeof(int));
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

static int pop_kind(OxpgClient *self)
{
    OxpgPipelineLog *log = &self->pipeline;
    if (log->head == log->count)
        return -1;
    int kind = log->kinds[log->head++];
    if (log->head == log->count)
        log->head = log->count = 0;
    return kind;
}

static void reset_log(OxpgClient *self)
{
    PyMem_Free(self->pipeline.kinds);
    memset(&self->pipeline, 0, sizeof(self->pipeline));
}

/* Flush what is queued, reading meanwhile (never block on a full buffer). */
static int flush(OxpgClient *self)
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
        OxpgWaitStatus ws = oxpg_wait_socket(conn, OXPG_WAIT_READ | OXPG_WAIT_WRITE, -1);
        if (ws == OXPG_WAIT_ERROR)
            return -1;
        if (ws != OXPG_WAIT_READY || !PQconsumeInput(conn)) {
            oxpg_client_lost(self);
            return -1;
        }
    }
}

PyObject *oxpg_pipeline_enter(OxpgClient *self, PyObject *Py_UNUSED(ignored))
{
    if (oxpg_client_check_process(self) < 0 || oxpg_client_lock(self) < 0)
        return NULL;
    int ok = 0;
    if (oxpg_client_check_usable(self) == 0) {
        oxpg_stream_abandon(self);
        if (self->in_pipeline)
            PyErr_SetString(self->st->InterfaceError, "a pipeline is already open on this client");
        else if (self->conn == NULL || oxpg_client_reset_single_row(self) < 0)
            ; /* the exception is set */
        else if (PQenterPipelineMode(self->conn) != 1)
            oxpg_raise_conn_error(self->st, self->st->InterfaceError, self->conn, "cannot start a pipeline");
        else
            ok = self->in_pipeline = 1;
    }
    oxpg_client_unlock(self);
    if (!ok)
        return NULL;
    Py_RETURN_NONE;
}

/* _pipeline_send(kind, sql, *params): queue one statement. */
PyObject *oxpg_pipeline_send(OxpgClient *self, PyObject *const *args, Py_ssize_t nargs)
{
    OxpgState *st = self->st;
    if (nargs < 2 || !PyLong_Check(args[0]) || !PyUnicode_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "_pipeline_send(kind, sql, *params)");
        return NULL;
    }
    int kind = (int)PyLong_AsLong(args[0]);
    if (kind < KIND_DICTS || kind > KIND_EXECUTE) {
        PyErr_SetString(PyExc_ValueError, "unknown statement kind");
        return NULL;
    }
    Py_ssize_t sql_len;
    const char *sql = oxpg_client_sql(self, args[1], &sql_len);
    if (sql == NULL)
        return NULL;
    OxpgParams params;
    if (oxpg_params_encode(st, &params, args + 2, nargs - 2, self->types.encoders) < 0)
        return NULL;
    int ok = 0;
    if (oxpg_client_lock(self) == 0) {
        if (check_in_pipeline(self) == 0 && oxpg_client_check_param_count(self, sql, sql_len, nargs - 2) == 0) {
            if (!PQsendQueryParams(self->conn, sql, params.count, params.types, params.values, params.lengths,
                                   params.formats, 1))
                oxpg_raise_conn_error(st, st->OperationalError, self->conn, "could not queue the statement");
            else
                ok = log_kind(self, kind) == 0;
        }
        oxpg_client_unlock(self);
    }
    oxpg_params_free(&params);
    if (!ok)
        return NULL;
    Py_RETURN_NONE;
}

/* _pipeline_sync(): end the implicit transaction of what is queued and send it. */
PyObject *oxpg_pipeline_sync(OxpgClient *self, PyObject *Py_UNUSED(ignored))
{
    if (oxpg_client_check_process(self) < 0 || oxpg_client_lock(self) < 0)
        return NULL;
    int ok = 0;
    if (check_in_pipeline(self) == 0) {
        if (!PQpipelineSync(self->conn))
            oxpg_raise_conn_error(self->st, self->st->OperationalError, self->conn, "could not send a sync");
        else
            ok = log_kind(self, KIND_SYNC) == 0 && flush(self) == 0;
    }
    oxpg_client_unlock(self);
    if (!ok)
        return NULL;
    Py_RETURN_NONE;
}

/* The value of one command's results: rows, a row count, or an exception instance
 * (returned, not raised: the Python side hands it to the statement's owner). */
static PyObject *command_value(OxpgClient *self, int kind, PGresult *res)
{
    OxpgState *st = self->st;
    ExecStatusType status = PQresultStatus(res);
    if (status == PGRES_PIPELINE_ABORTED) {
        PyErr_SetString(st->PipelineAborted, "pipeline aborted: an earlier statement in it failed, "
                                             "so this one was not run");
    } else if (status == PGRES_FATAL_ERROR || status == PGRES_BAD_RESPONSE || status == PGRES_NONFATAL_ERROR) {
        oxpg_raise_result_error(st, res, PQstatus(self->conn) == CONNECTION_BAD ? st->OperationalError
                                                                                  : st->DatabaseError);
    } else if (kind == KIND_EXECUTE) {
        return oxpg_result_rowcount(res);
    } else {
        OxpgColumns cols;
        if (oxpg_columns_init(&cols, res, &self->types) < 0)
            return NULL;
        PyObject *rows = NULL;
        if (cols.needs_text) {
            /* The text-form round trip would need the connection the pipeline holds. */
            PyErr_SetString(st->DataError, "pipeline: a column's type has no binary decoder in oxpg (or this "
                                           "client has not looked the type up yet: query() does); "
                                           "cast it to text in the SQL");
        } else {
            cols.timezone = oxpg_client_timezone(self);
            rows = oxpg_result_rows(st, res, &cols, NULL, kind == KIND_DICTS);
        }
        oxpg_columns_clear(&cols);
        if (rows != NULL)
            return rows;
    }
    return oxpg_err_take();
}

/* Lock held: read one command's results (up to its NULL). *res gets the one to keep. */
static int read_command(OxpgClient *self, PGresult **res, int *copy_refused)
{
    PGconn *conn = self->conn;
    *res = NULL;
    for (;;) {
        OxpgWaitStatus ws = oxpg_wait_result(conn, self->deadline);
        if (ws == OXPG_WAIT_TIMEOUT)
            oxpg_client_raise_timeout(self);
        if (ws == OXPG_WAIT_ERROR || ws == OXPG_WAIT_TIMEOUT)
            return -2;
        if (ws != OXPG_WAIT_READY) {
            oxpg_client_raise_lost(self, *res);
            PQclear(*res);
            *res = NULL;
            return -1;
        }
        PGresult *r = PQgetResult(conn);
        if (r == NULL)
            return 0;
        if (PQresultStatus(r) == PGRES_PIPELINE_SYNC) {
            *res = r;
            return 0;
        }
        if (PQresultStatus(r) == PGRES_COPY_IN || PQresultStatus(r) == PGRES_COPY_OUT) {
            /* COPY has no place in a pipeline: end it (discard its rows, or fail its
             * input) and report it refused, keeping the connection in step. */
            ExecStatusType status = PQresultStatus(r);
            PQclear(r);
            int rc = oxpg_client_refuse_copy(self, status);
            if (rc == -2)
                return -2;
            if (rc < 0) {
                PQclear(*res);
                *res = NULL;
                return -3;
            }
            *copy_refused = 1;
            continue;
        }
        /* Keep the first error, else the last result. */
        ExecStatusType prev = *res != NULL ? PQresultStatus(*res) : PGRES_EMPTY_QUERY;
        if (*res != NULL && (prev == PGRES_FATAL_ERROR || prev == PGRES_BAD_RESPONSE)) {
            PQclear(r);
        } else {
            PQclear(*res);
            *res = r;
        }
    }
}

/* Lock held, an exception pending (Ctrl-C, timeout): give the pipeline up. */
static void abort_pipeline(OxpgClient *self)
{
    PyObject *pending = oxpg_err_take();
    PGconn *conn = self->conn;
    if (conn != NULL) {
        double deadline = oxpg_monotonic() + oxpg_client_grace(self);
        oxpg_cancel_request(conn, deadline - oxpg_monotonic());
        /* Read up to the last sync queued; anything after it never ran. */
        int syncs = 0;
        for (int i = self->pipeline.head; i < self->pipeline.count; i++)
            syncs += self->pipeline.kinds[i] == KIND_SYNC;
        if (syncs == 0 && PQpipelineSync(conn))
            syncs = 1;
        while (syncs > 0) {
            if (oxpg_wait_result_nointr(conn, deadline) != OXPG_WAIT_READY)
                break;
            PGresult *r = PQgetResult(conn);
            if (r != NULL && PQresultStatus(r) == PGRES_PIPELINE_SYNC)
                syncs--;
            PQclear(r);
        }
        if (syncs > 0 || PQexitPipelineMode(conn) != 1) {
            self->broken = 1;
            oxpg_client_lost(self);
            PyErr_Clear();
        }
    }
    self->in_pipeline = 0;
    reset_log(self);
    oxpg_err_restore(pending);
}

/* _pipeline_next(): the next command's outcome as (kind, value) where value is rows,
 * a count or an exception instance; None when nothing queued is left. A sync is
 * reported as (3, None). */
PyObject *oxpg_pipeline_next(OxpgClient *self, PyObject *Py_UNUSED(ignored))
{
    if (oxpg_client_check_process(self) < 0 || oxpg_client_lock(self) < 0)
        return NULL;
    PyObject *out = NULL;
    if (check_in_pipeline(self) < 0)
        goto done;
    int kind = pop_kind(self);
    if (kind < 0) {
        out = Py_NewRef(Py_None);
        goto done;
    }
    /* Results come only once the server is told to send them: ask for a flush
     * unless a sync (which also flushes) is on its way. */
    if (kind != KIND_SYNC) {
        int sync_pending = 0;
        for (int i = self->pipeline.head; i < self->pipeline.count; i++)
            sync_pending |= self->pipeline.kinds[i] == KIND_SYNC;
        if (!sync_pending && (!PQsendFlushRequest(self->conn) || flush(self) < 0)) {
            if (!PyErr_Occurred())
                oxpg_client_lost(self);
            goto done;
        }
    }
    PGresult *res = NULL;
    int copy_refused = 0;
    int rc = read_command(self, &res, &copy_refused);
    if (rc == -2) {
        abort_pipeline(self);
        goto done;
    }
    if (rc == -3) {
        /* The connection is out of step for good: close it, say why. */
        self->broken = 1;
        oxpg_client_lost(self);
        PyErr_Clear();
        PyErr_SetString(self->st->NotSupportedError,
                        "COPY cannot run inside a pipeline; the connection had to be closed");
        goto done;
    }
    if (rc < 0)
        goto done;
    if (kind == KIND_SYNC) {
        if (res == NULL || PQresultStatus(res) != PGRES_PIPELINE_SYNC) {
            PQclear(res);
            PyErr_SetString(self->st->InterfaceError, "pipeline out of step: expected the end of a sync");
            abort_pipeline(self);
            goto done;
        }
        PQclear(res);
        out = Py_BuildValue("(iO)", kind, Py_None);
        goto done;
    }
    /* A FATAL error means the server is closing the session, even if the socket
     * has not reported it yet. */
    const char *severity = res != NULL ? PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED) : NULL;
    int fatal = severity != NULL && (strcmp(severity, "FATAL") == 0 || strcmp(severity, "PANIC") == 0);
    PyObject *value;
    if (copy_refused && self->conn != NULL && PQstatus(self->conn) != CONNECTION_BAD) {
        /* Only reached when the COPY was not recognised before sending (oxpg/pipeline.py
         * refuses a statement starting with COPY): a COPY TO ends cleanly here. */
        PyErr_SetString(self->st->NotSupportedError, "COPY cannot run inside a pipeline");
        value = oxpg_err_take();
    } else {
        value = res != NULL ? command_value(self, kind, res) : Py_NewRef(Py_None);
    }
    PQclear(res);
    if (value != NULL && (fatal || PQstatus(self->conn) == CONNECTION_BAD)) {
        /* The server ended the session (its error is this statement's value): the
         * client is lost from here, like outside a pipeline. */
        oxpg_client_lost(self);
        PyErr_Clear();
    }
    if (value != NULL) {
        out = Py_BuildValue("(iN)", kind, value);
    }
done:
    if (self->conn == NULL) {
        self->in_pipeline = 0;
        reset_log(self);
        oxpg_cache_reset(&self->cache, 0);
    }
    oxpg_client_unlock(self);
    return out;
}

/* _pipeline_exit(): leave pipeline mode; everything queued must have been read. */
PyObject *oxpg_pipeline_exit(OxpgClient *self, PyObject *Py_UNUSED(ignored))
{
    if (oxpg_client_check_process(self) < 0 || oxpg_client_lock(self) < 0)
        return NULL;
    int ok = 1;
    if (self->in_pipeline && self->conn != NULL) {
        if (self->pipeline.head != self->pipeline.count) {
            PyErr_SetString(self->st->InterfaceError, "results are still queued in the pipeline");
            ok = 0;
        } else if (PQexitPipelineMode(self->conn) != 1) {
            oxpg_raise_conn_error(self->st, self->st->InterfaceError, self->conn, "cannot leave the pipeline");
            ok = 0;
        } else {
            self->in_pipeline = 0;
            reset_log(self);
        }
    } else {
        self->in_pipeline = 0;
        reset_log(self);
    }
    oxpg_client_unlock(self);
    if (!ok)
        return NULL;
    Py_RETURN_NONE;
}
