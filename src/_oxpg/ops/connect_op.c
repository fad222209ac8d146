/* The connect operation (see include/oxpg/connect_op.h). */
#include "oxpg/connect_op.h"
#include "oxpg/errors.h"

#include <stdlib.h>

/* The effective connect_timeout (from the arguments, the DSN or PGCONNECT_TIMEOUT).
 * Returns seconds, 0 for none. */
static double connect_timeout(PGconn *conn)
{
    double seconds = 0;
    PQconninfoOption *options = PQconninfo(conn);
    for (PQconninfoOption *opt = options; opt != NULL && opt->keyword != NULL; opt++) {
        if (strcmp(opt->keyword, "connect_timeout") == 0 && opt->val != NULL)
            seconds = atoi(opt->val);
    }
    PQconninfoFree(options);
    /* libpq's own rule: values below 2 seconds mean 2. */
    return seconds <= 0 ? 0 : (seconds < 2 ? 2 : seconds);
}

void oxpg_connect_op_init(OxpgConnectOp *op, PGconn *conn)
{
    op->conn = conn;
    op->polling = PGRES_POLLING_WRITING;
    op->timeout = connect_timeout(conn);
    op->deadline = op->timeout > 0 ? oxpg_monotonic() + op->timeout : -1;
}

static OxpgIO status_io(OxpgState *st, OxpgConnectOp *op)
{
    switch (op->polling) {
    case PGRES_POLLING_OK:
        return OXPG_IO_DONE;
    case PGRES_POLLING_READING:
        return OXPG_IO_WANT_READ;
    case PGRES_POLLING_WRITING:
        return OXPG_IO_WANT_WRITE;
    default:
        oxpg_raise_conn_error(st, st->OperationalError, op->conn, "connection failed");
        return OXPG_IO_FAILED;
    }
}

OxpgIO oxpg_connect_op_step(OxpgState *st, OxpgConnectOp *op)
{
    PostgresPollingStatusType polling;
    /* It may resolve a host name or do a TLS handshake step: no GIL needed. */
    Py_BEGIN_ALLOW_THREADS
    polling = PQconnectPoll(op->conn);
    Py_END_ALLOW_THREADS
    op->polling = polling;
    return status_io(st, op);
}

void oxpg_connect_op_raise_timeout(OxpgState *st, const OxpgConnectOp *op)
{
    char message[80];
    PyOS_snprintf(message, sizeof(message), "connection timeout expired (connect_timeout=%d s)", (int)op->timeout);
    PyErr_SetString(st->OperationalError, message);
}
