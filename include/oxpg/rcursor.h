/* A bounds-checked read cursor over one binary value: every read says whether the
 * bytes were there, so a decoder of a variable-length wire form (arrays, records,
 * ranges, hstore; binary COPY rows next) cannot read past its value, however the
 * lengths inside it lie. */
#ifndef OXPG_RCURSOR_H
#define OXPG_RCURSOR_H

#include "oxpg/common.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *p;
    const char *end;
} OxpgReadCursor;

static inline OxpgReadCursor oxpg_rc(const char *data, int len)
{
    OxpgReadCursor c = {data, data + (len > 0 ? len : 0)};
    return c;
}

static inline ptrdiff_t oxpg_rc_left(const OxpgReadCursor *c)
{
    return c->end - c->p;
}

/* 1 when every byte was read. */
static inline int oxpg_rc_done(const OxpgReadCursor *c)
{
    return c->p == c->end;
}

/* A big-endian 32-bit integer: 0, or -1 when fewer than 4 bytes are left. */
static inline int oxpg_rc_i32(OxpgReadCursor *c, int32_t *out)
{
    if (c->end - c->p < 4)
        return -1;
    *out = (int32_t)oxpg_load_u32(c->p);
    c->p += 4;
    return 0;
}

static inline int oxpg_rc_u32(OxpgReadCursor *c, uint32_t *out)
{
    if (c->end - c->p < 4)
        return -1;
    *out = oxpg_load_u32(c->p);
    c->p += 4;
    return 0;
}

static inline int oxpg_rc_u8(OxpgReadCursor *c, uint8_t *out)
{
    if (c->end - c->p < 1)
        return -1;
    *out = (uint8_t)*c->p++;
    return 0;
}

/* n bytes (n >= 0): *out points at them. 0, or -1 when fewer are left. */
static inline int oxpg_rc_bytes(OxpgReadCursor *c, int32_t n, const char **out)
{
    if (n < 0 || n > c->end - c->p)
        return -1;
    *out = c->p;
    c->p += n;
    return 0;
}

/* A length-prefixed value, as arrays, records and ranges carry them: int32 length
 * (-1: NULL, *data set to NULL) then that many bytes. 0, or -1 when malformed. */
static inline int oxpg_rc_value(OxpgReadCursor *c, const char **data, int32_t *len)
{
    if (oxpg_rc_i32(c, len) < 0)
        return -1;
    if (*len == -1) {
        *data = NULL;
        return 0;
    }
    return oxpg_rc_bytes(c, *len, data);
}

#endif
