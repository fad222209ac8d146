/* stream(): iterate a large result with memory bounded by a chunk of rows. The
 * statement runs in libpq's single-row mode; rows are decoded as they arrive, a
 * chunk at a time, so neither libpq nor Python ever holds the whole result. */
#include "oxpg/client.h"
#include "oxpg/compat.h"
#include "oxpg/conn.h"
#include "oxpg/errors.h"
#include "oxpg/params.h"
#include "oxpg/pg_oids.h"
#include "oxpg/result.h"
#include "oxpg/wait.h"

#include <unistd.h>

/* How a stream reads a statement it cannot read in binary (OxpgStream.text_mode). */
enum { STREAM_TEXT_FORMS = 1, STREAM_TEXT_RESULTS = 2 };

struct OxpgStream {
    PyObject_HEAD
    OxpgClient *client; /* strong reference */
    int active;         /* the statement is still running on the connection */
    int cut_short;      /* ended by another statement on the client: more rows were due */
    int as_dicts;
    int text_mode; /* read in text format: STREAM_TEXT_FORMS or STREAM_TEXT_RESULTS (see describe) */
    int chunk_size;
    int got;        /* rows read by the current fill */
    int row_failed; /* a row could not be decoded: the ones before it still count */
    long rows_read; /* rows of the statement decoded so far (error messages) */
    OxpgCall call;  /* the deadline the stream's statement must end by */
    OxpgColumns columns;
    PyObject *buffer; /* decoded rows not yet returned */
    PyObject *error;  /* a server error to raise once the rows read before it are out */
    Py_ssize_t next;  /* index of the next row to return in buffer */
};

/* One result per row. libpq 17's chunked mode (PQsetChunkedRowsMode) is not used:
 * when the server fails mid-chunk, libpq drops the rows of the partial chunk, and
 * the rows before an error must come out first (test_server_error_after_some_rows). */
static int set_row_mode(PGconn *conn, int chunk_size)
{
    (void)chunk_size;
    return PQsetSingleRowMode(conn);
}

/* Lock held: forget the connection side of the stream. */
static void detach(OxpgStream *stream)
{
    if (stream->active && stream->client->active_stream == stream)
        stream->client->active_stream = NULL;
    stream->active = 0;
}

void oxpg_stream_cut(OxpgStream *stream)
{
    stream->active = 0;
    stream->cut_short = 1;
}

void oxpg_stream_abandon(OxpgClient *self)
{
    OxpgStream *stream = self->active_stream;
    if (stream == NULL && !self->orphaned_result)
        return;
    if (stream != NULL) {
        detach(stream);
        stream->cut_short = 1;
    }
    self->orphaned_result = 0;
    if (self->conn != NULL)
        oxpg_client_cancel_and_drain(self);
}

/* Decode the rows of one single-row (or chunked) result into the buffer. */
static OxpgReadStep take_rows(OxpgClient *client, OxpgStream *stream, PGresult *r)
{
    OxpgState *st = client->st;
    if (stream->columns.columns == NULL || !oxpg_columns_match(&stream->columns, r, &client->types)) {
        oxpg_columns_clear(&stream->columns);
        if (oxpg_columns_init(&stream->columns, r, &client->types) < 0)
            return OXPG_READ_FAIL;
        if (stream->text_mode == STREAM_TEXT_FORMS &&
            oxpg_columns_check_text_forms(st, &client->types, &stream->columns, "stream()") < 0) {
            oxpg_columns_clear(&stream->columns);
            return OXPG_READ_FAIL;
        }
    }
    if (stream->columns.needs_text) {
        /* The text-form round trip needs the connection this result occupies. */
        PyErr_SetString(st->DataError, "stream(): a column's type has no binary decoder in oxpg (or this "
                                       "client has not looked the type up yet: query() does); "
                                       "cast it to text in the SQL");
        return OXPG_READ_FAIL;
    }
    stream->columns.timezone = oxpg_client_timezone(client);
    stream->columns.row_base = stream->rows_read;
    int nrows = PQntuples(r);
    for (int i = 0; i < nrows; i++) {
        PyObject *row = oxpg_result_row(st, r, &stream->columns, i, stream->as_dicts);
        if (row == NULL || PyList_Append(stream->buffer, row) < 0) {
            Py_XDECREF(row);
            /* The rows before this one are good: they are handed out first. */
            stream->row_failed = 1;
            return OXPG_READ_FAIL;
        }
        Py_DECREF(row);
        stream->rows_read++;
    }
    stream->got += nrows;
    return stream->got >= stream->chunk_size ? OXPG_READ_STOP : OXPG_READ_MORE;
}

static OxpgReadStep stream_result(OxpgClient *client, OxpgCall *call, PGresult *r, void *ctx)
{
    OxpgStream *stream = ctx;
    if (r == NULL) {
        detach(stream); /* the statement is complete */
        return OXPG_READ_STOP;
    }
    ExecStatusType status = PQresultStatus(r);
    OxpgReadStep step = OXPG_READ_MORE;
    if (status == PGRES_SINGLE_TUPLE) {
        if (call->error == NULL)
            step = take_rows(client, stream, r);
    } else if (oxpg_result_is_error(r)) {
        oxpg_call_keep_error(call, r);
        return OXPG_READ_MORE;
    }
    PQclear(r); /* a row, the final empty TUPLES_OK, or a command's status */
    return step;
}

/* Lock held: read up to chunk_size rows into the buffer. Returns 0 (the buffer may
 * be empty when the result ended) or -1 with an exception set. */
static int fill(OxpgStream *stream)
{
    OxpgClient *client = stream->client;
    OxpgState *st = client->st;
    OxpgCall *call = &stream->call;
    stream->got = 0;
    call->copy_refused = 0;
    int rc = oxpg_wait_read(client, call, stream_result, stream);
    if (rc < 0)
        detach(stream); /* ended: drained after an interruption, or lost */
    if (!stream->active && oxpg_wait_settle(client) < 0 && rc == 0) {
        /* The statement changed the session in a way oxpg refuses (client_encoding):
         * what it returned cannot be trusted. */
        PyList_SetSlice(stream->buffer, 0, PyList_GET_SIZE(stream->buffer), NULL);
        oxpg_call_clear(call);
        return -1;
    }
    if (rc < 0) {
        oxpg_call_clear(call);
        if (stream->row_failed && PyList_GET_SIZE(stream->buffer) > 0) {
            stream->error = oxpg_err_take();
            return 0;
        }
        /* Interrupted (Ctrl-C, timeout) or the connection failed: rows read before
         * that are dropped with the statement, so nothing comes after the error. */
        PyList_SetSlice(stream->buffer, 0, PyList_GET_SIZE(stream->buffer), NULL);
        return -1;
    }
    if (call->copy_refused && client->conn != NULL) {
        oxpg_call_clear(call);
        PyErr_SetString(st->NotSupportedError, "COPY cannot be streamed with stream(); it is not supported yet");
        return -1;
    }
    if (call->error != NULL) {
        /* The rows the server sent before the error come out first: the error is
         * raised once they are used up (Stream_next). */
        oxpg_conn_raise_error(client, call);
        oxpg_call_clear(call);
        if (PyList_GET_SIZE(stream->buffer) > 0) {
            stream->error = oxpg_err_take();
            return 0;
        }
        return -1;
    }
    return 0;
}

static PyObject *Stream_next(OxpgStream *stream)
{
    if (stream->next < PyList_GET_SIZE(stream->buffer)) {
        PyObject *row = PyList_GET_ITEM(stream->buffer, stream->next);
        PyList_SET_ITEM(stream->buffer, stream->next, NULL); /* hand the reference over */
        stream->next++;
        return row;
    }
    OxpgClient *client = stream->client;
    if (stream->error != NULL) {
        PyObject *error = stream->error;
        stream->error = NULL;
        oxpg_err_restore(error);
        return NULL;
    }
    if (!stream->active) {
        /* Never a silent end: rows were still due when another statement took over. */
        if (stream->cut_short) {
            stream->cut_short = 0;
            PyErr_SetString(client->st->InterfaceError,
                            "the stream was ended because the client ran another statement or was closed");
        }
        return NULL;
    }
    if (oxpg_client_check_process(client) < 0 || oxpg_client_lock(client) < 0)
        return NULL;
    /* Reset the buffer (its returned slots are NULL) before reading the next chunk. */
    Py_SETREF(stream->buffer, PyList_New(0));
    stream->next = 0;
    int rc = -1;
    if (stream->buffer == NULL) {
        detach(stream);
    } else if (client->active_stream != stream || client->conn == NULL) {
        detach(stream);
        PyErr_SetString(client->st->InterfaceError,
                        "the stream was ended because the client ran another statement or was closed");
    } else {
        rc = fill(stream);
    }
    oxpg_client_unlock(client);
    if (rc < 0)
        return NULL;
    return Stream_next(stream);
}

static PyObject *Stream_close(OxpgStream *stream, PyObject *Py_UNUSED(ignored))
{
    if (stream->active) {
        OxpgClient *client = stream->client;
        if (oxpg_client_check_process(client) < 0 || oxpg_client_lock(client) < 0)
            return NULL;
        if (client->active_stream == stream)
            oxpg_stream_abandon(client);
        stream->active = 0;
        stream->cut_short = 0; /* closed on purpose */
        oxpg_client_unlock(client);
    }
    Py_CLEAR(stream->buffer);
    Py_CLEAR(stream->error);
    stream->buffer = PyList_New(0);
    stream->next = 0;
    if (stream->buffer == NULL)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *Stream_enter(OxpgStream *stream, PyObject *Py_UNUSED(ignored))
{
    return Py_NewRef(stream);
}

static PyObject *Stream_exit(OxpgStream *stream, PyObject *const *args, Py_ssize_t nargs)
{
    (void)args;
    (void)nargs;
    PyObject *r = Stream_close(stream, NULL);
    if (r == NULL)
        return NULL;
    Py_DECREF(r);
    Py_RETURN_FALSE;
}

static PyObject *Stream_iter(OxpgStream *stream)
{
    return Py_NewRef(stream);
}

/* Dropped mid-result (a break out of the for loop): end the statement so the client
 * is usable. When this thread is inside the client already, the next statement
 * will end it instead. */
static void Stream_finalize(OxpgStream *stream)
{
    OxpgClient *client = stream->client;
    if (!stream->active || client == NULL || client->pid != getpid() ||
        client->owner == PyThread_get_thread_ident())
        return;
    PyObject *pending = oxpg_err_take();
    PyObject *r = Stream_close(stream, NULL);
    if (r == NULL)
        PyErr_WriteUnraisable((PyObject *)stream);
    Py_XDECREF(r);
    oxpg_err_restore(pending);
}

static int Stream_traverse(OxpgStream *stream, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(stream));
    Py_VISIT(stream->client);
    Py_VISIT(stream->buffer);
    Py_VISIT(stream->error);
    return 0;
}

static int Stream_clear(OxpgStream *stream)
{
    Py_CLEAR(stream->buffer);
    Py_CLEAR(stream->error);
    return 0;
}

static void Stream_dealloc(OxpgStream *stream)
{
    if (PyObject_CallFinalizerFromDealloc((PyObject *)stream) < 0)
        return;
    PyTypeObject *type = Py_TYPE(stream);
    PyObject_GC_UnTrack(stream);
    if (stream->client != NULL && stream->client->active_stream == stream) {
        stream->client->active_stream = NULL;
        stream->client->orphaned_result = 1; /* the next statement drains it */
    }
    oxpg_columns_clear(&stream->columns);
    oxpg_call_clear(&stream->call);
    Py_CLEAR(stream->buffer);
    Py_CLEAR(stream->error);
    Py_CLEAR(stream->client);
    type->tp_free((PyObject *)stream);
    Py_DECREF(type);
}

static PyMethodDef stream_methods[] = {
    {"close", (PyCFunction)Stream_close, METH_NOARGS,
     "close($self, /)\n--\n\nEnd the stream: the rest of the result is cancelled and discarded."},
    {"__enter__", (PyCFunction)Stream_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)(void (*)(void))Stream_exit, METH_FASTCALL, NULL},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot stream_slots[] = {
    {Py_tp_doc, "Rows of one statement, read a chunk at a time. Made by Client.stream()."},
    {Py_tp_iter, Stream_iter},
    {Py_tp_iternext, Stream_next},
    {Py_tp_methods, stream_methods},
    {Py_tp_traverse, Stream_traverse},
    {Py_tp_clear, Stream_clear},
    {Py_tp_finalize, Stream_finalize},
    {Py_tp_dealloc, Stream_dealloc},
    {0, NULL},
};

PyType_Spec oxpg_stream_spec = {
    .name = "oxpg.Stream",
    .basicsize = sizeof(OxpgStream),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = stream_slots,
};

const char oxpg_stream_doc[] =
    "stream($self, sql, /, *params, chunk_size=1000, timeout=None, tuples=False)\n--\n\n"
    "Iterate the rows of one statement with memory bounded by chunk_size rows,\n"
    "not by the result. Breaking out of the loop, an exception inside it or\n"
    "dropping the iterator ends the statement; so does running another statement\n"
    "on the client. Rows are dicts, or tuples with tuples=True. timeout covers the\n"
    "whole statement, across chunks (None: the client's command_timeout;\n"
    "float('inf'): none).";

/* Lock held: describe the statement before it occupies the connection, so its column
 * types are looked up (enums, composites, ...) first, and choose the format:
 * STREAM_TEXT_RESULTS when query() too would ask for text results (a column without
 * binary output), decoded as query() decodes them; STREAM_TEXT_FORMS when a column
 * has no binary decoder: query() returns such a column as its text form, which a
 * text-format result carries as is (the other columns are checked). */
static int describe(OxpgClient *self, OxpgCall *call, const char *sql, const OxpgParams *p, int *text_mode)
{
    PGresult *described = oxpg_client_describe(self, call, sql, p);
    if (described == NULL)
        return -1;
    if (oxpg_client_describe_needs_text(self, described))
        *text_mode = STREAM_TEXT_RESULTS;
    else if (oxpg_client_describe_text_forms(self, described))
        *text_mode = STREAM_TEXT_FORMS;
    PQclear(described);
    return 0;
}

/* Keyword arguments of stream(). */
static int parse_stream_options(OxpgClient *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                                long *chunk_size, double *timeout, int *tuples)
{
    Py_ssize_t nkw = kwnames != NULL ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t i = 0; i < nkw; i++) {
        PyObject *name = PyTuple_GET_ITEM(kwnames, i);
        PyObject *value = args[nargs + i];
        if (PyUnicode_CompareWithASCIIString(name, "chunk_size") == 0) {
            *chunk_size = PyBool_Check(value) ? -1 : PyLong_AsLong(value);
            if (*chunk_size == -1 && PyErr_Occurred())
                return -1;
            if (*chunk_size < 1 || *chunk_size > 10000000) {
                PyErr_SetString(PyExc_ValueError, "chunk_size must be an int from 1 to 10000000");
                return -1;
            }
        } else if (PyUnicode_CompareWithASCIIString(name, "tuples") == 0) {
            if ((*tuples = PyObject_IsTrue(value)) < 0)
                return -1;
        } else if (PyUnicode_CompareWithASCIIString(name, "timeout") == 0) {
            if (oxpg_client_timeout_value("timeout", value, self->command_timeout, timeout) < 0)
                return -1;
        } else {
            PyErr_Format(PyExc_TypeError, "stream() got an unexpected keyword argument %R", name);
            return -1;
        }
    }
    return 0;
}

PyObject *oxpg_client_stream(OxpgClient *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    OxpgState *st = self->st;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    long chunk_size = 1000;
    double timeout = self->command_timeout;
    int tuples = 0;
    if (parse_stream_options(self, args, nargs, kwnames, &chunk_size, &timeout, &tuples) < 0)
        return NULL;
    if (nargs < 1 || !PyUnicode_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "stream() needs the SQL statement (str) first");
        return NULL;
    }
    Py_ssize_t sql_len;
    const char *sql = oxpg_client_sql(self, args[0], &sql_len);
    if (sql == NULL)
        return NULL;
    OxpgStream *stream = PyObject_GC_New(OxpgStream, st->StreamType);
    if (stream == NULL)
        return NULL;
    stream->client = (OxpgClient *)Py_NewRef(self);
    stream->active = 0;
    stream->cut_short = 0;
    stream->as_dicts = !tuples;
    stream->text_mode = 0;
    stream->chunk_size = (int)chunk_size;
    stream->got = 0;
    stream->row_failed = 0;
    stream->rows_read = 0;
    oxpg_call_init(&stream->call, -1);
    memset(&stream->columns, 0, sizeof(stream->columns));
    stream->next = 0;
    stream->error = NULL;
    stream->buffer = PyList_New(0);
    PyObject_GC_Track(stream);
    if (stream->buffer == NULL) {
        Py_DECREF(stream);
        return NULL;
    }
    OxpgParams params;
    if (oxpg_params_encode(st, &params, args + 1, nargs - 1, self->types.encoders) < 0) {
        Py_DECREF(stream);
        return NULL;
    }
    int ok = 0;
    if (oxpg_client_lock(self) == 0) {
        if (oxpg_client_check_usable(self) == 0 && oxpg_client_check_param_count(self, sql, sql_len, nargs - 1) == 0) {
            oxpg_stream_abandon(self);
            OxpgCall setup;
            oxpg_call_init(&setup, timeout);
            int described = self->conn != NULL && describe(self, &setup, sql, &params, &stream->text_mode) == 0;
            oxpg_call_clear(&setup);
            if (self->notes != 0 && oxpg_wait_settle(self) < 0)
                described = 0;
            PGconn *conn = described ? self->conn : NULL;
            int sent = 0;
            if (conn != NULL) {
                int format = stream->text_mode ? 0 : 1;
                Py_BEGIN_ALLOW_THREADS
                /* Parsed again: the catalog lookup replaced the unnamed statement. */
                sent = PQsendQueryParams(conn, sql, params.count, params.types, params.values, params.lengths,
                                         params.formats, format);
                Py_END_ALLOW_THREADS
            }
            if (conn != NULL && sent && set_row_mode(conn, stream->chunk_size)) {
                self->single_row_used = 1;
                stream->active = 1;
                oxpg_call_init(&stream->call, timeout);
                self->active_stream = stream;
                ok = 1;
            } else if (conn != NULL) {
                oxpg_conn_send_failed(self, "could not send the query");
            } else if (!PyErr_Occurred()) {
                PyErr_SetString(st->OperationalError, "the connection was lost");
            }
        }
        oxpg_client_unlock(self);
    }
    oxpg_params_free(&params);
    if (!ok) {
        Py_DECREF(stream);
        return NULL;
    }
    return (PyObject *)stream;
}
