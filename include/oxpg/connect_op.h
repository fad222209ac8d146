/* The connect operation: libpq's PQconnectPoll as an op that never waits, so the
 * sync driver (wait.c) and an event loop open connections the same way. */
#ifndef OXPG_CONNECT_OP_H
#define OXPG_CONNECT_OP_H

#include "oxpg/read_op.h"

typedef struct OxpgConnectOp {
    PGconn *conn;                      /* owned by the caller */
    PostgresPollingStatusType polling; /* what PQconnectPoll said last */
    double timeout;                    /* connect_timeout in seconds, 0 for none */
    double deadline;                   /* monotonic, -1 for none */
} OxpgConnectOp;

/* conn comes from PQconnectStartParams and is not CONNECTION_BAD. The deadline is
 * libpq's effective connect_timeout, which PQconnectPoll does not enforce. */
void oxpg_connect_op_init(OxpgConnectOp *op, PGconn *conn);
/* WANT_READ / WANT_WRITE before the first poll too (libpq's rule: wait until the
 * socket is writable first). DONE when connected; FAILED with OperationalError. */
OxpgIO oxpg_connect_op_step(OxpgState *st, OxpgConnectOp *op);
/* The deadline passed: OperationalError naming connect_timeout. */
void oxpg_connect_op_raise_timeout(OxpgState *st, const OxpgConnectOp *op);

#endif
