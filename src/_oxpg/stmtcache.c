/* The statement cache. A dict finds the SQL text (str hashes are cached, so a
 * statement string reused by the caller costs one lookup); a short chain separates
 * parameter-type variants, so a value that outgrows int4 never runs on a statement
 * prepared for int4. The LRU list is intrusive: no allocation on a hit. */
#include "oxpg/stmtcache.h"

#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>
#ifdef __APPLE__
#include <sys/random.h> /* getentropy */
#endif

#define CAPSULE_NAME "oxpg.statement"

/* 64 random bits as 16 hex digits. A pid, a counter or an address repeats across
 * hosts and containers (every container's first process is pid 1), and a
 * process-wide generator repeats in a forked child: the bits come from the kernel,
 * per cache. */
static void make_token(OxpgStatementCache *cache)
{
    uint64_t bits;
    if (getentropy(&bits, sizeof(bits)) != 0) {
        /* No entropy call (a very old kernel): mix what differs between clients. */
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        bits = (uint64_t)now.tv_nsec ^ ((uint64_t)now.tv_sec << 30) ^ ((uint64_t)getpid() << 44) ^
               (uint64_t)(uintptr_t)cache;
        /* splitmix64's finalizer spreads those bits over all 64. */
        bits = (bits ^ (bits >> 30)) * 0xbf58476d1ce4e5b9u;
        bits = (bits ^ (bits >> 27)) * 0x94d049bb133111ebu;
        bits ^= bits >> 31;
    }
    snprintf(cache->token, sizeof(cache->token), "%016llx", (unsigned long long)bits);
}

int oxpg_cache_init(OxpgStatementCache *cache, int capacity, int threshold)
{
    memset(cache, 0, sizeof(*cache));
    make_token(cache);
    cache->capacity = capacity;
    /* With preparing off, entries still remember how each statement's results come
     * (see OxpgStatement.described), so it is described once, not on every run. */
    cache->kept = capacity > 0 ? capacity : OXPG_UNPREPARED_KEPT;
    cache->threshold = threshold < 1 ? 1 : threshold;
    if ((cache->index = PyDict_New()) == NULL)
        return -1;
    return 0;
}

static void unlink_lru(OxpgStatementCache *cache, OxpgStatement *stmt)
{
    if (stmt->newer != NULL)
        stmt->newer->older = stmt->older;
    else
        cache->newest = stmt->older;
    if (stmt->older != NULL)
        stmt->older->newer = stmt->newer;
    else
        cache->oldest = stmt->newer;
    stmt->newer = stmt->older = NULL;
}

static void push_newest(OxpgStatementCache *cache, OxpgStatement *stmt)
{
    stmt->older = cache->newest;
    stmt->newer = NULL;
    if (cache->newest != NULL)
        cache->newest->newer = stmt;
    cache->newest = stmt;
    if (cache->oldest == NULL)
        cache->oldest = stmt;
}

static void free_statement(OxpgStatement *stmt)
{
    oxpg_columns_clear(&stmt->columns);
    Py_XDECREF(stmt->sql);
    PyMem_Free(stmt->param_types);
    PyMem_Free(stmt);
}

static int queue_close(OxpgStatementCache *cache, const char *name)
{
    if (cache->n_to_close == cache->cap_to_close) {
        int cap = cache->cap_to_close ? cache->cap_to_close * 2 : 8;
        void *grown = PyMem_Realloc(cache->to_close, (size_t)cap * sizeof(*cache->to_close));
        if (grown == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        cache->to_close = grown;
        cache->cap_to_close = cap;
    }
    memcpy(cache->to_close[cache->n_to_close++], name, sizeof(cache->to_close[0]));
    return 0;
}

/* Unchain stmt from its SQL's variants, updating or removing the index entry. */
static int unindex(OxpgStatementCache *cache, OxpgStatement *stmt)
{
    PyObject *capsule = PyDict_GetItemWithError(cache->index, stmt->sql);
    if (capsule == NULL)
        return PyErr_Occurred() ? -1 : 0;
    OxpgStatement *head = PyCapsule_GetPointer(capsule, CAPSULE_NAME);
    if (head == stmt) {
        if (stmt->next_variant == NULL)
            return PyDict_DelItem(cache->index, stmt->sql);
        return PyCapsule_SetPointer(capsule, stmt->next_variant);
    }
    for (OxpgStatement *v = head; v != NULL; v = v->next_variant) {
        if (v->next_variant == stmt) {
            v->next_variant = stmt->next_variant;
            break;
        }
    }
    return 0;
}

int oxpg_cache_forget(OxpgStatementCache *cache, OxpgStatement *stmt)
{
    int rc = unindex(cache, stmt);
    unlink_lru(cache, stmt);
    cache->size--;
    if (rc == 0 && stmt->name[0] != '\0')
        rc = queue_close(cache, stmt->name);
    free_statement(stmt);
    return rc;
}

int oxpg_cache_reset(OxpgStatementCache *cache, int server_has_them)
{
    int rc = 0;
    while (cache->oldest != NULL) {
        OxpgStatement *stmt = cache->oldest;
        unlink_lru(cache, stmt);
        if (server_has_them && stmt->name[0] != '\0' && queue_close(cache, stmt->name) < 0)
            rc = -1;
        free_statement(stmt);
    }
    cache->size = 0;
    if (!server_has_them)
        cache->n_to_close = 0;
    if (cache->index != NULL)
        PyDict_Clear(cache->index);
    return rc;
}

void oxpg_cache_free(OxpgStatementCache *cache)
{
    oxpg_cache_reset(cache, 0);
    Py_CLEAR(cache->index);
    PyMem_Free(cache->to_close);
    cache->to_close = NULL;
    cache->n_to_close = cache->cap_to_close = 0;
}

void oxpg_cache_name(OxpgStatementCache *cache, OxpgStatement *stmt)
{
    snprintf(stmt->name, sizeof(stmt->name), "_oxpg_%s_%lu", cache->token, ++cache->next_name);
}

static int same_types(const OxpgStatement *stmt, int nparams, const Oid *types)
{
    return stmt->nparams == nparams && (nparams == 0 || memcmp(stmt->param_types, types, sizeof(Oid) * nparams) == 0);
}

static OxpgStatement *new_statement(PyObject *sql, int nparams, const Oid *types)
{
    OxpgStatement *stmt = PyMem_Calloc(1, sizeof(OxpgStatement));
    if (stmt == NULL)
        return (OxpgStatement *)PyErr_NoMemory();
    stmt->param_types = PyMem_Malloc(nparams > 0 ? sizeof(Oid) * (size_t)nparams : 1);
    if (stmt->param_types == NULL) {
        PyMem_Free(stmt);
        return (OxpgStatement *)PyErr_NoMemory();
    }
    if (nparams > 0)
        memcpy(stmt->param_types, types, sizeof(Oid) * (size_t)nparams);
    stmt->nparams = nparams;
    stmt->sql = Py_NewRef(sql);
    return stmt;
}

OxpgStatement *oxpg_cache_get(OxpgStatementCache *cache, PyObject *sql, int nparams, const Oid *types)
{
    PyObject *capsule = PyDict_GetItemWithError(cache->index, sql);
    if (capsule == NULL && PyErr_Occurred())
        return NULL;
    OxpgStatement *head = capsule != NULL ? PyCapsule_GetPointer(capsule, CAPSULE_NAME) : NULL;
    for (OxpgStatement *v = head; v != NULL; v = v->next_variant) {
        if (same_types(v, nparams, types)) {
            unlink_lru(cache, v);
            push_newest(cache, v);
            v->uses++;
            cache->hits += cache->capacity > 0; /* counters of preparing, none when it is off */
            return v;
        }
    }
    cache->misses += cache->capacity > 0;
    OxpgStatement *stmt = new_statement(sql, nparams, types);
    if (stmt == NULL)
        return NULL;
    if (head != NULL) {
        stmt->next_variant = head->next_variant;
        head->next_variant = stmt;
    } else {
        PyObject *fresh = PyCapsule_New(stmt, CAPSULE_NAME, NULL);
        if (fresh == NULL || PyDict_SetItem(cache->index, sql, fresh) < 0) {
            Py_XDECREF(fresh);
            free_statement(stmt);
            return NULL;
        }
        Py_DECREF(fresh);
    }
    push_newest(cache, stmt);
    cache->size++;
    stmt->uses = 1;
    return stmt;
}

PyObject *oxpg_cache_info(const OxpgStatementCache *cache)
{
    return Py_BuildValue("{s:i,s:i,s:i,s:k,s:k,s:k,s:k}", "size", cache->size, "capacity", cache->capacity,
                         "prepare_threshold", cache->threshold, "hits", cache->hits, "misses", cache->misses,
                         "prepared", cache->prepared, "evictions", cache->evictions);
}

int oxpg_cache_trim(OxpgStatementCache *cache)
{
    while (cache->size > cache->kept && cache->oldest != NULL) {
        cache->evictions++;
        if (oxpg_cache_forget(cache, cache->oldest) < 0)
            return -1;
    }
    return 0;
}
