/* _oxpg.Operation: a call in flight that the caller drives itself, with the
 * socket's fileno() and step(), on any event loop. It is one of the operations the
 * sync client is driven through by wait.c (the query op of ops/query_op.c, the batch
 * op of ops/batch_op.c), so values, errors, the statement cache, COPY refusal,
 * timeouts, cancel and drain behave the same on both drivers. The operation holds
 * the client (its lock) from start to end: one call in flight per connection. */
#include "oxpg/operation.h"
#include "oxpg/batch_op.h"
#include "oxpg/compat.h"
#include "oxpg/errors.h"
#include "oxpg/params.h"
#include "oxpg/query_op.h"
#include "oxpg/result.h"
#include "oxpg/wait.h"

#include <unistd.h>

enum { OP_RUNNING, OP_DONE, OP_FAILED };

/* Which operation runs. */
enum { KIND_QUERY, KIND_BATCH };

typedef struct {
    PyObject_HEAD
    OxpgClient *client; /* strong reference */
    int kind;
    int state;
    int holds_lock;
    PyObject *sql;  /* strong: the op's SQL points into its UTF-8 */
    OxpgParams params;
    int has_params;
    PyObject *param_objects; /* strong: the encoded parameters point into their buffers */
    OxpgCall call;
    union {
        OxpgQueryOp q;
        OxpgBatchOp b;
    } op;
    int has_op;
    PyObject *rows; /* the outcome once done */
} OxpgOperation;

/* ---- the operation, whichever kind ---------------------------------------------- */

static OxpgReadOp *current_read(OxpgOperation *operation)
{
    return operation->kind == KIND_QUERY ? &operation->op.q.read : &operation->op.b.read;
}

static OxpgIO op_step(OxpgOperation *operation)
{
    if (operation->kind == KIND_QUERY)
        return oxpg_query_op_step(operation->client, &operation->op.q);
    return oxpg_batch_op_step(operation->client, &operation->op.b);
}

/* An exception is pending: the op keeps it, cancels and drains. */
static void op_interrupt(OxpgOperation *operation)
{
    if (operation->kind == KIND_QUERY)
        oxpg_read_op_interrupt(operation->client, &operation->op.q.read);
    else
        oxpg_batch_op_interrupt(operation->client, &operation->op.b);
}

static int op_wait(OxpgOperation *operation)
{
    if (operation->kind == KIND_QUERY)
        return oxpg_wait_query(operation->client, &operation->op.q);
    return oxpg_wait_batch(operation->client, &operation->op.b);
}

static PyObject *op_take(OxpgOperation *operation)
{
    if (operation->kind == KIND_QUERY)
        return oxpg_query_op_take(&operation->op.q, NULL);
    return oxpg_batch_op_take(&operation->op.b);
}

static int op_clear(OxpgOperation *operation)
{
    if (operation->kind == KIND_QUERY)
        return oxpg_query_op_clear(operation->client, &operation->op.q);
    return oxpg_batch_op_clear(operation->client, &operation->op.b);
}

static void op_free(OxpgOperation *operation)
{
    if (operation->kind == KIND_QUERY)
        oxpg_query_op_free(&operation->op.q);
    else
        oxpg_batch_op_free(&operation->op.b);
}

/* The operation is over: the client is free again. */
static void release(OxpgOperation *operation)
{
    PyObject *pending = oxpg_err_take();
    if (operation->has_op) {
        operation->has_op = 0;
        if (op_clear(operation) < 0 && pending == NULL)
            pending = oxpg_err_take();
        PyErr_Clear();
    }
    oxpg_call_clear(&operation->call);
    if (operation->has_params) {
        operation->has_params = 0;
        oxpg_params_free(&operation->params);
    }
    if (operation->holds_lock) {
        operation->holds_lock = 0;
        oxpg_client_unlock(operation->client);
    }
    oxpg_err_restore(pending);
}

/* The op finished: keep its outcome, or raise its exception. */
static int finish(OxpgOperation *operation, OxpgIO io)
{
    int rc = -1;
    if (io == OXPG_IO_DONE && (operation->rows = op_take(operation)) != NULL)
        rc = 0;
    operation->state = rc == 0 ? OP_DONE : OP_FAILED;
    release(operation);
    return rc < 0 || PyErr_Occurred() ? -1 : 0;
}

PyDoc_STRVAR(step_doc, "step($self, /)\n--\n\n"
                       "Do what can be done without waiting. Returns IO_DONE, IO_WANT_READ or\n"
                       "IO_WANT_WRITE (wait for that on fileno(), then step again); raises the\n"
                       "statement's error when it failed.");

static PyObject *Operation_step(OxpgOperation *operation, PyObject *Py_UNUSED(ignored))
{
    if (operation->state != OP_RUNNING)
        return PyLong_FromLong(OXPG_IO_DONE);
    if (oxpg_client_check_process(operation->client) < 0)
        return NULL;
    OxpgIO io = op_step(operation);
    if (io == OXPG_IO_WANT_READ || io == OXPG_IO_WANT_WRITE)
        return PyLong_FromLong(io);
    if (finish(operation, io) < 0)
        return NULL;
    return PyLong_FromLong(OXPG_IO_DONE);
}

/* After op_interrupt: the op took the exception and drains; or it could not (the
 * connection went while the batch was being aborted), and the operation is over
 * with that exception, raised here. */
static PyObject *interrupted(OxpgOperation *operation)
{
    if (!PyErr_Occurred())
        Py_RETURN_NONE;
    operation->state = OP_FAILED;
    release(operation); /* keeps the exception */
    return NULL;
}

PyDoc_STRVAR(interrupt_doc, "interrupt($self, /)\n--\n\n"
                            "Cancel the statement on the server. Keep stepping: the rest of its\n"
                            "results are discarded, and step() then raises QueryCanceled.");

static PyObject *Operation_interrupt(OxpgOperation *operation, PyObject *Py_UNUSED(ignored))
{
    if (operation->state != OP_RUNNING || current_read(operation)->draining)
        Py_RETURN_NONE;
    OxpgState *st = operation->client->st;
    PyObject *cls = st->sqlstate_map != NULL ? PyDict_GetItemString(st->sqlstate_map, "57014") : NULL;
    PyErr_SetString(cls != NULL ? cls : st->OperationalError,
                    "the operation was interrupted and its statement cancelled on the server");
    op_interrupt(operation);
    return interrupted(operation);
}

PyDoc_STRVAR(time_out_doc, "time_out($self, /)\n--\n\n"
                           "The deadline passed: cancel the statement on the server as interrupt()\n"
                           "does; step() then raises QueryTimeoutError, as the sync client would.");

static PyObject *Operation_time_out(OxpgOperation *operation, PyObject *Py_UNUSED(ignored))
{
    if (operation->state != OP_RUNNING || current_read(operation)->draining)
        Py_RETURN_NONE;
    oxpg_call_raise_timeout(operation->client, &operation->call);
    op_interrupt(operation);
    return interrupted(operation);
}

PyDoc_STRVAR(abandon_doc, "abandon($self, /)\n--\n\n"
                          "Give the statement up without waiting for the server: the connection\n"
                          "is closed (for a driver whose drain ran out of time). Raises what\n"
                          "interrupted the statement (QueryTimeoutError after time_out()), as the\n"
                          "sync client does when its drain runs out of time.");

static PyObject *Operation_abandon(OxpgOperation *operation, PyObject *Py_UNUSED(ignored))
{
    if (operation->state != OP_RUNNING)
        Py_RETURN_NONE;
    oxpg_read_op_abandon(operation->client, current_read(operation));
    operation->state = OP_FAILED;
    release(operation); /* keeps the pending exception */
    if (PyErr_Occurred())
        return NULL;
    Py_RETURN_NONE;
}

PyDoc_STRVAR(result_doc, "result($self, /)\n--\n\n"
                         "The outcome once step() returned IO_DONE: the rows (a list of dicts or\n"
                         "tuples) or, for execute and executemany, the row count.");

static PyObject *Operation_result(OxpgOperation *operation, PyObject *Py_UNUSED(ignored))
{
    if (operation->state != OP_DONE || operation->rows == NULL) {
        PyErr_SetString(operation->client->st->InterfaceError,
                        operation->state == OP_RUNNING ? "the operation is still running: step() it until IO_DONE"
                                                       : "the operation failed: step() raised its error");
        return NULL;
    }
    return Py_NewRef(operation->rows);
}

static PyObject *Operation_fileno(OxpgOperation *operation, PyObject *Py_UNUSED(ignored))
{
    PGconn *conn = operation->client->conn;
    int fd = conn != NULL ? PQsocket(conn) : -1;
    if (fd < 0) {
        PyErr_SetString(operation->client->st->OperationalError, "the connection is closed");
        return NULL;
    }
    return PyLong_FromLong(fd);
}

static PyObject *Operation_get_done(OxpgOperation *operation, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(operation->state != OP_RUNNING);
}

static PyObject *Operation_get_draining(OxpgOperation *operation, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(operation->state == OP_RUNNING && current_read(operation)->draining);
}

/* A monotonic instant (time.monotonic()'s clock), or None. */
static PyObject *instant(double when)
{
    return when >= 0 ? PyFloat_FromDouble(when) : Py_NewRef(Py_None);
}

static PyObject *Operation_get_deadline(OxpgOperation *operation, void *Py_UNUSED(closure))
{
    return instant(operation->state == OP_RUNNING ? operation->call.deadline : -1);
}

static PyObject *Operation_get_drain_deadline(OxpgOperation *operation, void *Py_UNUSED(closure))
{
    OxpgReadOp *read = operation->state == OP_RUNNING ? current_read(operation) : NULL;
    return instant(read != NULL && read->draining ? read->drain_deadline : -1);
}

/* Dropped while running: end the statement here (cancel, drain within the grace),
 * so the client is usable again. */
static void Operation_finalize(OxpgOperation *operation)
{
    if (operation->state != OP_RUNNING || operation->client == NULL ||
        operation->client->pid != getpid())
        return;
    PyObject *pending = oxpg_err_take();
    PyErr_SetString(operation->client->st->InterfaceError, "the operation was dropped while running");
    op_interrupt(operation);
    op_wait(operation);
    PyErr_Clear();
    operation->state = OP_FAILED;
    release(operation);
    PyErr_Clear();
    oxpg_err_restore(pending);
}

static int Operation_traverse(OxpgOperation *operation, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(operation));
    Py_VISIT(operation->client);
    Py_VISIT(operation->rows);
    Py_VISIT(operation->param_objects);
    return 0;
}

static int Operation_clear(OxpgOperation *operation)
{
    Py_CLEAR(operation->rows);
    return 0;
}

static void Operation_dealloc(OxpgOperation *operation)
{
    if (PyObject_CallFinalizerFromDealloc((PyObject *)operation) < 0)
        return;
    PyTypeObject *type = Py_TYPE(operation);
    PyObject_GC_UnTrack(operation);
    if (operation->has_op) /* a forked child's copy of a running op: nothing to end, nothing to unlock */
        op_free(operation);
    oxpg_call_clear(&operation->call);
    if (operation->has_params)
        oxpg_params_free(&operation->params);
    Py_CLEAR(operation->sql);
    Py_CLEAR(operation->param_objects);
    Py_CLEAR(operation->rows);
    Py_CLEAR(operation->client);
    type->tp_free((PyObject *)operation);
    Py_DECREF(type);
}

static PyMethodDef operation_methods[] = {
    {"step", (PyCFunction)Operation_step, METH_NOARGS, step_doc},
    {"interrupt", (PyCFunction)Operation_interrupt, METH_NOARGS, interrupt_doc},
    {"time_out", (PyCFunction)Operation_time_out, METH_NOARGS, time_out_doc},
    {"abandon", (PyCFunction)Operation_abandon, METH_NOARGS, abandon_doc},
    {"result", (PyCFunction)Operation_result, METH_NOARGS, result_doc},
    {"fileno", (PyCFunction)Operation_fileno, METH_NOARGS, "fileno($self, /)\n--\n\nThe connection's socket."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef operation_getset[] = {
    {"done", (getter)Operation_get_done, NULL, "True once the operation finished (or failed).", NULL},
    {"draining", (getter)Operation_get_draining, NULL,
     "True while an interrupted statement's results are read and dropped.", NULL},
    {"deadline", (getter)Operation_get_deadline, NULL,
     "When the call times out (time.monotonic()), None for never: call time_out() then.", NULL},
    {"drain_deadline", (getter)Operation_get_drain_deadline, NULL,
     "While draining: when to give up and abandon() the connection (time.monotonic()), else None.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot operation_slots[] = {
    {Py_tp_doc, "A call in flight, driven by the caller. Made by Client._start_query(),\n"
                "_start_execute() and _start_executemany()."},
    {Py_tp_methods, operation_methods},
    {Py_tp_getset, operation_getset},
    {Py_tp_traverse, Operation_traverse},
    {Py_tp_clear, Operation_clear},
    {Py_tp_finalize, Operation_finalize},
    {Py_tp_dealloc, Operation_dealloc},
    {0, NULL},
};

PyType_Spec oxpg_operation_spec = {
    .name = "oxpg._oxpg.Operation",
    .basicsize = sizeof(OxpgOperation),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = operation_slots,
};

/* A new operation over self, not yet started; sql_obj is kept for the op's SQL. */
static OxpgOperation *new_operation(OxpgClient *self, int kind, PyObject *sql_obj, double timeout)
{
    OxpgOperation *operation = PyObject_GC_New(OxpgOperation, self->st->OperationType);
    if (operation == NULL)
        return NULL;
    operation->client = (OxpgClient *)Py_NewRef(self);
    operation->kind = kind;
    operation->state = OP_FAILED;
    operation->holds_lock = 0;
    operation->sql = Py_NewRef(sql_obj);
    operation->has_params = 0;
    operation->param_objects = NULL;
    operation->has_op = 0;
    operation->rows = NULL;
    oxpg_call_init(&operation->call, -1);
    operation->call.timeout = timeout; /* the deadline counts from the start */
    PyObject_GC_Track(operation);
    return operation;
}

/* Take the client for the operation; then the op is started by the caller. */
static int take_client(OxpgOperation *operation)
{
    OxpgClient *self = operation->client;
    if (oxpg_client_lock(self) < 0)
        return -1;
    operation->holds_lock = 1; /* released when the operation ends */
    if (oxpg_client_check_usable(self) < 0 || (oxpg_stream_abandon(self), self->conn == NULL))
        return -1;
    /* The timeout counts from here, as the sync client's: waiting for the client is
     * not the statement's time. */
    oxpg_call_init(&operation->call, operation->call.timeout);
    return 0;
}

/* Parse the trailing timeout= of a _start_* call. */
static int start_timeout(OxpgClient *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                         double *timeout)
{
    *timeout = self->command_timeout;
    return kwnames == NULL ? 0 : oxpg_client_parse_timeout(self, args, nargs, kwnames, timeout);
}

static PyObject *start_query(OxpgClient *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                             OxpgQueryMode mode)
{
    double timeout;
    if (start_timeout(self, args, nargs, kwnames, &timeout) < 0)
        return NULL;
    if (nargs < 1) {
        PyErr_SetString(PyExc_TypeError, "missing the SQL statement");
        return NULL;
    }
    Py_ssize_t sql_len;
    const char *sql = oxpg_client_sql(self, args[0], &sql_len);
    if (sql == NULL)
        return NULL;
    OxpgOperation *operation = new_operation(self, KIND_QUERY, args[0], timeout);
    if (operation == NULL)
        return NULL;
    if ((operation->param_objects = PyTuple_New(nargs - 1)) == NULL)
        goto fail;
    for (Py_ssize_t i = 1; i < nargs; i++)
        PyTuple_SET_ITEM(operation->param_objects, i - 1, Py_NewRef(args[i]));
    if (oxpg_params_encode(self->st, &operation->params, args + 1, nargs - 1, self->types.encoders) < 0)
        goto fail;
    operation->has_params = 1;
    if (take_client(operation) < 0)
        goto fail;
    /* As execute(): without parameters the simple protocol (several statements). */
    int simple = mode == OXPG_QUERY_EXECUTE && nargs == 1;
    operation->has_op = 1;
    if (oxpg_query_op_start(self, &operation->op.q, &operation->call, args[0], sql, sql_len, &operation->params,
                            simple, mode, 0) < 0)
        goto fail;
    operation->state = OP_RUNNING;
    return (PyObject *)operation;
fail:
    release(operation);
    Py_DECREF(operation);
    return NULL;
}

const char oxpg_start_query_doc[] =
    "_start_query($self, as_dicts, sql, /, *params, timeout=None)\n--\n\n"
    "Start one statement as query() (as_dicts) or query_tuples() runs it, and return\n"
    "the Operation that drives it. The client is held until the operation is done.";

PyObject *oxpg_operation_start_query(OxpgClient *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs < 2) {
        PyErr_SetString(PyExc_TypeError, "_start_query(as_dicts, sql, *params)");
        return NULL;
    }
    int as_dicts = PyObject_IsTrue(args[0]);
    if (as_dicts < 0)
        return NULL;
    return start_query(self, args + 1, nargs - 1, kwnames, as_dicts ? OXPG_QUERY_DICTS : OXPG_QUERY_TUPLES);
}

const char oxpg_start_execute_doc[] =
    "_start_execute($self, sql, /, *params, timeout=None)\n--\n\n"
    "Start one statement as execute() runs it; the Operation's result is the row count.";

PyObject *oxpg_operation_start_execute(OxpgClient *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    return start_query(self, args, PyVectorcall_NARGS(nargsf), kwnames, OXPG_QUERY_EXECUTE);
}

const char oxpg_start_executemany_doc[] =
    "_start_executemany($self, sql, seq_of_params, /, *, timeout=None)\n--\n\n"
    "Start a batch as executemany() runs it; the Operation's result is the row count.";

PyObject *oxpg_operation_start_executemany(OxpgClient *self, PyObject *const *args, size_t nargsf,
                                           PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    double timeout;
    if (start_timeout(self, args, nargs, kwnames, &timeout) < 0)
        return NULL;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "_start_executemany(sql, seq_of_params)");
        return NULL;
    }
    Py_ssize_t sql_len;
    const char *sql = oxpg_client_sql(self, args[0], &sql_len);
    if (sql == NULL || oxpg_batch_check_sql(self, sql, sql_len) < 0)
        return NULL;
    PyObject *rows = PyObject_GetIter(args[1]);
    if (rows == NULL)
        return NULL;
    OxpgOperation *operation = new_operation(self, KIND_BATCH, args[0], timeout);
    if (operation == NULL) {
        Py_DECREF(rows);
        return NULL;
    }
    if (take_client(operation) < 0)
        goto fail;
    operation->has_op = 1;
    if (oxpg_batch_op_start(self, &operation->op.b, &operation->call, sql, sql_len, rows) < 0)
        goto fail;
    Py_DECREF(rows);
    /* With no rows the batch is over before it started. */
    operation->state = OP_RUNNING;
    return (PyObject *)operation;
fail:
    Py_DECREF(rows);
    release(operation);
    Py_DECREF(operation);
    return NULL;
}
