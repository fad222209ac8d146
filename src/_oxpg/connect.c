/* oxpg.connect()'s C half: a PGconn from keyword/value arrays (never a pasted
 * conninfo string), opened by the connect operation and the sync driver, wrapped
 * in a Client. */
#include "oxpg/client.h"
#include "oxpg/connect_op.h"
#include "oxpg/errors.h"
#include "oxpg/stmtcache.h"
#include "oxpg/wait.h"

#include <unistd.h>

static PyObject *str_or_empty(const char *s)
{
    return PyUnicode_DecodeUTF8(s != NULL ? s : "", s != NULL ? (Py_ssize_t)strlen(s) : 0, "replace");
}

static const char **string_array(PyObject *seq, Py_ssize_t n)
{
    const char **out = PyMem_Calloc((size_t)n + 1, sizeof(char *));
    if (out == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
        const char *s = PyUnicode_Check(item) ? PyUnicode_AsUTF8(item) : NULL;
        if (s == NULL) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_TypeError, "connection options must be str");
            PyMem_Free((void *)out);
            return NULL;
        }
        out[i] = s;
    }
    return out;
}

/* The arguments of connect() and connect_start(), parsed. */
typedef struct {
    PyTypeObject *cls;
    int cache_size;
    int prepare_threshold;
    double command_timeout;
} ClientSettings;

/* Parse (cls, keywords, values, expand_dbname, cache_size, prepare_threshold,
 * command_timeout) and start connecting: a PGconn that is not CONNECTION_BAD, or
 * NULL with an exception set. */
static PGconn *start_connecting(OxpgState *st, PyObject *args, ClientSettings *settings)
{
    PyObject *kw_obj, *val_obj;
    PyObject *command_timeout_obj;
    int expand_dbname;
    if (!PyArg_ParseTuple(args, "O!OOpiiO:connect", &PyType_Type, &settings->cls, &kw_obj, &val_obj, &expand_dbname,
                          &settings->cache_size, &settings->prepare_threshold, &command_timeout_obj))
        return NULL;
    /* Refused before any network traffic, like every other bad argument. */
    if (oxpg_client_timeout_value("command_timeout", command_timeout_obj, -1, &settings->command_timeout) < 0)
        return NULL;
    if (!PyType_IsSubtype(settings->cls, st->ClientType)) {
        PyErr_SetString(PyExc_TypeError, "connect() needs a subclass of oxpg._oxpg.Client");
        return NULL;
    }
    PyObject *kw_seq = PySequence_Fast(kw_obj, "keywords must be a sequence");
    PyObject *val_seq = kw_seq != NULL ? PySequence_Fast(val_obj, "values must be a sequence") : NULL;
    const char **keywords = NULL, **values = NULL;
    PGconn *conn = NULL;
    if (val_seq == NULL)
        goto done;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(kw_seq);
    if (PySequence_Fast_GET_SIZE(val_seq) != n) {
        PyErr_SetString(PyExc_ValueError, "keywords and values differ in length");
        goto done;
    }
    if ((keywords = string_array(kw_seq, n)) == NULL || (values = string_array(val_seq, n)) == NULL)
        goto done;
    Py_BEGIN_ALLOW_THREADS
    conn = PQconnectStartParams(keywords, values, expand_dbname);
    Py_END_ALLOW_THREADS
    if (conn == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    if (PQstatus(conn) == CONNECTION_BAD) {
        /* Failing before any network activity means libpq rejected an option value
         * (sslmode=bogus): retrying cannot help, so it is the caller's error. */
        int rejected = strncmp(PQerrorMessage(conn), "invalid ", 8) == 0;
        oxpg_raise_conn_error(st, rejected ? st->InterfaceError : st->OperationalError, conn, "connection failed");
        Py_BEGIN_ALLOW_THREADS
        PQfinish(conn);
        Py_END_ALLOW_THREADS
        conn = NULL;
    }
done:
    PyMem_Free((void *)keywords);
    PyMem_Free((void *)values);
    Py_XDECREF(kw_seq);
    Py_XDECREF(val_seq);
    return conn;
}

static void finish_conn(PGconn *conn)
{
    Py_BEGIN_ALLOW_THREADS
    PQfinish(conn);
    Py_END_ALLOW_THREADS
}

/* The connection is open: the Client that owns it from here (conn is taken,
 * whatever happens). */
static PyObject *new_client(OxpgState *st, PGconn *conn, const ClientSettings *settings)
{
    OxpgClient *self = NULL;
    if (PQsetnonblocking(conn, 1) != 0) {
        oxpg_raise_conn_error(st, st->OperationalError, conn, "cannot switch to non-blocking mode");
        goto fail;
    }
    self = (OxpgClient *)settings->cls->tp_alloc(settings->cls, 0);
    if (self == NULL)
        goto fail;
    self->st = st;
    self->pid = getpid();
    if ((self->lock = PyThread_allocate_lock()) == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    if ((self->cancel_lock = PyThread_allocate_lock()) == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    self->command_timeout = settings->command_timeout;
    self->server_version = PQserverVersion(conn);
    self->backend_pid = PQbackendPID(conn);
    if (oxpg_cache_init(&self->cache, settings->cache_size, settings->prepare_threshold) < 0)
        goto fail;
    if ((self->host = str_or_empty(PQhost(conn))) == NULL || (self->port = str_or_empty(PQport(conn))) == NULL ||
        (self->dbname = str_or_empty(PQdb(conn))) == NULL || (self->user = str_or_empty(PQuser(conn))) == NULL)
        goto fail;
    PQsetNoticeReceiver(conn, oxpg_client_notice_receiver, self);
    self->conn = conn; /* self owns conn from here */
    return (PyObject *)self;
fail:
    finish_conn(conn);
    Py_XDECREF(self);
    return NULL;
}

PyObject *oxpg_client_connect(PyObject *module, PyObject *args)
{
    OxpgState *st = PyModule_GetState(module);
    ClientSettings settings;
    PGconn *conn = start_connecting(st, args, &settings);
    if (conn == NULL)
        return NULL;
    OxpgConnectOp op;
    oxpg_connect_op_init(&op, conn);
    if (oxpg_wait_connect(st, &op) < 0) {
        finish_conn(conn);
        return NULL;
    }
    return new_client(st, conn, &settings);
}

/* ---- _oxpg.Connecting: the connect op driven by the caller ----------------------- */

typedef struct {
    PyObject_HEAD
    OxpgState *st;
    ClientSettings settings; /* settings.cls: strong */
    OxpgConnectOp op;        /* op.conn: owned until handed to the Client */
    int polled;              /* PQconnectPoll was called: before that, wait until writable */
    pid_t pid_started;
    PyObject *client;        /* the outcome once connected */
} OxpgConnecting;

static void connecting_close(OxpgConnecting *c)
{
    if (c->op.conn != NULL) {
        finish_conn(c->op.conn);
        c->op.conn = NULL;
    }
}

PyDoc_STRVAR(connecting_step_doc, "step($self, /)\n--\n\n"
                                  "Go on connecting without waiting. Returns IO_WANT_READ or IO_WANT_WRITE\n"
                                  "(wait for that on fileno(), which may change between steps, then step\n"
                                  "again) or IO_DONE (result() is the Client); raises OperationalError.");

static PyObject *Connecting_step(OxpgConnecting *c, PyObject *Py_UNUSED(ignored))
{
    if (c->client != NULL)
        return PyLong_FromLong(OXPG_IO_DONE);
    if (c->op.conn == NULL) {
        PyErr_SetString(c->st->InterfaceError, "the connection attempt is over: it failed or was closed");
        return NULL;
    }
    if (!c->polled) {
        /* libpq's rule: the socket must be writable before the first poll. */
        c->polled = 1;
        return PyLong_FromLong(OXPG_IO_WANT_WRITE);
    }
    OxpgIO io = oxpg_connect_op_step(c->st, &c->op);
    if (io == OXPG_IO_FAILED) {
        connecting_close(c);
        return NULL;
    }
    if (io == OXPG_IO_DONE) {
        PGconn *conn = c->op.conn;
        c->op.conn = NULL; /* new_client takes it */
        if ((c->client = new_client(c->st, conn, &c->settings)) == NULL)
            return NULL;
    }
    return PyLong_FromLong(io);
}

static PyObject *Connecting_fileno(OxpgConnecting *c, PyObject *Py_UNUSED(ignored))
{
    int fd = c->op.conn != NULL ? PQsocket(c->op.conn) : -1;
    if (fd < 0) {
        PyErr_SetString(c->st->OperationalError, "the connection attempt has no socket");
        return NULL;
    }
    return PyLong_FromLong(fd);
}

PyDoc_STRVAR(connecting_time_out_doc, "time_out($self, /)\n--\n\n"
                                      "The deadline passed: give the attempt up and raise OperationalError\n"
                                      "naming connect_timeout.");

static PyObject *Connecting_time_out(OxpgConnecting *c, PyObject *Py_UNUSED(ignored))
{
    connecting_close(c);
    oxpg_connect_op_raise_timeout(c->st, &c->op);
    return NULL;
}

static PyObject *Connecting_close(OxpgConnecting *c, PyObject *Py_UNUSED(ignored))
{
    connecting_close(c);
    Py_RETURN_NONE;
}

static PyObject *Connecting_result(OxpgConnecting *c, PyObject *Py_UNUSED(ignored))
{
    if (c->client == NULL) {
        PyErr_SetString(c->st->InterfaceError, "not connected yet: step() until IO_DONE");
        return NULL;
    }
    return Py_NewRef(c->client);
}

static PyObject *Connecting_get_deadline(OxpgConnecting *c, void *Py_UNUSED(closure))
{
    return c->op.deadline >= 0 ? PyFloat_FromDouble(c->op.deadline) : Py_NewRef(Py_None);
}

static int Connecting_traverse(OxpgConnecting *c, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(c));
    Py_VISIT(c->settings.cls);
    Py_VISIT(c->client);
    return 0;
}

static int Connecting_clear(OxpgConnecting *c)
{
    Py_CLEAR(c->client);
    return 0;
}

static void Connecting_dealloc(OxpgConnecting *c)
{
    PyTypeObject *type = Py_TYPE(c);
    PyObject_GC_UnTrack(c);
    /* A forked child's copy of the attempt must not touch the parent's socket. */
    if (c->op.conn != NULL && getpid() == c->pid_started)
        connecting_close(c);
    Py_CLEAR(c->settings.cls);
    Py_CLEAR(c->client);
    type->tp_free((PyObject *)c);
    Py_DECREF(type);
}

static PyMethodDef connecting_methods[] = {
    {"step", (PyCFunction)Connecting_step, METH_NOARGS, connecting_step_doc},
    {"fileno", (PyCFunction)Connecting_fileno, METH_NOARGS, "fileno($self, /)\n--\n\nThe socket being connected."},
    {"time_out", (PyCFunction)Connecting_time_out, METH_NOARGS, connecting_time_out_doc},
    {"close", (PyCFunction)Connecting_close, METH_NOARGS, "close($self, /)\n--\n\nGive the attempt up."},
    {"result", (PyCFunction)Connecting_result, METH_NOARGS, "result($self, /)\n--\n\nThe Client, once connected."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef connecting_getset[] = {
    {"deadline", (getter)Connecting_get_deadline, NULL,
     "When connect_timeout runs out (time.monotonic()), None for never: call time_out() then.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot connecting_slots[] = {
    {Py_tp_doc, "A connection being opened, driven by the caller. Made by _oxpg.connect_start()."},
    {Py_tp_methods, connecting_methods},
    {Py_tp_getset, connecting_getset},
    {Py_tp_traverse, Connecting_traverse},
    {Py_tp_clear, Connecting_clear},
    {Py_tp_dealloc, Connecting_dealloc},
    {0, NULL},
};

PyType_Spec oxpg_connecting_spec = {
    .name = "oxpg._oxpg.Connecting",
    .basicsize = sizeof(OxpgConnecting),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = connecting_slots,
};

PyObject *oxpg_client_connect_start(PyObject *module, PyObject *args)
{
    OxpgState *st = PyModule_GetState(module);
    ClientSettings settings;
    PGconn *conn = start_connecting(st, args, &settings);
    if (conn == NULL)
        return NULL;
    OxpgConnecting *c = PyObject_GC_New(OxpgConnecting, st->ConnectingType);
    if (c == NULL) {
        finish_conn(conn);
        return NULL;
    }
    c->st = st;
    c->settings = settings;
    Py_INCREF(settings.cls);
    oxpg_connect_op_init(&c->op, conn);
    c->polled = 0;
    c->pid_started = getpid();
    c->client = NULL;
    PyObject_GC_Track(c);
    return (PyObject *)c;
}
