/* A growable byte buffer that encoders append binary values to: query parameters
 * (params.c) now, binary COPY rows next. It starts in caller-provided inline storage
 * and moves to the heap when that is full, so small writes allocate nothing. Data is
 * addressed by offset while writing: a pointer is valid only until the next write. */
#ifndef OXPG_WBUF_H
#define OXPG_WBUF_H

#include "oxpg/module.h"

#include <stdint.h>
#include <string.h>

typedef struct {
    char *data;
    size_t used;
    size_t cap;
    char *inline_storage; /* data starts here; never freed */
    size_t inline_cap;
} OxpgWriteBuffer;

void oxpg_wbuf_init(OxpgWriteBuffer *w, char *inline_storage, size_t inline_cap);
/* Back to empty in the inline storage, the heap part freed. */
void oxpg_wbuf_free(OxpgWriteBuffer *w);
/* Room for size more bytes, appended: a pointer to them, NULL with MemoryError. */
char *oxpg_wbuf_grow(OxpgWriteBuffer *w, size_t size);

static inline char *oxpg_wbuf_put(OxpgWriteBuffer *w, size_t size)
{
    if (OXPG_LIKELY(w->cap - w->used >= size)) {
        char *at = w->data + w->used;
        w->used += size;
        return at;
    }
    return oxpg_wbuf_grow(w, size);
}

/* Big-endian (network order) integers and raw bytes; 0, or -1 with MemoryError. */
static inline int oxpg_wbuf_u8(OxpgWriteBuffer *w, uint8_t x)
{
    char *at = oxpg_wbuf_put(w, 1);
    if (at == NULL)
        return -1;
    *at = (char)x;
    return 0;
}

static inline int oxpg_wbuf_u16(OxpgWriteBuffer *w, uint16_t x)
{
    char *at = oxpg_wbuf_put(w, 2);
    if (at == NULL)
        return -1;
    at[0] = (char)(x >> 8);
    at[1] = (char)x;
    return 0;
}

static inline int oxpg_wbuf_u32(OxpgWriteBuffer *w, uint32_t x)
{
    char *at = oxpg_wbuf_put(w, 4);
    if (at == NULL)
        return -1;
    oxpg_store_u32(at, x);
    return 0;
}

static inline int oxpg_wbuf_u64(OxpgWriteBuffer *w, uint64_t x)
{
    char *at = oxpg_wbuf_put(w, 8);
    if (at == NULL)
        return -1;
    oxpg_store_u64(at, x);
    return 0;
}

static inline int oxpg_wbuf_bytes(OxpgWriteBuffer *w, const char *data, size_t size)
{
    char *at = oxpg_wbuf_put(w, size);
    if (at == NULL)
        return -1;
    if (size > 0)
        memcpy(at, data, size);
    return 0;
}

#endif
