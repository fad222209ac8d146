/* The Client's private methods for per-client types (src/oxpg/types.py calls
 * them): register decoders and encoders in the client's type cache. */
#include "oxpg/client.h"
#include "oxpg/errors.h"
#include "oxpg/typecache.h"

PyObject *oxpg_client_set_type_decoder(OxpgClient *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !PyLong_Check(args[0]) || !PyLong_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "_set_type_decoder(oid: int, decoder: callable | None, mode: int)");
        return NULL;
    }
    unsigned long oid = PyLong_AsUnsignedLong(args[0]);
    long mode = PyLong_AsLong(args[2]);
    if (PyErr_Occurred())
        return NULL;
    PyObject *fn = args[1] == Py_None ? NULL : args[1];
    if (oid == 0 || oid > 0xFFFFFFFFul || mode < OXPG_USER_BINARY || mode > OXPG_USER_COMPOSITE ||
        (fn != NULL && !PyCallable_Check(fn))) {
        PyErr_SetString(PyExc_ValueError, "_set_type_decoder: bad OID, mode or decoder");
        return NULL;
    }
    /* Under the lock: never while this client decodes (a decoder calling this on its
     * own client gets InterfaceError instead of pulling the rug). */
    if (oxpg_client_check_process(self) < 0 || oxpg_client_lock(self) < 0)
        return NULL;
    int rc = oxpg_types_set_decoder(&self->types, (Oid)oid, fn, (int)mode);
    oxpg_client_unlock(self);
    if (rc < 0)
        return NULL;
    Py_RETURN_NONE;
}

PyObject *oxpg_client_set_type_encoder(OxpgClient *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4 || !PyType_Check(args[0]) || !PyLong_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError,
                        "_set_type_encoder(python_type: type, oid: int, encoder: callable | None, binary: bool)");
        return NULL;
    }
    unsigned long oid = PyLong_AsUnsignedLong(args[1]);
    int binary = PyObject_IsTrue(args[3]);
    if (PyErr_Occurred() || binary < 0)
        return NULL;
    PyObject *fn = args[2] == Py_None ? NULL : args[2];
    if (oid > 0xFFFFFFFFul || (fn != NULL && !PyCallable_Check(fn))) {
        PyErr_SetString(PyExc_ValueError, "_set_type_encoder: bad OID or encoder");
        return NULL;
    }
    if (oxpg_client_check_process(self) < 0 || oxpg_client_lock(self) < 0)
        return NULL;
    int rc = -1;
    if (self->types.encoders == NULL && (self->types.encoders = PyDict_New()) == NULL)
        goto done;
    if (fn == NULL) {
        rc = PyDict_DelItem(self->types.encoders, args[0]);
        if (rc < 0 && PyErr_ExceptionMatches(PyExc_KeyError)) {
            PyErr_Clear();
            rc = 0;
        }
        goto done;
    }
    PyObject *entry = Py_BuildValue("(kOO)", oid, fn, binary ? Py_True : Py_False);
    if (entry != NULL) {
        /* Mutated in place, never replaced: encoding (outside the lock) borrows it. */
        rc = PyDict_SetItem(self->types.encoders, args[0], entry);
        Py_DECREF(entry);
    }
done:
    oxpg_client_unlock(self);
    if (rc < 0)
        return NULL;
    Py_RETURN_NONE;
}

PyObject *oxpg_client_type_encoders(OxpgClient *self, PyObject *Py_UNUSED(ignored))
{
    if (oxpg_client_check_process(self) < 0 || oxpg_client_lock(self) < 0)
        return NULL;
    if (self->types.encoders == NULL)
        self->types.encoders = PyDict_New();
    PyObject *out = Py_XNewRef(self->types.encoders);
    oxpg_client_unlock(self);
    return out;
}
