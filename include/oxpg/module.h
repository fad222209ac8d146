/* Module state: every Python object the C core needs lives here, never in a static. */
#ifndef OXPG_MODULE_H
#define OXPG_MODULE_H

#include "oxpg/common.h"
#include <datetime.h>

/* datetime.h defines a static PyDateTimeAPI pointer per file; oxpg keeps the C API
 * in module state instead. This reference only silences "defined but not used". */
static inline PyDateTime_CAPI *oxpg_unused_datetime_api(void)
{
    return PyDateTimeAPI;
}

typedef struct {
    PyTypeObject *ClientType;

    /* PEP 249 exception tree, created in module.c. */
    PyObject *Warning;
    PyObject *Error;
    PyObject *InterfaceError;
    PyObject *DatabaseError;
    PyObject *DataError;
    PyObject *OperationalError;
    PyObject *IntegrityError;
    PyObject *InternalError;
    PyObject *ProgrammingError;
    PyObject *NotSupportedError;
    PyObject *QueryTimeoutError; /* OperationalError and the built-in TimeoutError */
    /* SQLSTATE (5 chars) and class (2 chars) -> exception class; set by oxpg.errors. */
    PyObject *sqlstate_map;

    /* Objects the codecs build values with, imported once. */
    PyDateTime_CAPI *datetime_api;
    PyObject *utc;
    PyObject *decimal_type;
    PyObject *uuid_type;
    PyObject *json_loads;
    PyObject *json_dumps;

    /* Interned attribute names used on hot or semi-hot paths. */
    PyObject *str_utcoffset;
    PyObject *str_as_tuple;
    PyObject *str_bytes;
} OxpgState;

OxpgState *oxpg_state_from_type(PyTypeObject *type);

#endif
