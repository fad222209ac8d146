/* The Client type. The only file (with wait.c) that calls blocking libpq functions;
 * every such call runs with the GIL released and the client's lock held. */
#include "oxpg/client.h"
#include "oxpg/cancel.h"
#include "oxpg/codecs.h"
#include "oxpg/compat.h"
#include "oxpg/conn.h"
#include "oxpg/errors.h"
#include "oxpg/operation.h"
#include "oxpg/params.h"
#include "oxpg/pg_oids.h"
#include "oxpg/query_op.h"
#include "oxpg/result.h"
#include "oxpg/sqlscan.h"
#include "oxpg/stmtcache.h"
#include "oxpg/wait.h"

#include "structmember.h"

#include <math.h>
#include <stdlib.h>
#include <unistd.h>



/* ---- locking -------------------------------------------------------------- */

/* Take the client's lock; while another thread holds it, wait with the GIL released
 * and keep signal handlers running. */
int oxpg_client_lock(OxpgClient *self)
{
    unsigned long me = PyThread_get_thread_ident();
    /* A signal handler (or other callback) running inside our own wait would wait
     * for itself forever. Only this thread ever stores its own id, so the unlocked
     * read cannot see a stale match. */
    if (self->owner == me) {
        PyErr_SetString(self->st->InterfaceError,
                        "the Client is busy in this thread (called again from a signal handler or callback "
                        "while its statement runs); use another Client there");
        return -1;
    }
    if (!PyThread_acquire_lock(self->lock, NOWAIT_LOCK)) {
        for (;;) {
            PyLockStatus got;
            Py_BEGIN_ALLOW_THREADS
            got = PyThread_acquire_lock_timed(self->lock, 50000, 0);
            Py_END_ALLOW_THREADS
            if (got == PY_LOCK_ACQUIRED)
                break;
            if (PyErr_CheckSignals() < 0)
                return -1;
        }
    }
    self->owner = me;
    return 0;
}

void oxpg_client_unlock(OxpgClient *self)
{
    self->owner = 0;
    PyThread_release_lock(self->lock);
}

/* ---- notices ---------------------------------------------------------------- */

/* Runs inside libpq, possibly without the GIL: C data only. The client's lock is
 * held by the thread that drives libpq, which protects the ring. */
void oxpg_client_notice_receiver(void *arg, const PGresult *res)
{
    OxpgClient *self = arg;
    const char *msg = PQresultErrorMessage(res);
    size_t len = strlen(msg);
    char *copy = PyMem_RawMalloc(len + 1);
    if (copy == NULL)
        return;
    memcpy(copy, msg, len + 1);
    if (self->notice_count == OXPG_NOTICE_QUEUE) {
        PyMem_RawFree(self->notices[self->notice_head]);
        self->notices[self->notice_head] = NULL;
        self->notice_head = (self->notice_head + 1) % OXPG_NOTICE_QUEUE;
        self->notice_count--;
        self->notices_dropped++;
    }
    self->notices[(self->notice_head + self->notice_count) % OXPG_NOTICE_QUEUE] = copy;
    self->notice_count++;
}

static void clear_notices(OxpgClient *self)
{
    for (int i = 0; i < OXPG_NOTICE_QUEUE; i++) {
        PyMem_RawFree(self->notices[i]);
        self->notices[i] = NULL;
    }
    self->notice_head = 0;
    self->notice_count = 0;
}

/* ---- connection state ---------------------------------------------------- */

static int forked(OxpgClient *self)
{
    return self->pid != getpid();
}

/* Close conn. In a forked child, PQfinish would send Terminate on the parent's
 * session: leave the PGconn alone (the child's copy of the memory is all it costs). */
void oxpg_client_finish(OxpgClient *self)
{
    PGconn *conn = self->conn;
    if (conn == NULL)
        return;
    if (forked(self)) {
        self->conn = NULL;
        return;
    }
    /* cancel() in another thread may be reading conn: wait for it, without the GIL
     * (it may need the GIL to finish). */
    Py_BEGIN_ALLOW_THREADS
    if (self->cancel_lock != NULL)
        PyThread_acquire_lock(self->cancel_lock, WAIT_LOCK);
    self->conn = NULL;
    if (self->cancel_lock != NULL)
        PyThread_release_lock(self->cancel_lock);
    PQfinish(conn);
    Py_END_ALLOW_THREADS
    self->syncs_pending = 0;
}

/* Checked before taking the lock: a fork copies the lock in whatever state another
 * thread of the parent had it, so a child must never wait for it. */
int oxpg_client_check_process(OxpgClient *self)
{
    if (!forked(self))
        return 0;
    PyErr_Format(self->st->InterfaceError,
                 "this Client was opened in process %ld and cannot be used in process %ld "
                 "(after fork); open a new Client in this process",
                 (long)self->pid, (long)getpid());
    return -1;
}

/* Must hold the lock. Raises unless conn can be used. */
const char *oxpg_client_sql(OxpgClient *self, PyObject *sql, Py_ssize_t *len)
{
    OxpgState *st = self->st;
    if (!PyUnicode_Check(sql)) {
        PyErr_Format(PyExc_TypeError, "the SQL statement must be str, not %.200s", Py_TYPE(sql)->tp_name);
        return NULL;
    }
    const char *utf8 = PyUnicode_AsUTF8AndSize(sql, len);
    if (utf8 == NULL) {
        oxpg_reraise_as(st->DataError, "SQL statement");
        return NULL;
    }
    /* libpq takes the SQL as a C string: a NUL would run only the part before it. */
    if (memchr(utf8, '\0', (size_t)*len) != NULL) {
        PyErr_SetString(st->DataError, "the SQL statement contains a NUL character (\\x00); nothing was sent");
        return NULL;
    }
    if (oxpg_client_check_process(self) < 0)
        return NULL;
    return utf8;
}

int oxpg_client_check_open(OxpgClient *self)
{
    OxpgState *st = self->st;
    if (self->conn == NULL) {
        PyErr_SetString(self->broken ? st->OperationalError : st->InterfaceError,
                        self->broken ? "the connection was lost; open a new Client" : "the Client is closed");
        return -1;
    }
    return 0;
}

int oxpg_client_check_usable(OxpgClient *self)
{
    if (oxpg_client_check_open(self) < 0)
        return -1;
    /* While a pipeline is open only its own methods may send. */
    if (self->in_pipeline) {
        PyErr_SetString(self->st->InterfaceError,
                        "a pipeline is open on this client: queue statements through it, or leave its block first");
        return -1;
    }
    return 0;
}

/* The connection is gone: raise OperationalError with libpq's reason and close. */
void oxpg_client_lost(OxpgClient *self)
{
    if (!PyErr_Occurred())
        oxpg_raise_conn_error(self->st, self->st->OperationalError, self->conn, "the connection was lost");
    self->broken = 1;
    oxpg_client_finish(self);
}

/* The socket failed mid-statement. libpq may already hold the server's last words
 * (a terminated backend sends FATAL 57P01 before closing): raise those, with their
 * SQLSTATE, rather than only "connection lost". */
void oxpg_client_raise_lost(OxpgClient *self, const PGresult *error)
{
    PGconn *conn = self->conn;
    if (error != NULL) {
        oxpg_raise_result_error(self->st, error, self->st->OperationalError);
    } else if (PQstatus(conn) == CONNECTION_BAD) {
        /* The socket is closed, so this returns what is buffered without waiting;
         * through the one result path, like every result. */
        PGresult *r = oxpg_conn_next(self);
        if (r != NULL && PQresultErrorField(r, PG_DIAG_SQLSTATE) != NULL)
            oxpg_raise_result_error(self->st, r, self->st->OperationalError);
        PQclear(r);
    }
    oxpg_client_lost(self);
}

/* ---- running a statement ---------------------------------------------------- */

/* An exception (e.g. KeyboardInterrupt) is pending mid-statement, outside any call's
 * deadline: cancel on the server, drain, keep the exception. */
void oxpg_client_cancel_and_drain(OxpgClient *self)
{
    OxpgCall call;
    oxpg_call_init(&call, -1);
    oxpg_wait_interrupt(self, &call);
}

int oxpg_client_reset_single_row(OxpgClient *self, OxpgCall *call)
{
    if (!self->single_row_used)
        return 0;
    /* Any new query resets libpq's flag outside pipeline mode: an empty one costs a
     * round trip with no work on the server, once after streams. */
    if (!PQsendQuery(self->conn, ""))
        return oxpg_conn_send_failed(self, "could not send the query");
    int rc = oxpg_wait_read(self, call, oxpg_conn_discard_result, NULL);
    oxpg_call_clear(call);
    if (rc < 0)
        return -1;
    self->single_row_used = 0;
    return 0;
}

/* The server ignores parameters beyond the highest $n when their types are declared,
 * so a surplus value would vanish silently. */
int oxpg_client_check_param_count(OxpgClient *self, const char *sql, Py_ssize_t sql_len, Py_ssize_t given)
{
    OxpgState *st = self->st;
    if (given == 0)
        return 0;
    /* With standard_conforming_strings off, backslashes escape in every '' string. */
    const char *scs = PQparameterStatus(self->conn, "standard_conforming_strings");
    int backslash_quotes = scs != NULL && strcmp(scs, "off") == 0;
    long used = oxpg_sql_max_placeholder(sql, (size_t)sql_len, backslash_quotes);
    if (given <= used)
        return 0;
    if (used == 0)
        PyErr_Format(st->ProgrammingError, "%zd parameter(s) given but the statement has no $n placeholder", given);
    else
        PyErr_Format(st->ProgrammingError, "%zd parameters given but the statement uses only $1..$%ld", given, used);
    return -1;
}

/* Zone names PostgreSQL reports for UTC: no conversion needed. */
static int is_utc(const char *name)
{
    static const char *const names[] = {"UTC", "Etc/UTC", "GMT", "Etc/GMT", "UCT", "Zulu", "Etc/Universal",
                                        "Universal", "Etc/Zulu", "Etc/UCT", "Etc/GMT0", "GMT0", NULL};
    for (const char *const *n = names; *n != NULL; n++) {
        if (strcmp(name, *n) == 0)
            return 1;
    }
    return 0;
}

PyObject *oxpg_client_timezone(OxpgClient *self)
{
    const char *name = self->conn != NULL ? PQparameterStatus(self->conn, "TimeZone") : NULL;
    if (name == NULL || strlen(name) >= sizeof(self->timezone_name))
        return NULL;
    if (strcmp(name, self->timezone_name) == 0)
        return self->timezone;
    strcpy(self->timezone_name, name);
    Py_CLEAR(self->timezone);
    if (is_utc(name))
        return NULL;
    /* An IANA name (Europe/Berlin, Asia/Kathmandu): zoneinfo knows its DST rules.
     * Anything zoneinfo cannot read (a POSIX string) keeps values in UTC: the
     * instant is right either way. */
    PyObject *pending = oxpg_err_take();
    PyObject *module = PyImport_ImportModule("zoneinfo");
    if (module != NULL) {
        self->timezone = PyObject_CallMethod(module, "ZoneInfo", "s", name);
        Py_DECREF(module);
    }
    PyErr_Clear();
    oxpg_err_restore(pending);
    return self->timezone;
}

/* Lock held, the connection open: run the query op to its end. */
static PyObject *run_locked(OxpgClient *self, OxpgCall *call, PyObject *sql_obj, const char *sql,
                            Py_ssize_t sql_len, OxpgParams *params, int simple, OxpgQueryMode mode, long row_base)
{
    OxpgQueryOp q;
    PyObject *out = NULL;
    if (oxpg_query_op_start(self, &q, call, sql_obj, sql, sql_len, params, simple, mode, row_base) == 0 &&
        oxpg_wait_query(self, &q) == 0)
        out = oxpg_query_op_take(&q, NULL);
    if (oxpg_query_op_clear(self, &q) < 0)
        Py_CLEAR(out);
    return out;
}

int oxpg_client_timeout_value(const char *name, PyObject *value, double if_none, double *timeout)
{
    if (value == Py_None) {
        *timeout = if_none;
        return 0;
    }
    if (PyBool_Check(value) || !(PyLong_Check(value) || PyFloat_Check(value))) {
        PyErr_Format(PyExc_TypeError,
                     "%s must be a number of seconds, float('inf') (no timeout) or None (the client's "
                     "command_timeout), not %.200s",
                     name, Py_TYPE(value)->tp_name);
        return -1;
    }
    double seconds = PyFloat_AsDouble(value);
    if (seconds == -1.0 && PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_OverflowError))
            return -1;
        PyErr_Clear(); /* an int beyond a double: out of range below */
        seconds = OXPG_TIMEOUT_MAX * 2;
    }
    /* Infinity is the explicit "no timeout": a deadline that never comes. */
    if (isinf(seconds) && seconds > 0) {
        *timeout = -1;
        return 0;
    }
    if (!(seconds > 0) || seconds > OXPG_TIMEOUT_MAX) {
        /* PyErr_Format has no %f: the bound goes as an integer. */
        PyErr_Format(PyExc_ValueError,
                     "%s must be more than 0 and at most %lld seconds, or float('inf') for no timeout, not %R", name,
                     (long long)OXPG_TIMEOUT_MAX, value);
        return -1;
    }
    *timeout = seconds;
    return 0;
}

int oxpg_client_parse_timeout(OxpgClient *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                              double *timeout)
{
    *timeout = self->command_timeout;
    Py_ssize_t nkw = kwnames != NULL ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t i = 0; i < nkw; i++) {
        PyObject *name = PyTuple_GET_ITEM(kwnames, i);
        if (PyUnicode_CompareWithASCIIString(name, "timeout") != 0) {
            PyErr_Format(PyExc_TypeError, "unexpected keyword argument %R (parameters are positional: $1, $2, ...)",
                         name);
            return -1;
        }
        if (oxpg_client_timeout_value("timeout", args[nargs + i], self->command_timeout, timeout) < 0)
            return -1;
    }
    return 0;
}

static PyObject *run(OxpgClient *self, PyObject *const *args, Py_ssize_t nargs, OxpgQueryMode mode, double timeout,
                     long row_base)
{
    OxpgState *st = self->st;
    if (nargs < 1) {
        PyErr_SetString(PyExc_TypeError, "missing the SQL statement (first argument)");
        return NULL;
    }
    Py_ssize_t sql_len;
    const char *sql = oxpg_client_sql(self, args[0], &sql_len);
    if (sql == NULL)
        return NULL;
    OxpgParams params;
    if (oxpg_params_encode(st, &params, args + 1, nargs - 1, self->types.encoders) < 0)
        return NULL;
    /* Without parameters execute() uses the simple protocol, which allows several
     * statements in one string; query() always uses the extended protocol for
     * binary results. */
    int simple = mode == OXPG_QUERY_EXECUTE && nargs == 1;
    PyObject *out = NULL;
    if (oxpg_client_lock(self) == 0) {
        /* The timeout counts from here: waiting for another thread's statement to
         * finish is not this statement's time. */
        OxpgCall call;
        oxpg_call_init(&call, timeout);
        /* Decoding happens under the lock too: the cached column descriptions it
         * uses belong to the connection's statement cache. */
        if (oxpg_client_check_usable(self) == 0) {
            oxpg_stream_abandon(self);
            out = self->conn != NULL ? run_locked(self, &call, args[0], sql, sql_len, &params, simple, mode, row_base) : NULL;
            if (out == NULL && !PyErr_Occurred())
                PyErr_SetString(st->OperationalError, "the connection was lost");
        }
        oxpg_client_unlock(self);
    }
    oxpg_params_free(&params);
    return out;
}

/* ---- Python methods -------------------------------------------------------- */

PyDoc_STRVAR(query_doc, "query($self, sql, /, *params, timeout=None)\n--\n\n"
                        "Run one statement with $1, $2, ... bound to params and return its rows\n"
                        "as a list of dicts (column order kept). timeout: seconds after which the\n"
                        "statement is cancelled on the server and QueryTimeoutError is raised;\n"
                        "None uses the client's command_timeout, float('inf') means none.");

static PyObject *Client_query(OxpgClient *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    double timeout = self->command_timeout;
    if (OXPG_UNLIKELY(kwnames != NULL) && oxpg_client_parse_timeout(self, args, nargs, kwnames, &timeout) < 0)
        return NULL;
    return run(self, args, nargs, OXPG_QUERY_DICTS, timeout, 0);
}

PyDoc_STRVAR(query_tuples_doc, "query_tuples($self, sql, /, *params, timeout=None)\n--\n\n"
                               "Like query() but each row is a tuple in column order.");

static PyObject *Client_query_tuples(OxpgClient *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    double timeout = self->command_timeout;
    if (OXPG_UNLIKELY(kwnames != NULL) && oxpg_client_parse_timeout(self, args, nargs, kwnames, &timeout) < 0)
        return NULL;
    return run(self, args, nargs, OXPG_QUERY_TUPLES, timeout, 0);
}

PyDoc_STRVAR(execute_doc, "execute($self, sql, /, *params, timeout=None)\n--\n\n"
                          "Run a statement and return the number of rows it affected (0 when the\n"
                          "command reports none). Without params, sql may hold several statements.\n"
                          "timeout: as for query().");

static PyObject *Client_execute(OxpgClient *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    double timeout = self->command_timeout;
    if (OXPG_UNLIKELY(kwnames != NULL) && oxpg_client_parse_timeout(self, args, nargs, kwnames, &timeout) < 0)
        return NULL;
    return run(self, args, nargs, OXPG_QUERY_EXECUTE, timeout, 0);
}

PyDoc_STRVAR(cursor_fetch_doc, "_cursor_fetch($self, row_base, sql, /, *, timeout=None)\n--\n\n"
                               "query(sql) for a server-side cursor's FETCH: rows are numbered from\n"
                               "row_base (the cursor's position) in errors, and a row that cannot be\n"
                               "decoded is its DataError in the list, the rows after it decoded too.");

static PyObject *Client_cursor_fetch(OxpgClient *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    double timeout = self->command_timeout;
    if (kwnames != NULL && oxpg_client_parse_timeout(self, args, nargs, kwnames, &timeout) < 0)
        return NULL;
    if (nargs != 2 || !PyLong_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "_cursor_fetch(row_base: int, sql: str)");
        return NULL;
    }
    long row_base = PyLong_AsLong(args[0]);
    if (row_base == -1 && PyErr_Occurred())
        return NULL;
    return run(self, args + 1, 1, OXPG_QUERY_CURSOR, timeout, row_base);
}

PyDoc_STRVAR(close_doc, "close($self, /)\n--\n\nClose the connection. Calling it again does nothing.");

static PyObject *Client_close(OxpgClient *self, PyObject *Py_UNUSED(ignored))
{
    if (forked(self)) {
        /* Not ours to close: forget it without touching the parent's session. */
        self->conn = NULL;
        Py_RETURN_NONE;
    }
    if (oxpg_client_lock(self) < 0)
        return NULL;
    self->in_pipeline = 0;
    PyMem_Free(self->pipeline.kinds);
    memset(&self->pipeline, 0, sizeof(self->pipeline));
    if (self->active_stream != NULL) {
        /* Its statement dies with the connection; its next() says so. */
        self->orphaned_result = 0;
        OxpgStream *stream = self->active_stream;
        self->active_stream = NULL;
        oxpg_stream_cut(stream);
    }
    oxpg_client_finish(self);
    oxpg_cache_reset(&self->cache, 0);
    oxpg_client_unlock(self);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(cancel_doc, "cancel($self, /)\n--\n\n"
                         "Ask the server to cancel the statement this client is running, from any\n"
                         "thread. The statement then raises oxpg.errors.QueryCanceled and the client\n"
                         "stays usable. Does nothing when no statement runs. Returns whether the\n"
                         "request reached the server.");

static PyObject *Client_cancel(OxpgClient *self, PyObject *Py_UNUSED(ignored))
{
    if (oxpg_client_check_process(self) < 0)
        return NULL;
    /* Not the client lock: the statement to cancel holds it. The cancel lock only
     * keeps conn from closing while its cancel handle is copied; the request travels
     * without it, or a close() (the statement's own timeout giving the connection
     * up, say) would wait for an unreachable server. */
    double deadline = oxpg_monotonic() + OXPG_CANCEL_SECONDS;
    PyLockStatus got;
    Py_BEGIN_ALLOW_THREADS
    got = PyThread_acquire_lock(self->cancel_lock, WAIT_LOCK);
    Py_END_ALLOW_THREADS
    if (got != PY_LOCK_ACQUIRED)
        return PyErr_NoMemory();
    OxpgCancel *request = self->conn != NULL ? oxpg_cancel_prepare(self->conn) : NULL;
    PyThread_release_lock(self->cancel_lock);
    int delivered = request != NULL && oxpg_cancel_deliver(request, deadline) == 0;
    return PyBool_FromLong(delivered);
}

PyDoc_STRVAR(take_notices_doc, "take_notices($self, /)\n--\n\n"
                               "Return the server notices received since the last call (oldest first)\n"
                               "and forget them. At most 64 are kept; older ones are dropped.");

static PyObject *Client_take_notices(OxpgClient *self, PyObject *Py_UNUSED(ignored))
{
    if (oxpg_client_check_process(self) < 0 || oxpg_client_lock(self) < 0)
        return NULL;
    PyObject *out = PyList_New(0);
    for (int i = 0; out != NULL && i < self->notice_count; i++) {
        const char *msg = self->notices[(self->notice_head + i) % OXPG_NOTICE_QUEUE];
        size_t len = strlen(msg);
        while (len > 0 && msg[len - 1] == '\n')
            len--;
        PyObject *s = PyUnicode_DecodeUTF8(msg, (Py_ssize_t)len, "replace");
        if (s == NULL || PyList_Append(out, s) < 0)
            Py_CLEAR(out);
        Py_XDECREF(s);
    }
    if (out != NULL)
        clear_notices(self);
    oxpg_client_unlock(self);
    return out;
}

PyDoc_STRVAR(statement_cache_info_doc, "statement_cache_info($self, /)\n--\n\n"
                                       "Counters of the prepared-statement cache: size, capacity,\n"
                                       "prepare_threshold, hits, misses, prepared, evictions.");

static PyObject *Client_statement_cache_info(OxpgClient *self, PyObject *Py_UNUSED(ignored))
{
    if (oxpg_client_check_process(self) < 0 || oxpg_client_lock(self) < 0)
        return NULL;
    PyObject *info = oxpg_cache_info(&self->cache);
    oxpg_client_unlock(self);
    return info;
}

static PyObject *Client_enter(OxpgClient *self, PyObject *Py_UNUSED(ignored))
{
    return Py_NewRef(self);
}

static PyObject *Client_exit(OxpgClient *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)args;
    (void)nargs;
    PyObject *r = Client_close(self, NULL);
    if (r == NULL)
        return NULL;
    Py_DECREF(r);
    Py_RETURN_FALSE;
}

static PyObject *Client_get_closed(OxpgClient *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(self->conn == NULL);
}

static PyObject *Client_get_broken(OxpgClient *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(self->broken);
}

/* Facts fixed at connect: never wait for the lock (a watchdog needs the pid of a
 * statement stuck holding it). Closed or lost, they raise as every use does. */
static PyObject *connection_fact(OxpgClient *self, int value)
{
    if (oxpg_client_check_process(self) < 0 || oxpg_client_check_open(self) < 0)
        return NULL;
    return PyLong_FromLong(value);
}

static PyObject *Client_get_server_version(OxpgClient *self, void *Py_UNUSED(closure))
{
    return connection_fact(self, self->server_version);
}

static PyObject *Client_get_backend_pid(OxpgClient *self, void *Py_UNUSED(closure))
{
    return connection_fact(self, self->backend_pid);
}

static PyObject *Client_get_command_timeout(OxpgClient *self, void *Py_UNUSED(closure))
{
    if (self->command_timeout < 0)
        Py_RETURN_NONE;
    return PyFloat_FromDouble(self->command_timeout);
}

PyDoc_STRVAR(check_timeout_doc, "_check_timeout($self, timeout, /)\n--\n\n"
                                "Raise TypeError or ValueError unless timeout is a value every call\n"
                                "accepts: for Python code that must refuse it before changing state.");

static PyObject *Client_check_timeout(OxpgClient *self, PyObject *value)
{
    double timeout;
    if (oxpg_client_timeout_value("timeout", value, self->command_timeout, &timeout) < 0)
        return NULL;
    Py_RETURN_NONE;
}

PyDoc_STRVAR(socket_doc, "_socket($self, /)\n--\n\n"
                         "The connection's socket, -1 once closed: for an event loop to watch.");

static PyObject *Client_socket(OxpgClient *self, PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromLong(self->conn != NULL && !forked(self) ? PQsocket(self->conn) : -1);
}

PyDoc_STRVAR(consume_input_doc, "_consume_input($self, /)\n--\n\n"
                                "The socket is readable while no call runs (an event loop watches it):\n"
                                "take in what came (a notice, a changed setting, the server's goodbye).\n"
                                "Returns False once the connection is lost, and the client is closed.");

static PyObject *Client_consume_input(OxpgClient *self, PyObject *Py_UNUSED(ignored))
{
    if (self->conn == NULL || forked(self))
        Py_RETURN_FALSE;
    /* A call that runs reads the socket itself. */
    if (self->owner == PyThread_get_thread_ident() || !PyThread_acquire_lock(self->lock, NOWAIT_LOCK))
        Py_RETURN_TRUE;
    if (!PQconsumeInput(self->conn) || PQstatus(self->conn) == CONNECTION_BAD) {
        /* Told nothing or closed on us while idle (a terminated backend, a server
         * shut down): the next call raises OperationalError, as it would unwatched. */
        self->broken = 1;
        oxpg_client_finish(self);
        oxpg_cache_reset(&self->cache, 0);
    }
    int open = self->conn != NULL;
    PyThread_release_lock(self->lock);
    return PyBool_FromLong(open);
}

static PyObject *Client_get_transaction_status(OxpgClient *self, void *Py_UNUSED(closure))
{
    /* Never wait for a busy connection just to say it is busy. */
    if (self->owner == PyThread_get_thread_ident() || !PyThread_acquire_lock(self->lock, NOWAIT_LOCK))
        return PyLong_FromLong(PQTRANS_ACTIVE);
    PGTransactionStatusType status = self->conn != NULL ? PQtransactionStatus(self->conn) : PQTRANS_UNKNOWN;
    PyThread_release_lock(self->lock);
    return PyLong_FromLong(status);
}

static PyObject *Client_repr(OxpgClient *self)
{
    return PyUnicode_FromFormat("<oxpg.Client user=%R host=%R port=%R db=%R%s>", self->user, self->host, self->port,
                                self->dbname, self->conn == NULL ? " closed" : "");
}

static PyMethodDef client_methods[] = {
    {"query", (PyCFunction)(void (*)(void))Client_query, METH_FASTCALL | METH_KEYWORDS, query_doc},
    {"query_tuples", (PyCFunction)(void (*)(void))Client_query_tuples, METH_FASTCALL | METH_KEYWORDS, query_tuples_doc},
    {"execute", (PyCFunction)(void (*)(void))Client_execute, METH_FASTCALL | METH_KEYWORDS, execute_doc},
    {"executemany", (PyCFunction)(void (*)(void))oxpg_client_executemany, METH_FASTCALL | METH_KEYWORDS,
     oxpg_executemany_doc},
    {"close", (PyCFunction)Client_close, METH_NOARGS, close_doc},
    {"take_notices", (PyCFunction)Client_take_notices, METH_NOARGS, take_notices_doc},
    {"cancel", (PyCFunction)Client_cancel, METH_NOARGS, cancel_doc},
    {"stream", (PyCFunction)(void (*)(void))oxpg_client_stream, METH_FASTCALL | METH_KEYWORDS, oxpg_stream_doc},
    {"_cursor_fetch", (PyCFunction)(void (*)(void))Client_cursor_fetch, METH_FASTCALL | METH_KEYWORDS,
     cursor_fetch_doc},
    {"_start_query", (PyCFunction)(void (*)(void))oxpg_operation_start_query, METH_FASTCALL | METH_KEYWORDS,
     oxpg_start_query_doc},
    {"_start_execute", (PyCFunction)(void (*)(void))oxpg_operation_start_execute, METH_FASTCALL | METH_KEYWORDS,
     oxpg_start_execute_doc},
    {"_start_executemany", (PyCFunction)(void (*)(void))oxpg_operation_start_executemany,
     METH_FASTCALL | METH_KEYWORDS, oxpg_start_executemany_doc},
    {"_pipeline_enter", (PyCFunction)oxpg_pipeline_enter, METH_O, NULL},
    {"_pipeline_send", (PyCFunction)(void (*)(void))oxpg_pipeline_send, METH_FASTCALL, NULL},
    {"_pipeline_sync", (PyCFunction)oxpg_pipeline_sync, METH_O, NULL},
    {"_pipeline_next", (PyCFunction)(void (*)(void))oxpg_pipeline_next, METH_FASTCALL, NULL},
    {"_pipeline_exit", (PyCFunction)oxpg_pipeline_exit, METH_NOARGS, NULL},
    {"_pipeline_active", (PyCFunction)oxpg_pipeline_active, METH_NOARGS, NULL},
    {"_check_timeout", (PyCFunction)Client_check_timeout, METH_O, check_timeout_doc},
    {"_socket", (PyCFunction)Client_socket, METH_NOARGS, socket_doc},
    {"_consume_input", (PyCFunction)Client_consume_input, METH_NOARGS, consume_input_doc},
    {"_set_type_decoder", (PyCFunction)(void (*)(void))oxpg_client_set_type_decoder, METH_FASTCALL, NULL},
    {"_set_type_encoder", (PyCFunction)(void (*)(void))oxpg_client_set_type_encoder, METH_FASTCALL, NULL},
    {"_type_encoders", (PyCFunction)oxpg_client_type_encoders, METH_NOARGS, NULL},
    {"statement_cache_info", (PyCFunction)Client_statement_cache_info, METH_NOARGS, statement_cache_info_doc},
    {"__enter__", (PyCFunction)Client_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)(void (*)(void))Client_exit, METH_FASTCALL, NULL},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef client_members[] = {
    {"host", T_OBJECT, offsetof(OxpgClient, host), READONLY, "Server host (or socket directory) connected to."},
    {"port", T_OBJECT, offsetof(OxpgClient, port), READONLY, "Server port, as libpq reports it (str)."},
    {"dbname", T_OBJECT, offsetof(OxpgClient, dbname), READONLY, "Database name."},
    {"user", T_OBJECT, offsetof(OxpgClient, user), READONLY, "User name."},
    {"_name_token", T_STRING_INPLACE, offsetof(OxpgClient, cache) + offsetof(OxpgStatementCache, token), READONLY,
     "Random hex digits, per client, in the names of its server-side objects (prepared statements, cursors): "
     "clients sharing a server session behind a pooler never use the same name."},
    {NULL, 0, 0, 0, NULL},
};

static PyGetSetDef client_getset[] = {
    {"closed", (getter)Client_get_closed, NULL, "True once closed or once the connection was lost.", NULL},
    {"broken", (getter)Client_get_broken, NULL, "True when the connection was lost (not closed by you).", NULL},
    {"server_version", (getter)Client_get_server_version, NULL, "Server version as an int (e.g. 150004).", NULL},
    {"backend_pid", (getter)Client_get_backend_pid, NULL, "Process id of the server backend.", NULL},
    {"command_timeout", (getter)Client_get_command_timeout, NULL,
     "The default timeout of the calls that take timeout= (seconds), or None.", NULL},
    {"_transaction_status", (getter)Client_get_transaction_status, NULL,
     "libpq's PGTransactionStatusType: 0 idle, 1 active, 2 in transaction, 3 in error, 4 unknown.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

/* ---- lifecycle ------------------------------------------------------------- */

static void Client_finalize(OxpgClient *self)
{
    if (self->conn == NULL || forked(self))
        return;
    PyObject *pending = oxpg_err_take();
    if (PyErr_ResourceWarning((PyObject *)self, 1, "unclosed %R: call close() or use 'with'", self) < 0)
        PyErr_WriteUnraisable((PyObject *)self);
    /* Nobody else holds a reference, so nobody else holds the lock. */
    oxpg_client_finish(self);
    oxpg_err_restore(pending);
}

static int Client_traverse(OxpgClient *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    /* Registered codecs may refer back to the client (a bound method). */
    return oxpg_types_traverse(&self->types, visit, arg);
}

static int Client_clear(OxpgClient *self)
{
    oxpg_types_clear_python(&self->types);
    return 0;
}

static void Client_dealloc(OxpgClient *self)
{
    if (PyObject_CallFinalizerFromDealloc((PyObject *)self) < 0)
        return; /* resurrected */
    PyTypeObject *type = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    oxpg_client_finish(self);
    clear_notices(self);
    oxpg_cache_free(&self->cache);
    oxpg_types_free(&self->types);
    PyMem_Free(self->pipeline.kinds);
    if (self->lock != NULL)
        PyThread_free_lock(self->lock);
    if (self->cancel_lock != NULL)
        PyThread_free_lock(self->cancel_lock);
    Py_CLEAR(self->timezone);
    Py_CLEAR(self->host);
    Py_CLEAR(self->port);
    Py_CLEAR(self->dbname);
    Py_CLEAR(self->user);
    type->tp_free((PyObject *)self);
    Py_DECREF(type);
}

static PyType_Slot client_slots[] = {
    {Py_tp_doc, "A connection to PostgreSQL. Create one with oxpg.connect()."},
    {Py_tp_methods, client_methods},
    {Py_tp_members, client_members},
    {Py_tp_getset, client_getset},
    {Py_tp_repr, Client_repr},
    {Py_tp_traverse, Client_traverse},
    {Py_tp_clear, Client_clear},
    {Py_tp_finalize, Client_finalize},
    {Py_tp_dealloc, Client_dealloc},
    {0, NULL},
};

PyType_Spec oxpg_client_spec = {
    .name = "oxpg._oxpg.Client",
    .basicsize = sizeof(OxpgClient),
    /* Not a base type: oxpg.Client (Python) holds one and adds the policy. */
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = client_slots,
};
