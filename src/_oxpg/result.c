/* PGresult -> rows. Decoders and column names are resolved once per result shape;
 * each cell is decoded straight from libpq's buffer into its Python object. */
#include "oxpg/result.h"
#include "oxpg/compat.h"
#include "oxpg/errors.h"
#include "oxpg/pg_oids.h"

#include <stdlib.h>

void oxpg_columns_clear(OxpgColumns *cols)
{
    for (int c = 0; c < cols->count; c++)
        Py_XDECREF(cols->columns[c].name);
    PyMem_Free(cols->columns);
    cols->columns = NULL;
    cols->count = 0;
}

static int find_duplicates(OxpgColumns *cols)
{
    PyObject *seen = PySet_New(NULL);
    if (seen == NULL)
        return -1;
    for (int c = 0; c < cols->count && !cols->duplicate_names; c++) {
        int present = PySet_Contains(seen, cols->columns[c].name);
        if (present < 0 || (present == 0 && PySet_Add(seen, cols->columns[c].name) < 0)) {
            Py_DECREF(seen);
            return -1;
        }
        if (present)
            cols->duplicate_names = c + 1;
    }
    Py_DECREF(seen);
    return 0;
}

int oxpg_columns_init(OxpgColumns *cols, const PGresult *res, OxpgTypeCache *types)
{
    int n = PQnfields(res);
    cols->count = 0;
    cols->duplicate_names = 0;
    cols->needs_text = 0;
    cols->row_base = 0;
    cols->timezone = NULL;
    cols->types = types;
    cols->generation = types != NULL ? types->generation : 0;
    cols->columns = PyMem_Calloc(n > 0 ? (size_t)n : 1, sizeof(OxpgColumn));
    if (cols->columns == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (int c = 0; c < n; c++) {
        OxpgColumn *col = &cols->columns[c];
        col->type = PQftype(res, c);
        col->format = PQfformat(res, c);
        /* 1: a timestamptz; 2: an array of them (nested lists of datetimes). */
        col->in_timezone = col->format != 1                    ? 0
                           : col->type == OXPG_TIMESTAMPTZOID ? 1
                           : col->type == OXPG_TIMESTAMPTZARRAYOID ? 2
                                                                  : 0;
        const OxpgCodec *codec = oxpg_codec_lookup(col->type);
        col->type_name = codec != NULL ? codec->name : "text";
        if (col->format == 1) {
            col->via = oxpg_types_column(types, col->type, &col->decode);
            if (codec == NULL) {
                const OxpgTypeInfo *info = oxpg_types_find(types, col->type);
                if (info != NULL && info->name[0] != '\0') {
                    memcpy(col->own_type_name, info->name, sizeof(col->own_type_name));
                    col->type_name = col->own_type_name;
                } else
                    col->type_name = col->via == OXPG_VIA_TEXT ? "text" : "user type";
            }
            cols->needs_text |= col->via == OXPG_VIA_TEXT || col->via == OXPG_VIA_TEXT_USER;
        } else {
            col->via = OXPG_VIA_STATIC;
            /* A text-format result: typed where the text is unambiguous, else str. */
            oxpg_decode_fn text_decode = oxpg_text_decoder(col->type);
            col->decode = text_decode != NULL ? text_decode : oxpg_decode_text;
        }
        const char *name = PQfname(res, c);
        col->name = PyUnicode_DecodeUTF8(name, (Py_ssize_t)strlen(name), "replace");
        if (col->name == NULL) {
            oxpg_columns_clear(cols);
            return -1;
        }
        /* Interned: dict inserts then compare keys by identity. */
        PyUnicode_InternInPlace(&col->name);
        cols->count++;
    }
    if (n > 1 && find_duplicates(cols) < 0) {
        oxpg_columns_clear(cols);
        return -1;
    }
    return 0;
}

int oxpg_columns_match(const OxpgColumns *cols, const PGresult *res, const OxpgTypeCache *types)
{
    if (cols->columns == NULL || PQnfields(res) != cols->count || cols->types != types ||
        (types != NULL && cols->generation != types->generation))
        return 0;
    for (int c = 0; c < cols->count; c++) {
        if (PQftype(res, c) != cols->columns[c].type || PQfformat(res, c) != cols->columns[c].format)
            return 0;
    }
    return 1;
}

int oxpg_column_needs_text(const OxpgColumns *cols, int c)
{
    int via = cols->columns[c].via;
    return cols->columns[c].format == 1 && (via == OXPG_VIA_TEXT || via == OXPG_VIA_TEXT_USER);
}

static PyObject *text_form(OxpgState *st, const OxpgTextForms *text, long k)
{
    long chunk = k / OXPG_TEXT_CHUNK;
    int row = (int)(k % OXPG_TEXT_CHUNK);
    if (text == NULL || chunk >= text->count || row >= PQntuples(text->chunks[chunk])) {
        PyErr_SetString(st->InterfaceError, "internal error: missing text form of an undecoded value");
        return NULL;
    }
    const PGresult *r = text->chunks[chunk];
    return oxpg_decode_text(st, PQgetvalue(r, row, 0), PQgetlength(r, row, 0));
}

static OXPG_NOINLINE PyObject *name_decode_error(OxpgState *st, const OxpgColumn *col, long row_number)
{
    if (PyErr_ExceptionMatches(st->DataError)) {
        /* Taken while the prefix is built: the C API must not run with an exception
         * set (Python 3.12 may collect garbage in there, and report and drop it). */
        PyObject *cause = oxpg_err_take();
        PyObject *prefix = PyUnicode_FromFormat("column %R (%s), row %ld", col->name, col->type_name, row_number);
        if (prefix == NULL) {
            Py_XDECREF(cause); /* the prefix's own error (MemoryError) is the one set */
            return NULL;
        }
        oxpg_err_restore(cause);
        oxpg_reraise_as(st->DataError, PyUnicode_AsUTF8(prefix));
        Py_DECREF(prefix);
    }
    return NULL;
}

/* A UTC datetime shown in the session's zone: the same instant, in the zone the
 * user set. The infinities (datetime.max/min) cannot move and stay in UTC. */
static OXPG_NOINLINE PyObject *to_session_zone(PyObject *value, PyObject *timezone)
{
    int year = PyDateTime_GET_YEAR(value);
    int is_max = year == 9999 && PyDateTime_GET_MONTH(value) == 12 && PyDateTime_GET_DAY(value) == 31 &&
                 PyDateTime_DATE_GET_HOUR(value) == 23 && PyDateTime_DATE_GET_MINUTE(value) == 59 &&
                 PyDateTime_DATE_GET_SECOND(value) == 59 && PyDateTime_DATE_GET_MICROSECOND(value) == 999999;
    int is_min = year == 1 && PyDateTime_GET_MONTH(value) == 1 && PyDateTime_GET_DAY(value) == 1 &&
                 PyDateTime_DATE_GET_HOUR(value) == 0 && PyDateTime_DATE_GET_MINUTE(value) == 0 &&
                 PyDateTime_DATE_GET_SECOND(value) == 0 && PyDateTime_DATE_GET_MICROSECOND(value) == 0;
    if (is_max || is_min)
        return value; /* 'infinity' and '-infinity' */
    PyObject *moved = PyObject_CallMethod(value, "astimezone", "O", timezone);
    if (moved == NULL && PyErr_ExceptionMatches(PyExc_OverflowError)) {
        PyErr_Clear();
        return value;
    }
    Py_DECREF(value);
    return moved;
}

/* Every datetime in (nested) lists moved to the session's zone, in place. Takes
 * and returns the reference to list, or NULL on error. */
static OXPG_NOINLINE PyObject *list_to_session_zone(PyObject *list, PyObject *timezone)
{
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(list); i++) {
        PyObject *item = PyList_GET_ITEM(list, i);
        if (item == Py_None)
            continue;
        if (PyList_Check(item)) {
            Py_INCREF(item);
            PyObject *same = list_to_session_zone(item, timezone);
            if (same == NULL) {
                Py_DECREF(list);
                return NULL;
            }
            Py_DECREF(same);
            continue;
        }
        PyObject *moved = to_session_zone(Py_NewRef(item), timezone);
        if (moved == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SetItem(list, i, moved); /* steals moved, drops the old item */
    }
    return list;
}

static inline PyObject *decode_cell(OxpgState *st, const PGresult *res, const OxpgColumns *cols,
                                    const OxpgColumn *col, int r, int c, const OxpgTextForms *text,
                                    long *text_index)
{
    if (PQgetisnull(res, r, c))
        return Py_NewRef(Py_None);
    PyObject *value;
    if (OXPG_LIKELY(col->decode != NULL))
        value = col->decode(st, PQgetvalue(res, r, c), PQgetlength(res, r, c));
    else if (col->via == OXPG_VIA_TYPES)
        value = oxpg_types_decode(cols->types, st, col->type, PQgetvalue(res, r, c), PQgetlength(res, r, c));
    else if (col->via == OXPG_VIA_TEXT_USER)
        value = oxpg_types_decode_text_form(cols->types, st, col->type, text_form(st, text, (*text_index)++));
    else
        return text_form(st, text, (*text_index)++);
    if (OXPG_UNLIKELY(value == NULL))
        return name_decode_error(st, col, cols->row_base + r + 1);
    if (col->in_timezone && cols->timezone != NULL)
        return col->in_timezone == 1 ? to_session_zone(value, cols->timezone)
                                     : list_to_session_zone(value, cols->timezone);
    return value;
}

static PyObject *new_dict(int size)
{
#if PY_VERSION_HEX < 0x030D0000
    /* Sized once: no resize while the row's columns go in. */
    return _PyDict_NewPresized(size);
#else
    (void)size;
    return PyDict_New();
#endif
}

/* CPython's own rule for untracking a tuple or a dict (_PyTuple_MaybeUntrack): an
 * item can be part of a reference cycle unless its type is no container, or it is
 * an exact tuple that is untracked itself. Beside tuples, oxpg trusts one more
 * type that nothing tracks again once untracked: the Decimals numeric.c untracks.
 * An untracked dict (a json object of plain values) does not count: CPython tracks
 * it again as soon as a container goes in, so the row would hide that container. */
static inline int may_be_in_cycle(const OxpgState *st, PyObject *value)
{
    PyTypeObject *type = Py_TYPE(value);
    if (!PyType_IS_GC(type))
        return 0;
    if (type == &PyTuple_Type || type == (PyTypeObject *)st->decimal_type)
        return PyObject_GC_IsTracked(value);
    return 1;
}

/* Decodes row r into row, a new dict or a new tuple of cols->count NULLs. */
static int fill_row(OxpgState *st, const PGresult *res, const OxpgColumns *cols, const OxpgTextForms *text,
                    long *text_index, int r, int as_dicts, PyObject *row)
{
    int cycle_possible = 0;
    for (int c = 0; c < cols->count; c++) {
        const OxpgColumn *col = &cols->columns[c];
        PyObject *value = decode_cell(st, res, cols, col, r, c, text, text_index);
        if (value == NULL)
            return -1;
        cycle_possible |= may_be_in_cycle(st, value);
        if (as_dicts) {
            int rc = PyDict_SetItem(row, col->name, value);
            Py_DECREF(value);
            if (rc < 0)
                return -1;
        } else {
            PyTuple_SET_ITEM(row, c, value); /* steals value */
        }
    }
    /* A row of plain values is out of the collector's sight from the start, as a
     * collection would leave it anyway (a tuple at the first, a dict at a full one):
     * collections during and after a large fetch then have no rows to walk. A dict
     * is tracked again by CPython as soon as a container goes into it. */
    if (!cycle_possible)
        PyObject_GC_UnTrack(row); /* a no-op when it is not tracked */
    return 0;
}

/* The index of the text form of row r + 1's first one: text forms go row-major over
 * the non-NULL cells of the columns that need them. */
static long text_index_after(const PGresult *res, const OxpgColumns *cols, int r, long row_start)
{
    for (int c = 0; c < cols->count; c++)
        row_start += oxpg_column_needs_text(cols, c) && !PQgetisnull(res, r, c);
    return row_start;
}

/* keep_errors: row r's DataError in place of the row, or -1 for any other error. */
static int keep_row_error(OxpgState *st, PyObject *rows, int r)
{
    if (!PyErr_ExceptionMatches(st->DataError))
        return -1;
    PyList_SetItem(rows, r, oxpg_err_take()); /* steals the exception, drops the row */
    return 0;
}

PyObject *oxpg_result_rows(OxpgState *st, const PGresult *res, const OxpgColumns *cols, const OxpgTextForms *text,
                           int as_dicts, int keep_errors)
{
    if (as_dicts && cols->duplicate_names) {
        PyErr_Format(st->ProgrammingError,
                     "the result has two columns named %R, and a dict row cannot hold both; "
                     "give them distinct names with AS, or use query_tuples()",
                     cols->columns[cols->duplicate_names - 1].name);
        return NULL;
    }
    int nrows = PQntuples(res);
    int ncols = cols->count;
    long text_index = 0;
    PyObject *rows = PyList_New(nrows);
    if (rows == NULL)
        return NULL;
    /* Out of the collector's sight while it fills: collections during the fill would
     * walk it, touching every row so far. Nothing else can reach it, so it can be in
     * no cycle yet; it is tracked again before anyone else sees it. */
    PyObject_GC_UnTrack(rows);
    for (int r = 0; r < nrows; r++) {
        PyObject *row = as_dicts ? new_dict(ncols) : PyTuple_New(ncols);
        if (row == NULL)
            goto fail;
        PyList_SET_ITEM(rows, r, row); /* rows owns it from here */
        long row_start = text_index;
        if (fill_row(st, res, cols, text, &text_index, r, as_dicts, row) < 0) {
            if (!keep_errors || keep_row_error(st, rows, r) < 0)
                goto fail;
            /* The rest of the row's cells were not read: skip their text forms. */
            text_index = text_index_after(res, cols, r, row_start);
        }
    }
    PyObject_GC_Track(rows);
    return rows;
fail:
    Py_DECREF(rows);
    return NULL;
}

PyObject *oxpg_result_row(OxpgState *st, const PGresult *res, const OxpgColumns *cols, int r, int as_dicts)
{
    if (as_dicts && cols->duplicate_names) {
        PyErr_Format(st->ProgrammingError,
                     "the result has two columns named %R, and a dict row cannot hold both; "
                     "give them distinct names with AS, or use tuples",
                     cols->columns[cols->duplicate_names - 1].name);
        return NULL;
    }
    long text_index = 0;
    PyObject *row = as_dicts ? new_dict(cols->count) : PyTuple_New(cols->count);
    if (row == NULL)
        return NULL;
    if (fill_row(st, res, cols, NULL, &text_index, r, as_dicts, row) < 0) {
        Py_DECREF(row);
        return NULL;
    }
    return row;
}

PyObject *oxpg_result_rowcount(const PGresult *res)
{
    const char *count = PQcmdTuples((PGresult *)res);
    if (count == NULL || *count == '\0')
        return PyLong_FromLong(0);
    return PyLong_FromUnsignedLongLong(strtoull(count, NULL, 10));
}

/* Types whose text form decodes to exactly what their binary form does. */
static int text_is_exact(Oid oid)
{
    switch (oid) {
    case OXPG_TEXTOID:
    case OXPG_VARCHAROID:
    case OXPG_BPCHAROID:
    case OXPG_NAMEOID:
    case OXPG_UNKNOWNOID:
    case OXPG_BOOLOID:
    case OXPG_INT2OID:
    case OXPG_INT4OID:
    case OXPG_INT8OID:
    case OXPG_OIDOID:
    case OXPG_NUMERICOID:
    case OXPG_UUIDOID:
    case OXPG_JSONOID:
    case OXPG_JSONBOID:
        return 1;
    default:
        return 0;
    }
}

/* A text-format result's columns, checked against what query() returns: the
 * columns query() reads as text forms (str) are the server's output text here too;
 * every other column must decode from text to the value its binary form gives, or
 * the stream refuses it rather than return something query() would not. */
int oxpg_columns_check_text_forms(OxpgState *st, const OxpgTypeCache *types, const OxpgColumns *cols,
                                   const char *who)
{
    for (int c = 0; c < cols->count; c++) {
        const OxpgColumn *col = &cols->columns[c];
        oxpg_decode_fn fast = NULL;
        OxpgVia via = oxpg_types_column(types, col->type, &fast);
        if (via == OXPG_VIA_TEXT || (via == OXPG_VIA_STATIC && text_is_exact(col->type)))
            continue;
        PyErr_Format(st->DataError,
                     "%s: column %R (OID %u) cannot be read in the text form the statement is read in (another "
                     "column's type has no binary decoder in oxpg); cast one of them to text in SQL",
                     who, col->name, (unsigned)col->type);
        return -1;
    }
    return 0;
}

