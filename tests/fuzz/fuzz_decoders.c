/* libFuzzer target for every decoder in oxpg's codec table (tests/fuzz/run.sh builds
 * and runs it; see tests/fuzz/README.md).
 *
 * The extension's objects are linked into this binary, so the decoders are
 * instrumented for coverage and ASan/UBSan; CPython is embedded and the module is
 * created from PyInit__oxpg by hand (multi-phase init), which gives the real module
 * state (DataError, datetime C API, Decimal, UUID, json.loads, oxpg.types.Range...)
 * without an installed or in-place build of the extension.
 *
 * Input layout: 2 bytes big-endian selector, then the value bytes.
 *   bit 15     0 = binary decoder (oxpg_codec_lookup), 1 = text-format decoder
 *              (oxpg_text_decoder)
 *   bits 0-13  a type OID; when that OID has no decoder, the next OID that has one
 *              (wrapping), so every selector reaches a decoder and a seed written for
 *              a real OID keeps its decoder as the table grows.
 * The decoder table is read at start-up (OIDs below FUZZ_OID_LIMIT), so decoder
 * families added to the registry are fuzzed without editing this file.
 *
 * Each value is decoded at its full length and at shorter lengths (every prefix for
 * short inputs), each time from a heap copy of exactly that many bytes, so ASan
 * reports any read past len. Text-format decoders get libpq's NUL terminator
 * (data[len] == '\0'), which they may rely on; binary decoders get nothing past len.
 *
 * Beyond ASan/UBSan, a decoder fails the run (abort) when it breaks the return
 * convention (NULL without an exception, or a value with an exception set) and,
 * unless OXPG_FUZZ_ANY_EXCEPTION=1, when it raises something that is not an
 * oxpg.Error (DESIGN.md section 4: malformed input raises DataError/InterfaceError).
 * Before fuzzing, each process decodes very deeply nested records and arrays (see
 * check_deep_nesting): unbounded recursion must not overflow the C stack.
 *
 * Environment:
 *   OXPG_FUZZ_LIST=1                print the decoders fuzzed (selector, OID, format,
 *                                   name) and exit; tests/fuzz/make_corpus.py uses it
 *   OXPG_FUZZ_ANY_EXCEPTION=1       tolerate exceptions other than oxpg.Error, reporting
 *                                   each kind once per decoder
 *   OXPG_FUZZ_SKIP_NESTING_CHECK=1  skip the deep-nesting check
 *   OXPG_FUZZ_PACKAGE_DIR=dir       the oxpg package (default: this checkout's src/oxpg) */
#include "oxpg/codecs.h"

#include <stdio.h>
#include <stdlib.h>

/* PostgreSQL assigns built-in OIDs below FirstNormalObjectId (16384). */
#define FUZZ_OID_LIMIT 16384
#define FUZZ_OID_MASK 0x3FFF
#define FUZZ_TEXT_BIT 0x8000
/* hstore's binary decoder (typecache.c finds the type by name per client). */
#define FUZZ_HSTORE_SELECTOR 16383
/* Inputs up to this size are decoded at every length 0..size. */
#define FUZZ_ALL_PREFIXES_MAX 256
/* Larger ones at 0..FUZZ_EDGE-1, size-FUZZ_EDGE+1..size, and size/2. */
#define FUZZ_EDGE 32

PyMODINIT_FUNC PyInit__oxpg(void);

typedef struct {
    Oid oid;
    int text_format;
    const char *name;
    oxpg_decode_fn decode;
} Target;

static OxpgState *state;
static PyObject *oxpg_error; /* oxpg.Error: what malformed input may raise */
static int any_exception;

static Target targets[2 * FUZZ_OID_LIMIT];
static int n_targets;
/* [format][oid] -> index in targets of the first decoder at or after oid (wrapping);
 * -1 when that format has no decoder at all. */
static int pick[2][FUZZ_OID_LIMIT];

static void die(const char *what)
{
    fprintf(stderr, "fuzz_decoders: %s\n", what);
    if (PyErr_Occurred())
        PyErr_Print();
    abort();
}

static void collect_targets(void)
{
    for (int format = 0; format < 2; format++) {
        static int at[FUZZ_OID_LIMIT];
        int first = n_targets;
        for (Oid oid = 0; oid < FUZZ_OID_LIMIT; oid++) {
            const OxpgCodec *codec = oxpg_codec_lookup(oid);
            oxpg_decode_fn decode = format == 0 ? (codec != NULL ? codec->decode_binary : NULL) : oxpg_text_decoder(oid);
            const char *name = codec != NULL ? codec->name : "?";
            /* Decoders of types found by name per client (no fixed OID) sit on
             * selectors no built-in type uses. */
            if (format == 0 && oid == FUZZ_HSTORE_SELECTOR && decode == NULL) {
                decode = oxpg_decode_hstore;
                name = "hstore";
            }
            at[oid] = -1;
            if (decode == NULL)
                continue;
            at[oid] = n_targets;
            targets[n_targets++] = (Target){oid, format, name, decode};
        }
        /* Downwards, so each OID finds the first decoder at or above it; above the
         * last decoder, wrap to the first. */
        int next = n_targets > first ? first : -1;
        for (int oid = FUZZ_OID_LIMIT - 1; oid >= 0; oid--) {
            if (at[oid] >= 0)
                next = at[oid];
            pick[format][oid] = next;
        }
    }
}

static void list_targets(void)
{
    for (int i = 0; i < n_targets; i++) {
        const Target *t = &targets[i];
        unsigned selector = (unsigned)t->oid | (t->text_format ? FUZZ_TEXT_BIT : 0);
        printf("%04x\t%u\t%s\t%s\n", selector, (unsigned)t->oid, t->text_format ? "text" : "binary", t->name);
    }
}

static void start_python(void)
{
    PyPreConfig preconfig;
    PyPreConfig_InitIsolatedConfig(&preconfig);
    /* Every Python object through malloc, so ASan also sees use-after-free and
     * overflows on objects a decoder created or released (pymalloc hides them). */
    preconfig.allocator = PYMEM_ALLOCATOR_MALLOC;
    preconfig.utf8_mode = 1;
    PyStatus status = Py_PreInitialize(&preconfig);
    if (PyStatus_Exception(status))
        Py_ExitStatusException(status);

    PyConfig config;
    PyConfig_InitIsolatedConfig(&config);
    config.site_import = 0;          /* the decoders need the standard library only */
    config.install_signal_handlers = 0; /* libFuzzer owns SIGINT and friends */
#ifdef OXPG_FUZZ_PYTHON_HOME
    status = PyConfig_SetBytesString(&config, &config.home, OXPG_FUZZ_PYTHON_HOME);
    if (PyStatus_Exception(status))
        Py_ExitStatusException(status);
#endif
    status = Py_InitializeFromConfig(&config);
    PyConfig_Clear(&config);
    if (PyStatus_Exception(status))
        Py_ExitStatusException(status);
}

/* The module's exec step imports oxpg.types (pure Python, standard library only).
 * A bare "oxpg" package pointing at src/oxpg/ serves it without running
 * oxpg/__init__.py, which would import the normal, uninstrumented build of _oxpg. */
static void add_package_stub(void)
{
    const char *dir = getenv("OXPG_FUZZ_PACKAGE_DIR");
#ifdef OXPG_FUZZ_PACKAGE_DIR
    if (dir == NULL)
        dir = OXPG_FUZZ_PACKAGE_DIR;
#endif
    if (dir == NULL)
        die("set OXPG_FUZZ_PACKAGE_DIR to the oxpg package directory (src/oxpg)");
    PyObject *package = PyImport_AddModule("oxpg"); /* borrowed, owned by sys.modules */
    PyObject *path = Py_BuildValue("[s]", dir);
    if (package == NULL || path == NULL || PyModule_AddObjectRef(package, "__path__", path) < 0)
        die("cannot create the oxpg package stub");
    Py_DECREF(path);
}

/* oxpg._oxpg built the way the import system builds an extension module (PEP 489),
 * from the PyInit__oxpg linked into this binary; it is kept for the life of the
 * process (state points into it). */
static void create_module(void)
{
    add_package_stub();
    PyModuleDef *def = (PyModuleDef *)PyInit__oxpg();
    PyObject *machinery = PyImport_ImportModule("importlib.machinery");
    if (def == NULL || machinery == NULL)
        die("cannot start module creation");
    PyObject *spec = PyObject_CallMethod(machinery, "ModuleSpec", "sO", "oxpg._oxpg", Py_None);
    Py_DECREF(machinery);
    if (spec == NULL)
        die("cannot make a ModuleSpec");
    PyObject *module = PyModule_FromDefAndSpec(def, spec);
    Py_DECREF(spec);
    if (module == NULL || PyModule_ExecDef(module, def) < 0)
        die("cannot create oxpg._oxpg");
    PyObject *modules = PyImport_GetModuleDict(); /* borrowed */
    if (PyDict_SetItemString(modules, "oxpg._oxpg", module) < 0)
        die("cannot register oxpg._oxpg");
    state = (OxpgState *)PyModule_GetState(module);
    oxpg_error = PyObject_GetAttrString(module, "Error");
    if (state == NULL || state->DataError == NULL || oxpg_error == NULL)
        die("oxpg._oxpg has no usable module state");
}

static void describe(const Target *t, size_t len, const char *what)
{
    fprintf(stderr, "fuzz_decoders: %s decoder (%s, OID %u, len %zu) %s\n", t->name,
            t->text_format ? "text" : "binary", (unsigned)t->oid, len, what);
}

/* An exception other than oxpg.Error: fatal, or with OXPG_FUZZ_ANY_EXCEPTION=1
 * reported once per decoder and exception type and then tolerated. */
static void foreign_exception(const Target *t, size_t len)
{
    if (!any_exception) {
        describe(t, len, "raised an exception that is not an oxpg.Error "
                         "(OXPG_FUZZ_ANY_EXCEPTION=1 reports these without stopping):");
        PyErr_Print();
        abort();
    }
    static struct {
        const Target *target;
        PyObject *type;
    } seen[256];
    static int n_seen;
    PyObject *type = PyErr_Occurred(); /* borrowed */
    for (int i = 0; i < n_seen; i++) {
        if (seen[i].target == t && seen[i].type == type) {
            PyErr_Clear();
            return;
        }
    }
    if (n_seen < (int)(sizeof(seen) / sizeof(seen[0]))) {
        seen[n_seen].target = t;
        seen[n_seen].type = Py_NewRef(type); /* kept: the identity must stay valid */
        n_seen++;
    }
    describe(t, len, "raised an exception that is not an oxpg.Error:");
#if PY_VERSION_HEX >= 0x030C0000
    PyObject *exc = PyErr_GetRaisedException();
#else
    PyObject *exc_type, *exc, *exc_tb;
    PyErr_Fetch(&exc_type, &exc, &exc_tb);
    PyErr_NormalizeException(&exc_type, &exc, &exc_tb);
    Py_XDECREF(exc_type);
    Py_XDECREF(exc_tb);
#endif
    PyObject *text = exc != NULL ? PyObject_Repr(exc) : NULL;
    fprintf(stderr, "    %s\n", text != NULL ? PyUnicode_AsUTF8(text) : "?");
    Py_XDECREF(text);
    Py_XDECREF(exc);
    PyErr_Clear();
}

static void decode_one(const Target *t, const uint8_t *bytes, size_t len)
{
    /* An exact-size heap copy: one byte past len is outside the allocation (under
     * ASan, malloc(0) gives a pointer with no readable byte). Text decoders get the
     * NUL terminator libpq guarantees. */
    char *copy = malloc(len + (size_t)t->text_format);
    if (copy == NULL)
        die("out of memory");
    if (len > 0)
        memcpy(copy, bytes, len);
    if (t->text_format)
        copy[len] = '\0';

    PyObject *value = t->decode(state, copy, (int)len);
    PyObject *exc = PyErr_Occurred();
    if (value == NULL && exc == NULL) {
        describe(t, len, "returned NULL without setting an exception");
        abort();
    }
    if (value != NULL && exc != NULL) {
        describe(t, len, "returned a value with an exception set:");
        PyErr_Print();
        abort();
    }
    if (exc != NULL && !PyErr_ExceptionMatches(oxpg_error))
        foreign_exception(t, len);
    Py_XDECREF(value);
    PyErr_Clear();
    free(copy);
}

/* Records and arrays hold values of any type, records and arrays included, as deep
 * as a 1 GB value allows: a decoder that recurses without a limit overflows the C
 * stack (a segfault) on a server-sent value of a megabyte or so, far beyond what the
 * fuzzer's -max_len reaches. So each process first decodes a record nested
 * DEEP_RECORD levels and an int4[] nested DEEP_ARRAY levels (elements typed int4[])
 * and expects an oxpg.Error or a value, like any input. */
#define DEEP_RECORD 1000000 /* 12 bytes a level: 12 MB */
#define DEEP_ARRAY 500000   /* 24 bytes a level: 12 MB */

static void put_u32(uint8_t **p, uint32_t v)
{
    uint8_t *b = *p;
    b[0] = (uint8_t)(v >> 24), b[1] = (uint8_t)(v >> 16), b[2] = (uint8_t)(v >> 8), b[3] = (uint8_t)v;
    *p += 4;
}

static void check_deep_nesting(void)
{
    static const struct {
        Oid oid;
        uint32_t levels, level_size, innermost_size;
    } shapes[] = {{2249, DEEP_RECORD, 12, 4}, {1007, DEEP_ARRAY, 24, 12}};
    for (size_t k = 0; k < sizeof(shapes) / sizeof(shapes[0]); k++) {
        int index = pick[0][shapes[k].oid];
        if (index < 0 || targets[index].oid != shapes[k].oid)
            continue;
        size_t size = 2 + (size_t)shapes[k].levels * shapes[k].level_size + shapes[k].innermost_size;
        uint8_t *input = malloc(size);
        if (input == NULL)
            die("out of memory");
        uint8_t *p = input;
        *p++ = (uint8_t)(shapes[k].oid >> 8);
        *p++ = (uint8_t)shapes[k].oid;
        for (uint32_t level = 0; level < shapes[k].levels; level++) {
            uint32_t inner = (shapes[k].levels - level - 1) * shapes[k].level_size + shapes[k].innermost_size;
            if (shapes[k].oid == 2249) {
                /* one field: a record */
                put_u32(&p, 1), put_u32(&p, 2249), put_u32(&p, inner);
            } else {
                /* 1-D, no NULLs, elements typed int4[], 1 element from lower bound 1 */
                put_u32(&p, 1), put_u32(&p, 0), put_u32(&p, 1007), put_u32(&p, 1), put_u32(&p, 1);
                put_u32(&p, inner);
            }
        }
        if (shapes[k].oid == 2249) {
            put_u32(&p, 0); /* ROW() */
        } else {
            put_u32(&p, 0), put_u32(&p, 0), put_u32(&p, 23); /* '{}'::int4[] */
        }
        fprintf(stderr,
                "fuzz_decoders: nesting check: %s nested %u levels (%zu bytes); a stack overflow here means "
                "a decoder recurses without a depth limit\n",
                targets[index].name, (unsigned)shapes[k].levels, size);
        decode_one(&targets[index], input + 2, size - 2);
        free(input);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    collect_targets();
    if (getenv("OXPG_FUZZ_LIST") != NULL) {
        list_targets();
        exit(0);
    }
    const char *any = getenv("OXPG_FUZZ_ANY_EXCEPTION");
    any_exception = any != NULL && strcmp(any, "1") == 0;
    start_python();
    create_module();
    int n_binary = 0;
    for (int i = 0; i < n_targets; i++)
        n_binary += !targets[i].text_format;
    fprintf(stderr, "fuzz_decoders: %d binary and %d text-format decoders from the codec table\n", n_binary,
            n_targets - n_binary);
    if (n_binary == 0)
        die("the codec table is empty");
    if (getenv("OXPG_FUZZ_SKIP_NESTING_CHECK") == NULL)
        check_deep_nesting();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned selector = size >= 2 ? (unsigned)((data[0] << 8) | data[1]) : size == 1 ? data[0] : 0;
    size_t skip = size < 2 ? size : 2;
    const uint8_t *value = data + skip;
    size_t n = size - skip;
    if (n > INT32_MAX)
        return 0;

    int format = (selector & FUZZ_TEXT_BIT) != 0;
    int index = pick[format][selector & FUZZ_OID_MASK];
    if (index < 0)
        index = pick[0][selector & FUZZ_OID_MASK];
    const Target *t = &targets[index];

    decode_one(t, value, n);
    if (n <= FUZZ_ALL_PREFIXES_MAX) {
        for (size_t len = 0; len < n; len++)
            decode_one(t, value, len);
    } else {
        for (size_t len = 0; len < FUZZ_EDGE; len++)
            decode_one(t, value, len);
        for (size_t len = n - FUZZ_EDGE + 1; len < n; len++)
            decode_one(t, value, len);
        decode_one(t, value, n / 2);
    }
    return 0;
}
