/* PGresult / PGconn failures -> exceptions of the PEP 249 tree with diagnostics. */
#ifndef OXPG_ERRORS_H
#define OXPG_ERRORS_H

#include "oxpg/module.h"

/* Raise the error carried by res (PGRES_FATAL_ERROR etc.). Errors without a
 * SQLSTATE (raised by libpq itself) get no_sqlstate_class. Returns -1. */
int oxpg_raise_result_error(OxpgState *st, const PGresult *res, PyObject *no_sqlstate_class);

/* Raise exc_type with libpq's connection error message. Returns -1. */
int oxpg_raise_conn_error(OxpgState *st, PyObject *exc_type, PGconn *conn, const char *fallback);

/* Turn the pending exception into exc_type("<prefix>: <message>"), chaining the original.
 * Returns -1 (for NULL-returning callers use the result as a flag). */
int oxpg_reraise_as(PyObject *exc_type, const char *prefix);

#endif
