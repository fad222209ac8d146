/* Waiting on a libpq socket with the GIL released, in slices, checking signals. */
#ifndef OXPG_WAIT_H
#define OXPG_WAIT_H

#include "oxpg/client.h"

#define OXPG_WAIT_READ 1
#define OXPG_WAIT_WRITE 2

typedef enum {
    OXPG_WAIT_READY = 0,    /* the socket is ready (or the operation finished) */
    OXPG_WAIT_ERROR = -1,   /* an exception is set (a signal handler raised) */
    OXPG_WAIT_TIMEOUT = 1,  /* the deadline passed; no exception is set */
    OXPG_WAIT_CONNLOST = 2, /* libpq failed reading the socket; no exception is set */
} OxpgWaitStatus;

/* Seconds on a monotonic clock. */
double oxpg_monotonic(void);

/* Wait until conn's socket is ready for events. deadline < 0 means none. */
OxpgWaitStatus oxpg_wait_socket(PGconn *conn, int events, double deadline);

/* Flush the outgoing buffer and read until PQisBusy() is false. */
OxpgWaitStatus oxpg_wait_result(PGconn *conn, double deadline);

/* Like oxpg_wait_result but ignores signals: used while draining after a cancel. */
OxpgWaitStatus oxpg_wait_result_nointr(PGconn *conn, double deadline);

#endif
