/* inet, cidr <-> ipaddress objects; macaddr, macaddr8 -> str.
 * inet/cidr wire form: family (2 IPv4, 3 IPv6), prefix bits, is-cidr flag (ignored:
 * the type OID says which it is), address length (4 or 16), address bytes. */
#include "oxpg/codecs.h"
#include "oxpg/errors.h"
#include "oxpg/pg_oids.h"

#define FAMILY_INET 2
#define FAMILY_INET6 3

/* The address as bytes and its prefix length, or NULL after raising DataError. */
static PyObject *read_address(OxpgState *st, const char *data, int len, const char *type_name, int *bits,
                              int *max_bits)
{
    if (OXPG_UNLIKELY(len < 4))
        return oxpg_decode_malformed(st, type_name, len);
    int family = (unsigned char)data[0];
    int nb = (unsigned char)data[3];
    *bits = (unsigned char)data[1];
    if (family == FAMILY_INET && nb == 4)
        *max_bits = 32;
    else if (family == FAMILY_INET6 && nb == 16)
        *max_bits = 128;
    else
        return oxpg_decode_malformed(st, type_name, len);
    if (*bits > *max_bits || len != 4 + nb)
        return oxpg_decode_malformed(st, type_name, len);
    return PyBytes_FromStringAndSize(data + 4, nb);
}

/* cls((address, bits)): the form IPv4Interface/IPv4Network and the v6 ones accept. */
static PyObject *call_with_prefix(OxpgState *st, PyObject *cls, PyObject *address, int bits)
{
    PyObject *arg = Py_BuildValue("(Oi)", address, bits);
    if (arg == NULL)
        return NULL;
    PyObject *value = PyObject_CallOneArg(cls, arg);
    Py_DECREF(arg);
    if (value == NULL)
        oxpg_reraise_as(st->DataError, "invalid network address");
    return value;
}

/* inet: a host address (full prefix) -> IPv4Address/IPv6Address, anything else ->
 * IPv4Interface/IPv6Interface, which keeps the prefix. */
PyObject *oxpg_decode_inet(OxpgState *st, const char *data, int len)
{
    int bits = 0, max_bits = 0;
    PyObject *address = read_address(st, data, len, "inet", &bits, &max_bits);
    if (address == NULL)
        return NULL;
    int v4 = max_bits == 32;
    PyObject *value;
    if (bits == max_bits)
        value = PyObject_CallOneArg(v4 ? st->ipv4_address : st->ipv6_address, address);
    else
        value = call_with_prefix(st, v4 ? st->ipv4_interface : st->ipv6_interface, address, bits);
    Py_DECREF(address);
    return value;
}

/* cidr -> IPv4Network/IPv6Network (strict: host bits set is malformed data). */
PyObject *oxpg_decode_cidr(OxpgState *st, const char *data, int len)
{
    int bits = 0, max_bits = 0;
    PyObject *address = read_address(st, data, len, "cidr", &bits, &max_bits);
    if (address == NULL)
        return NULL;
    PyObject *value = call_with_prefix(st, max_bits == 32 ? st->ipv4_network : st->ipv6_network, address, bits);
    Py_DECREF(address);
    return value;
}

/* "08:00:2b:01:02:03": lowercase hex pairs joined by colons, PostgreSQL's output. */
static PyObject *mac_text(const char *data, int n)
{
    static const char hex[] = "0123456789abcdef";
    char out[8 * 3];
    for (int k = 0; k < n; k++) {
        unsigned char b = (unsigned char)data[k];
        out[3 * k] = hex[b >> 4];
        out[3 * k + 1] = hex[b & 15];
        out[3 * k + 2] = ':';
    }
    return PyUnicode_FromStringAndSize(out, 3 * n - 1);
}

PyObject *oxpg_decode_macaddr(OxpgState *st, const char *data, int len)
{
    if (OXPG_UNLIKELY(len != 6))
        return oxpg_decode_malformed(st, "macaddr", len);
    return mac_text(data, 6);
}

PyObject *oxpg_decode_macaddr8(OxpgState *st, const char *data, int len)
{
    if (OXPG_UNLIKELY(len != 8))
        return oxpg_decode_malformed(st, "macaddr8", len);
    return mac_text(data, 8);
}

/* 1 when v is an ipaddress address, interface or network, 0 when not, -1 on error. */
int oxpg_is_ip(OxpgState *st, PyObject *v)
{
    PyObject *classes[6] = {st->ipv4_address, st->ipv6_address, st->ipv4_interface,
                            st->ipv6_interface, st->ipv4_network, st->ipv6_network};
    for (int k = 0; k < 6; k++) {
        if (PyObject_TypeCheck(v, (PyTypeObject *)classes[k]))
            return 1;
    }
    return 0;
}

/* Read an int attribute in [0, max]. */
static int int_attr(OxpgState *st, PyObject *obj, PyObject *name, long max, long *out)
{
    PyObject *value = PyObject_GetAttr(obj, name);
    if (value == NULL)
        return -1;
    *out = PyLong_Check(value) ? PyLong_AsLong(value) : -1;
    Py_DECREF(value);
    if (*out == -1 && PyErr_Occurred())
        return -1;
    if (*out < 0 || *out > max) {
        PyErr_SetString(st->DataError, "network prefix length out of range");
        return -1;
    }
    return 0;
}

/* IPv6 zone ids ("fe80::1%eth0") have no place in inet/cidr: refuse rather than drop. */
static int refuse_scope(OxpgState *st, PyObject *address)
{
    PyObject *scope = PyObject_GetAttr(address, st->str_scope_id);
    if (scope == NULL) {
        /* IPv4 addresses have no scope_id. */
        if (!PyErr_ExceptionMatches(PyExc_AttributeError))
            return -1;
        PyErr_Clear();
        return 0;
    }
    int has = scope != Py_None;
    Py_DECREF(scope);
    if (has) {
        PyErr_SetString(st->DataError, "PostgreSQL inet/cidr cannot store an IPv6 zone id (the %... suffix)");
        return -1;
    }
    return 0;
}

int oxpg_encode_ip(OxpgState *st, PyObject *v, OxpgWriteBuffer *w, Oid *oid)
{
    PyObject *address = NULL; /* the object whose .packed is the address */
    PyObject *packed = NULL;
    long bits = -1;
    int is_cidr = 0, rc = -1;
    if (PyObject_TypeCheck(v, (PyTypeObject *)st->ipv4_network) ||
        PyObject_TypeCheck(v, (PyTypeObject *)st->ipv6_network)) {
        if ((address = PyObject_GetAttr(v, st->str_network_address)) == NULL)
            goto done;
        if (int_attr(st, v, st->str_prefixlen, 128, &bits) < 0)
            goto done;
        is_cidr = 1;
    } else if (PyObject_TypeCheck(v, (PyTypeObject *)st->ipv4_interface) ||
               PyObject_TypeCheck(v, (PyTypeObject *)st->ipv6_interface)) {
        /* An interface is also an address (subclass): test it first. */
        PyObject *network = PyObject_GetAttr(v, st->str_network);
        if (network == NULL)
            goto done;
        rc = int_attr(st, network, st->str_prefixlen, 128, &bits);
        Py_DECREF(network);
        if (rc < 0)
            goto done;
        rc = -1;
        address = Py_NewRef(v);
    } else {
        address = Py_NewRef(v);
    }
    if (refuse_scope(st, address) < 0)
        goto done;
    if ((packed = PyObject_GetAttr(address, st->str_packed)) == NULL)
        goto done;
    Py_ssize_t nb = PyBytes_Check(packed) ? PyBytes_GET_SIZE(packed) : -1;
    if (nb != 4 && nb != 16) {
        PyErr_SetString(st->DataError, "ip address .packed is neither 4 nor 16 bytes");
        goto done;
    }
    if (bits < 0)
        bits = nb * 8;
    if (bits > nb * 8) {
        PyErr_SetString(st->DataError, "network prefix length out of range");
        goto done;
    }
    char *out = oxpg_wbuf_put(w, 4 + (size_t)nb);
    if (out == NULL)
        goto done;
    out[0] = (char)(nb == 4 ? FAMILY_INET : FAMILY_INET6);
    out[1] = (char)bits;
    out[2] = (char)is_cidr;
    out[3] = (char)nb;
    memcpy(out + 4, PyBytes_AS_STRING(packed), (size_t)nb);
    *oid = is_cidr ? OXPG_CIDROID : OXPG_INETOID;
    rc = 0;
done:
    Py_XDECREF(address);
    Py_XDECREF(packed);
    return rc;
}
