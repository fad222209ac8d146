/* Per-client LRU of server-side prepared statements, keyed by SQL text and parameter
 * type OIDs, each with its cached result description (decoders, column names). */
#ifndef OXPG_STMTCACHE_H
#define OXPG_STMTCACHE_H

#include "oxpg/result.h"

/* NAMEDATALEN: the server cuts longer names, so ours stay below it. */
#define OXPG_STATEMENT_NAME_SIZE 64

/* Entries kept when nothing is prepared (statement_cache_size=0). */
#define OXPG_UNPREPARED_KEPT 100

typedef struct OxpgStatement OxpgStatement;

struct OxpgStatement {
    OxpgStatement *newer; /* LRU list, newest first */
    OxpgStatement *older;
    OxpgStatement *next_variant; /* same SQL, other parameter types */
    PyObject *sql;
    int nparams;
    Oid *param_types;
    unsigned long uses;
    int succeeded;       /* ran without error at least once: worth keeping */
    int params_checked;  /* the parameter count was checked against the placeholders */
    /* The server inferred a type other than text/varchar for a parameter sent
     * untyped: a value for it must not run by name (see infers_values in client.c). */
    int infers_non_text;
    /* The result columns were described (before the first run): text_results says a
     * column cannot come in binary format (aclitem), so results come as text. */
    char described;
    char text_results;
    char text_forms; /* a column has no binary decoder: pipeline() reads it as text too */
    char name[OXPG_STATEMENT_NAME_SIZE]; /* server-side name once prepared, "" before */
    OxpgColumns columns; /* result description, count 0 until first seen */
};

typedef struct {
    PyObject *index; /* sql str -> capsule holding the first variant */
    OxpgStatement *newest;
    OxpgStatement *oldest;
    int size;
    int capacity;  /* statements prepared at most; 0: none (PgBouncer in transaction mode) */
    int kept;      /* entries kept: capacity, or OXPG_UNPREPARED_KEPT when it is 0 */
    int threshold; /* executions before a statement is prepared */
    /* Random, per cache: names never repeat across clients, processes or hosts,
     * which share server sessions behind a transaction-mode pooler. */
    char token[17];
    unsigned long next_name;
    int warned_lost; /* the server lost a statement of ours, and the log was told */
    unsigned long hits;
    unsigned long misses;
    unsigned long prepared;
    unsigned long evictions;
    /* Names of evicted statements, closed on the server before the next PREPARE. */
    char (*to_close)[OXPG_STATEMENT_NAME_SIZE];
    int n_to_close;
    int cap_to_close;
} OxpgStatementCache;

int oxpg_cache_init(OxpgStatementCache *cache, int capacity, int threshold);
/* Forget every statement. server_has_them: queue their names for DEALLOCATE (0 when
 * the server already dropped them, e.g. after DISCARD ALL). Returns -1 on error. */
int oxpg_cache_reset(OxpgStatementCache *cache, int server_has_them);
void oxpg_cache_free(OxpgStatementCache *cache);
/* The entry for (sql, types), created when new and made the newest; its use count is
 * bumped. The cache may exceed its capacity until oxpg_cache_trim(). NULL with an
 * exception on failure. */
OxpgStatement *oxpg_cache_get(OxpgStatementCache *cache, PyObject *sql, int nparams, const Oid *types);
/* Evict the oldest entries beyond capacity. Called after a statement succeeded, so
 * a statement the server rejects never pushes a good one out. */
int oxpg_cache_trim(OxpgStatementCache *cache);
/* Drop one entry (queueing its name for DEALLOCATE when prepared). */
int oxpg_cache_forget(OxpgStatementCache *cache, OxpgStatement *stmt);
/* Give stmt a fresh server-side name: _oxpg_<token>_<n>, at most 43 bytes. */
void oxpg_cache_name(OxpgStatementCache *cache, OxpgStatement *stmt);
/* The statement's info as a dict for statement_cache_info(). */
PyObject *oxpg_cache_info(const OxpgStatementCache *cache);

#endif
