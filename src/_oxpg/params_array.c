/* Lists and tuples as parameters: PostgreSQL arrays of their elements' common type
 * (nested lists are dimensions, rectangular), binary where the element type pins
 * the OID, else an array literal of their text forms. */
#include "params_parts.h"
#include "oxpg/codecs.h"
#include "oxpg/errors.h"
#include "oxpg/pg_oids.h"

#include <limits.h>

/* ------------------------------------------------------------------- arrays */

typedef struct {
    OxpgState *st;
    OxpgParams *p;
    int i;
    int ndim;
    Py_ssize_t dims[MAXDIM];
    Py_ssize_t count; /* elements, NULLs included */
    int has_nulls;
    Type type;                /* the elements' common type; K_NULL while only None seen */
    PyTypeObject *first_type; /* the first non-None element's type, for messages */
} ArrayPlan;

static int ragged(ArrayPlan *a)
{
    return oxpg_params_error(a->st, a->i,
                       "nested lists must be rectangular (every sub-list of one level the same length, "
                       "no None in place of a sub-list) to form a PostgreSQL array");
}

static int mixed(ArrayPlan *a, PyObject *v, Kind kind)
{
    if (a->first_type == Py_TYPE(v)) {
        /* One Python type, two PostgreSQL types: naive and aware, or Range bound types. */
        const char *what = kind == K_RANGE ? "Ranges with different bound types"
                                           : "naive and aware values (with and without time zone)";
        PyErr_Format(a->st->DataError, "parameter $%d: a list of '%.100s' mixes %s; PostgreSQL arrays hold one type",
                     a->i + 1, a->first_type->tp_name, what);
        return -1;
    }
    PyErr_Format(a->st->DataError,
                 "parameter $%d: a list mixes elements of type '%.100s' and '%.100s'; "
                 "PostgreSQL arrays hold one type",
                 a->i + 1, a->first_type->tp_name, Py_TYPE(v)->tp_name);
    return -1;
}

/* Fold element v's type into the plan's common type. */
static int merge(ArrayPlan *a, PyObject *v, PyObject *container)
{
    Type t;
    if (oxpg_params_classify(a->st, a->i, v, &t, container) < 0)
        return -1;
    Type *acc = &a->type;
    if (t.kind == K_NULL) {
        a->has_nulls = 1;
        return 0;
    }
    if (acc->kind == K_NULL) {
        *acc = t;
        a->first_type = Py_TYPE(v);
        return 0;
    }
    if (acc->kind == t.kind) {
        if (t.kind == K_INT) {
            /* The widest: numeric > int8 > int4. */
            if (t.int_oid == OXPG_NUMERICOID || acc->int_oid == OXPG_NUMERICOID)
                acc->int_oid = OXPG_NUMERICOID;
            else if (t.int_oid == OXPG_INT8OID)
                acc->int_oid = OXPG_INT8OID;
        } else if (t.kind == K_RANGE && t.range != acc->range && t.range != R_UNTYPED) {
            if (acc->range == R_UNTYPED)
                acc->range = t.range;
            else if ((acc->range == R_INT && t.range == R_NUM) || (acc->range == R_NUM && t.range == R_INT))
                acc->range = R_NUM;
            else
                return mixed(a, v, t.kind);
        }
        return 0;
    }
    /* Numbers widen: ints with floats are float8 (exact ints only, checked when
     * written), ints with Decimals numeric. Addresses with networks are inet. */
    Kind lo = acc->kind < t.kind ? acc->kind : t.kind, hi = acc->kind < t.kind ? t.kind : acc->kind;
    if (lo == K_INT && (hi == K_FLOAT || hi == K_NUMERIC)) {
        acc->kind = hi;
        return 0;
    }
    if (lo == K_INET && hi == K_CIDR) {
        acc->kind = K_INET;
        return 0;
    }
    return mixed(a, v, t.kind);
}

/* Check the nesting below v (an element of container at depth d) against the plan
 * and merge every element. */
static int scan(ArrayPlan *a, PyObject *v, PyObject *container, int d)
{
    if (d == a->ndim) {
        if (oxpg_params_is_sequence(v))
            return ragged(a);
        a->count++;
        return merge(a, v, container);
    }
    if (!oxpg_params_is_sequence(v) || PySequence_Fast_GET_SIZE(v) != a->dims[d])
        return ragged(a);
    for (Py_ssize_t k = 0; k < a->dims[d]; k++) {
        /* Element callbacks (utcoffset, ...) may change the list: hold the item. */
        if (PySequence_Fast_GET_SIZE(v) != a->dims[d])
            return ragged(a);
        PyObject *item = Py_NewRef(PySequence_Fast_GET_ITEM(v, k));
        int rc = scan(a, item, v, d + 1);
        Py_DECREF(item);
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* Write the elements below v in binary: int32 length (-1 for NULL) and bytes each. */
static int write_elements(ArrayPlan *a, PyObject *v, int d)
{
    if (!oxpg_params_is_sequence(v) || PySequence_Fast_GET_SIZE(v) != a->dims[d])
        return ragged(a);
    for (Py_ssize_t k = 0; k < a->dims[d]; k++) {
        if (PySequence_Fast_GET_SIZE(v) != a->dims[d])
            return ragged(a);
        PyObject *item = Py_NewRef(PySequence_Fast_GET_ITEM(v, k));
        int rc;
        if (d + 1 < a->ndim) {
            rc = write_elements(a, item, d + 1);
        } else if (item == Py_None) {
            rc = oxpg_wbuf_u32(&a->p->arena, UINT32_MAX); /* -1: NULL */
        } else if (oxpg_params_is_sequence(item)) {
            rc = ragged(a);
        } else {
            size_t len_at = a->p->arena.used;
            rc = oxpg_wbuf_u32(&a->p->arena, 0);
            size_t start = a->p->arena.used;
            if (rc == 0)
                rc = oxpg_params_write_value(a->st, a->p, a->i, item, &a->type);
            if (rc == 0) {
                size_t size = a->p->arena.used - start;
                if (size > INT32_MAX)
                    rc = oxpg_params_error(a->st, a->i, "an array element is too large to send (over 2 GiB)");
                else
                    oxpg_store_u32(a->p->arena.data + len_at, (uint32_t)size);
            }
        }
        Py_DECREF(item);
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* The array literal text form: {...} with every element quoted, NULL for None. */
static int write_literal(ArrayPlan *a, PyObject *v, int d)
{
    if (!oxpg_params_is_sequence(v) || PySequence_Fast_GET_SIZE(v) != a->dims[d])
        return ragged(a);
    if (oxpg_wbuf_bytes(&a->p->arena, "{", 1) < 0)
        return -1;
    for (Py_ssize_t k = 0; k < a->dims[d]; k++) {
        if (PySequence_Fast_GET_SIZE(v) != a->dims[d])
            return ragged(a);
        if (k > 0 && oxpg_wbuf_bytes(&a->p->arena, ",", 1) < 0)
            return -1;
        PyObject *item = Py_NewRef(PySequence_Fast_GET_ITEM(v, k));
        int rc;
        if (d + 1 < a->ndim)
            rc = write_literal(a, item, d + 1);
        else if (item == Py_None)
            rc = oxpg_wbuf_bytes(&a->p->arena, "NULL", 4);
        else
            rc = oxpg_params_write_str_form(a->st, a->p, a->i, item, 1);
        Py_DECREF(item);
        if (rc < 0)
            return -1;
    }
    return oxpg_wbuf_bytes(&a->p->arena, "}", 1);
}

/* list/tuple -> an array of the elements' common type. Without one (empty, only
 * None, or ranges that go as text) the array goes as its text form with OID 0, for
 * the context or an explicit cast to type. */
int oxpg_params_encode_array(OxpgState *st, OxpgParams *p, int i, PyObject *v)
{
    ArrayPlan a = {.st = st, .p = p, .i = i, .type = {.kind = K_NULL}};
    /* The shape comes from the first element at each level; scan() checks the rest. */
    for (PyObject *level = v; oxpg_params_is_sequence(level);) {
        if (a.ndim == MAXDIM)
            return oxpg_params_error(st, i, "lists nested more than 6 deep (PostgreSQL arrays have at most 6 dimensions)");
        Py_ssize_t n = PySequence_Fast_GET_SIZE(level);
        if (n > INT32_MAX)
            return oxpg_params_error(st, i, "list is too long for a PostgreSQL array");
        a.dims[a.ndim++] = n;
        if (n == 0)
            break;
        level = PySequence_Fast_GET_ITEM(level, 0);
    }
    if (scan(&a, v, NULL, 0) < 0)
        return -1;
    size_t start = p->arena.used;
    if (a.count == 0) {
        /* No elements (PostgreSQL has no empty dimensions): the empty array literal. */
        return oxpg_wbuf_bytes(&p->arena, "{}", 2) < 0 ? -1 : oxpg_params_finish_text(st, p, i, start);
    }
    Oid element = oxpg_params_type_oid(&a.type, 0);
    if (element == 0) {
        if (write_literal(&a, v, 0) < 0)
            return -1;
        return oxpg_params_finish_text(st, p, i, start);
    }
    if (oxpg_wbuf_u32(&p->arena, (uint32_t)a.ndim) < 0 || oxpg_wbuf_u32(&p->arena, (uint32_t)a.has_nulls) < 0 || oxpg_wbuf_u32(&p->arena, element) < 0)
        return -1;
    for (int d = 0; d < a.ndim; d++) {
        if (oxpg_wbuf_u32(&p->arena, (uint32_t)a.dims[d]) < 0 || oxpg_wbuf_u32(&p->arena, 1) < 0) /* length, lower bound 1 */
            return -1;
    }
    if (write_elements(&a, v, 0) < 0)
        return -1;
    return oxpg_params_finish(st, p, i, start, oxpg_params_type_oid(&a.type, 1), FORMAT_BINARY);
}

