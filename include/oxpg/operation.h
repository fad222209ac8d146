/* _oxpg.Operation: a statement in flight, driven by the caller (asyncio, a test
 * with select.poll) through step() and fileno(). */
#ifndef OXPG_OPERATION_H
#define OXPG_OPERATION_H

#include "oxpg/client.h"

extern PyType_Spec oxpg_operation_spec;

/* Client._start_query(as_dicts, sql, *params) -> Operation. */
PyObject *oxpg_operation_start(OxpgClient *self, PyObject *const *args, Py_ssize_t nargs);
extern const char oxpg_start_query_doc[];

#endif
