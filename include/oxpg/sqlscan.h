/* Just enough SQL lexing to find $n placeholders outside literals and comments,
 * and to tell a COPY statement. */
#ifndef OXPG_SQLSCAN_H
#define OXPG_SQLSCAN_H

#include <stddef.h>

/* Highest $n placeholder in sql (0 when none). Strings, quoted identifiers, dollar
 * quotes and comments are skipped, so '$1' in a literal does not count.
 * backslash_quotes: standard_conforming_strings is off, so backslashes escape in
 * every '' string, not only in E'' strings. */
long oxpg_sql_max_placeholder(const char *sql, size_t len, int backslash_quotes);

/* Nonzero when the statement is a COPY (its first word, after whitespace and
 * comments: COPY cannot be nested in another statement). */
int oxpg_sql_is_copy(const char *sql, size_t len);

#endif
