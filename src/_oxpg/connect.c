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

PyObject *oxpg_client_connect(PyObject *module, PyObject *args)
{
    OxpgState *st = PyModule_GetState(module);
    PyTypeObject *cls;
    PyObject *kw_obj, *val_obj;
    PyObject *command_timeout_obj;
    int expand_dbname, cache_size, prepare_threshold;
    double command_timeout;
    if (!PyArg_ParseTuple(args, "O!OOpiiO:connect", &PyType_Type, &cls, &kw_obj, &val_obj, &expand_dbname,
                          &cache_size, &prepare_threshold, &command_timeout_obj))
        return NULL;
    /* Refused before any network traffic, like every other bad argument. */
    if (oxpg_client_timeout_value("command_timeout", command_timeout_obj, -1, &command_timeout) < 0)
        return NULL;
    if (!PyType_IsSubtype(cls, st->ClientType)) {
        PyErr_SetString(PyExc_TypeError, "connect() needs a subclass of oxpg._oxpg.Client");
        return NULL;
    }
    PyObject *kw_seq = PySequence_Fast(kw_obj, "keywords must be a sequence");
    PyObject *val_seq = kw_seq != NULL ? PySequence_Fast(val_obj, "values must be a sequence") : NULL;
    const char **keywords = NULL, **values = NULL;
    PGconn *conn = NULL;
    OxpgClient *self = NULL;
    if (val_seq == NULL)
        goto fail;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(kw_seq);
    if (PySequence_Fast_GET_SIZE(val_seq) != n) {
        PyErr_SetString(PyExc_ValueError, "keywords and values differ in length");
        goto fail;
    }
    if ((keywords = string_array(kw_seq, n)) == NULL || (values = string_array(val_seq, n)) == NULL)
        goto fail;

    Py_BEGIN_ALLOW_THREADS
    conn = PQconnectStartParams(keywords, values, expand_dbname);
    Py_END_ALLOW_THREADS
    if (conn == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    if (PQstatus(conn) == CONNECTION_BAD) {
        /* Failing before any network activity means libpq rejected an option value
         * (sslmode=bogus): retrying cannot help, so it is the caller's error. */
        int rejected = strncmp(PQerrorMessage(conn), "invalid ", 8) == 0;
        oxpg_raise_conn_error(st, rejected ? st->InterfaceError : st->OperationalError, conn, "connection failed");
        goto fail;
    }
    OxpgConnectOp op;
    oxpg_connect_op_init(&op, conn);
    if (oxpg_wait_connect(st, &op) < 0)
        goto fail;
    if (PQsetnonblocking(conn, 1) != 0) {
        oxpg_raise_conn_error(st, st->OperationalError, conn, "cannot switch to non-blocking mode");
        goto fail;
    }

    self = (OxpgClient *)cls->tp_alloc(cls, 0);
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
    self->command_timeout = command_timeout;
    self->server_version = PQserverVersion(conn);
    self->backend_pid = PQbackendPID(conn);
    if (oxpg_cache_init(&self->cache, cache_size, prepare_threshold) < 0)
        goto fail;
    if ((self->host = str_or_empty(PQhost(conn))) == NULL || (self->port = str_or_empty(PQport(conn))) == NULL ||
        (self->dbname = str_or_empty(PQdb(conn))) == NULL || (self->user = str_or_empty(PQuser(conn))) == NULL)
        goto fail;
    PQsetNoticeReceiver(conn, oxpg_client_notice_receiver, self);
    self->conn = conn; /* self owns conn from here */
    conn = NULL;
    goto done;
fail:
    if (conn != NULL) {
        Py_BEGIN_ALLOW_THREADS
        PQfinish(conn);
        Py_END_ALLOW_THREADS
    }
    Py_CLEAR(self);
done:
    PyMem_Free((void *)keywords);
    PyMem_Free((void *)values);
    Py_XDECREF(kw_seq);
    Py_XDECREF(val_seq);
    return (PyObject *)self;
}
