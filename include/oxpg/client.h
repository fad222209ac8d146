/* The Client type: one PGconn, its lock, and the calls that drive it. */
#ifndef OXPG_CLIENT_H
#define OXPG_CLIENT_H

#include "oxpg/module.h"
#include "oxpg/params.h"
#include "oxpg/stmtcache.h"
#include "oxpg/typecache.h"
#include "pythread.h"
#include <sys/types.h>

#define OXPG_NOTICE_QUEUE 64

typedef struct OxpgStream OxpgStream;
typedef struct OxpgCall OxpgCall;

/* What a pipeline has queued, in order, for reading the results back. */
typedef struct {
    int *kinds;
    /* Per command: its results when read ahead of their turn (a statement queued
     * later had to be described first: see pipeline.c), and whether its result comes
     * in text with text forms (checked like stream()'s). */
    PGresult **early;
    char *has_early;
    char *text_forms;
    int head; /* next to read */
    int count;
    int cap;
    double send_timeout; /* pipeline(timeout=): bounds the reading ahead */
    /* The deadline of the call reading results now (one result() may read several),
     * -1 for none, and the timeout= it came from: each read's OxpgCall is built from
     * them. Set by _pipeline_next. */
    double deadline;
    double timeout;
} OxpgPipelineLog;

typedef struct OxpgClient {
    PyObject_HEAD
    OxpgState *st;
    PGconn *conn;            /* NULL once closed */
    PyThread_type_lock lock; /* serializes every use of conn */
    unsigned long owner;     /* thread holding lock, 0 when free: catches re-entry */
    pid_t pid;               /* process that opened conn: a forked child must not touch it */
    int broken;              /* the connection was lost, not closed by the user */
    /* Bookkeeping of the one result path (conn.c): what results said about the
     * session, acted on when the call ends (oxpg_wait_settle). */
    unsigned notes;
    int ddl_in_transaction; /* this transaction changed the schema: a rollback undoes it */
    int error_since_ready;  /* an error result since the last ReadyForQuery */
    int syncs_pending;      /* pipeline syncs sent whose end has not been read */
    double command_timeout; /* connect(command_timeout=): the calls' default, -1 for none */
    /* Fixed for the connection's life, captured at connect: read without the lock
     * (a watchdog needs the pid of a statement that holds it). */
    int server_version;
    int backend_pid;
    /* Guards conn against close() while another thread's cancel() copies its cancel
     * handle (cancel.h); never held while a request travels or anything else waits. */
    PyThread_type_lock cancel_lock;
    OxpgStatementCache cache;
    /* Types beyond the static codec table: catalog answers, registered codecs. */
    OxpgTypeCache types;
    /* A stream still reading its result holds the connection; the next statement
     * (or close) ends it first. Borrowed: the stream clears it when it ends. */
    OxpgStream *active_stream;
    int orphaned_result; /* a stream was freed mid-result: drain before the next statement */
    int in_pipeline;     /* pipeline mode: only the pipeline's methods may send */
    int single_row_used; /* a stream set single-row mode since the last reset */
    OxpgPipelineLog pipeline;
    /* The server's TimeZone setting and its tzinfo (NULL when UTC), rebuilt when the
     * server reports a change. */
    char timezone_name[64];
    PyObject *timezone;
    PyObject *host;          /* str, kept for repr after close */
    PyObject *port;
    PyObject *dbname;
    PyObject *user;
    /* Notices arrive inside libpq (no Python objects there): a bounded ring of
     * C strings, turned into str only when asked for. */
    char *notices[OXPG_NOTICE_QUEUE];
    int notice_head;
    int notice_count;
    unsigned long notices_dropped;
} OxpgClient;

extern PyType_Spec oxpg_client_spec;
extern PyType_Spec oxpg_stream_spec;

/* How long delivering a cancel request for cancel() may take (it opens its own
 * connection). */
#define OXPG_CANCEL_SECONDS 5.0

/* connect(cls, keywords, values, expand_dbname, cache_size, threshold, command_timeout)
 * -> Client (connect.c). */
PyObject *oxpg_client_connect(PyObject *module, PyObject *args);
/* connect_start(the same arguments) -> Connecting: the connect op, for the caller to
 * drive (an event loop). */
PyObject *oxpg_client_connect_start(PyObject *module, PyObject *args);
extern PyType_Spec oxpg_connecting_spec;

/* The rest is shared by the files that drive a Client (client.c, batch.c, stream.c).
 * Conventions as everywhere: int -1 / NULL means an exception is set. */

/* libpq's notice receiver for a client's PGconn: queues C strings only. */
void oxpg_client_notice_receiver(void *arg, const PGresult *res);
/* Take / release the client's lock (waits with the GIL released; re-entry from the
 * same thread raises InterfaceError). */
int oxpg_client_lock(OxpgClient *self);
void oxpg_client_unlock(OxpgClient *self);
/* The SQL argument of a statement call as UTF-8: TypeError unless str, DataError
 * for a NUL (libpq would run only the part before it), InterfaceError in a forked
 * child. NULL with an exception set. */
const char *oxpg_client_sql(OxpgClient *self, PyObject *sql, Py_ssize_t *len);
/* InterfaceError in a forked child: checked before locking. */
int oxpg_client_check_process(OxpgClient *self);
/* Lock held: raises unless the connection is open (closed or lost otherwise). */
int oxpg_client_check_open(OxpgClient *self);
/* Lock held: open and free for a statement (no pipeline open). */
int oxpg_client_check_usable(OxpgClient *self);
/* Lock held: ProgrammingError when more parameters are given than $n placeholders. */
int oxpg_client_check_param_count(OxpgClient *self, const char *sql, Py_ssize_t sql_len, Py_ssize_t given);
/* Longest finite timeout accepted, in seconds (float('inf') means none). */
#define OXPG_TIMEOUT_MAX 1e9
/* One timeout value, named name in messages: None gives if_none, float('inf') -1
 * (no timeout), a number of seconds in (0, OXPG_TIMEOUT_MAX] itself; anything else
 * raises TypeError or ValueError saying what is accepted. */
int oxpg_client_timeout_value(const char *name, PyObject *value, double if_none, double *timeout);
/* The keyword-only timeout= argument (the only keyword allowed): seconds, or -1 for
 * none; absent or None gives the client's command_timeout. */
int oxpg_client_parse_timeout(OxpgClient *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                              double *timeout);
/* The connection is gone: raise (the server's last error when given) and close. */
void oxpg_client_raise_lost(OxpgClient *self, const PGresult *error);
void oxpg_client_lost(OxpgClient *self);
/* Close the PGconn now (never from a forked child). */
void oxpg_client_finish(OxpgClient *self);
/* An exception is pending mid-statement: cancel on the server, drain, keep it. */
void oxpg_client_cancel_and_drain(OxpgClient *self);
/* Lock held: make sure libpq's single-row flag from a stream is off before a
 * pipeline (it would otherwise split the pipeline's first result into rows). */
int oxpg_client_reset_single_row(OxpgClient *self, OxpgCall *call);
/* Lock held: the tzinfo timestamptz values are shown in (NULL for UTC). */
PyObject *oxpg_client_timezone(OxpgClient *self);
/* Lock held: end the active stream, if any (cancel and drain its statement). */
void oxpg_stream_abandon(OxpgClient *self);
/* Mark a stream as ended without its statement (the connection closed). */
void oxpg_stream_cut(OxpgStream *stream);
/* What a queued pipeline command returns; exported as _oxpg.PIPELINE_*. */
enum { OXPG_PIPELINE_DICTS = 0, OXPG_PIPELINE_TUPLES = 1, OXPG_PIPELINE_EXECUTE = 2, OXPG_PIPELINE_SYNC = 3 };
/* Methods defined in other files. */
PyObject *oxpg_pipeline_enter(OxpgClient *self, PyObject *timeout);
PyObject *oxpg_pipeline_send(OxpgClient *self, PyObject *const *args, Py_ssize_t nargs);
PyObject *oxpg_pipeline_sync(OxpgClient *self, PyObject *timeout);
PyObject *oxpg_pipeline_next(OxpgClient *self, PyObject *const *args, Py_ssize_t nargs);
PyObject *oxpg_pipeline_exit(OxpgClient *self, PyObject *ignored);
PyObject *oxpg_pipeline_active(OxpgClient *self, PyObject *ignored);
/* Lock held: parse sql as the unnamed statement and describe it in one round trip,
 * looking up the column types the client does not know (the query op, driven by
 * wait.c). Returns the Describe's result (the caller clears it), NULL with an
 * exception set. */
PGresult *oxpg_client_describe(OxpgClient *self, OxpgCall *call, const char *sql, const OxpgParams *p);
/* Nonzero when a column of the described statement cannot come in binary format. */
int oxpg_client_describe_needs_text(OxpgClient *self, const PGresult *described);
/* Nonzero when a column has no binary decoder (query() fetches its text form). */
int oxpg_client_describe_text_forms(OxpgClient *self, const PGresult *described);
PyObject *oxpg_client_set_type_decoder(OxpgClient *self, PyObject *const *args, Py_ssize_t nargs);
PyObject *oxpg_client_set_type_encoder(OxpgClient *self, PyObject *const *args, Py_ssize_t nargs);
PyObject *oxpg_client_type_encoders(OxpgClient *self, PyObject *ignored);
PyObject *oxpg_client_stream(OxpgClient *self, PyObject *const *args, size_t nargsf, PyObject *kwnames);
extern const char oxpg_stream_doc[];
PyObject *oxpg_client_executemany(OxpgClient *self, PyObject *const *args, size_t nargsf, PyObject *kwnames);
extern const char oxpg_executemany_doc[];

#endif
