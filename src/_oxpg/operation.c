/* _oxpg.Operation: a statement in flight that the caller drives itself, with the
 * socket's fileno() and step(), on any event loop. It is the read operation of
 * ops/read_op.c, the one the sync client's calls are driven through by wait.c, so
 * results, errors, COPY refusal, cancel and drain behave the same on both drivers.
 * The operation holds the client (its lock) from start to end: one statement in
 * flight per connection. */
#include "oxpg/operation.h"
#include "oxpg/compat.h"
#include "oxpg/errors.h"
#include "oxpg/params.h"
#include "oxpg/read_op.h"
#include "oxpg/result.h"
#include "oxpg/wait.h"

#include <unistd.h>

enum { OP_RUNNING, OP_DONE, OP_FAILED };

typedef struct {
    PyObject_HEAD
    OxpgClient *client; /* strong reference */
    int state;
    int as_dicts;
    int holds_lock;
    OxpgCall call;
    OxpgReadOp op;
    PGresult *last;
    PyObject *rows; /* the decoded result once done */
} OxpgOperation;

static OxpgReadStep keep_last(OxpgClient *self, OxpgCall *call, PGresult *r, void *ctx)
{
    (void)self;
    OxpgOperation *operation = ctx;
    if (r == NULL)
        return OXPG_READ_STOP;
    if (oxpg_result_is_error(r)) {
        oxpg_call_keep_error(call, r);
    } else {
        PQclear(operation->last);
        operation->last = r;
    }
    return OXPG_READ_MORE;
}

/* The operation is over: the client is free again. */
static void release(OxpgOperation *operation)
{
    PQclear(operation->last);
    operation->last = NULL;
    oxpg_call_clear(&operation->call);
    oxpg_read_op_clear(&operation->op);
    if (operation->holds_lock) {
        operation->holds_lock = 0;
        PyObject *pending = oxpg_err_take();
        if (oxpg_wait_settle(operation->client) < 0 && pending == NULL)
            pending = oxpg_err_take();
        PyErr_Clear();
        oxpg_client_unlock(operation->client);
        oxpg_err_restore(pending);
    }
}

/* Rows as query() gives them. Types that need the catalog or the text-form round
 * trip are not decoded here yet (they need further round trips, which become
 * further states of the query operation): DataError says so. */
static PyObject *decode(OxpgOperation *operation)
{
    OxpgClient *client = operation->client;
    OxpgState *st = client->st;
    const PGresult *res = operation->last;
    if (res == NULL || PQresultStatus(res) == PGRES_EMPTY_QUERY) {
        PyErr_SetString(st->ProgrammingError, "empty query: the statement has no SQL command");
        return NULL;
    }
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        return PyList_New(0);
    OxpgColumns cols;
    if (oxpg_columns_init(&cols, res, &client->types) < 0)
        return NULL;
    PyObject *rows = NULL;
    if (cols.needs_text) {
        PyErr_SetString(st->DataError, "Operation: a column's type needs a catalog lookup or its text form, which "
                                       "operations do not do yet; use query(), or cast the column to text");
    } else {
        cols.timezone = oxpg_client_timezone(client);
        rows = oxpg_result_rows(st, res, &cols, NULL, operation->as_dicts, 0);
    }
    oxpg_columns_clear(&cols);
    return rows;
}

/* The read op finished: turn its outcome into rows or an exception. */
static int finish(OxpgOperation *operation, OxpgIO io)
{
    OxpgClient *client = operation->client;
    OxpgState *st = client->st;
    int rc = -1;
    if (io == OXPG_IO_FAILED) {
        /* the exception is set */
    } else if (operation->call.copy_refused && client->conn != NULL) {
        PyErr_SetString(st->NotSupportedError, "COPY is not supported by operations");
    } else if (operation->call.error != NULL) {
        oxpg_conn_raise_error(client, &operation->call);
    } else if ((operation->rows = decode(operation)) != NULL) {
        rc = 0;
    }
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
    OxpgIO io = oxpg_read_op_step(operation->client, &operation->op);
    if (io == OXPG_IO_WANT_READ || io == OXPG_IO_WANT_WRITE)
        return PyLong_FromLong(io);
    if (finish(operation, io) < 0)
        return NULL;
    return PyLong_FromLong(OXPG_IO_DONE);
}

PyDoc_STRVAR(interrupt_doc, "interrupt($self, /)\n--\n\n"
                            "Cancel the statement on the server. Keep stepping: the rest of its\n"
                            "results are discarded, and step() then raises QueryCanceled.");

static PyObject *Operation_interrupt(OxpgOperation *operation, PyObject *Py_UNUSED(ignored))
{
    if (operation->state != OP_RUNNING || operation->op.draining)
        Py_RETURN_NONE;
    OxpgState *st = operation->client->st;
    PyObject *cls = st->sqlstate_map != NULL ? PyDict_GetItemString(st->sqlstate_map, "57014") : NULL;
    PyErr_SetString(cls != NULL ? cls : st->OperationalError,
                    "the operation was interrupted and its statement cancelled on the server");
    oxpg_read_op_interrupt(operation->client, &operation->op);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(abandon_doc, "abandon($self, /)\n--\n\n"
                          "Give the statement up without waiting for the server: the connection\n"
                          "is closed (for a driver whose drain ran out of time).");

static PyObject *Operation_abandon(OxpgOperation *operation, PyObject *Py_UNUSED(ignored))
{
    if (operation->state == OP_RUNNING) {
        oxpg_read_op_abandon(operation->client, &operation->op);
        PyErr_Clear();
        operation->state = OP_FAILED;
        release(operation);
    }
    Py_RETURN_NONE;
}

PyDoc_STRVAR(result_doc, "result($self, /)\n--\n\n"
                         "The rows (list of dicts, or tuples), once step() returned IO_DONE.");

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

/* Dropped while running: end the statement here (cancel, drain within the grace),
 * so the client is usable again. */
static void Operation_finalize(OxpgOperation *operation)
{
    if (operation->state != OP_RUNNING || operation->client == NULL ||
        operation->client->pid != getpid())
        return;
    PyObject *pending = oxpg_err_take();
    PyErr_SetString(operation->client->st->InterfaceError, "the operation was dropped while running");
    oxpg_read_op_interrupt(operation->client, &operation->op);
    oxpg_wait_op(operation->client, &operation->op);
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
    PQclear(operation->last);
    oxpg_call_clear(&operation->call);
    oxpg_read_op_clear(&operation->op);
    Py_CLEAR(operation->rows);
    Py_CLEAR(operation->client);
    type->tp_free((PyObject *)operation);
    Py_DECREF(type);
}

static PyMethodDef operation_methods[] = {
    {"step", (PyCFunction)Operation_step, METH_NOARGS, step_doc},
    {"interrupt", (PyCFunction)Operation_interrupt, METH_NOARGS, interrupt_doc},
    {"abandon", (PyCFunction)Operation_abandon, METH_NOARGS, abandon_doc},
    {"result", (PyCFunction)Operation_result, METH_NOARGS, result_doc},
    {"fileno", (PyCFunction)Operation_fileno, METH_NOARGS, "fileno($self, /)\n--\n\nThe connection's socket."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef operation_getset[] = {
    {"done", (getter)Operation_get_done, NULL, "True once the operation finished (or failed).", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot operation_slots[] = {
    {Py_tp_doc, "A statement in flight, driven by the caller. Made by Client._start_query()."},
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

const char oxpg_start_query_doc[] =
    "_start_query($self, as_dicts, sql, /, *params)\n--\n\n"
    "Send one statement (unnamed, binary results) and return the Operation that reads\n"
    "its result. The client is held until the operation is done.";

PyObject *oxpg_operation_start(OxpgClient *self, PyObject *const *args, Py_ssize_t nargs)
{
    OxpgState *st = self->st;
    if (nargs < 2) {
        PyErr_SetString(PyExc_TypeError, "_start_query(as_dicts, sql, *params)");
        return NULL;
    }
    int as_dicts = PyObject_IsTrue(args[0]);
    if (as_dicts < 0)
        return NULL;
    Py_ssize_t sql_len;
    const char *sql = oxpg_client_sql(self, args[1], &sql_len);
    if (sql == NULL)
        return NULL;
    OxpgParams params;
    if (oxpg_params_encode(st, &params, args + 2, nargs - 2, self->types.encoders) < 0)
        return NULL;
    OxpgOperation *operation = NULL;
    if (oxpg_client_lock(self) < 0)
        goto done;
    if (oxpg_client_check_usable(self) < 0 || (oxpg_stream_abandon(self), self->conn == NULL) ||
        oxpg_client_check_param_count(self, sql, sql_len, params.count) < 0)
        goto unlock;
    OxpgCall reset_call;
    oxpg_call_init(&reset_call, -1);
    if (oxpg_client_reset_single_row(self, &reset_call) < 0)
        goto unlock;
    operation = PyObject_GC_New(OxpgOperation, st->OperationType);
    if (operation == NULL)
        goto unlock;
    operation->client = (OxpgClient *)Py_NewRef(self);
    operation->state = OP_RUNNING;
    operation->as_dicts = as_dicts;
    operation->holds_lock = 0;
    operation->last = NULL;
    operation->rows = NULL;
    oxpg_call_init(&operation->call, -1);
    oxpg_read_op_init(&operation->op, &operation->call, keep_last, operation);
    PyObject_GC_Track(operation);
    if (!PQsendQueryParams(self->conn, sql, params.count, params.types, params.values, params.lengths,
                           params.formats, 1)) {
        oxpg_conn_send_failed(self, "could not send the query");
        operation->state = OP_FAILED;
        Py_CLEAR(operation);
        goto unlock;
    }
    operation->holds_lock = 1; /* released when the operation ends */
    goto done;
unlock:
    oxpg_client_unlock(self);
done:
    oxpg_params_free(&params);
    return (PyObject *)operation;
}
