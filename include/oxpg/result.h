/* PGresult -> Python rows, one decoder per column resolved once per result. */
#ifndef OXPG_RESULT_H
#define OXPG_RESULT_H

#include "oxpg/module.h"

/* Values of columns that have no binary decoder, as text, fetched from the server
 * (row-major order over the non-NULL cells of those columns), split in chunks of
 * OXPG_TEXT_CHUNK rows. */
#define OXPG_TEXT_CHUNK 32767

typedef struct {
    PGresult **chunks;
    int count;
} OxpgTextForms;

/* Nonzero when some column of res has no binary decoder. */
int oxpg_result_needs_text(const PGresult *res);

/* list[dict] (column order kept) or list[tuple]; text may be NULL when no column needs it. */
PyObject *oxpg_result_rows(OxpgState *st, const PGresult *res, const OxpgTextForms *text, int as_dicts);

/* Affected row count of a command result (0 when the command reports none). */
PyObject *oxpg_result_rowcount(const PGresult *res);

#endif
