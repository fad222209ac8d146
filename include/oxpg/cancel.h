/* Cancel requests: an op with a deadline, in two steps so that no lock of the client
 * is held while one travels. prepare copies what the request needs from the
 * connection (libpq's cancel handle), under whatever lock makes conn safe to read;
 * deliver sends it, without any client lock, and gives up at the deadline.
 *
 * libpq >= 17 delivers without blocking (PQcancelStart/PQcancelPoll, driven here).
 * Older libpq only has the blocking PQcancel(), which can wait for as long as the
 * network lets it: it runs on a small process-wide pool of helper threads
 * (OXPG_CANCEL_WORKERS_MAX, a bounded queue). A request nobody can take by its
 * deadline is dropped, not delivered late; one stuck in PQcancel() keeps its helper
 * until the kernel gives up on the socket, so a server that cannot be reached ties
 * up at most that many threads and sockets, whatever the number of timeouts. */
#ifndef OXPG_CANCEL_H
#define OXPG_CANCEL_H

#include "oxpg/common.h"

/* Helper threads the pool may run at once; 0 where cancelling needs none. Exported
 * as _oxpg.CANCEL_WORKERS_MAX. */
#ifdef LIBPQ_HAS_ASYNC_CANCEL
#define OXPG_CANCEL_WORKERS_MAX 0
#else
#define OXPG_CANCEL_WORKERS_MAX 4
#endif

typedef struct OxpgCancel OxpgCancel;

/* The request for what conn runs now. No I/O: call it with conn safe to read (its
 * client's lock or cancel lock held), GIL held or not. NULL when libpq cannot make
 * one (out of memory, no connection); no exception is set. */
OxpgCancel *oxpg_cancel_prepare(PGconn *conn);

/* Send cancel and free it, waiting until deadline (oxpg_monotonic() seconds) at most.
 * Needs no lock of the client (conn may be closed meanwhile); call with the GIL held
 * (it is released while waiting). Returns 0 when the server received the request,
 * -1 otherwise (no exception is set: a cancel is best effort, and the caller decides
 * what a failure means). */
int oxpg_cancel_deliver(OxpgCancel *cancel, double deadline);

/* prepare then deliver, taking at most timeout seconds: for the caller that holds
 * the client's lock and is the one waiting anyway. */
int oxpg_cancel_request(PGconn *conn, double timeout);

#endif
