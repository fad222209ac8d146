/* The C half of Client.pipeline(): libpq pipeline mode. Statements are queued
 * without waiting; results are read back strictly in order, one command at a time.
 * The policy (result objects, claiming, draining at exit) is in oxpg/pipeline.py. */
#include "oxpg/client.h"
#include "oxpg/compat.h"
#include "oxpg/conn.h"
#include "oxpg/errors.h"
#include "oxpg/params.h"
#include "oxpg/query_op.h"
#include "oxpg/result.h"
#include "oxpg/sqlscan.h"
#include "oxpg/wait.h"

#include <stdlib.h>

/* Kinds of queued commands (_pipeline_send's first argument, exported to Python as
 * _oxpg.PIPELINE_*: include/oxpg/client.h). */
#define KIND_DICTS OXPG_PIPELINE_DICTS
#define KIND_TUPLES OXPG_PIPELINE_TUPLES
#define KIND_EXECUTE OXPG_PIPELINE_EXECUTE
#define KIND_SYNC OXPG_PIPELINE_SYNC
/* Queued by _pipeline_sync before each sync, never seen by Python: see
 * oxpg_conn_encoding_guard_sql. */
#define KIND_GUARD 4

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
        int *kinds = PyMem_Realloc(log->kinds, (size_t)cap * sizeof(int));
        if (kinds != NULL)
            log->kinds = kinds;
        PGresult **early = kinds != NULL ? PyMem_Realloc(log->early, (size_t)cap * sizeof(PGresult *)) : NULL;
        if (early != NULL)
            log->early = early;
        char *has_early = early != NULL ? PyMem_Realloc(log->has_early, (size_t)cap) : NULL;
        if (has_early != NULL)
            log->has_early = has_early;
        char *text_forms = has_early != NULL ? PyMem_Realloc(log->text_forms, (size_t)cap) : NULL;
        if (text_forms == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        log->text_forms = text_forms;
        log->cap = cap;
    }
    log->early[log->count] = NULL;
    log->has_early[log->count] = 0;
    log->text_forms[log->count] = 0;
    log->kinds[log->count++] = kind;
    return 0;
}

/* The next command to read: its kind (-1: none left), its results if they were read
 * ahead (*early set, the result handed over), whether it reads text forms. */
static int pop_kind(OxpgClient *self, int *early, PGresult **res, int *text_forms)
{
    OxpgPipelineLog *log = &self->pipeline;
    if (log->head == log->count)
        return -1;
    int i = log->head++;
    *early = log->has_early[i];
    *res = log->early[i];
    *text_forms = log->text_forms[i];
    log->has_early[i] = 0;
    log->early[i] = NULL;
    int kind = log->kinds[i];
    if (log->head == log->count)
        log->head = log->count = 0;
    return kind;
}

static void reset_log(OxpgClient *self)
{
    OxpgPipelineLog *log = &self->pipeline;
    for (int i = log->head; i < log->count; i++) {
        if (log->has_early[i])
            PQclear(log->early[i]);
    }
    PyMem_Free(log->kinds);
    PyMem_Free(log->early);
    PyMem_Free(log->has_early);
    PyMem_Free(log->text_forms);
    memset(log, 0, sizeof(*log));
}

/* The OxpgCall of one read of a pipeline: the deadline is the pipeline's, set by
 * the _pipeline_next that started the current result() (several reads share it). */
static void pipeline_call(OxpgClient *self, OxpgCall *call)
{
    oxpg_call_init(call, -1);
    call->deadline = self->pipeline.deadline;
    call->timeout = self->pipeline.timeout;
}

/* Lock held, an exception pending (Ctrl-C, a timeout, a lost connection): give the
 * pipeline up (the drain reads up to its end; the connection is closed if it cannot). */
static void abort_pipeline(OxpgClient *self, OxpgCall *call)
{
    if (self->conn != NULL && PQpipelineStatus(self->conn) != PQ_PIPELINE_OFF)
        oxpg_wait_interrupt(self, call);
    self->in_pipeline = 0;
    reset_log(self);
}

/* _pipeline_enter(timeout): timeout bounds the round trip that may be needed first. */
PyObject *oxpg_pipeline_enter(OxpgClient *self, PyObject *timeout_arg)
{
    double timeout;
    if (oxpg_client_timeout_value("timeout", timeout_arg, self->command_timeout, &timeout) < 0)
        return NULL;
    if (oxpg_client_check_process(self) < 0 || oxpg_client_lock(self) < 0)
        return NULL;
    int ok = 0;
    OxpgCall call;
    oxpg_call_init(&call, timeout);
    if (oxpg_client_check_usable(self) == 0) {
        oxpg_stream_abandon(self);
        if (self->in_pipeline)
            PyErr_SetString(self->st->InterfaceError, "a pipeline is already open on this client");
        else if (self->conn == NULL || oxpg_client_reset_single_row(self, &call) < 0)
            ; /* the exception is set */
        else if (PQenterPipelineMode(self->conn) != 1)
            oxpg_raise_conn_error(self->st, self->st->InterfaceError, self->conn, "cannot start a pipeline");
        else {
            ok = self->in_pipeline = 1;
            self->pipeline.send_timeout = timeout;
        }
    }
    oxpg_client_unlock(self);
    if (!ok)
        return NULL;
    Py_RETURN_NONE;
}

static int read_command(OxpgClient *self, OxpgCall *call, PGresult **res);

/* Read the results of every command queued and not read yet, keeping them for their
 * turn, so that what the connection reads next is a describe's. */
static int read_ahead(OxpgClient *self, OxpgCall *call)
{
    OxpgPipelineLog *log = &self->pipeline;
    int first = log->head;
    while (first < log->count && log->has_early[first])
        first++;
    if (first == log->count)
        return 0;
    if (!PQsendFlushRequest(self->conn))
        return oxpg_conn_send_failed(self, "could not send a flush request");
    if (oxpg_wait_flush(self, call) < 0)
        return -1;
    for (int i = first; i < log->count; i++) {
        PGresult *res;
        call->copy_refused = 0;
        if (read_command(self, call, &res) < 0)
            return -1;
        log->early[i] = res;
        log->has_early[i] = 1;
    }
    return 0;
}

/* How a statement's result comes in a pipeline: chosen from its description, which
 * is taken (once per cache entry) before it is queued, as query() does, so the
 * client's catalog lookups are done and no result needs a round trip of its own
 * (the connection is the pipeline's): binary; text as query() would ask for it (a
 * column without binary output); or text with text forms, checked (a column
 * without a binary decoder). Returns 1 when the statement is to be queued (with
 * *format, *text_forms), 0 when its describe failed (its error result is logged as
 * its outcome), -1 with an exception set (the pipeline is given up). */
static int choose_format(OxpgClient *self, OxpgCall *call, PyObject *sql_obj, const char *sql, Py_ssize_t sql_len,
                         const OxpgParams *params, int kind, int *format, int *text_forms)
{
    *format = kind == KIND_EXECUTE ? 0 : 1; /* execute: text, never decoded */
    *text_forms = 0;
    if (kind == KIND_EXECUTE)
        return 1;
    OxpgStatement *stmt = oxpg_cache_get(&self->cache, sql_obj, params->count, params->types);
    if (stmt == NULL && PyErr_Occurred())
        return -1;
    if (stmt == NULL || !stmt->described) {
        if (read_ahead(self, call) < 0)
            return -1;
        OxpgQueryOp q;
        PGresult *described = NULL;
        int rc = oxpg_query_op_start(self, &q, call, sql_obj, sql, sql_len, params, 0, OXPG_QUERY_DESCRIBE, 0) == 0 &&
                         oxpg_wait_query(self, &q) == 0
                     ? 1
                     : -1;
        if (rc == 1)
            Py_XDECREF(oxpg_query_op_take(&q, &described));
        int failed = q.describe_failed, aborted = q.aborted;
        oxpg_query_op_free(&q);
        if (rc < 0)
            return -1;
        if (failed) {
            if (log_kind(self, kind) < 0) {
                PQclear(described);
                return -1;
            }
            OxpgPipelineLog *log = &self->pipeline;
            log->early[log->count - 1] = described;
            log->has_early[log->count - 1] = 1;
            return 0;
        }
        if (aborted || described == NULL)
            return 1; /* an earlier statement failed: this one is skipped anyway */
        stmt->text_results = (char)oxpg_client_describe_needs_text(self, described);
        stmt->text_forms = (char)oxpg_client_describe_text_forms(self, described);
        stmt->described = 1;
        PQclear(described);
    }
    *text_forms = !stmt->text_results && stmt->text_forms;
    *format = stmt->text_results || stmt->text_forms ? 0 : 1;
    return 1;
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
    /* libpq cannot run COPY in pipeline mode: refused before anything is sent. */
    if (oxpg_sql_is_copy(sql, (size_t)sql_len)) {
        PyErr_SetString(st->NotSupportedError, "COPY cannot run inside a pipeline");
        return NULL;
    }
    OxpgParams params;
    if (oxpg_params_encode(st, &params, args + 2, nargs - 2, self->types.encoders) < 0)
        return NULL;
    int ok = 0;
    if (oxpg_client_lock(self) == 0) {
        if (check_in_pipeline(self) == 0 && oxpg_client_check_param_count(self, sql, sql_len, nargs - 2) == 0) {
            OxpgCall call;
            oxpg_call_init(&call, self->pipeline.send_timeout);
            int format, text_forms;
            int queue = choose_format(self, &call, args[1], sql, sql_len, &params, kind, &format, &text_forms);
            if (queue < 0) {
                /* Waiting for what was queued before failed (timeout, Ctrl-C, a lost
                 * connection): the pipeline is given up, as in result(). */
                abort_pipeline(self, &call);
            } else if (queue == 0) {
                ok = 1;
            } else if (!PQsendQueryParams(self->conn, sql, params.count, params.types, params.values, params.lengths,
                                          params.formats, format)) {
                oxpg_conn_send_failed(self, "could not queue the statement");
            } else if (log_kind(self, kind) == 0) {
                self->pipeline.text_forms[self->pipeline.count - 1] = (char)text_forms;
                ok = 1;
            }
            oxpg_call_clear(&call);
        }
        oxpg_client_unlock(self);
    }
    oxpg_params_free(&params);
    if (!ok)
        return NULL;
    Py_RETURN_NONE;
}

/* _pipeline_sync(timeout): end the implicit transaction of what is queued and send
 * it; timeout bounds the sending. */
PyObject *oxpg_pipeline_sync(OxpgClient *self, PyObject *timeout_arg)
{
    double timeout;
    if (oxpg_client_timeout_value("timeout", timeout_arg, self->command_timeout, &timeout) < 0)
        return NULL;
    if (oxpg_client_check_process(self) < 0 || oxpg_client_lock(self) < 0)
        return NULL;
    int ok = 0;
    OxpgCall call;
    oxpg_call_init(&call, timeout);
    if (check_in_pipeline(self) == 0) {
        /* The guard goes first: a statement that changed client_encoding makes it
         * fail, and the sync then rolls back what it would have committed. */
        if (!PQsendQueryParams(self->conn, oxpg_conn_encoding_guard_sql, 0, NULL, NULL, NULL, NULL, 1))
            oxpg_conn_send_failed(self, "could not queue the statement");
        else if (log_kind(self, KIND_GUARD) == 0 && oxpg_conn_pipeline_sync(self) == 0 &&
                 log_kind(self, KIND_SYNC) == 0) {
            /* A server that stops reading must not hang the caller; part of a
             * message may be out, so only giving the pipeline up keeps step. */
            if (oxpg_wait_flush(self, &call) == 0)
                ok = 1;
            else
                abort_pipeline(self, &call);
        }
    }
    oxpg_client_unlock(self);
    if (!ok)
        return NULL;
    Py_RETURN_NONE;
}

/* The value of one command's results: rows, a row count, or an exception instance
 * (returned, not raised: the Python side hands it to the statement's owner). */
static PyObject *command_value(OxpgClient *self, int kind, PGresult *res, int text_forms)
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
        if (text_forms && oxpg_columns_check_text_forms(st, &self->types, &cols, "pipeline()") < 0) {
            /* the exception is set */
        } else if (cols.needs_text) {
            /* The text-form round trip would need the connection the pipeline holds. */
            PyErr_SetString(st->DataError, "pipeline: a column's type has no binary decoder in oxpg (or this "
                                           "client has not looked the type up yet: query() does); "
                                           "cast it to text in the SQL");
        } else {
            cols.timezone = oxpg_client_timezone(self);
            rows = oxpg_result_rows(st, res, &cols, NULL, kind == KIND_DICTS, 0);
        }
        oxpg_columns_clear(&cols);
        if (rows != NULL)
            return rows;
    }
    return oxpg_err_take();
}

/* One command's results (up to its end, or the sync): the first error, else the
 * last result. */
static OxpgReadStep command_result(OxpgClient *self, OxpgCall *call, PGresult *r, void *ctx)
{
    (void)self;
    PGresult **res = ctx;
    if (r == NULL)
        return OXPG_READ_STOP;
    if (oxpg_result_is_error(r)) {
        oxpg_call_keep_error(call, r);
        return OXPG_READ_MORE;
    }
    PQclear(*res);
    *res = r;
    return PQresultStatus(r) == PGRES_PIPELINE_SYNC ? OXPG_READ_STOP : OXPG_READ_MORE;
}

/* Lock held: read one command's results. *res gets the one to keep (its error, when
 * it failed). Returns 0, or -1 with an exception set. */
static int read_command(OxpgClient *self, OxpgCall *call, PGresult **res)
{
    *res = NULL;
    int rc = oxpg_wait_read(self, call, command_result, res);
    if (call->error != NULL) {
        PQclear(*res);
        *res = call->error;
        call->error = NULL;
    }
    if (rc < 0) {
        PQclear(*res);
        *res = NULL;
    }
    return rc;
}


/* _pipeline_next(timeout, start): the next command's outcome as (kind, value) where
 * value is rows, a count or an exception instance; None when nothing queued is left.
 * A sync is reported as (3, None). start begins a call's deadline from timeout; the
 * calls after it (the results before the one asked for) share that deadline. */
PyObject *oxpg_pipeline_next(OxpgClient *self, PyObject *const *args, Py_ssize_t nargs)
{
    int start = nargs == 2 ? PyObject_IsTrue(args[1]) : -1;
    if (start < 0) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "_pipeline_next(timeout, start)");
        return NULL;
    }
    double timeout = -1;
    if (start && oxpg_client_timeout_value("timeout", args[0], self->command_timeout, &timeout) < 0)
        return NULL;
    if (oxpg_client_check_process(self) < 0 || oxpg_client_lock(self) < 0)
        return NULL;
    PyObject *out = NULL;
    OxpgCall call;
    oxpg_call_init(&call, -1);
    if (check_in_pipeline(self) < 0)
        goto done;
    if (start) {
        /* Kept with the pipeline's state: the reads that follow share it. */
        self->pipeline.timeout = timeout;
        self->pipeline.deadline = timeout > 0 ? oxpg_monotonic() + timeout : -1;
    }
    pipeline_call(self, &call);
    int kind, early, text_forms = 0;
    PGresult *res;
    for (;;) {
        kind = pop_kind(self, &early, &res, &text_forms);
        if (kind < 0) {
            out = Py_NewRef(Py_None);
            goto done;
        }
        /* Results come only once the server is told to send them: ask for a flush
         * unless a sync (which also flushes) is on its way. */
        if (!early && kind != KIND_SYNC && kind != KIND_GUARD) {
            int sync_pending = 0;
            for (int i = self->pipeline.head; i < self->pipeline.count; i++)
                sync_pending |= self->pipeline.kinds[i] == KIND_SYNC;
            if (!sync_pending) {
                if (!PQsendFlushRequest(self->conn)) {
                    oxpg_conn_send_failed(self, "could not send a flush request");
                    goto done;
                }
                if (oxpg_wait_flush(self, &call) < 0) {
                    abort_pipeline(self, &call);
                    goto done;
                }
            }
        }
        call.copy_refused = 0;
        if (!early && read_command(self, &call, &res) < 0) {
            abort_pipeline(self, &call);
            goto done;
        }
        if (kind != KIND_GUARD)
            break;
        /* The guard's own result is nobody's business, unless it failed. */
        int guard_failed = res != NULL && oxpg_result_is_error(res);
        PQclear(res);
        if (guard_failed) {
            oxpg_conn_raise_encoding_guard(self);
            abort_pipeline(self, &call);
            goto done;
        }
    }
    if (kind == KIND_SYNC) {
        int in_step = res != NULL && PQresultStatus(res) == PGRES_PIPELINE_SYNC;
        PQclear(res);
        if (!in_step) {
            PyErr_SetString(self->st->InterfaceError, "pipeline out of step: expected the end of a sync");
            abort_pipeline(self, &call);
            goto done;
        }
        if (oxpg_conn_encoding_changed(self)) {
            /* Setting it back needs the pipeline over: what is queued after this
             * sync is drained (its guard fails too: nothing of it commits). */
            PyErr_SetString(self->st->InterfaceError, "client_encoding was changed inside the pipeline");
            abort_pipeline(self, &call);
            goto done;
        }
        out = Py_BuildValue("(iO)", kind, Py_None);
        goto done;
    }
    /* A FATAL error means the server is closing the session, even if the socket
     * has not reported it yet. */
    const char *severity = res != NULL ? PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED) : NULL;
    int fatal = severity != NULL && (strcmp(severity, "FATAL") == 0 || strcmp(severity, "PANIC") == 0);
    PyObject *value;
    if (call.copy_refused && self->conn != NULL && PQstatus(self->conn) != CONNECTION_BAD) {
        /* Only reached when the COPY was not recognised before sending (oxpg/pipeline.py
         * refuses a statement starting with COPY): a COPY TO ends cleanly here. */
        PyErr_SetString(self->st->NotSupportedError, "COPY cannot run inside a pipeline");
        value = oxpg_err_take();
    } else {
        value = res != NULL ? command_value(self, kind, res, text_forms) : Py_NewRef(Py_None);
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
    }
    /* Outside pipeline mode now (or lost): the session's notes can be acted on. */
    if (!self->in_pipeline && oxpg_wait_settle(self) < 0)
        Py_CLEAR(out);
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
    if (!self->in_pipeline && oxpg_wait_settle(self) < 0)
        ok = 0;
    oxpg_client_unlock(self);
    if (!ok)
        return NULL;
    Py_RETURN_NONE;
}

/* _pipeline_active(): whether the pipeline is still open in the C core (a failed
 * _pipeline_send may have given it up, or not: a bad parameter leaves it open). */
PyObject *oxpg_pipeline_active(OxpgClient *self, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(self->in_pipeline && self->conn != NULL);
}
