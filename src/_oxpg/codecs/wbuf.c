/* The encoders' write buffer (include/oxpg/wbuf.h). */
#include "oxpg/wbuf.h"

void oxpg_wbuf_init(OxpgWriteBuffer *w, char *inline_storage, size_t inline_cap)
{
    w->data = w->inline_storage = inline_storage;
    w->used = 0;
    w->cap = w->inline_cap = inline_cap;
}

void oxpg_wbuf_free(OxpgWriteBuffer *w)
{
    if (w->data != w->inline_storage)
        PyMem_Free(w->data);
    w->data = w->inline_storage;
    w->used = 0;
    w->cap = w->inline_cap;
}

char *oxpg_wbuf_grow(OxpgWriteBuffer *w, size_t size)
{
    if (w->cap - w->used < size) {
        if (size > PY_SSIZE_T_MAX - w->used) {
            PyErr_NoMemory();
            return NULL;
        }
        size_t cap = w->cap > 0 ? w->cap : 64;
        while (cap - w->used < size)
            cap = cap > PY_SSIZE_T_MAX / 2 ? w->used + size : cap * 2;
        char *grown = PyMem_Malloc(cap);
        if (grown == NULL) {
            PyErr_NoMemory();
            return NULL;
        }
        if (w->used > 0)
            memcpy(grown, w->data, w->used);
        if (w->data != w->inline_storage)
            PyMem_Free(w->data);
        w->data = grown;
        w->cap = cap;
    }
    char *at = w->data + w->used;
    w->used += size;
    return at;
}
