/* The sync driver: waiting on a libpq socket with the GIL released, in slices,
 * checking signals. */
#ifndef OXPG_WAIT_H
#define OXPG_WAIT_H

#include "oxpg/module.h"

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

typedef struct OxpgReadOp OxpgReadOp;
typedef struct OxpgClient OxpgClient;

/* The sync driver, the one loop that waits for an operation: step it, wait for
 * what it asks (poll with the GIL released, signal handlers run), and on a timeout
 * or an exception from a signal handler interrupt it (cancel on the server, drain
 * within the grace) and step on. Returns 0, or -1 with an exception set. */
int oxpg_wait_op(OxpgClient *self, OxpgReadOp *op);

/* The same for the connect operation, by its connect_timeout deadline. */
typedef struct OxpgConnectOp OxpgConnectOp;
int oxpg_wait_connect(OxpgState *st, OxpgConnectOp *op);

#endif
