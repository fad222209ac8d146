/* Cancel requests with a bounded wait. */
#ifndef OXPG_CANCEL_H
#define OXPG_CANCEL_H

#include "oxpg/common.h"

/* Ask the server to cancel whatever conn is running, waiting at most timeout
 * seconds for the request to be delivered. Call with the GIL held (it is released
 * inside) and with conn safe to read (its client's lock or cancel lock held).
 * Returns 0 when the request was delivered, -1 otherwise (no exception is set:
 * a cancel is best effort, and the caller decides what a failure means). */
int oxpg_cancel_request(PGconn *conn, double timeout);

#endif
