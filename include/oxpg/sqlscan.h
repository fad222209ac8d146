/* Just enough SQL lexing to find $n placeholders outside literals and comments. */
#ifndef OXPG_SQLSCAN_H
#define OXPG_SQLSCAN_H

#include <stddef.h>

/* Highest $n placeholder in sql (0 when none). Strings, quoted identifiers, dollar
 * quotes and comments are skipped, so '$1' in a literal does not count. */
long oxpg_sql_max_placeholder(const char *sql, size_t len);

#endif
