/* Waiting on the socket with the GIL released, in short poll() slices, so signal
 * handlers (Ctrl-C) run promptly and a stuck server never hangs the interpreter. */
#include "oxpg/wait.h"
#include "oxpg/compat.h"
#include "oxpg/read_op.h"
#include "oxpg/connect_op.h"
#include "oxpg/query_op.h"
#include "oxpg/batch_op.h"

#include <errno.h>
#include <poll.h>
#include <time.h>

/* Longest time we stay in poll() without looking at signals. Signals delivered to
 * this thread interrupt poll() at once (EINTR); the slice bounds the delay when the
 * signal lands on another thread. */
#define SLICE_MS 50

static int slice_ms(double deadline)
{
    if (deadline < 0)
        return SLICE_MS;
    double left_ms = (deadline - oxpg_monotonic()) * 1000.0;
    if (left_ms <= 0)
        return 0;
    return left_ms < SLICE_MS ? (int)left_ms + 1 : SLICE_MS;
}

/* One poll() with the GIL released. Returns 1 ready, 0 not yet, -1 socket gone. */
static int poll_once(int fd, int events, int timeout_ms)
{
    struct pollfd pfd = {.fd = fd, .events = 0, .revents = 0};
    if (events & OXPG_WAIT_READ)
        pfd.events |= POLLIN;
    if (events & OXPG_WAIT_WRITE)
        pfd.events |= POLLOUT;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = poll(&pfd, 1, timeout_ms);
    Py_END_ALLOW_THREADS
    if (rc < 0)
        return errno == EINTR ? 0 : -1;
    /* Error or hang-up conditions count as ready: libpq's next call reports them. */
    return rc > 0 ? 1 : 0;
}

static OxpgWaitStatus wait_socket(PGconn *conn, int events, double deadline, int check_signals)
{
    int fd = PQsocket(conn);
    if (fd < 0)
        return OXPG_WAIT_CONNLOST;
    for (;;) {
        int ready = poll_once(fd, events, slice_ms(deadline));
        if (ready != 0)
            return ready > 0 ? OXPG_WAIT_READY : OXPG_WAIT_CONNLOST;
        if (check_signals && PyErr_CheckSignals() < 0)
            return OXPG_WAIT_ERROR;
        if (deadline >= 0 && oxpg_monotonic() >= deadline)
            return OXPG_WAIT_TIMEOUT;
    }
}

OxpgWaitStatus oxpg_wait_socket(PGconn *conn, int events, double deadline)
{
    return wait_socket(conn, events, deadline, 1);
}

/* What the driver needs of an operation: step it, and interrupt it when an
 * exception is pending (a timeout, a signal): interrupt returns 0 to step on (the
 * op drains and then fails with the exception) or -1 to give up at once. */
typedef struct {
    OxpgIO (*step)(OxpgClient *self, void *op);
    int (*interrupt)(OxpgClient *self, void *op);
} Driven;

/* The loop of every sync call: step until done; read is the op's round trip in
 * flight (its deadline, its drain). */
static int drive(OxpgClient *self, const Driven *driven, void *ctx, OxpgReadOp *read)
{
    for (;;) {
        OxpgIO io = driven->step(self, ctx);
        if (io == OXPG_IO_DONE)
            return 0;
        if (io == OXPG_IO_FAILED)
            return -1;
        int events = io == OXPG_IO_WANT_WRITE ? OXPG_WAIT_READ | OXPG_WAIT_WRITE : OXPG_WAIT_READ;
        /* While draining, signals wait: an exception is already on its way. */
        double deadline = read->draining ? read->drain_deadline : read->call->deadline;
        OxpgWaitStatus ws = wait_socket(self->conn, events, deadline, !read->draining);
        if (OXPG_LIKELY(ws == OXPG_WAIT_READY))
            continue;
        if (read->draining) {
            /* The grace is spent (or the socket is gone): the connection goes. */
            oxpg_read_op_abandon(self, read);
            return -1;
        }
        if (ws == OXPG_WAIT_CONNLOST) {
            oxpg_client_raise_lost(self, read->call->error);
            return -1;
        }
        if (ws == OXPG_WAIT_TIMEOUT)
            oxpg_call_raise_timeout(self, read->call);
        if (driven->interrupt(self, ctx) < 0)
            return -1;
    }
}

static OxpgIO step_read(OxpgClient *self, void *op)
{
    return oxpg_read_op_step(self, op);
}

static int interrupt_read(OxpgClient *self, void *ctx)
{
    OxpgReadOp *op = ctx;
    if (op->flush_only)
        return -1; /* nothing was read yet: the caller decides how to end it */
    oxpg_read_op_interrupt(self, op);
    return 0;
}

static OxpgIO step_query(OxpgClient *self, void *q)
{
    return oxpg_query_op_step(self, q);
}

static int interrupt_query(OxpgClient *self, void *q)
{
    oxpg_read_op_interrupt(self, &((OxpgQueryOp *)q)->read);
    return 0;
}

static OxpgIO step_batch(OxpgClient *self, void *op)
{
    return oxpg_batch_op_step(self, op);
}

static int interrupt_batch(OxpgClient *self, void *op)
{
    oxpg_batch_op_interrupt(self, op);
    return 0;
}

static const Driven read_driven = {step_read, interrupt_read};
static const Driven query_driven = {step_query, interrupt_query};
static const Driven batch_driven = {step_batch, interrupt_batch};

int oxpg_wait_op(OxpgClient *self, OxpgReadOp *op)
{
    return drive(self, &read_driven, op, op);
}

int oxpg_wait_query(OxpgClient *self, OxpgQueryOp *q)
{
    if (q->status != OXPG_IO_WANT_READ)
        return q->status == OXPG_IO_DONE ? 0 : -1;
    return drive(self, &query_driven, q, &q->read);
}

int oxpg_wait_batch(OxpgClient *self, OxpgBatchOp *op)
{
    if (op->status != OXPG_IO_WANT_READ)
        return op->status == OXPG_IO_DONE ? 0 : -1;
    return drive(self, &batch_driven, op, &op->read);
}

int oxpg_wait_connect(OxpgState *st, OxpgConnectOp *op)
{
    /* libpq's rule: wait until the socket is writable before the first poll. */
    OxpgIO io = OXPG_IO_WANT_WRITE;
    for (;;) {
        if (io == OXPG_IO_DONE)
            return 0;
        if (io == OXPG_IO_FAILED)
            return -1;
        int events = io == OXPG_IO_WANT_READ ? OXPG_WAIT_READ : OXPG_WAIT_WRITE;
        OxpgWaitStatus ws = wait_socket(op->conn, events, op->deadline, 1);
        if (ws == OXPG_WAIT_ERROR)
            return -1;
        if (ws == OXPG_WAIT_TIMEOUT) {
            oxpg_connect_op_raise_timeout(st, op);
            return -1;
        }
        /* CONNLOST here just means "no socket yet, or it closed": the poll tells. */
        io = oxpg_connect_op_step(st, op);
    }
}

/* ---- sync calls: the read operation driven by oxpg_wait_op ---------------- */

int oxpg_wait_flush(OxpgClient *self, OxpgCall *call)
{
    OxpgReadOp op;
    oxpg_read_op_init(&op, call, oxpg_conn_discard_result, NULL);
    op.flush_only = 1;
    return oxpg_wait_op(self, &op);
}

void oxpg_wait_interrupt(OxpgClient *self, const OxpgCall *call)
{
    if (self->conn == NULL)
        return;
    OxpgCall drain_call = *call;
    drain_call.error = NULL;
    OxpgReadOp op;
    oxpg_read_op_init(&op, &drain_call, oxpg_conn_discard_result, NULL);
    oxpg_read_op_interrupt(self, &op); /* takes the pending exception */
    oxpg_wait_op(self, &op);           /* and raises it again once drained */
    oxpg_read_op_clear(&op);
    oxpg_call_clear(&drain_call);
}

int oxpg_wait_read(OxpgClient *self, OxpgCall *call, oxpg_result_fn consume, void *ctx)
{
    OxpgReadOp op;
    oxpg_read_op_init(&op, call, consume, ctx);
    int rc = oxpg_wait_op(self, &op);
    oxpg_read_op_clear(&op);
    return rc;
}

/* ---- the end of a call ------------------------------------------------------------ */

/* Replace the pending exception (if any, kept as the context) with InterfaceError. */
static void raise_encoding_error(OxpgClient *self, PyObject *cause, const char *message)
{
    PyErr_SetString(self->st->InterfaceError, message);
    if (cause != NULL) {
        PyObject *exc = oxpg_err_take();
        PyException_SetContext(exc, cause); /* steals cause */
        oxpg_err_restore(exc);
    }
}

/* PostgreSQL must keep talking UTF-8 to us: a changed client_encoding is set back.
 * Returns 0 when it already is back (a rollback undid the change), else raises. */
static int restore_encoding(OxpgClient *self)
{
    PGconn *conn = self->conn;
    if (PQclientEncoding(conn) == OXPG_PG_UTF8)
        return 0;
    PyObject *cause = oxpg_err_take();
    if (cause != NULL && !PyErr_GivenExceptionMatches(cause, self->st->Error)) {
        /* KeyboardInterrupt and the like are the caller's business: keep them, and
         * set the encoding back at the end of the next call. */
        self->notes |= OXPG_NOTE_ENCODING;
        oxpg_err_restore(cause);
        return -1;
    }
    if (PQtransactionStatus(conn) == PQTRANS_INERROR) {
        /* Nothing but a rollback runs now, and it undoes a change made inside the
         * block; the next call checks again. */
        self->notes |= OXPG_NOTE_ENCODING;
        raise_encoding_error(self, cause,
                             "client_encoding must stay UTF8 with oxpg; the transaction is aborted: roll it "
                             "back (which also undoes the change)");
        return -1;
    }
    OxpgCall call;
    oxpg_call_init(&call, 5.0);
    int restored = 0;
    if (PQsendQuery(conn, "SET client_encoding TO 'UTF8'") &&
        oxpg_wait_read(self, &call, oxpg_conn_discard_result, NULL) == 0 && call.error == NULL)
        restored = self->conn != NULL && PQclientEncoding(self->conn) == OXPG_PG_UTF8;
    oxpg_call_clear(&call);
    PyErr_Clear();
    if (!restored && self->conn != NULL) {
        self->broken = 1;
        oxpg_client_finish(self);
    }
    raise_encoding_error(self, cause,
                         restored ? "client_encoding must stay UTF8 with oxpg; the setting was changed back to "
                                    "UTF8 (a pipeline or executemany batch that changed it was not committed)"
                                  : "client_encoding must stay UTF8 with oxpg, and it could not be set back; the "
                                    "connection was closed");
    return -1;
}

int oxpg_wait_settle(OxpgClient *self)
{
    if (OXPG_LIKELY(self->notes == 0 && self->conn != NULL))
        return 0;
    if (self->conn == NULL) {
        /* A lost connection took its prepared statements with it. */
        self->notes = 0;
        self->ddl_in_transaction = 0;
        return oxpg_cache_reset(&self->cache, 0);
    }
    unsigned notes = self->notes;
    self->notes = 0;
    int rc = 0;
    if (notes & (OXPG_NOTE_STATEMENTS_GONE | OXPG_NOTE_SCHEMA_CHANGED)) {
        PyObject *pending = oxpg_err_take();
        rc = oxpg_cache_reset(&self->cache, !(notes & OXPG_NOTE_STATEMENTS_GONE));
        if (pending != NULL) {
            PyErr_Clear();
            oxpg_err_restore(pending);
            rc = -1;
        }
    }
    if (notes & OXPG_NOTE_TYPES_STALE)
        oxpg_types_forget_catalog(&self->types);
    if (notes & OXPG_NOTE_ENCODING)
        rc = restore_encoding(self);
    if (self->conn == NULL)
        oxpg_cache_reset(&self->cache, 0);
    return rc < 0 || PyErr_Occurred() ? -1 : 0;
}
