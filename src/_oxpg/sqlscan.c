/* Placeholder scanning. The server ignores surplus parameters when the client declares
 * their types, so "SELECT $1" with two values would run silently: oxpg counts the
 * placeholders itself. Mirrors the lexical rules of PostgreSQL's scan.l for the
 * constructs that can hide a '$'. */
#include "oxpg/sqlscan.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

static int ident_start(unsigned char c)
{
    return isalpha(c) || c == '_' || c >= 0x80;
}

static int ident_char(unsigned char c)
{
    return isalnum(c) || c == '_' || c == '$' || c >= 0x80;
}

/* Past the block comment that starts at i; they nest in PostgreSQL. */
static size_t skip_block_comment(const char *s, size_t len, size_t i)
{
    int depth = 1;
    for (i += 2; i < len && depth > 0; i++) {
        if (s[i] == '/' && i + 1 < len && s[i + 1] == '*')
            depth++, i++;
        else if (s[i] == '*' && i + 1 < len && s[i + 1] == '/')
            depth--, i++;
    }
    return i;
}

/* Skip a quoted section ending in quote; a doubled quote is an escaped one. With
 * backslashes (E'' strings), a backslash escapes the next byte. */
static size_t skip_quoted(const char *s, size_t len, size_t i, char quote, int backslashes)
{
    for (i++; i < len; i++) {
        if (backslashes && s[i] == '\\') {
            i++;
        } else if (s[i] == quote) {
            if (i + 1 < len && s[i + 1] == quote)
                i++;
            else
                return i + 1;
        }
    }
    return len;
}

/* At s[i] == '$': a dollar-quote opener "$tag$" (tag may be empty) returns the index
 * after the matching closer; anything else returns i unchanged. */
static size_t skip_dollar_quote(const char *s, size_t len, size_t i)
{
    size_t j = i + 1;
    if (j < len && s[j] != '$') {
        if (!ident_start((unsigned char)s[j]))
            return i;
        while (j < len && ident_char((unsigned char)s[j]) && s[j] != '$')
            j++;
    }
    if (j >= len || s[j] != '$')
        return i;
    size_t tag_len = j - i + 1; /* includes both dollars */
    for (size_t k = j + 1; k + tag_len <= len; k++) {
        if (s[k] == '$' && memcmp(s + k, s + i, tag_len) == 0)
            return k + tag_len;
    }
    return len;
}

long oxpg_sql_max_placeholder(const char *s, size_t len, int backslash_quotes)
{
    long highest = 0;
    size_t i = 0;
    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\'') {
            /* E'...' strings take backslash escapes; the E was consumed as an identifier
             * character, so look back one byte. */
            int escaped = backslash_quotes || (i > 0 && (s[i - 1] == 'E' || s[i - 1] == 'e') &&
                                               (i < 2 || !ident_char((unsigned char)s[i - 2])));
            i = skip_quoted(s, len, i, '\'', escaped);
        } else if (c == '"') {
            i = skip_quoted(s, len, i, '"', 0);
        } else if (c == '-' && i + 1 < len && s[i + 1] == '-') {
            while (i < len && s[i] != '\n')
                i++;
        } else if (c == '/' && i + 1 < len && s[i + 1] == '*') {
            i = skip_block_comment(s, len, i);
        } else if (c == '$') {
            if (i + 1 < len && isdigit((unsigned char)s[i + 1])) {
                long n = 0;
                for (i++; i < len && isdigit((unsigned char)s[i]); i++)
                    n = n < 1000000 ? n * 10 + (s[i] - '0') : n;
                if (n > highest)
                    highest = n;
            } else {
                size_t after = skip_dollar_quote(s, len, i);
                i = after == i ? i + 1 : after;
            }
        } else if (ident_start(c)) {
            /* Identifiers may contain '$' (foo$1 is one name, not a placeholder). */
            while (i < len && ident_char((unsigned char)s[i]))
                i++;
        } else {
            i++;
        }
    }
    return highest;
}

/* Past whitespace and comments (block comments nest) from i. */
static size_t skip_blanks(const char *s, size_t len, size_t i)
{
    for (;;) {
        while (i < len && isspace((unsigned char)s[i]))
            i++;
        if (i + 1 < len && s[i] == '-' && s[i + 1] == '-') {
            while (i < len && s[i] != '\n')
                i++;
        } else if (i + 1 < len && s[i] == '/' && s[i + 1] == '*') {
            i = skip_block_comment(s, len, i);
        } else {
            return i;
        }
    }
}

int oxpg_sql_is_copy(const char *sql, size_t len)
{
    size_t i = skip_blanks(sql, len, 0);
    if (len - i < 4 || strncasecmp(sql + i, "copy", 4) != 0)
        return 0;
    return i + 4 == len || !ident_char((unsigned char)sql[i + 4]);
}
