/* _oxpg.Operation: a statement in flight that the caller drives itself, with the
 * socket's fileno() and step(), on any event loop. It is the query operation of
 * ops/query_op.c, the one query() is driven through by wait.c, so values, errors,
 * the statement cache, COPY refusal, cancel and drain behave the same on both
 * drivers. The operation holds the client (its lock) from start to end: one
 * statement in flight per connection. */
#include "oxpg/operation.h"
#include "oxpg/compat.h"
#include "oxpg/errors.h"
#include "oxpg/params.h"
#include "oxpg/query_op.h"
#include "oxpg/result.h"
#include "oxpg/wait.h"

#include <unistd.h>

enum { OP_RUNNING, OP_DONE, OP_FAILED };

typedef struct {
    PyObject_HEAD
    OxpgClient *client; /* strong reference */
    int state;
    int holds_lock;
    PyObject *sql;  /* strong: q.sql points into its UTF-8 */
    OxpgParams params;
    int has_params;
    OxpgCall call;
    OxpgQueryOp q;
    int has_op;
    PyObject *rows; /* the outcome once done */
} OxpgOperation;

/* The operation is over: the client is free again. */
static void release(OxpgOperation *operation)
{
    PyObject *pending = oxpg_err_take();
    if (operation->has_op) {
        operation->has_op = 0;
        if (oxpg_query_op_clear(operation->client, &operation->q) < 0 && pending == NULL)
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

/* The query op finished: keep its outcome, or raise its exception. */
static int finish(OxpgOperation *operation, OxpgIO io)
{
    int rc = -1;
    if (io == OXPG_IO_DONE && (operation->rows = oxpg_query_op_take(&operation->q, NULL)) != NULL)
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
    OxpgIO io = oxpg_query_op_step(operation->client, &operation->q);
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
    if (operation->state != OP_RUNNING || operation->q.read.draining)
        Py_RETURN_NONE;
    OxpgState *st = operation->client->st;
    PyObject *cls = st->sqlstate_map != NULL ? PyDict_GetItemString(st->sqlstate_map, "57014") : NULL;
    PyErr_SetString(cls != NULL ? cls : st->OperationalError,
                    "the operation was interrupted and its statement cancelled on the server");
    oxpg_read_op_interrupt(operation->client, &operation->q.read);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(abandon_doc, "abandon($self, /)\n--\n\n"
                          "Give the statement up without waiting for the server: the connection\n"
                          "is closed (for a driver whose drain ran out of time).");

static PyObject *Operation_abandon(OxpgOperation *operation, PyObject *Py_UNUSED(ignored))
{
    if (operation->state == OP_RUNNING) {
        oxpg_read_op_abandon(operation->client, &operation->q.read);
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
    oxpg_read_op_interrupt(operation->client, &operation->q.read);
    oxpg_wait_query(operation->client, &operation->q);
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
    if (operation->has_op) /* a forked child's copy of a running op: nothing to end, nothing to unlock */
        oxpg_query_op_free(&operation->q);
    oxpg_call_clear(&operation->call);
    if (operation->has_params)
        oxpg_params_free(&operation->params);
    Py_CLEAR(operation->sql);
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
    "Start one statement as query() (as_dicts) or query_tuples() runs it, and return\n"
    "the Operation that drives it. The client is held until the operation is done.";

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
    OxpgOperation *operation = PyObject_GC_New(OxpgOperation, st->OperationType);
    if (operation == NULL)
        return NULL;
    operation->client = (OxpgClient *)Py_NewRef(self);
    operation->state = OP_FAILED;
    operation->holds_lock = 0;
    operation->sql = Py_NewRef(args[1]);
    operation->has_params = 0;
    operation->has_op = 0;
    operation->rows = NULL;
    oxpg_call_init(&operation->call, -1);
    PyObject_GC_Track(operation);
    if (oxpg_params_encode(st, &operation->params, args + 2, nargs - 2, self->types.encoders) < 0)
        goto fail;
    operation->has_params = 1;
    if (oxpg_client_lock(self) < 0)
        goto fail;
    operation->holds_lock = 1; /* released when the operation ends */
    if (oxpg_client_check_usable(self) < 0 || (oxpg_stream_abandon(self), self->conn == NULL))
        goto fail;
    operation->has_op = 1;
    if (oxpg_query_op_start(self, &operation->q, &operation->call, args[1], sql, sql_len, &operation->params, 0,
                            as_dicts ? OXPG_QUERY_DICTS : OXPG_QUERY_TUPLES, 0) < 0)
        goto fail;
    operation->state = OP_RUNNING;
    return (PyObject *)operation;
fail:
    release(operation);
    Py_DECREF(operation);
    return NULL;
}
