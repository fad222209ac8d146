/* PGresult -> rows. Decoders and column names are resolved once per result; each
 * cell is decoded straight from libpq's buffer. */
#include "oxpg/result.h"
#include "oxpg/codecs.h"
#include "oxpg/errors.h"

#include <stdlib.h>

typedef struct {
    oxpg_decode_fn decode; /* NULL: value comes from the text forms */
    const char *type_name;
    PyObject *name;
} Column;

int oxpg_result_needs_text(const PGresult *res)
{
    int n = PQnfields(res);
    for (int c = 0; c < n; c++) {
        if (PQfformat(res, c) == 1 && oxpg_codec_lookup(PQftype(res, c)) == NULL)
            return 1;
    }
    return 0;
}

static void free_columns(Column *cols, int n)
{
    for (int c = 0; c < n; c++)
        Py_XDECREF(cols[c].name);
    PyMem_Free(cols);
}

static PyObject *decode_name(const char *name)
{
    return PyUnicode_DecodeUTF8(name, (Py_ssize_t)strlen(name), "replace");
}

/* Dict rows would keep only one of two equal keys: refuse instead of losing a value. */
static int check_unique_names(OxpgState *st, Column *cols, int n)
{
    PyObject *seen = PySet_New(NULL);
    if (seen == NULL)
        return -1;
    int rc = 0;
    for (int c = 0; c < n && rc == 0; c++) {
        int present = PySet_Contains(seen, cols[c].name);
        if (present < 0 || (present == 0 && PySet_Add(seen, cols[c].name) < 0)) {
            rc = -1;
        } else if (present) {
            PyErr_Format(st->ProgrammingError,
                         "the result has two columns named %R, and a dict row cannot hold both; "
                         "give them distinct names with AS, or use query_tuples()",
                         cols[c].name);
            rc = -1;
        }
    }
    Py_DECREF(seen);
    return rc;
}

static Column *prepare_columns(OxpgState *st, const PGresult *res, int n, int as_dicts)
{
    Column *cols = PyMem_Calloc(n > 0 ? (size_t)n : 1, sizeof(Column));
    if (cols == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    for (int c = 0; c < n; c++) {
        const OxpgCodec *codec = oxpg_codec_lookup(PQftype(res, c));
        cols[c].type_name = codec != NULL ? codec->name : "text";
        if (PQfformat(res, c) == 1) {
            cols[c].decode = codec != NULL ? codec->decode_binary : NULL;
        } else {
            /* A text-format result: typed where the text is unambiguous, else str. */
            oxpg_decode_fn text_decode = oxpg_text_decoder(PQftype(res, c));
            cols[c].decode = text_decode != NULL ? text_decode : oxpg_decode_text;
        }
        if ((cols[c].name = decode_name(PQfname(res, c))) == NULL) {
            free_columns(cols, n);
            return NULL;
        }
    }
    if (as_dicts && n > 1 && check_unique_names(st, cols, n) < 0) {
        free_columns(cols, n);
        return NULL;
    }
    return cols;
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

static PyObject *decode_cell(OxpgState *st, const PGresult *res, const Column *col, int r, int c,
                             const OxpgTextForms *text, long *text_index)
{
    if (PQgetisnull(res, r, c))
        return Py_NewRef(Py_None);
    if (col->decode == NULL)
        return text_form(st, text, (*text_index)++);
    PyObject *value = col->decode(st, PQgetvalue(res, r, c), PQgetlength(res, r, c));
    if (OXPG_UNLIKELY(value == NULL) && PyErr_ExceptionMatches(st->DataError)) {
        PyObject *prefix = PyUnicode_FromFormat("column %R (%s), row %d", col->name, col->type_name, r + 1);
        if (prefix != NULL) {
            oxpg_reraise_as(st->DataError, PyUnicode_AsUTF8(prefix));
            Py_DECREF(prefix);
        }
    }
    return value;
}

PyObject *oxpg_result_rows(OxpgState *st, const PGresult *res, const OxpgTextForms *text, int as_dicts)
{
    int nrows = PQntuples(res);
    int ncols = PQnfields(res);
    long text_index = 0;
    PyObject *rows = PyList_New(nrows);
    if (rows == NULL)
        return NULL;
    Column *cols = prepare_columns(st, res, ncols, as_dicts);
    if (cols == NULL)
        goto fail;
    for (int r = 0; r < nrows; r++) {
        PyObject *row = as_dicts ? PyDict_New() : PyTuple_New(ncols);
        if (row == NULL)
            goto fail;
        PyList_SET_ITEM(rows, r, row); /* rows owns it from here */
        for (int c = 0; c < ncols; c++) {
            PyObject *value = decode_cell(st, res, &cols[c], r, c, text, &text_index);
            if (value == NULL)
                goto fail;
            if (as_dicts) {
                int rc = PyDict_SetItem(row, cols[c].name, value);
                Py_DECREF(value);
                if (rc < 0)
                    goto fail;
            } else {
                PyTuple_SET_ITEM(row, c, value); /* steals value */
            }
        }
    }
    free_columns(cols, ncols);
    return rows;
fail:
    if (cols != NULL)
        free_columns(cols, ncols);
    Py_DECREF(rows);
    return NULL;
}

PyObject *oxpg_result_rowcount(const PGresult *res)
{
    const char *count = PQcmdTuples((PGresult *)res);
    if (count == NULL || *count == '\0')
        return PyLong_FromLong(0);
    return PyLong_FromUnsignedLongLong(strtoull(count, NULL, 10));
}
