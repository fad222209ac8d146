/* The connection core: the one path every result of every statement takes
 * (oxpg_conn_next), the one loop that reads a statement's results
 * (oxpg_conn_read), and the bookkeeping both apply. */
#ifndef OXPG_CONN_H
#define OXPG_CONN_H

#include "oxpg/client.h"

/* One call's state: it lives on the caller's stack, never on the shared client. */
struct OxpgCall {
    double deadline;  /* monotonic seconds the call must end by, -1 for none */
    double timeout;   /* the timeout that set deadline, for the error message */
    PGresult *error;  /* the call's first error result (owned), NULL when none */
    int copy_refused; /* a COPY the call cannot serve was ended unread */
};

/* What a result consumer tells oxpg_conn_read to do next. */
typedef enum {
    OXPG_READ_MORE = 0, /* read the next result */
    OXPG_READ_STOP = 1, /* the consumer has what it needs for now */
    OXPG_READ_FAIL = 2, /* an exception is set: end the statement (cancel, drain) */
} OxpgReadStep;

/* Gets every result the call reads, owned (PQclear it or keep it), errors included
 * (oxpg_call_keep_error keeps the first). r is NULL at the end of one command's
 * results; a pipeline sync arrives as a PGRES_PIPELINE_SYNC result. COPY results
 * never arrive: the read loop ends them (call->copy_refused). */
typedef OxpgReadStep (*oxpg_result_fn)(OxpgClient *self, OxpgCall *call, PGresult *r, void *ctx);

void oxpg_call_init(OxpgCall *call, double timeout);
void oxpg_call_clear(OxpgCall *call);
/* Keep r as the call's error when it is the first, else clear it. */
void oxpg_call_keep_error(OxpgCall *call, PGresult *r);
/* Nonzero for the statuses that carry an error. */
int oxpg_result_is_error(const PGresult *r);

/* The only caller of PQgetResult. libpq must not be busy (the caller waited).
 * Applies the bookkeeping every result needs whatever path reads it: statements the
 * server forgot (DISCARD/DEALLOCATE ALL), schema changes made by this session (the
 * cached statements and catalog types may describe what no longer exists), a
 * changed client_encoding, a FATAL error (the session is ending). The flags it sets
 * are acted on by oxpg_conn_settle. */
PGresult *oxpg_conn_next(OxpgClient *self);

/* Read the results of what was sent, waiting with the driver in wait.c, handing
 * each to consume until it stops or the statement (or the pipeline's last sync)
 * ends. On timeout or a signal the statement is cancelled and drained and the
 * exception raised; a lost connection raises OperationalError with the server's
 * last words. Returns 0, or -1 with an exception set. */
int oxpg_conn_read(OxpgClient *self, OxpgCall *call, oxpg_result_fn consume, void *ctx);

/* A consumer that keeps only the first error (for statements whose results do not
 * matter: SET, the single-row reset). */
OxpgReadStep oxpg_conn_discard_result(OxpgClient *self, OxpgCall *call, PGresult *r, void *ctx);

/* Sending failed: raise OperationalError (closing the client when the connection is
 * gone). what names the attempt ("could not send the query"). Returns -1. */
int oxpg_conn_send_failed(OxpgClient *self, const char *what);

/* Flush what is queued, reading meanwhile so neither side blocks on a full buffer.
 * Returns 0, or -1 with an exception set (timeout: QueryTimeoutError, the
 * statement not cancelled: the caller decides). */
int oxpg_conn_flush(OxpgClient *self, OxpgCall *call);

/* An exception is pending mid-statement (a value Python cannot hold, a signal
 * outside the read loop): cancel the statement and drain, keeping the exception;
 * a connection that cannot be brought back in step is closed. */
void oxpg_conn_interrupt(OxpgClient *self, const OxpgCall *call);

/* QueryTimeoutError for the call's timeout. */
void oxpg_call_raise_timeout(OxpgClient *self, const OxpgCall *call);
/* How long a statement interrupted during this call may take to finish (cancel and
 * drain) before the connection is given up. */
double oxpg_call_grace(const OxpgCall *call);
/* Ask the server to cancel what this connection runs, taking at most seconds. */
void oxpg_conn_send_cancel(OxpgClient *self, double seconds);

/* Raise the call's error (call->error): DatabaseError's tree, OperationalError and
 * the client closed when the server ended the session. Returns -1. */
int oxpg_conn_raise_error(OxpgClient *self, OxpgCall *call);

/* End of a call, lock held, nothing in flight: act on what oxpg_conn_next noted.
 * Cached statements are forgotten (DEALLOCATEd when the server still has them); a
 * changed client_encoding is set back to UTF8 and raises InterfaceError. Returns 0,
 * or -1 with an exception set (one already pending is kept). */
int oxpg_conn_settle(OxpgClient *self);

/* Nonzero when a result reported client_encoding changed away from UTF8. */
int oxpg_conn_encoding_changed(const OxpgClient *self);

/* A pipeline sync, counted so a drain knows how many ends to wait for. */
int oxpg_conn_pipeline_sync(OxpgClient *self);

/* The command that keeps a pipeline's implicit transaction from committing after a
 * statement in it changed client_encoding: it fails (22012) unless the setting is
 * still UTF8, so the sync that follows rolls the batch back. */
extern const char oxpg_conn_encoding_guard_sql[];

/* The guard failed: raise InterfaceError saying why nothing was committed. Returns -1. */
int oxpg_conn_raise_encoding_guard(OxpgClient *self);

#endif
