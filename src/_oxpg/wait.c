/* Waiting on the socket with the GIL released, in short poll() slices, so signal
 * handlers (Ctrl-C) run promptly and a stuck server never hangs the interpreter. */
#include "oxpg/wait.h"
#include "oxpg/read_op.h"
#include "oxpg/connect_op.h"

#include <errno.h>
#include <poll.h>
#include <time.h>

/* Longest time we stay in poll() without looking at signals. Signals delivered to
 * this thread interrupt poll() at once (EINTR); the slice bounds the delay when the
 * signal lands on another thread. */
#define SLICE_MS 50

double oxpg_monotonic(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

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

int oxpg_wait_op(OxpgClient *self, OxpgReadOp *op)
{
    for (;;) {
        OxpgIO io = oxpg_read_op_step(self, op);
        if (io == OXPG_IO_DONE)
            return 0;
        if (io == OXPG_IO_FAILED)
            return -1;
        int events = io == OXPG_IO_WANT_WRITE ? OXPG_WAIT_READ | OXPG_WAIT_WRITE : OXPG_WAIT_READ;
        /* While draining, signals wait: an exception is already on its way. */
        double deadline = op->draining ? op->drain_deadline : op->call->deadline;
        OxpgWaitStatus ws = wait_socket(self->conn, events, deadline, !op->draining);
        if (OXPG_LIKELY(ws == OXPG_WAIT_READY))
            continue;
        if (op->draining) {
            /* The grace is spent (or the socket is gone): the connection goes. */
            oxpg_read_op_abandon(self, op);
            return -1;
        }
        if (ws == OXPG_WAIT_CONNLOST) {
            oxpg_client_raise_lost(self, op->call->error);
            return -1;
        }
        if (ws == OXPG_WAIT_TIMEOUT)
            oxpg_call_raise_timeout(self, op->call);
        if (op->flush_only)
            return -1; /* nothing was read yet: the caller decides how to end it */
        oxpg_read_op_interrupt(self, op);
    }
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
