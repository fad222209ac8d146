/* _oxpg.Operation: a call in flight (a query, an execute, an executemany batch),
 * driven by the caller (asyncio, a test with select.poll) through step() and
 * fileno(). */
#ifndef OXPG_OPERATION_H
#define OXPG_OPERATION_H

#include "oxpg/client.h"

extern PyType_Spec oxpg_operation_spec;

/* Client._start_query(as_dicts, sql, *params, timeout=None) -> Operation. */
PyObject *oxpg_operation_start_query(OxpgClient *self, PyObject *const *args, size_t nargsf, PyObject *kwnames);
extern const char oxpg_start_query_doc[];
/* Client._start_execute(sql, *params, timeout=None) -> Operation. */
PyObject *oxpg_operation_start_execute(OxpgClient *self, PyObject *const *args, size_t nargsf, PyObject *kwnames);
extern const char oxpg_start_execute_doc[];
/* Client._start_executemany(sql, seq_of_params, timeout=None) -> Operation. */
PyObject *oxpg_operation_start_executemany(OxpgClient *self, PyObject *const *args, size_t nargsf,
                                           PyObject *kwnames);
extern const char oxpg_start_executemany_doc[];

#endif
