/* What one Client knows about types beyond the static codec table: answers from the
 * catalog (enums, domains, composites, arrays of them, hstore, citext) and the
 * decoders and encoders registered through oxpg.types. Keyed by OID: a type dropped
 * and created again gets a new OID, so a stale entry is never consulted for it. */
#ifndef OXPG_TYPECACHE_H
#define OXPG_TYPECACHE_H

#include "oxpg/codecs.h"

/* What the catalog says a type is, as far as decoding goes. */
typedef enum {
    OXPG_TYPE_OTHER = 0, /* no binary decoder: its text form is fetched */
    OXPG_TYPE_TEXT,      /* the binary form is UTF-8 text: enums, citext, text-like */
    OXPG_TYPE_HSTORE,
    OXPG_TYPE_DOMAIN,    /* sub: the base type */
    OXPG_TYPE_COMPOSITE, /* the record wire format */
    OXPG_TYPE_ARRAY,     /* sub: the element type */
} OxpgTypeKind;

/* How a registered decoder gets its value. */
typedef enum {
    OXPG_USER_BINARY = 0,    /* bytes of the binary form */
    OXPG_USER_TEXT = 1,      /* str: the binary form is the text */
    OXPG_USER_TEXT_FORM = 2, /* str: the text form, fetched from the server */
    OXPG_USER_COMPOSITE = 3, /* callable(*fields) of the record decoded by oxpg */
} OxpgUserMode;

typedef struct {
    Oid oid;         /* 0: free slot */
    char known;      /* the catalog answered for oid (kind, sub, name are set) */
    char no_send;    /* the type has no binary send function (aclitem): binary output fails */
    char no_receive; /* nor a receive function: its text form cannot be had from its binary one */
    char kind;       /* OxpgTypeKind */
    char user_mode;  /* OxpgUserMode, when user is set */
    Oid sub;
    PyObject *user;  /* registered decoder (strong), or NULL */
    Oid *fields;     /* composite: its field types (PyMem), to know if it decodes */
    int nfields;
    char name[64];   /* typname, for messages */
} OxpgTypeInfo;

typedef struct {
    OxpgTypeInfo *slots; /* open addressing, capacity a power of two */
    int cap;
    int count;           /* slots in use */
    int n_user;          /* slots with a registered decoder */
    /* Bumped whenever an answer changes how a column decodes (a registration, the
     * catalog knowledge being dropped): cached column descriptions compare it. */
    unsigned generation;
    /* Set by a nested decode that met an OID nobody has asked the catalog about
     * (a record field of an enum type, say): the caller may look it up and retry. */
    Oid missing;
    /* Every user-defined type (enums, domains, ranges, standalone composites, base
     * types of extensions, arrays of them) was looked up: for the fields of anonymous
     * records in results that cannot stop for a lookup (streams, pipelines). */
    int user_types_known;
    /* {type: (oid, callable, binary)} for parameters, NULL until one is registered. */
    PyObject *encoders;
} OxpgTypeCache;

void oxpg_types_free(OxpgTypeCache *tc);
/* Forget the catalog's answers (DISCARD ALL / DISCARD TEMP may have dropped types);
 * registered decoders and encoders stay. */
void oxpg_types_forget_catalog(OxpgTypeCache *tc);
int oxpg_types_traverse(OxpgTypeCache *tc, visitproc visit, void *arg);
/* Drop the Python objects (decoders, encoders): the Client's tp_clear. */
void oxpg_types_clear_python(OxpgTypeCache *tc);

/* The entry for oid, or NULL. */
const OxpgTypeInfo *oxpg_types_find(const OxpgTypeCache *tc, Oid oid);
/* Nonzero when decoding oid needs no catalog answer: in the static table, already
 * answered, or registered. */
int oxpg_types_settled(const OxpgTypeCache *tc, Oid oid);
/* Set (callable non-NULL) or remove a registered decoder. */
int oxpg_types_set_decoder(OxpgTypeCache *tc, Oid oid, PyObject *callable, int mode);

/* The catalog query whose rows oxpg_types_load reads: $1 is an oid[] literal.
 * Columns: oid, typtype, typbasetype, typelem, typname, send function's name, its
 * prosrc, the composite's field types (an oid[] literal or NULL), whether it has no
 * receive function ('t'/'f'). */
#define OXPG_CATALOG_COLUMNS 9
extern const char oxpg_types_catalog_sql[];
/* The OIDs (one text column) of every user-defined type worth knowing before a
 * result that cannot stop for a lookup: see user_types_known. */
extern const char oxpg_types_user_types_sql[];
/* Store the answers of a text-format result of oxpg_types_catalog_sql. Every OID in
 * asked gets an entry (an OID the catalog does not have stays OXPG_TYPE_OTHER). The
 * OIDs the answers refer to that are not settled yet (element, base and field types)
 * are appended to *next (grown with PyMem_Realloc; count in *n_next). An answer of
 * another shape (columns, format, a row for an OID not asked) raises InterfaceError
 * and stores nothing. */
int oxpg_types_load(OxpgState *st, OxpgTypeCache *tc, const PGresult *res, const Oid *asked, int n_asked, Oid **next,
                    int *n_next);

/* Decode one binary value of type oid with everything the client knows. Nested
 * values (array elements, record fields, a domain's base) go through here too. */
PyObject *oxpg_types_decode(OxpgTypeCache *tc, OxpgState *st, Oid oid, const char *data, int len);

/* How a result column of type oid (binary format) decodes. */
typedef enum {
    OXPG_VIA_STATIC,    /* *fast, from the static table */
    OXPG_VIA_TYPES,     /* oxpg_types_decode */
    OXPG_VIA_TEXT,      /* the text form, as str */
    OXPG_VIA_TEXT_USER, /* the text form, passed to the registered decoder */
} OxpgVia;
OxpgVia oxpg_types_column(const OxpgTypeCache *tc, Oid oid, oxpg_decode_fn *fast);

/* Nonzero when a result column of type oid must come in text format, as far as the
 * catalog's answers tell: the type (its element, base or a field type) has no send
 * function (aclitem), so the server refuses binary output at the statement's first
 * row, after it started running; or its binary form is one oxpg cannot use and the
 * server cannot turn back into text (pg_ndistinct, pg_dependencies, pg_mcv_list, the
 * BRIN summaries, a type without a decoder and without a receive function);
 * or it is anyarray (pg_stats), whose element type, only in the data, may be either.
 * So the format is chosen before the statement is sent. */
int oxpg_types_need_text_results(const OxpgTypeCache *tc, Oid oid);

/* Call the registered decoder of oid (mode OXPG_USER_TEXT_FORM) with the text form. */
PyObject *oxpg_types_decode_text_form(OxpgTypeCache *tc, OxpgState *st, Oid oid, PyObject *text);

#endif
