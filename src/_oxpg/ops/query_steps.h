/* The query operation's steps shared by its two files: ops/query_op.c (round trips,
 * the statement cache's path, driving) and ops/query_result.c (catalog lookups, text
 * forms, decoding). Each step returns as oxpg_query_next_fn does. */
#ifndef OXPG_QUERY_STEPS_H
#define OXPG_QUERY_STEPS_H

#include "oxpg/query_op.h"

/* Send a PQsendQueryParams round trip whose results next reads. */
int oxpg_query_send_params(OxpgClient *self, OxpgQueryOp *q, const char *sql, int nparams, const Oid *types,
                           const char *const *values, const int *lengths, const int *formats, int result_format,
                           oxpg_query_next_fn next);
/* The round trip's outcome: its last result, or NULL with its error raised. */
PGresult *oxpg_query_take_result(OxpgClient *self, OxpgQueryOp *q);
/* Look up the types of res's columns this client does not know yet, then after
 * (with q->lookup_failed set when that failed). any_format: a Describe result. */
int oxpg_query_look_up_columns(OxpgClient *self, OxpgQueryOp *q, const PGresult *res, int any_format,
                               oxpg_query_next_fn after);
/* Look up every user-defined type the client does not know yet (once, until the
 * catalog knowledge is forgotten), then after. */
int oxpg_query_learn_user_types(OxpgClient *self, OxpgQueryOp *q, oxpg_query_next_fn after);
/* After the lookups of q->res's types: text forms, then the rows. */
int oxpg_query_types_looked_up(OxpgClient *self, OxpgQueryOp *q);
void oxpg_query_free_text_forms(OxpgQueryOp *q);

#endif
