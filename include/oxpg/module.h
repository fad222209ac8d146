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
    PyTypeObject *StreamType;
    PyTypeObject *OperationType;
    PyTypeObject *ConnectingType;

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
    PyObject *PipelineAborted;   /* a statement skipped because an earlier one failed */
    PyObject *InvalidCachedStatementError; /* 0A000 on a cached statement in a transaction */
    /* SQLSTATE (5 chars) and class (2 chars) -> exception class; set by oxpg.errors. */
    PyObject *sqlstate_map;

    /* Objects the codecs build values with, imported once. */
    PyDateTime_CAPI *datetime_api;
    PyObject *utc;
    PyObject *decimal_type;
    PyObject *uuid_type;
    PyObject *json_loads;
    PyObject *json_dumps;
    /* ipaddress classes: inet/cidr values are built from and recognised as these. */
    PyObject *ipv4_address;
    PyObject *ipv6_address;
    PyObject *ipv4_interface;
    PyObject *ipv6_interface;
    PyObject *ipv4_network;
    PyObject *ipv6_network;
    /* oxpg.types: Range values, and the Json/Jsonb parameter wrappers. */
    PyObject *range_type;
    PyObject *range_empty; /* Range(empty=True), shared: Range is immutable */
    PyObject *json_wrapper;
    PyObject *jsonb_wrapper;
    PyObject *range_bounds[4]; /* "()", "(]", "[)", "[]": index lower_inc * 2 + upper_inc */

    /* Interned attribute names used on hot or semi-hot paths. */
    PyObject *str_utcoffset;
    PyObject *str_as_tuple;
    PyObject *str_bytes;
    PyObject *str_packed;
    PyObject *str_ip;
    PyObject *str_prefixlen;
    PyObject *str_network;
    PyObject *str_network_address;
    PyObject *str_scope_id;
    PyObject *str_lower;
    PyObject *str_upper;
    PyObject *str_lower_inc;
    PyObject *str_upper_inc;
    PyObject *str_isempty;
    PyObject *str_obj;
    PyObject *str_dumps;
} OxpgState;

OxpgState *oxpg_state_from_type(PyTypeObject *type);

#endif
