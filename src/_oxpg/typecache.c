/* Per-client type knowledge: the catalog's answers about types the static codec
 * table does not hold, the decoders and encoders registered through oxpg.types, and
 * the decoding of values of those types (nested ones included). Policy (what to
 * register, text or binary) lives in src/oxpg/types.py. */
#include "oxpg/typecache.h"
#include "oxpg/pg_oids.h"
#include "oxpg/errors.h"

#include <stdlib.h>

/* ---- the OID hash ----------------------------------------------------------- */

static size_t slot_of(Oid oid, int cap)
{
    return (size_t)((oid * 2654435761u) & (unsigned)(cap - 1));
}

const OxpgTypeInfo *oxpg_types_find(const OxpgTypeCache *tc, Oid oid)
{
    if (tc == NULL || tc->count == 0 || oid == 0)
        return NULL;
    for (size_t i = slot_of(oid, tc->cap);; i = (i + 1) & (size_t)(tc->cap - 1)) {
        const OxpgTypeInfo *e = &tc->slots[i];
        if (e->oid == oid)
            return e;
        if (e->oid == 0)
            return NULL;
    }
}

/* The entry for oid, created empty when absent. Entries move when the table grows:
 * never keep the pointer across another insert. */
static OxpgTypeInfo *insert(OxpgTypeCache *tc, Oid oid)
{
    OxpgTypeInfo *found = (OxpgTypeInfo *)oxpg_types_find(tc, oid);
    if (found != NULL)
        return found;
    if ((tc->count + 1) * 2 > tc->cap) {
        int cap = tc->cap > 0 ? tc->cap * 2 : 64;
        OxpgTypeInfo *slots = PyMem_Calloc((size_t)cap, sizeof(OxpgTypeInfo));
        if (slots == NULL) {
            PyErr_NoMemory();
            return NULL;
        }
        for (int k = 0; k < tc->cap; k++) {
            if (tc->slots[k].oid == 0)
                continue;
            size_t i = slot_of(tc->slots[k].oid, cap);
            while (slots[i].oid != 0)
                i = (i + 1) & (size_t)(cap - 1);
            slots[i] = tc->slots[k]; /* ownership of user and fields moves */
        }
        PyMem_Free(tc->slots);
        tc->slots = slots;
        tc->cap = cap;
    }
    size_t i = slot_of(oid, tc->cap);
    while (tc->slots[i].oid != 0)
        i = (i + 1) & (size_t)(tc->cap - 1);
    OxpgTypeInfo *e = &tc->slots[i];
    memset(e, 0, sizeof(*e));
    e->oid = oid;
    tc->count++;
    return e;
}

static void forget_answer(OxpgTypeInfo *e)
{
    e->known = 0;
    e->no_send = 0;
    e->no_receive = 0;
    e->kind = OXPG_TYPE_OTHER;
    e->sub = 0;
    e->name[0] = '\0';
    PyMem_Free(e->fields);
    e->fields = NULL;
    e->nfields = 0;
}

void oxpg_types_free(OxpgTypeCache *tc)
{
    for (int k = 0; k < tc->cap; k++) {
        Py_CLEAR(tc->slots[k].user);
        PyMem_Free(tc->slots[k].fields);
    }
    PyMem_Free(tc->slots);
    tc->slots = NULL;
    tc->cap = tc->count = tc->n_user = 0;
    tc->generation++;
    Py_CLEAR(tc->encoders);
}

void oxpg_types_forget_catalog(OxpgTypeCache *tc)
{
    for (int k = 0; k < tc->cap; k++) {
        if (tc->slots[k].oid != 0)
            forget_answer(&tc->slots[k]);
    }
    tc->user_types_known = 0;
    tc->generation++;
}

int oxpg_types_traverse(OxpgTypeCache *tc, visitproc visit, void *arg)
{
    for (int k = 0; k < tc->cap; k++)
        Py_VISIT(tc->slots[k].user);
    Py_VISIT(tc->encoders);
    return 0;
}

void oxpg_types_clear_python(OxpgTypeCache *tc)
{
    for (int k = 0; k < tc->cap; k++)
        Py_CLEAR(tc->slots[k].user);
    tc->n_user = 0;
    tc->generation++;
    Py_CLEAR(tc->encoders);
}

int oxpg_types_settled(const OxpgTypeCache *tc, Oid oid)
{
    if (oxpg_codec_lookup(oid) != NULL)
        return 1;
    /* A registered type is asked about too: its name makes errors readable. */
    const OxpgTypeInfo *e = oxpg_types_find(tc, oid);
    return e != NULL && e->known;
}

int oxpg_types_set_decoder(OxpgTypeCache *tc, Oid oid, PyObject *callable, int mode)
{
    OxpgTypeInfo *e = insert(tc, oid);
    if (e == NULL)
        return -1;
    if (e->user != NULL)
        tc->n_user--;
    Py_XSETREF(e->user, Py_XNewRef(callable));
    e->user_mode = (char)mode;
    if (callable != NULL)
        tc->n_user++;
    tc->generation++;
    return 0;
}

/* ---- the catalog ------------------------------------------------------------ */

/* One row per OID asked; the send function's source only for internal functions
 * (citext's send is textsend under another name). Fixed schema-qualified names: a
 * search_path cannot substitute anything. */
const char oxpg_types_catalog_sql[] =
    "SELECT t.oid, t.typtype, t.typbasetype, t.typelem, t.typname, p.proname, "
    "CASE WHEN p.prolang = 12 THEN p.prosrc END, "
    "CASE WHEN t.typtype = 'c' THEN (SELECT pg_catalog.array_agg(a.atttypid ORDER BY a.attnum) "
    "FROM pg_catalog.pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped) END, "
    "t.typreceive = 0 "
    "FROM pg_catalog.pg_type t LEFT JOIN pg_catalog.pg_proc p ON p.oid = t.typsend "
    "WHERE t.oid = ANY($1::pg_catalog.oid[])";

/* Table row types are left out (a schema has one per table; whole-row references
 * come as the named type, which the result's description names). */
const char oxpg_types_user_types_sql[] =
    "SELECT u.oid FROM (SELECT t.oid, t.typarray FROM pg_catalog.pg_type t "
    "JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace "
    "LEFT JOIN pg_catalog.pg_class c ON c.oid = t.typrelid "
    "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' "
    "AND (t.typtype IN ('e', 'd', 'r', 'm') OR (t.typtype = 'c' AND c.relkind = 'c') "
    "OR (t.typtype = 'b' AND t.typelem = 0))) s, "
    "LATERAL (VALUES (s.oid), (NULLIF(s.typarray, 0))) AS u(oid) WHERE u.oid IS NOT NULL";

static int is(const PGresult *res, int r, int c, const char *text)
{
    return !PQgetisnull(res, r, c) && strcmp(PQgetvalue(res, r, c), text) == 0;
}

static Oid oid_at(const PGresult *res, int r, int c)
{
    return PQgetisnull(res, r, c) ? 0 : (Oid)strtoul(PQgetvalue(res, r, c), NULL, 10);
}

static int remember(const OxpgTypeCache *tc, Oid oid, Oid **next, int *n_next)
{
    if (oid == 0 || oxpg_types_settled(tc, oid))
        return 0;
    for (int k = 0; k < *n_next; k++) {
        if ((*next)[k] == oid)
            return 0;
    }
    Oid *grown = PyMem_Realloc(*next, sizeof(Oid) * (size_t)(*n_next + 1));
    if (grown == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    grown[(*n_next)++] = oid;
    *next = grown;
    return 0;
}

/* '{1,2,3}' -> OIDs (PyMem). */
static int parse_oid_list(const char *text, Oid **out, int *n)
{
    *out = NULL;
    *n = 0;
    int cap = 1;
    for (const char *s = text; *s; s++)
        cap += *s == ',';
    Oid *oids = PyMem_Calloc((size_t)cap, sizeof(Oid));
    if (oids == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    const char *s = text;
    if (*s == '{')
        s++;
    while (*s != '\0' && *s != '}' && *n < cap) {
        char *end;
        unsigned long v = strtoul(s, &end, 10);
        if (end == s)
            break;
        oids[(*n)++] = (Oid)v;
        s = *end == ',' ? end + 1 : end;
    }
    *out = oids;
    return 0;
}

/* NULL when res has the shape oxpg_types_catalog_sql gives, else what is wrong. */
static const char *malformed_answer(const PGresult *res, const Oid *asked, int n_asked)
{
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQnfields(res) != OXPG_CATALOG_COLUMNS)
        return "not the 9 columns asked for";
    for (int c = 0; c < OXPG_CATALOG_COLUMNS; c++) {
        if (PQfformat(res, c) != 0)
            return "a column not in text format";
    }
    for (int r = 0; r < PQntuples(res); r++) {
        const char *text = PQgetvalue(res, r, 0);
        char *end = NULL;
        unsigned long oid = PQgetisnull(res, r, 0) ? 0 : strtoul(text, &end, 10);
        int was_asked = 0;
        for (int k = 0; k < n_asked && !was_asked && oid != 0 && *end == '\0'; k++)
            was_asked = asked[k] == oid;
        if (!was_asked)
            return "a row for a type that was not asked about";
        if (PQgetisnull(res, r, 1) || PQgetlength(res, r, 1) != 1)
            return "a type without a one-letter typtype";
    }
    return NULL;
}

int oxpg_types_load(OxpgState *st, OxpgTypeCache *tc, const PGresult *res, const Oid *asked, int n_asked, Oid **next,
                    int *n_next)
{
    /* Server input like any other: a shape we did not ask for is refused before
     * anything is stored, so the next result asks again. */
    const char *wrong = malformed_answer(res, asked, n_asked);
    if (wrong != NULL) {
        PyErr_Format(st->InterfaceError, "malformed answer to oxpg's type catalog query: %s", wrong);
        return -1;
    }
    /* Every OID asked is answered, even one the catalog lacks (a type dropped since
     * the result): it stays text, and nobody asks again. */
    for (int k = 0; k < n_asked; k++) {
        OxpgTypeInfo *e = insert(tc, asked[k]);
        if (e == NULL)
            return -1;
        forget_answer(e);
        e->known = 1;
    }
    for (int r = 0; r < PQntuples(res); r++) {
        Oid oid = oid_at(res, r, 0);
        OxpgTypeInfo *e = insert(tc, oid);
        if (e == NULL)
            return -1;
        forget_answer(e);
        e->known = 1;
        char typtype = PQgetvalue(res, r, 1)[0];
        Oid base = oid_at(res, r, 2), elem = oid_at(res, r, 3);
        PyOS_snprintf(e->name, sizeof(e->name), "%s", PQgetvalue(res, r, 4));
        e->no_send = PQgetisnull(res, r, 5);
        e->no_receive = is(res, r, 8, "t");
        if (typtype == 'e') {
            e->kind = OXPG_TYPE_TEXT; /* enum_send sends the label */
        } else if (typtype == 'd') {
            e->kind = OXPG_TYPE_DOMAIN;
            e->sub = base;
        } else if (typtype == 'c') {
            e->kind = OXPG_TYPE_COMPOSITE;
            if (!PQgetisnull(res, r, 7) && parse_oid_list(PQgetvalue(res, r, 7), &e->fields, &e->nfields) < 0)
                return -1;
        } else if (elem != 0 && is(res, r, 5, "array_send")) {
            e->kind = OXPG_TYPE_ARRAY;
            e->sub = elem;
        } else if (strcmp(e->name, "hstore") == 0 && is(res, r, 5, "hstore_send")) {
            e->kind = OXPG_TYPE_HSTORE;
        } else if (is(res, r, 6, "textsend") || is(res, r, 6, "varcharsend") || is(res, r, 6, "bpcharsend")) {
            e->kind = OXPG_TYPE_TEXT; /* citext and other text-like types */
        }
        /* insert() below may move e: take what we need first. */
        Oid sub = e->sub;
        int nfields = e->nfields;
        Oid *fields = NULL;
        if (nfields > 0) {
            fields = PyMem_Calloc((size_t)nfields, sizeof(Oid));
            if (fields == NULL) {
                PyErr_NoMemory();
                return -1;
            }
            memcpy(fields, e->fields, sizeof(Oid) * (size_t)nfields);
        }
        int rc = remember(tc, sub, next, n_next);
        for (int f = 0; rc == 0 && f < nfields; f++)
            rc = remember(tc, fields[f], next, n_next);
        PyMem_Free(fields);
        if (rc < 0)
            return -1;
    }
    tc->generation++;
    return 0;
}

/* ---- decoding ----------------------------------------------------------------- */

static int is_container(const OxpgCodec *codec)
{
    return codec->decode_binary == oxpg_decode_array || codec->decode_binary == oxpg_decode_record;
}

static oxpg_decode_fn types_plain(void *ctx, Oid oid)
{
    OxpgTypeCache *tc = ctx;
    if (tc->n_user > 0) {
        const OxpgTypeInfo *e = oxpg_types_find(tc, oid);
        if (e != NULL && e->user != NULL)
            return NULL;
    }
    const OxpgCodec *codec = oxpg_codec_lookup(oid);
    return codec != NULL && !is_container(codec) ? codec->decode_binary : NULL;
}

static PyObject *types_nested(void *ctx, OxpgState *st, Oid oid, const char *data, int len)
{
    return oxpg_types_decode(ctx, st, oid, data, len);
}

/* An exception from a user's decoder becomes DataError naming the type (the
 * original as __cause__); MemoryError, KeyboardInterrupt and the like pass. */
static PyObject *call_user(OxpgState *st, PyObject *fn, PyObject *arg, int star, const char *name, Oid oid)
{
    if (arg == NULL)
        return NULL;
    Py_INCREF(fn); /* the decoder may be replaced while it runs */
    PyObject *value = star ? PyObject_Call(fn, arg, NULL) : PyObject_CallOneArg(fn, arg);
    Py_DECREF(fn);
    Py_DECREF(arg);
    if (value == NULL && !PyErr_ExceptionMatches(st->DataError) && PyErr_ExceptionMatches(PyExc_Exception) &&
        !PyErr_ExceptionMatches(PyExc_MemoryError)) {
        char prefix[128];
        const OxpgCodec *codec = oxpg_codec_lookup(oid);
        if (name[0] == '\0' && codec != NULL)
            name = codec->name;
        if (name[0] != '\0')
            PyOS_snprintf(prefix, sizeof(prefix), "the decoder registered for type %s failed", name);
        else
            PyOS_snprintf(prefix, sizeof(prefix), "the decoder registered for type OID %u failed", (unsigned)oid);
        oxpg_reraise_as(st->DataError, prefix);
    }
    return value;
}

static PyObject *decode_user(OxpgTypeCache *tc, OxpgState *st, const OxpgTypeInfo *e, const char *data, int len)
{
    OxpgNested nested = {types_plain, types_nested, tc};
    switch (e->user_mode) {
    case OXPG_USER_BINARY:
        return call_user(st, e->user, PyBytes_FromStringAndSize(data, len), 0, e->name, e->oid);
    case OXPG_USER_TEXT:
        return call_user(st, e->user, oxpg_decode_text(st, data, len), 0, e->name, e->oid);
    case OXPG_USER_COMPOSITE: {
        PyObject *user = Py_NewRef(e->user); /* e may move while fields decode */
        char name[64];
        Oid oid = e->oid;
        memcpy(name, e->name, sizeof(name));
        PyObject *value = call_user(st, user, oxpg_decode_record_with(st, data, len, &nested), 1, name, oid);
        Py_DECREF(user);
        return value;
    }
    default:
        PyErr_Format(st->DataError,
                     "the text decoder registered for type OID %u reads the value's text form, which oxpg cannot "
                     "fetch inside an array or record; register it with format='binary'",
                     (unsigned)e->oid);
        return NULL;
    }
}

PyObject *oxpg_types_decode(OxpgTypeCache *tc, OxpgState *st, Oid oid, const char *data, int len)
{
    const OxpgTypeInfo *e = oxpg_types_find(tc, oid);
    if (e != NULL && e->user != NULL)
        return decode_user(tc, st, e, data, len);
    OxpgNested nested = {types_plain, types_nested, tc};
    const OxpgCodec *codec = oxpg_codec_lookup(oid);
    if (codec != NULL) {
        if (codec->decode_binary == oxpg_decode_array)
            return oxpg_decode_array_with(st, data, len, &nested);
        if (codec->decode_binary == oxpg_decode_record)
            return oxpg_decode_record_with(st, data, len, &nested);
        return codec->decode_binary(st, data, len);
    }
    if (e == NULL || !e->known) {
        /* Only nested values get here (columns are looked up before decoding). A
         * type created since the client learned the user types: the next describe
         * learns them again. */
        tc->missing = oid;
        tc->user_types_known = 0;
        PyErr_Format(st->DataError,
                     "type OID %u inside an array or record is not known to this client yet (it was created "
                     "after this client looked the user types up), and stream() and pipelines cannot look it up "
                     "while rows arrive; run the statement again, or cast it to text in SQL",
                     (unsigned)oid);
        return NULL;
    }
    switch (e->kind) {
    case OXPG_TYPE_TEXT:
        return oxpg_decode_text(st, data, len);
    case OXPG_TYPE_HSTORE:
        return oxpg_decode_hstore(st, data, len);
    case OXPG_TYPE_COMPOSITE:
        return oxpg_decode_record_with(st, data, len, &nested);
    case OXPG_TYPE_ARRAY:
        return oxpg_decode_array_with(st, data, len, &nested);
    case OXPG_TYPE_DOMAIN: {
        /* A domain's value is its base type's; a crafted catalog could chain domains
         * in a loop, so the depth is bounded like nesting. */
        Oid base = e->sub;
        if (oxpg_enter_nested(st, "domain") < 0)
            return NULL;
        PyObject *value = oxpg_types_decode(tc, st, base, data, len);
        Py_LeaveRecursiveCall();
        return value;
    }
    default:
        PyErr_Format(st->DataError,
                     "type %s (OID %u) has no binary decoder in oxpg, and its text form cannot be fetched inside "
                     "an array or record; cast the value to text in SQL",
                     e->name, (unsigned)oid);
        return NULL;
    }
}

/* Whether every value of oid, nested ones included, decodes without the text
 * form. Anonymous records cannot tell (their fields are in the data): yes. */
static int decodable(const OxpgTypeCache *tc, Oid oid, int depth)
{
    if (depth > 16)
        return 0;
    const OxpgTypeInfo *e = oxpg_types_find(tc, oid);
    if (e != NULL && e->user != NULL)
        return e->user_mode != OXPG_USER_TEXT_FORM || depth == 0;
    if (oxpg_codec_lookup(oid) != NULL)
        return 1;
    if (e == NULL || !e->known)
        return 0;
    switch (e->kind) {
    case OXPG_TYPE_TEXT:
    case OXPG_TYPE_HSTORE:
        return 1;
    case OXPG_TYPE_ARRAY:
    case OXPG_TYPE_DOMAIN:
        return decodable(tc, e->sub, depth + 1);
    case OXPG_TYPE_COMPOSITE: {
        int nfields = e->nfields;
        const Oid *fields = e->fields;
        for (int f = 0; f < nfields; f++) {
            if (!decodable(tc, fields[f], depth + 1))
                return 0;
        }
        return 1;
    }
    default:
        return 0;
    }
}

OxpgVia oxpg_types_column(const OxpgTypeCache *tc, Oid oid, oxpg_decode_fn *fast)
{
    const OxpgCodec *codec = oxpg_codec_lookup(oid);
    *fast = NULL;
    if (tc == NULL) {
        if (codec == NULL)
            return OXPG_VIA_TEXT;
        *fast = codec->decode_binary;
        return OXPG_VIA_STATIC;
    }
    const OxpgTypeInfo *e = tc->n_user > 0 ? oxpg_types_find(tc, oid) : NULL;
    if (e != NULL && e->user != NULL)
        return e->user_mode == OXPG_USER_TEXT_FORM ? OXPG_VIA_TEXT_USER : OXPG_VIA_TYPES;
    if (codec != NULL) {
        /* Arrays and records: their elements may be of the client's types. An
         * array of a built-in type whose registered decoder reads the text form
         * comes back as the array's text form (nested text forms cannot be had). */
        if (is_container(codec)) {
            for (int k = 0; tc->n_user > 0 && k < tc->cap; k++) {
                const OxpgTypeInfo *u = &tc->slots[k];
                const OxpgCodec *elem = u->user != NULL && u->user_mode == OXPG_USER_TEXT_FORM
                                            ? oxpg_codec_lookup(u->oid) : NULL;
                if (elem != NULL && elem->array_oid == oid)
                    return OXPG_VIA_TEXT;
            }
            return OXPG_VIA_TYPES;
        }
        *fast = codec->decode_binary;
        return OXPG_VIA_STATIC;
    }
    return decodable(tc, oid, 0) ? OXPG_VIA_TYPES : OXPG_VIA_TEXT;
}

PyObject *oxpg_types_decode_text_form(OxpgTypeCache *tc, OxpgState *st, Oid oid, PyObject *text)
{
    const OxpgTypeInfo *e = oxpg_types_find(tc, oid);
    if (e == NULL || e->user == NULL) {
        Py_XDECREF(text);
        PyErr_SetString(st->InterfaceError, "internal error: the decoder registered for a column went away");
        return NULL;
    }
    return call_user(st, e->user, text, 0, e->name, oid);
}

/* Nesting deeper than this is not followed (lookup_types asks at most 8 rounds). */
#define OXPG_OUTPUT_DEPTH 8

static int needs_text_results(const OxpgTypeCache *tc, Oid oid, int depth)
{
    if (oid == OXPG_PGNDISTINCTOID || oid == OXPG_PGDEPENDENCIESOID || oid == OXPG_PGMCVLISTOID ||
        oid == OXPG_PGBRINBLOOMSUMMARYOID || oid == OXPG_PGBRINMINMAXMULTISUMMARYOID || oid == OXPG_ANYARRAYOID)
        return 1;
    if (depth > OXPG_OUTPUT_DEPTH || oxpg_codec_lookup(oid) != NULL)
        return 0; /* every type of the static table has a send function */
    const OxpgTypeInfo *e = oxpg_types_find(tc, oid);
    if (e == NULL || !e->known)
        return 0;
    /* Without binary input the server cannot turn the binary value back into its
     * text form, which a type without a decoder (or a registered text-form one) needs. */
    int wants_text_form = e->kind == OXPG_TYPE_OTHER && (e->user == NULL || e->user_mode == OXPG_USER_TEXT_FORM);
    if (e->no_send || (e->no_receive && wants_text_form))
        return 1;
    if (e->kind == OXPG_TYPE_ARRAY || e->kind == OXPG_TYPE_DOMAIN)
        return needs_text_results(tc, e->sub, depth + 1);
    for (int f = 0; e->kind == OXPG_TYPE_COMPOSITE && f < e->nfields; f++) {
        if (needs_text_results(tc, e->fields[f], depth + 1))
            return 1;
    }
    return 0;
}

int oxpg_types_need_text_results(const OxpgTypeCache *tc, Oid oid)
{
    return needs_text_results(tc, oid, 0);
}
