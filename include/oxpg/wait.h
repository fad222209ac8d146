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


/* Wait until conn's socket is ready for events. deadline < 0 means none. */
OxpgWaitStatus oxpg_wait_socket(PGconn *conn, int events, double deadline);

typedef struct OxpgReadOp OxpgReadOp;
typedef struct OxpgClient OxpgClient;

/* The sync driver, the one loop that waits for an operation: step it, wait for
 * what it asks (poll with the GIL released, signal handlers run), and on a timeout
 * or an exception from a signal handler interrupt it (cancel on the server, drain
 * within the grace) and step on. Returns 0, or -1 with an exception set. */
int oxpg_wait_op(OxpgClient *self, OxpgReadOp *op);
/* The same for the query operation (started by oxpg_query_op_start): every round
 * trip it takes, under one deadline. */
typedef struct OxpgQueryOp OxpgQueryOp;
int oxpg_wait_query(OxpgClient *self, OxpgQueryOp *q);
/* The same for the batch operation (started by oxpg_batch_op_start). */
typedef struct OxpgBatchOp OxpgBatchOp;
int oxpg_wait_batch(OxpgClient *self, OxpgBatchOp *op);

/* The sync calls the Client's methods make, each the read operation (or its drain)
 * driven by oxpg_wait_op. Returns 0, or -1 with an exception set. */
typedef struct OxpgCall OxpgCall;
typedef enum OxpgReadStep OxpgReadStep;
/* Read the results of what was sent, handing each to consume (see conn.h) until it
 * stops or the statement (or the pipeline's last sync) ends. On timeout or a
 * signal the statement is cancelled and drained and the exception raised; a lost
 * connection raises OperationalError with the server's last words. */
int oxpg_wait_read(OxpgClient *self, OxpgCall *call,
                   OxpgReadStep (*consume)(OxpgClient *, OxpgCall *, PGresult *, void *), void *ctx);
/* Flush what is queued, reading meanwhile so neither side blocks on a full buffer.
 * A timeout raises QueryTimeoutError without cancelling anything: the caller
 * decides. */
int oxpg_wait_flush(OxpgClient *self, OxpgCall *call);
/* An exception is pending mid-statement: cancel the statement and drain within
 * the call's grace, keeping the exception; a connection that cannot be brought
 * back in step is closed. */
void oxpg_wait_interrupt(OxpgClient *self, const OxpgCall *call);
/* End of a call, lock held, nothing in flight: act on what oxpg_conn_next noted.
 * Cached statements are forgotten (DEALLOCATEd when the server still has them); a
 * changed client_encoding is set back to UTF8 (a round trip) and raises
 * InterfaceError. Returns 0, or -1 with an exception set (one already pending is
 * kept). */
int oxpg_wait_settle(OxpgClient *self);

/* The same for the connect operation, by its connect_timeout deadline. */
typedef struct OxpgConnectOp OxpgConnectOp;
int oxpg_wait_connect(OxpgState *st, OxpgConnectOp *op);

#endif
