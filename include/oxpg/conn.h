/* The connection core: the one path every result of every statement takes
 * (oxpg_conn_next) and the bookkeeping it applies, the per-call state, and the
 * non-blocking primitives the operations (ops/) are made of. Nothing here waits:
 * the drivers (wait.c, or Python through _oxpg.Operation) do. */
#ifndef OXPG_CONN_H
#define OXPG_CONN_H

#include "oxpg/client.h"

/* Bits of OxpgClient.notes: set by oxpg_conn_next, acted on by oxpg_wait_settle. */
#define OXPG_NOTE_STATEMENTS_GONE 1u /* the server dropped every prepared statement */
#define OXPG_NOTE_SCHEMA_CHANGED 2u  /* this session changed (or rolled back) the schema */
#define OXPG_NOTE_TYPES_STALE 4u     /* temporary or altered types: ask the catalog again */
#define OXPG_NOTE_ENCODING 8u        /* client_encoding is no longer UTF8 */

/* PG_UTF8 in PostgreSQL's encoding enum (stable across versions). */
#define OXPG_PG_UTF8 6

/* One call's state: it lives on the caller's stack, never on the shared client. */
struct OxpgCall {
    double deadline;  /* monotonic seconds the call must end by, -1 for none */
    double timeout;   /* the timeout that set deadline, for the error message */
    PGresult *error;  /* the call's first error result (owned), NULL when none */
    int copy_refused; /* a COPY the call cannot serve was ended unread */
};

/* What a result consumer tells oxpg_wait_read to do next. */
typedef enum OxpgReadStep {
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
 * are acted on by oxpg_wait_settle. */
PGresult *oxpg_conn_next(OxpgClient *self);

/* A consumer that keeps only the first error (for statements whose results do not
 * matter: SET, the single-row reset). */
OxpgReadStep oxpg_conn_discard_result(OxpgClient *self, OxpgCall *call, PGresult *r, void *ctx);

/* Sending failed: raise OperationalError (closing the client when the connection is
 * gone). what names the attempt ("could not send the query"). Returns -1. */
int oxpg_conn_send_failed(OxpgClient *self, const char *what);

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
