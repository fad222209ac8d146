/* The query operation: one statement of query()/query_tuples()/execute(), with all
 * the round trips it may take (describing it, catalog lookups, closing evicted
 * statements, preparing, running it again unprepared when the server lost it, text
 * forms), as a state machine that never waits. The sync client drives it with
 * wait.c's oxpg_wait_query; _oxpg.Operation lets any event loop drive it. */
#ifndef OXPG_QUERY_OP_H
#define OXPG_QUERY_OP_H

#include "oxpg/client.h"
#include "oxpg/read_op.h"
#include "oxpg/result.h"

/* What the statement's result becomes. OXPG_QUERY_CURSOR: dicts numbered from a row
 * offset, each undecodable row's DataError in its place (a server-side cursor's
 * FETCH). OXPG_QUERY_DESCRIBE: no run; the statement's description, its column
 * types looked up (oxpg_client_describe; inside a pipeline, see in_pipeline). */
typedef enum {
    OXPG_QUERY_DICTS,
    OXPG_QUERY_TUPLES,
    OXPG_QUERY_EXECUTE,
    OXPG_QUERY_CURSOR,
    OXPG_QUERY_DESCRIBE,
} OxpgQueryMode;

typedef struct OxpgQueryOp OxpgQueryOp;
/* What to do once the round trip in flight has ended: start the next one (0), or
 * finish (1 with the outcome set, -1 with an exception set). */
typedef int (*oxpg_query_next_fn)(OxpgClient *self, OxpgQueryOp *q);

struct OxpgQueryOp {
    OxpgReadOp read; /* the round trip in flight */
    OxpgCall *call;  /* the caller's: one deadline for every round trip */
    oxpg_query_next_fn next;
    int status;      /* OXPG_IO_WANT_READ while running, then OXPG_IO_DONE or OXPG_IO_FAILED */
    /* What was asked. */
    PyObject *sql_obj;
    const char *sql;
    const OxpgParams *params;
    int simple; /* execute() without parameters: the simple protocol */
    OxpgQueryMode mode;
    long row_base;
    /* The round trip's results. */
    PGresult *last;
    int results_seen;
    int ends_seen;
    /* Describing inside the caller's pipeline (pipeline()): no sync of its own, so the
     * pipeline's transaction stays whole. aborted: an earlier statement failed, the
     * server skipped the describe; describe_failed: it failed itself, q->res holds
     * its error result. */
    int in_pipeline;
    int aborted;
    int describe_failed;
    /* Progress. */
    OxpgStatement *stmt; /* NULL once dropped from the cache, or with no cache entry */
    int format;          /* of the statement's results: 1 binary, 0 text */
    PGresult *res;       /* the statement's result (or, describing, its description) */
    OxpgColumns local;
    OxpgColumns *cols;
    OxpgTextForms text;
    int attempt; /* decodes so far: each catalog lookup of a nested type allows one more */
    Oid missing; /* the nested type being looked up */
    PyObject *pending; /* the decode's exception while that lookup runs */
    int evicting_in_transaction;
    /* Catalog lookups: the OIDs of the current round, and what comes after. */
    Oid *ask;
    int n_ask;
    int lookup_round;
    int lookup_failed;
    oxpg_query_next_fn after_lookup;
    /* Text forms: the position reached and the buffers of one chunk. */
    int text_row, text_col;
    Oid *text_types;
    const char **text_values;
    int *text_lengths;
    int *text_formats;
    char *text_sql;
    PyObject *out; /* the outcome: rows or a row count */
};

/* Lock held, the connection open and free: start the statement. sql_obj, sql and
 * params must outlive the op. Returns 0 (step it), or -1 with an exception set
 * (the op is over; clear it). */
int oxpg_query_op_start(OxpgClient *self, OxpgQueryOp *q, OxpgCall *call, PyObject *sql_obj, const char *sql,
                        Py_ssize_t sql_len, const OxpgParams *params, int simple, OxpgQueryMode mode,
                        long row_base);
/* Do what can be done without waiting: OXPG_IO_WANT_READ/WRITE (wait on the socket,
 * step again; q->read says the deadline and whether it is draining), OXPG_IO_DONE
 * (oxpg_query_op_take gives the outcome) or OXPG_IO_FAILED (an exception is set). */
OxpgIO oxpg_query_op_step(OxpgClient *self, OxpgQueryOp *q);
/* The outcome once done (a new reference): rows, a row count, or with
 * OXPG_QUERY_DESCRIBE the described PGresult (through *described; None returned). */
PyObject *oxpg_query_op_take(OxpgQueryOp *q, PGresult **described);
/* Release what the op holds; then act on the session notes (oxpg_wait_settle).
 * Returns -1 when settling raised (a pending exception is kept). */
int oxpg_query_op_clear(OxpgClient *self, OxpgQueryOp *q);
/* Release what the op holds, nothing more (a forked child's copy of a running op). */
void oxpg_query_op_free(OxpgQueryOp *q);

#endif
