/* PGresult / PGconn failures -> exception instances carrying the server's diagnostics. */
#include "oxpg/errors.h"
#include "oxpg/compat.h"

/* Server text may be in any encoding if the user changed client_encoding or the
 * database is SQL_ASCII: decode with replacement rather than fail inside an error. */
static PyObject *decode_message(const char *text)
{
    if (text == NULL)
        Py_RETURN_NONE;
    return PyUnicode_DecodeUTF8(text, (Py_ssize_t)strlen(text), "replace");
}

/* libpq's messages end with a newline and start with "ERROR:  " for server errors. */
static PyObject *clean_message(const char *text, const char *fallback)
{
    if (text == NULL || *text == '\0')
        text = fallback;
    static const char *const prefixes[] = {"ERROR:  ", "FATAL:  ", "PANIC:  ", NULL};
    for (const char *const *prefix = prefixes; *prefix != NULL; prefix++) {
        size_t plen = strlen(*prefix);
        if (strncmp(text, *prefix, plen) == 0) {
            text += plen;
            break;
        }
    }
    size_t len = strlen(text);
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == ' '))
        len--;
    return PyUnicode_DecodeUTF8(text, (Py_ssize_t)len, "replace");
}

static PyObject *class_for_sqlstate(OxpgState *st, const char *sqlstate, const char *primary,
                                    PyObject *no_sqlstate_class)
{
    if (sqlstate == NULL || strlen(sqlstate) != 5)
        return no_sqlstate_class;
    /* A wrong parameter count fails in Bind with a protocol-violation code (08P01),
     * but it is the caller's mistake and the connection is fine. */
    if (strcmp(sqlstate, "08P01") == 0 && primary != NULL && strstr(primary, "bind message supplies") != NULL)
        return st->ProgrammingError;
    if (st->sqlstate_map == NULL)
        return st->DatabaseError;
    PyObject *cls = NULL;
    PyObject *key = PyUnicode_FromStringAndSize(sqlstate, 5);
    if (key != NULL) {
        cls = PyDict_GetItemWithError(st->sqlstate_map, key);
        Py_DECREF(key);
    }
    if (cls == NULL && !PyErr_Occurred()) {
        key = PyUnicode_FromStringAndSize(sqlstate, 2);
        if (key != NULL) {
            cls = PyDict_GetItemWithError(st->sqlstate_map, key);
            Py_DECREF(key);
        }
    }
    if (PyErr_Occurred())
        PyErr_Clear();
    return cls != NULL ? cls : st->DatabaseError;
}

static int set_field(PyObject *exc, const char *attr, const PGresult *res, int field)
{
    const char *text = PQresultErrorField(res, field);
    if (text == NULL)
        return 0;
    PyObject *value = decode_message(text);
    if (value == NULL)
        return -1;
    int rc = PyObject_SetAttrString(exc, attr, value);
    Py_DECREF(value);
    return rc;
}

int oxpg_raise_result_error(OxpgState *st, const PGresult *res, PyObject *no_sqlstate_class)
{
    PyObject *msg = NULL;
    PyObject *exc = NULL;
    const char *sqlstate = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    PyObject *cls = class_for_sqlstate(st, sqlstate, primary, no_sqlstate_class);

    if ((msg = clean_message(PQresultErrorMessage(res), "unknown server error")) == NULL)
        goto done;
    if ((exc = PyObject_CallOneArg(cls, msg)) == NULL)
        goto done;
    if (set_field(exc, "sqlstate", res, PG_DIAG_SQLSTATE) < 0 ||
        set_field(exc, "severity", res, PG_DIAG_SEVERITY_NONLOCALIZED) < 0 ||
        set_field(exc, "detail", res, PG_DIAG_MESSAGE_DETAIL) < 0 ||
        set_field(exc, "hint", res, PG_DIAG_MESSAGE_HINT) < 0 ||
        set_field(exc, "context", res, PG_DIAG_CONTEXT) < 0 ||
        set_field(exc, "schema_name", res, PG_DIAG_SCHEMA_NAME) < 0 ||
        set_field(exc, "table_name", res, PG_DIAG_TABLE_NAME) < 0 ||
        set_field(exc, "column_name", res, PG_DIAG_COLUMN_NAME) < 0 ||
        set_field(exc, "constraint_name", res, PG_DIAG_CONSTRAINT_NAME) < 0)
        goto done;
    const char *position = PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION);
    if (position != NULL) {
        PyObject *pos = PyLong_FromString(position, NULL, 10);
        if (pos == NULL) {
            PyErr_Clear();
            pos = decode_message(position);
        }
        if (pos == NULL || PyObject_SetAttrString(exc, "position", pos) < 0) {
            Py_XDECREF(pos);
            goto done;
        }
        Py_DECREF(pos);
    }
    PyErr_SetObject(cls, exc);
done:
    Py_XDECREF(msg);
    Py_XDECREF(exc);
    return -1;
}

int oxpg_raise_conn_error(OxpgState *st, PyObject *exc_type, PGconn *conn, const char *fallback)
{
    (void)st;
    PyObject *msg = clean_message(conn != NULL ? PQerrorMessage(conn) : NULL, fallback);
    if (msg != NULL) {
        PyErr_SetObject(exc_type, msg);
        Py_DECREF(msg);
    }
    return -1;
}

int oxpg_reraise_as(PyObject *exc_type, const char *prefix)
{
    PyObject *cause = oxpg_err_take();
    PyObject *text = cause != NULL ? PyObject_Str(cause) : NULL;
    if (text == NULL) {
        PyErr_Clear();
        text = PyUnicode_FromString("?");
    }
    if (text != NULL) {
        PyErr_Format(exc_type, "%s: %U", prefix, text);
        Py_DECREF(text);
    }
    if (cause != NULL) {
        PyObject *exc = oxpg_err_take();
        if (exc != NULL) {
            PyException_SetCause(exc, Py_NewRef(cause));
            PyException_SetContext(exc, cause); /* steals cause */
            cause = NULL;
            oxpg_err_restore(exc);
        }
        Py_XDECREF(cause);
    }
    return -1;
}
