/* The Client type: one PGconn, its lock, and the calls that drive it. */
#ifndef OXPG_CLIENT_H
#define OXPG_CLIENT_H

#include "oxpg/module.h"
#include "oxpg/stmtcache.h"
#include "pythread.h"
#include <sys/types.h>

#define OXPG_NOTICE_QUEUE 64

typedef struct {
    PyObject_HEAD
    OxpgState *st;
    PGconn *conn;            /* NULL once closed */
    PyThread_type_lock lock; /* serializes every use of conn */
    unsigned long owner;     /* thread holding lock, 0 when free: catches re-entry */
    pid_t pid;               /* process that opened conn: a forked child must not touch it */
    int broken;              /* the connection was lost, not closed by the user */
    int statements_dropped;  /* the last statement was DISCARD ALL / DEALLOCATE ALL */
    double deadline;         /* monotonic time the current call must end by, -1 for none */
    double timeout;          /* the timeout= that set deadline, for the error message */
    /* Guards conn against close() while another thread's cancel() reads it; never
     * held while waiting for anything else. */
    PyThread_type_lock cancel_lock;
    OxpgStatementCache cache;
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

/* connect(keywords, values, expand_dbname) -> Client; module-level function. */
PyObject *oxpg_client_connect(PyObject *module, PyObject *args);

#endif
