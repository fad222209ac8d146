/* oxpg._oxpg: PEP 489 multi-phase init, module state, the PEP 249 exception tree. */
#include "oxpg/cancel.h"
#include "oxpg/client.h"
#include "oxpg/errors.h"
#include "oxpg/module.h"
#include "oxpg/operation.h"
#include "oxpg/read_op.h"
#include "oxpg/typecache.h"

static PyModuleDef oxpg_module_def;

OxpgState *oxpg_state_from_type(PyTypeObject *type)
{
    PyObject *module = PyType_GetModuleByDef(type, &oxpg_module_def);
    return module == NULL ? NULL : (OxpgState *)PyModule_GetState(module);
}

static OxpgState *module_state(PyObject *module)
{
    return (OxpgState *)PyModule_GetState(module);
}

/* Attributes every oxpg exception has, None unless the server sent them. */
static const char *const diagnostic_attrs[] = {
    "sqlstate", "severity", "detail", "hint", "position", "context",
    "schema_name", "table_name", "column_name", "constraint_name", NULL,
};

static PyObject *new_exception(PyObject *module, const char *name, PyObject *base, const char *doc)
{
    PyObject *dict = PyDict_New();
    PyObject *exc = NULL;
    if (dict == NULL)
        goto done;
    for (const char *const *attr = diagnostic_attrs; *attr != NULL; attr++) {
        if (PyDict_SetItemString(dict, *attr, Py_None) < 0)
            goto done;
    }
    char qualified[64];
    PyOS_snprintf(qualified, sizeof(qualified), "oxpg.%s", name);
    exc = PyErr_NewExceptionWithDoc(qualified, doc, base, dict);
    if (exc != NULL && PyModule_AddObjectRef(module, name, exc) < 0)
        Py_CLEAR(exc);
done:
    Py_XDECREF(dict);
    return exc;
}

static int add_exceptions(PyObject *module, OxpgState *st)
{
#define OXPG_EXC(field, name, base, doc)                           \
    do {                                                           \
        st->field = new_exception(module, name, base, doc);        \
        if (st->field == NULL)                                     \
            return -1;                                             \
    } while (0)
    OXPG_EXC(Warning, "Warning", PyExc_Exception, "Important warnings (PEP 249).");
    OXPG_EXC(Error, "Error", PyExc_Exception, "Base class of every oxpg error (PEP 249).");
    OXPG_EXC(InterfaceError, "InterfaceError", st->Error,
             "Misuse of the client or a client-side failure, not the database's.");
    OXPG_EXC(DatabaseError, "DatabaseError", st->Error, "An error reported by or about the database.");
    OXPG_EXC(DataError, "DataError", st->DatabaseError,
             "A value that cannot be sent, stored or represented (SQLSTATE class 22).");
    OXPG_EXC(OperationalError, "OperationalError", st->DatabaseError,
             "Connection, resource or server-operation failures (08, 53, 57, ...).");
    OXPG_EXC(IntegrityError, "IntegrityError", st->DatabaseError, "Constraint violations (SQLSTATE class 23).");
    OXPG_EXC(InternalError, "InternalError", st->DatabaseError, "Internal server errors (SQLSTATE class XX).");
    OXPG_EXC(ProgrammingError, "ProgrammingError", st->DatabaseError,
             "SQL syntax errors, missing objects, wrong parameter counts (42, ...).");
    OXPG_EXC(NotSupportedError, "NotSupportedError", st->DatabaseError,
             "A feature the server or oxpg does not support (SQLSTATE class 0A).");
#undef OXPG_EXC
    /* Both an OperationalError (PEP 249) and a TimeoutError (what asyncio and the
     * standard library raise), so either except clause catches it. */
    PyObject *bases = PyTuple_Pack(2, st->OperationalError, PyExc_TimeoutError);
    if (bases == NULL)
        return -1;
    st->QueryTimeoutError = new_exception(module, "QueryTimeoutError", bases,
                                          "A statement ran past its timeout and was cancelled on the server.");
    Py_DECREF(bases);
    if (st->QueryTimeoutError == NULL)
        return -1;
    st->PipelineAborted = new_exception(module, "PipelineAborted", st->OperationalError,
                                        "A pipelined statement was not run because an earlier one failed.");
    if (st->PipelineAborted == NULL)
        return -1;
    /* NotSupportedError by its SQLSTATE (0A000), OperationalError by what to do:
     * roll back and retry, as after a serialization failure. */
    if ((bases = PyTuple_Pack(2, st->NotSupportedError, st->OperationalError)) == NULL)
        return -1;
    st->InvalidCachedStatementError = new_exception(
        module, "InvalidCachedStatementError", bases,
        "A cached prepared statement became invalid inside a transaction: DDL changed it, or the server "
        "session does not hold it (a transaction-mode pooler). Roll back and retry.");
    Py_DECREF(bases);
    if (st->InvalidCachedStatementError == NULL)
        return -1;
    return 0;
}

static PyObject *import_attr(const char *module_name, const char *attr)
{
    PyObject *mod = PyImport_ImportModule(module_name);
    if (mod == NULL)
        return NULL;
    PyObject *value = PyObject_GetAttrString(mod, attr);
    Py_DECREF(mod);
    return value;
}

/* ipaddress, oxpg.types (pure Python, standard library only) and the names the
 * codecs read from their objects. */
static int import_value_types(OxpgState *st)
{
    static const char *const ip_classes[6] = {"IPv4Address", "IPv6Address", "IPv4Interface",
                                              "IPv6Interface", "IPv4Network", "IPv6Network"};
    PyObject **ip_fields[6] = {&st->ipv4_address, &st->ipv6_address, &st->ipv4_interface,
                               &st->ipv6_interface, &st->ipv4_network, &st->ipv6_network};
    for (int k = 0; k < 6; k++) {
        if ((*ip_fields[k] = import_attr("ipaddress", ip_classes[k])) == NULL)
            return -1;
    }
    /* oxpg.types registers Range, Json and Jsonb (register_value_types): C imports
     * nothing from the oxpg package. Until then a class nothing is an instance of
     * stands in, so isinstance checks need no NULL test. */
    static PyType_Slot slots[] = {{0, NULL}};
    static PyType_Spec spec = {.name = "oxpg._oxpg._NotRegistered",
                               .basicsize = sizeof(PyObject),
                               .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION,
                               .slots = slots};
    if ((st->range_type = PyType_FromSpec(&spec)) == NULL)
        return -1;
    st->json_wrapper = Py_NewRef(st->range_type);
    st->jsonb_wrapper = Py_NewRef(st->range_type);
    static const char *const bounds[4] = {"()", "(]", "[)", "[]"};
    for (int k = 0; k < 4; k++) {
        if ((st->range_bounds[k] = PyUnicode_InternFromString(bounds[k])) == NULL)
            return -1;
    }
    static const char *const names[13] = {"packed", "ip", "prefixlen", "network", "network_address",
                                          "scope_id", "lower", "upper", "lower_inc", "upper_inc",
                                          "isempty", "obj", "dumps"};
    PyObject **name_fields[13] = {&st->str_packed, &st->str_ip, &st->str_prefixlen, &st->str_network,
                                  &st->str_network_address, &st->str_scope_id, &st->str_lower, &st->str_upper,
                                  &st->str_lower_inc, &st->str_upper_inc, &st->str_isempty, &st->str_obj,
                                  &st->str_dumps};
    for (int k = 0; k < 13; k++) {
        if ((*name_fields[k] = PyUnicode_InternFromString(names[k])) == NULL)
            return -1;
    }
    return 0;
}

static int import_dependencies(OxpgState *st)
{
    st->datetime_api = (PyDateTime_CAPI *)PyCapsule_Import(PyDateTime_CAPSULE_NAME, 0);
    if (st->datetime_api == NULL)
        return -1;
    st->utc = Py_NewRef(st->datetime_api->TimeZone_UTC);
    if ((st->decimal_type = import_attr("decimal", "Decimal")) == NULL)
        return -1;
    if ((st->uuid_type = import_attr("uuid", "UUID")) == NULL)
        return -1;
    if ((st->json_loads = import_attr("json", "loads")) == NULL)
        return -1;
    if ((st->json_dumps = import_attr("json", "dumps")) == NULL)
        return -1;
    if ((st->str_utcoffset = PyUnicode_InternFromString("utcoffset")) == NULL)
        return -1;
    if ((st->str_as_tuple = PyUnicode_InternFromString("as_tuple")) == NULL)
        return -1;
    if ((st->str_bytes = PyUnicode_InternFromString("bytes")) == NULL)
        return -1;
    return import_value_types(st);
}

PyDoc_STRVAR(register_value_types_doc,
             "register_value_types(range, json, jsonb, /)\n--\n\n"
             "Called once by oxpg.types: the classes range values are built as and the\n"
             "parameter wrappers for json and jsonb.");

static PyObject *register_value_types(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !PyType_Check(args[0]) || !PyType_Check(args[1]) || !PyType_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "register_value_types(range, json, jsonb) expects three classes");
        return NULL;
    }
    OxpgState *st = module_state(module);
    PyObject *kwnames = Py_BuildValue("(s)", "empty");
    if (kwnames == NULL)
        return NULL;
    PyObject *call_args[2] = {NULL, Py_True};
    PyObject *empty = PyObject_Vectorcall(args[0], call_args + 1, 0 | PY_VECTORCALL_ARGUMENTS_OFFSET, kwnames);
    Py_DECREF(kwnames);
    if (empty == NULL)
        return NULL;
    Py_XSETREF(st->range_empty, empty);
    Py_XSETREF(st->range_type, Py_NewRef(args[0]));
    Py_XSETREF(st->json_wrapper, Py_NewRef(args[1]));
    Py_XSETREF(st->jsonb_wrapper, Py_NewRef(args[2]));
    Py_RETURN_NONE;
}

PyDoc_STRVAR(register_sqlstates_doc,
             "register_sqlstates(mapping, /)\n--\n\n"
             "Install the SQLSTATE -> exception class mapping (5-character codes and\n"
             "2-character classes). Called once by oxpg.errors.");

static PyObject *register_sqlstates(PyObject *module, PyObject *mapping)
{
    if (!PyDict_Check(mapping)) {
        PyErr_SetString(PyExc_TypeError, "register_sqlstates() expects a dict");
        return NULL;
    }
    OxpgState *st = module_state(module);
    Py_XSETREF(st->sqlstate_map, PyDict_Copy(mapping));
    if (st->sqlstate_map == NULL)
        return NULL;
    Py_RETURN_NONE;
}

PyDoc_STRVAR(conninfo_parse_doc,
             "conninfo_parse(dsn, /)\n--\n\n"
             "Parse a libpq connection string or URI into a list of (keyword, value)\n"
             "pairs for the options it sets. Raises InterfaceError when libpq rejects it.");

static PyObject *conninfo_parse(PyObject *module, PyObject *arg)
{
    OxpgState *st = module_state(module);
    const char *dsn = PyUnicode_AsUTF8(arg);
    if (dsn == NULL)
        return NULL;
    char *errmsg = NULL;
    PQconninfoOption *options = PQconninfoParse(dsn, &errmsg);
    PyObject *result = NULL;
    if (options == NULL) {
        if (errmsg != NULL) {
            PyObject *msg = PyUnicode_DecodeUTF8(errmsg, (Py_ssize_t)strcspn(errmsg, "\n"), "replace");
            if (msg != NULL) {
                PyErr_Format(st->InterfaceError, "invalid connection string: %U", msg);
                Py_DECREF(msg);
            }
        } else {
            PyErr_NoMemory();
        }
        goto done;
    }
    if ((result = PyList_New(0)) == NULL)
        goto done;
    for (PQconninfoOption *opt = options; opt->keyword != NULL; opt++) {
        if (opt->val == NULL)
            continue;
        PyObject *pair = Py_BuildValue("(ss)", opt->keyword, opt->val);
        if (pair == NULL || PyList_Append(result, pair) < 0) {
            Py_XDECREF(pair);
            Py_CLEAR(result);
            goto done;
        }
        Py_DECREF(pair);
    }
done:
    PQfreemem(errmsg);
    PQconninfoFree(options);
    return result;
}

PyDoc_STRVAR(conninfo_keywords_doc,
             "conninfo_keywords()\n--\n\n"
             "The connection option names the linked libpq accepts.");

static PyObject *conninfo_keywords(PyObject *module, PyObject *Py_UNUSED(ignored))
{
    (void)module;
    PQconninfoOption *defaults = PQconndefaults();
    if (defaults == NULL)
        return PyErr_NoMemory();
    PyObject *result = PyFrozenSet_New(NULL);
    for (PQconninfoOption *opt = defaults; result != NULL && opt->keyword != NULL; opt++) {
        PyObject *name = PyUnicode_FromString(opt->keyword);
        if (name == NULL || PySet_Add(result, name) < 0)
            Py_CLEAR(result);
        Py_XDECREF(name);
    }
    PQconninfoFree(defaults);
    return result;
}

PyDoc_STRVAR(libpq_version_doc,
             "libpq_version()\n--\n\n"
             "The linked libpq's version as an int, e.g. 150020 for 15.20.");

static PyObject *libpq_version(PyObject *module, PyObject *Py_UNUSED(ignored))
{
    (void)module;
    return PyLong_FromLong(PQlibVersion());
}

PyDoc_STRVAR(connect_doc,
             "connect(keywords, values, expand_dbname, /)\n--\n\n"
             "Open a connection with PQconnectStartParams. Use oxpg.connect() instead.");

PyDoc_STRVAR(connect_start_doc,
             "connect_start(cls, keywords, values, expand_dbname, cache_size, prepare_threshold,\n"
             "              command_timeout, /)\n--\n\n"
             "Start opening a connection and return the Connecting that drives it (step(),\n"
             "fileno()). Use oxpg.aio.connect() instead.");

static PyMethodDef module_methods[] = {
    {"connect", oxpg_client_connect, METH_VARARGS, connect_doc},
    {"connect_start", oxpg_client_connect_start, METH_VARARGS, connect_start_doc},
    {"register_sqlstates", register_sqlstates, METH_O, register_sqlstates_doc},
    {"register_value_types", (PyCFunction)(void (*)(void))register_value_types, METH_FASTCALL,
     register_value_types_doc},
    {"conninfo_parse", conninfo_parse, METH_O, conninfo_parse_doc},
    {"conninfo_keywords", conninfo_keywords, METH_NOARGS, conninfo_keywords_doc},
    {"libpq_version", libpq_version, METH_NOARGS, libpq_version_doc},
    {NULL, NULL, 0, NULL},
};

/* Constants Python shares with C, from the C enums (never copied by hand). */
static int add_constants(PyObject *module)
{
    static const struct {
        const char *name;
        long value;
    } constants[] = {
        /* What Operation.step() returns. */
        {"IO_DONE", OXPG_IO_DONE},
        {"IO_WANT_READ", OXPG_IO_WANT_READ},
        {"IO_WANT_WRITE", OXPG_IO_WANT_WRITE},
        /* Kinds of pipeline commands (Client._pipeline_send). */
        {"PIPELINE_DICTS", OXPG_PIPELINE_DICTS},
        {"PIPELINE_TUPLES", OXPG_PIPELINE_TUPLES},
        {"PIPELINE_EXECUTE", OXPG_PIPELINE_EXECUTE},
        {"PIPELINE_SYNC", OXPG_PIPELINE_SYNC},
        /* Modes of Client._set_type_decoder. */
        {"DECODE_BINARY", OXPG_USER_BINARY},
        {"DECODE_TEXT", OXPG_USER_TEXT},
        {"DECODE_TEXT_FORM", OXPG_USER_TEXT_FORM},
        {"DECODE_COMPOSITE", OXPG_USER_COMPOSITE},
        /* Client._transaction_status: libpq's PGTransactionStatusType. */
        {"TRANS_IDLE", PQTRANS_IDLE},
        {"TRANS_ACTIVE", PQTRANS_ACTIVE},
        {"TRANS_INTRANS", PQTRANS_INTRANS},
        {"TRANS_INERROR", PQTRANS_INERROR},
        {"TRANS_UNKNOWN", PQTRANS_UNKNOWN},
        /* Helper threads cancel requests may use at most (0: libpq needs none). */
        {"CANCEL_WORKERS_MAX", OXPG_CANCEL_WORKERS_MAX},
    };
    for (size_t i = 0; i < sizeof(constants) / sizeof(constants[0]); i++) {
        if (PyModule_AddIntConstant(module, constants[i].name, constants[i].value) < 0)
            return -1;
    }
    return 0;
}

static int module_exec(PyObject *module)
{
    OxpgState *st = module_state(module);
    if (add_exceptions(module, st) < 0)
        return -1;
    if (import_dependencies(st) < 0)
        return -1;
    st->ClientType = (PyTypeObject *)PyType_FromModuleAndSpec(module, &oxpg_client_spec, NULL);
    if (st->ClientType == NULL)
        return -1;
    if (PyModule_AddObjectRef(module, "Client", (PyObject *)st->ClientType) < 0)
        return -1;
    st->StreamType = (PyTypeObject *)PyType_FromModuleAndSpec(module, &oxpg_stream_spec, NULL);
    if (st->StreamType == NULL || PyModule_AddObjectRef(module, "Stream", (PyObject *)st->StreamType) < 0)
        return -1;
    st->OperationType = (PyTypeObject *)PyType_FromModuleAndSpec(module, &oxpg_operation_spec, NULL);
    if (st->OperationType == NULL ||
        PyModule_AddObjectRef(module, "Operation", (PyObject *)st->OperationType) < 0)
        return -1;
    st->ConnectingType = (PyTypeObject *)PyType_FromModuleAndSpec(module, &oxpg_connecting_spec, NULL);
    if (st->ConnectingType == NULL ||
        PyModule_AddObjectRef(module, "Connecting", (PyObject *)st->ConnectingType) < 0)
        return -1;
    return add_constants(module);
    return 0;
}

static int module_traverse(PyObject *module, visitproc visit, void *arg)
{
    OxpgState *st = module_state(module);
    Py_VISIT(st->ClientType);
    Py_VISIT(st->StreamType);
    Py_VISIT(st->OperationType);
    Py_VISIT(st->ConnectingType);
    Py_VISIT(st->Warning);
    Py_VISIT(st->Error);
    Py_VISIT(st->InterfaceError);
    Py_VISIT(st->DatabaseError);
    Py_VISIT(st->DataError);
    Py_VISIT(st->OperationalError);
    Py_VISIT(st->IntegrityError);
    Py_VISIT(st->InternalError);
    Py_VISIT(st->ProgrammingError);
    Py_VISIT(st->NotSupportedError);
    Py_VISIT(st->QueryTimeoutError);
    Py_VISIT(st->PipelineAborted);
    Py_VISIT(st->InvalidCachedStatementError);
    Py_VISIT(st->sqlstate_map);
    Py_VISIT(st->utc);
    Py_VISIT(st->decimal_type);
    Py_VISIT(st->uuid_type);
    Py_VISIT(st->json_loads);
    Py_VISIT(st->json_dumps);
    Py_VISIT(st->ipv4_address);
    Py_VISIT(st->ipv6_address);
    Py_VISIT(st->ipv4_interface);
    Py_VISIT(st->ipv6_interface);
    Py_VISIT(st->ipv4_network);
    Py_VISIT(st->ipv6_network);
    Py_VISIT(st->range_type);
    Py_VISIT(st->range_empty);
    Py_VISIT(st->json_wrapper);
    Py_VISIT(st->jsonb_wrapper);
    return 0;
}

static int module_clear(PyObject *module)
{
    OxpgState *st = module_state(module);
    Py_CLEAR(st->ClientType);
    Py_CLEAR(st->StreamType);
    Py_CLEAR(st->OperationType);
    Py_CLEAR(st->ConnectingType);
    Py_CLEAR(st->Warning);
    Py_CLEAR(st->Error);
    Py_CLEAR(st->InterfaceError);
    Py_CLEAR(st->DatabaseError);
    Py_CLEAR(st->DataError);
    Py_CLEAR(st->OperationalError);
    Py_CLEAR(st->IntegrityError);
    Py_CLEAR(st->InternalError);
    Py_CLEAR(st->ProgrammingError);
    Py_CLEAR(st->NotSupportedError);
    Py_CLEAR(st->QueryTimeoutError);
    Py_CLEAR(st->PipelineAborted);
    Py_CLEAR(st->InvalidCachedStatementError);
    Py_CLEAR(st->sqlstate_map);
    Py_CLEAR(st->utc);
    Py_CLEAR(st->decimal_type);
    Py_CLEAR(st->uuid_type);
    Py_CLEAR(st->json_loads);
    Py_CLEAR(st->json_dumps);
    Py_CLEAR(st->str_utcoffset);
    Py_CLEAR(st->str_as_tuple);
    Py_CLEAR(st->str_bytes);
    Py_CLEAR(st->ipv4_address);
    Py_CLEAR(st->ipv6_address);
    Py_CLEAR(st->ipv4_interface);
    Py_CLEAR(st->ipv6_interface);
    Py_CLEAR(st->ipv4_network);
    Py_CLEAR(st->ipv6_network);
    Py_CLEAR(st->range_type);
    Py_CLEAR(st->range_empty);
    Py_CLEAR(st->json_wrapper);
    Py_CLEAR(st->jsonb_wrapper);
    for (int k = 0; k < 4; k++)
        Py_CLEAR(st->range_bounds[k]);
    Py_CLEAR(st->str_packed);
    Py_CLEAR(st->str_ip);
    Py_CLEAR(st->str_prefixlen);
    Py_CLEAR(st->str_network);
    Py_CLEAR(st->str_network_address);
    Py_CLEAR(st->str_scope_id);
    Py_CLEAR(st->str_lower);
    Py_CLEAR(st->str_upper);
    Py_CLEAR(st->str_lower_inc);
    Py_CLEAR(st->str_upper_inc);
    Py_CLEAR(st->str_isempty);
    Py_CLEAR(st->str_obj);
    Py_CLEAR(st->str_dumps);
    return 0;
}

static void module_free(void *module)
{
    module_clear((PyObject *)module);
}

static PyModuleDef_Slot module_slots[] = {
    {Py_mod_exec, module_exec},
#ifdef Py_mod_multiple_interpreters
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
    {0, NULL},
};

static PyModuleDef oxpg_module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "oxpg._oxpg",
    .m_doc = "oxpg's C core: libpq connections, parameter encoding and result decoding.",
    .m_size = sizeof(OxpgState),
    .m_methods = module_methods,
    .m_slots = module_slots,
    .m_traverse = module_traverse,
    .m_clear = module_clear,
    .m_free = module_free,
};

PyMODINIT_FUNC PyInit__oxpg(void)
{
    return PyModuleDef_Init(&oxpg_module_def);
}
