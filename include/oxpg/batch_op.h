/* The batch operation: executemany(), the whole batch in one libpq pipeline (one
 * round trip, one implicit transaction: outside a transaction block all or nothing),
 * as a state machine that never waits. Rows are pulled from the caller's iterable
 * while the batch is queued, so memory is bounded by the flushes, not the input.
 * The sync client drives it with wait.c's oxpg_wait_batch; _oxpg.Operation lets any
 * event loop drive it. */
#ifndef OXPG_BATCH_OP_H
#define OXPG_BATCH_OP_H

#include "oxpg/client.h"
#include "oxpg/read_op.h"

typedef struct OxpgBatchOp {
    OxpgReadOp read; /* the round trip in flight: the single-row reset, a flush, the results */
    OxpgCall *call;  /* the caller's: one deadline for the whole batch */
    int status;      /* OXPG_IO_WANT_READ while running, then OXPG_IO_DONE or OXPG_IO_FAILED */
    int phase;       /* see batch_op.c */
    const char *sql;
    Py_ssize_t sql_len;
    PyObject *rows;     /* the iterator of parameter rows (strong) */
    PyObject *next_row; /* a row pulled but not yet queued (strong) */
    /* What each queued command was, to read its results back: a row index (0-based)
     * or one of batch_op.c's CMD_*. */
    long *kinds;
    long count;
    long cap;
    Oid *prepared; /* the parameter types the unnamed statement was prepared for */
    int nprepared;
    long index;                /* rows queued so far */
    Py_ssize_t checked_count;  /* the row length whose placeholder count was checked */
    PyObject *pending;         /* our own exception that aborted the batch */
    long command;              /* the command whose results are being read */
    long error_command;        /* the first command that failed, -1 when none */
    unsigned long long affected;
    PyObject *out; /* the outcome: the total row count */
} OxpgBatchOp;

/* A batch cannot run sql (COPY: it needs its data, or gives its rows, between
 * statements, which a pipeline cannot do): NotSupportedError, -1. Else 0. */
int oxpg_batch_check_sql(OxpgClient *self, const char *sql, Py_ssize_t sql_len);
/* Lock held, the connection open and free: start the batch. sql must outlive the
 * op; rows is an iterator (a new reference is taken). Returns 0 (step it; with
 * no rows at all it is already done and nothing was sent), or -1 with an exception
 * set (the op is over; clear it). */
int oxpg_batch_op_start(OxpgClient *self, OxpgBatchOp *op, OxpgCall *call, const char *sql, Py_ssize_t sql_len,
                        PyObject *rows);
/* Do what can be done without waiting: OXPG_IO_WANT_READ/WRITE (wait on the socket,
 * step again), OXPG_IO_DONE (oxpg_batch_op_take gives the row count) or
 * OXPG_IO_FAILED (an exception is set, naming the failing row where there is one). */
OxpgIO oxpg_batch_op_step(OxpgClient *self, OxpgBatchOp *op);
/* An exception is pending (a timeout, a signal, the driver's cancellation): abort the
 * batch so nothing of it commits, cancel what runs, and drain; the op then fails
 * with that exception. The exception is taken whatever happens. */
void oxpg_batch_op_interrupt(OxpgClient *self, OxpgBatchOp *op);
/* The outcome once done (a new reference). */
PyObject *oxpg_batch_op_take(OxpgBatchOp *op);
/* Release what the op holds; then act on the session notes (oxpg_wait_settle).
 * Returns -1 when settling raised (a pending exception is kept). */
int oxpg_batch_op_clear(OxpgClient *self, OxpgBatchOp *op);
/* Release what the op holds, nothing more (a forked child's copy of a running op). */
void oxpg_batch_op_free(OxpgBatchOp *op);

#endif
