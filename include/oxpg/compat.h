/* Shims over CPython API differences between the supported versions (3.11+). */
#ifndef OXPG_COMPAT_H
#define OXPG_COMPAT_H

#include "oxpg/common.h"

#if PY_VERSION_HEX >= 0x030C0000
static inline PyObject *oxpg_err_take(void)
{
    return PyErr_GetRaisedException();
}
static inline void oxpg_err_restore(PyObject *exc)
{
    PyErr_SetRaisedException(exc);
}
#else
/* 3.11 keeps (type, value, traceback) apart; normalize to one exception object. */
static inline PyObject *oxpg_err_take(void)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    if (type == NULL)
        return NULL;
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb != NULL && value != NULL)
        PyException_SetTraceback(value, tb);
    Py_XDECREF(type);
    Py_XDECREF(tb);
    return value;
}
static inline void oxpg_err_restore(PyObject *exc)
{
    if (exc == NULL)
        return;
    PyObject *tb = PyException_GetTraceback(exc);
    PyErr_Restore(Py_NewRef((PyObject *)Py_TYPE(exc)), exc, tb);
}
#endif

#endif
