/* Client.executemany(): the batch operation (ops/batch_op.c) driven by the sync
 * driver. */
#include "oxpg/client.h"
#include "oxpg/batch_op.h"
#include "oxpg/wait.h"

/* Lock held, the connection open: run the batch op to its end. */
static PyObject *executemany_locked(OxpgClient *self, OxpgCall *call, const char *sql, Py_ssize_t sql_len,
                                    PyObject *rows)
{
    OxpgBatchOp op;
    PyObject *out = NULL;
    if (oxpg_batch_op_start(self, &op, call, sql, sql_len, rows) == 0 && oxpg_wait_batch(self, &op) == 0)
        out = oxpg_batch_op_take(&op);
    if (oxpg_batch_op_clear(self, &op) < 0)
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
    if (oxpg_batch_check_sql(self, sql, sql_len) < 0)
        return NULL;
    PyObject *rows = PyObject_GetIter(args[1]);
    if (rows == NULL)
        return NULL;
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

