/* Python objects -> libpq parameter arrays, binary wherever the type pins the OID. */
#ifndef OXPG_PARAMS_H
#define OXPG_PARAMS_H

#include "oxpg/module.h"
#include "oxpg/wbuf.h"

#define OXPG_SMALL_PARAMS 16
#define OXPG_ARENA_INLINE 512
#define OXPG_MAX_PARAMS 65535

typedef struct {
    int count;
    Oid *types;
    const char **values;
    int *lengths;
    int *formats;
    size_t *offsets; /* arena offset per value, SIZE_MAX when values[i] points elsewhere */
    /* Small calls need no allocation: arrays and arena start inline. */
    Oid types_inline[OXPG_SMALL_PARAMS];
    const char *values_inline[OXPG_SMALL_PARAMS];
    int lengths_inline[OXPG_SMALL_PARAMS];
    int formats_inline[OXPG_SMALL_PARAMS];
    size_t offsets_inline[OXPG_SMALL_PARAMS];
    OxpgWriteBuffer arena; /* the binary values, back to back */
    char arena_inline[OXPG_ARENA_INLINE];
} OxpgParams;

/* Encode args into p. On failure an exception naming the parameter is set, -1 is
 * returned and p is already freed. Objects referenced by p (str, bytes) must stay
 * alive until oxpg_params_free: the caller's argument vector guarantees that.
 * encoders: the client's registered encoders ({type: (oid, callable, binary)}, see
 * oxpg.types), consulted for values the fast path does not take; may be NULL. */
int oxpg_params_encode(OxpgState *st, OxpgParams *p, PyObject *const *args, Py_ssize_t n, PyObject *encoders);
void oxpg_params_free(OxpgParams *p);

#endif
