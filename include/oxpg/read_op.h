/* The read operation: reads the results of what was sent, one step at a time,
 * never waiting. Every call's result reading is one of these, driven by the sync
 * driver (wait.c) or, through _oxpg.Operation, by any event loop. */
#ifndef OXPG_READ_OP_H
#define OXPG_READ_OP_H

#include "oxpg/conn.h"

/* What step() needs next. Constants of the same values are exported to Python as
 * _oxpg.IO_DONE, IO_WANT_READ, IO_WANT_WRITE. */
typedef enum {
    OXPG_IO_DONE = 0,       /* finished: the consumer has everything */
    OXPG_IO_WANT_READ = 1,  /* step again once the socket is readable */
    OXPG_IO_WANT_WRITE = 2, /* step again once it is writable (or readable: the server
                             * may be waiting for us to read before it reads more) */
    OXPG_IO_FAILED = 3,     /* finished with an exception set */
} OxpgIO;

struct OxpgReadOp {
    OxpgCall *call;
    oxpg_result_fn consume;
    void *ctx;
    int phase;          /* see read_op.c */
    int ends_in_a_row;  /* pipeline mode: two result ends in a row mean nothing is left */
    int draining;       /* interrupted: results are discarded up to the statement's end */
    int flush_only;     /* done once the output buffer is flushed (nothing to read) */
    int stepped;        /* stepped before: the socket may have something to read */
    int synced_tail;    /* draining a pipeline: the statements after its last sync got one */
    double drain_deadline;
    PyObject *pending;  /* while draining: the exception to raise once drained */
};
typedef struct OxpgReadOp OxpgReadOp;

void oxpg_read_op_init(OxpgReadOp *op, OxpgCall *call, oxpg_result_fn consume, void *ctx);
/* Do what can be done without waiting. */
OxpgIO oxpg_read_op_step(OxpgClient *self, OxpgReadOp *op);
/* An exception is pending (timeout, signal, the consumer failed): keep it, ask the
 * server to cancel, and discard what is left; the op fails with it once drained.
 * The exception is taken whatever happens. */
void oxpg_read_op_interrupt(OxpgClient *self, OxpgReadOp *op);
/* The drain ran out of time: close the connection, raise the pending exception. */
void oxpg_read_op_abandon(OxpgClient *self, OxpgReadOp *op);
/* Release what a finished or abandoned op holds (the pending exception). */
void oxpg_read_op_clear(OxpgReadOp *op);

#endif
