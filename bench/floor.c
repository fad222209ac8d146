/*
 * floor.c: the fastest a client can go through libpq, as a yardstick for the drivers.
 *
 * It runs the same statements as bench/workloads.py, asks for binary results and decodes
 * every value into a native C value (int32, double, bool, text as pointer + length,
 * timestamptz as int64 microseconds, numeric as double), the least work any driver
 * could do with a result. No Python, no objects: whatever a driver spends beyond this is
 * its own overhead. Built and driven by bench/run.py; see bench/README.md.
 *
 *   floor --list                               name<TAB>sql for every workload
 *   floor --serve DSN                          commands on stdin (bench/run.py uses this)
 *   floor DSN WORKLOAD MODE ITERATIONS [WARMUP]   one-shot run, prints the lines below
 *
 * DSN "-" means: read it from the first line of stdin.
 *
 * MODE is "exec" (PQexecParams, unnamed statement: parse + plan every time) or
 * "prepared" (PQprepare once, then PQexecPrepared). insert_batch uses pipeline mode in
 * both, with PQsendQueryParams or PQsendQueryPrepared per row and one sync.
 *
 * Output lines: "pid N" (backend pid), "ns T1 T2 ..." (one timing per op, in
 * nanoseconds), "rss_kib BEFORE AFTER" (peak RSS before the first timed op and after
 * the last). Serve mode answers "run NAME MODE N FIRST" with an "ns" line and
 * "sql TEXT" with "row F1<TAB>F2..." lines (text results), each answer closed by "end".
 * A failure prints "error MESSAGE"; in a run it is fatal, since the connection's state
 * is then unknown.
 */
#define _POSIX_C_SOURCE 200809L

#include <libpq-fe.h>

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

/* Type OIDs from pg_type.h, which client programs are not meant to include. */
#define BOOLOID 16
#define INT4OID 23
#define TEXTOID 25
#define FLOAT8OID 701
#define TIMESTAMPTZOID 1184
#define NUMERICOID 1700

#define TABLE_ROWS 10000
#define BATCH_ROWS 1000
#define SERIES_ROWS 1000
#define COLS "id, name, email, age, score, active, created_at, balance"
#define INSERT_SQL                                                                     \
    "INSERT INTO bench_insert (" COLS ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
#define SELECT_SQL(n) "SELECT " COLS " FROM bench_users WHERE id > $1 ORDER BY id LIMIT " #n

/* Microseconds from the Unix epoch to PostgreSQL's (2000-01-01). */
#define PG_EPOCH_US INT64_C(946684800000000)
/* 2024-01-01 00:00:00 UTC, where the generated rows' created_at starts. */
#define BASE_TS_US (INT64_C(1704067200000000) - PG_EPOCH_US)

enum kind { K_ROWS, K_SERIES, K_INSERT, K_BATCH, K_PARAMS };

typedef struct {
    const char *name;
    const char *sql;
    enum kind kind;
    int limit; /* rows the id window must leave room for (K_ROWS) */
} workload;

/* Keep in step with bench/workloads.py; run.py compares the SQL through --list. */
static const workload WORKLOADS[] = {
    {"select_1", SELECT_SQL(1), K_ROWS, 1},
    {"select_10", SELECT_SQL(10), K_ROWS, 10},
    {"select_100", SELECT_SQL(100), K_ROWS, 100},
    {"select_1000", SELECT_SQL(1000), K_ROWS, 1000},
    {"select_params",
     "SELECT " COLS " FROM bench_users WHERE id = $1 AND age >= $2 AND age < $3"
     " AND score >= $4 AND score < $5 AND (active OR $6) AND created_at >= $7"
     " AND balance >= $8 AND name LIKE $9 AND email <> $10",
     K_PARAMS, 0},
    {"insert_1", INSERT_SQL, K_INSERT, 0},
    {"insert_batch", INSERT_SQL, K_BATCH, 0},
    {"fetch_100k", "SELECT " COLS " FROM bench_users_100k", K_ROWS, 0},
    {"generate_series", "SELECT i FROM generate_series(1, $1) AS i", K_SERIES, 0},
};
#define N_WORKLOADS (sizeof(WORKLOADS) / sizeof(WORKLOADS[0]))

/* ---- big-endian loads and stores (the wire format) ---- */

static inline uint32_t load_be32(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | u[3];
}

static inline uint64_t load_be64(const char *p)
{
    return (uint64_t)load_be32(p) << 32 | load_be32(p + 4);
}

static inline void store_be16(char *p, uint16_t v)
{
    p[0] = (char)(v >> 8);
    p[1] = (char)v;
}

static inline void store_be32(char *p, uint32_t v)
{
    store_be16(p, (uint16_t)(v >> 16));
    store_be16(p + 2, (uint16_t)v);
}

static inline void store_be64(char *p, uint64_t v)
{
    store_be32(p, (uint32_t)(v >> 32));
    store_be32(p + 4, (uint32_t)v);
}

/* ---- failures ---- */

static bool serving;

static void fail(const char *what, const char *detail)
{
    char msg[512];
    snprintf(msg, sizeof msg, "%s: %s", what, detail ? detail : "");
    for (char *c = msg; *c; c++)
        if (*c == '\n' || *c == '\r')
            *c = ' ';
    printf("error %s\n", msg);
    if (serving)
        printf("end\n");
    fflush(stdout);
    fprintf(stderr, "floor: %s\n", msg);
    exit(1);
}

static void expect(PGresult *res, ExecStatusType status, PGconn *conn, const char *what)
{
    if (res == NULL)
        fail(what, PQerrorMessage(conn));
    if (PQresultStatus(res) != status)
        fail(what, PQresultErrorMessage(res));
}

/* ---- the application's values: made before the clock starts, like a caller's ---- */

typedef struct {
    int32_t id;
    char name[24];
    char email[40];
    int32_t age;
    double score;
    bool active;
    int64_t created_at; /* microseconds since 2000-01-01 UTC */
    int64_t balance_cents;
} app_row;

/* The same formulas as workloads.py's row_values() and the table's generator. */
static void app_row_for(int64_t i, app_row *r)
{
    r->id = (int32_t)i;
    snprintf(r->name, sizeof r->name, "user_%lld", (long long)i);
    snprintf(r->email, sizeof r->email, "user%lld@example.com", (long long)i);
    r->age = (int32_t)(18 + i % 60);
    r->score = (double)((i * 37) % 1000) / 10.0;
    r->active = i % 3 != 0;
    r->created_at = BASE_TS_US + i * INT64_C(60000000);
    r->balance_cents = (i * 7919) % 10000000;
}

static int32_t window_start(int64_t i, int limit)
{
    return (int32_t)((i % TABLE_ROWS) * 7919 % (TABLE_ROWS - limit));
}

/* ---- parameter encoding: the driver's job, so it runs inside the timed region ---- */

typedef struct {
    int n;
    Oid types[10];
    const char *values[10];
    int lengths[10];
    int formats[10];
    char buf[10][32]; /* binary values; numeric(12,2) needs 8 + 2 * 4 bytes at most */
} params;

static void put_int4(params *p, int32_t v)
{
    int k = p->n++;
    store_be32(p->buf[k], (uint32_t)v);
    p->types[k] = INT4OID, p->values[k] = p->buf[k], p->lengths[k] = 4, p->formats[k] = 1;
}

static void put_float8(params *p, double v)
{
    int k = p->n++;
    uint64_t bits;
    memcpy(&bits, &v, 8);
    store_be64(p->buf[k], bits);
    p->types[k] = FLOAT8OID, p->values[k] = p->buf[k], p->lengths[k] = 8, p->formats[k] = 1;
}

static void put_bool(params *p, bool v)
{
    int k = p->n++;
    p->buf[k][0] = v;
    p->types[k] = BOOLOID, p->values[k] = p->buf[k], p->lengths[k] = 1, p->formats[k] = 1;
}

static void put_timestamptz(params *p, int64_t us)
{
    int k = p->n++;
    store_be64(p->buf[k], (uint64_t)us);
    p->types[k] = TIMESTAMPTZOID, p->values[k] = p->buf[k], p->lengths[k] = 8;
    p->formats[k] = 1;
}

/* Strings go as text with OID 0, as oxpg sends str: the server infers the type. */
static void put_text(params *p, const char *s)
{
    int k = p->n++;
    p->types[k] = 0, p->values[k] = s, p->lengths[k] = 0, p->formats[k] = 0;
}

/* numeric's binary form: ndigits, weight, sign, dscale, then base-10000 digits. */
static void put_numeric_cents(params *p, int64_t cents)
{
    int k = p->n++;
    char *b = p->buf[k];
    uint64_t mag = cents < 0 ? (uint64_t)-cents : (uint64_t)cents;
    uint64_t whole = mag / 100;
    uint16_t groups[6];
    int nint = 0, ndigits;
    for (uint64_t w = whole; w; w /= 10000)
        nint++;
    for (int g = nint - 1; g >= 0; g--, whole /= 10000)
        groups[g] = (uint16_t)(whole % 10000);
    ndigits = nint;
    if (mag % 100)
        groups[ndigits++] = (uint16_t)(mag % 100 * 100);
    while (ndigits > nint && groups[ndigits - 1] == 0)
        ndigits--;
    store_be16(b, (uint16_t)ndigits);
    store_be16(b + 2, (uint16_t)(int16_t)(ndigits ? nint - 1 : 0));
    store_be16(b + 4, cents < 0 ? 0x4000 : 0);
    store_be16(b + 6, 2);
    for (int g = 0; g < ndigits; g++)
        store_be16(b + 8 + 2 * g, groups[g]);
    p->types[k] = NUMERICOID, p->values[k] = b, p->lengths[k] = 8 + 2 * ndigits;
    p->formats[k] = 1;
}

static void put_row(params *p, const app_row *r)
{
    put_int4(p, r->id);
    put_text(p, r->name);
    put_text(p, r->email);
    put_int4(p, r->age);
    put_float8(p, r->score);
    put_bool(p, r->active);
    put_timestamptz(p, r->created_at);
    put_numeric_cents(p, r->balance_cents);
}

/* The select_params values: every row passes all ten tests, so the id picks one row. */
static void put_select_params(params *p, int32_t id)
{
    put_int4(p, id);
    put_int4(p, 0);
    put_int4(p, 200);
    put_float8(p, -1.0);
    put_float8(p, 1e9);
    put_bool(p, true);
    put_timestamptz(p, INT64_C(0)); /* 2000-01-01 UTC */
    put_numeric_cents(p, 0);
    put_text(p, "user_%");
    put_text(p, "");
}

/* ---- result decoding ---- */

typedef struct {
    int32_t id;
    int32_t age;
    const char *name; /* points into the PGresult, like a zero-copy decoder */
    const char *email;
    int name_len, email_len;
    double score;
    double balance;
    int64_t created_at;
    bool active;
} user_row;

static const Oid USER_TYPES[8] = {INT4OID,   TEXTOID, TEXTOID,        INT4OID,
                                  FLOAT8OID, BOOLOID, TIMESTAMPTZOID, NUMERICOID};

/* Sinks the decoded values so the optimizer cannot drop the work. */
static volatile uint64_t sink;

static const char *cell(const PGresult *res, int row, int col, int want_len)
{
    if (PQgetisnull(res, row, col))
        fail("decode", "unexpected NULL");
    if (want_len >= 0 && PQgetlength(res, row, col) != want_len)
        fail("decode", "bad length");
    return PQgetvalue(res, row, col);
}

static double decode_numeric(const char *v, int len)
{
    if (len < 8)
        fail("decode", "short numeric");
    int ndigits = (int16_t)(uint16_t)(load_be32(v) >> 16);
    int weight = (int16_t)(uint16_t)load_be32(v);
    uint16_t sign = (uint16_t)(load_be32(v + 4) >> 16);
    if (ndigits < 0 || len != 8 + 2 * ndigits)
        fail("decode", "bad numeric length");
    if (sign == 0xC000)
        return NAN;
    double x = 0;
    for (int g = 0; g < ndigits; g++) {
        uint16_t d = (uint16_t)((unsigned char)v[8 + 2 * g] << 8 | (unsigned char)v[9 + 2 * g]);
        if (d > 9999)
            fail("decode", "bad numeric digit");
        x = x * 10000 + d;
    }
    x *= pow(10000.0, weight - ndigits + 1);
    return sign == 0x4000 ? -x : x;
}

static void check_columns(const PGresult *res, const Oid *types, int ncols)
{
    if (PQnfields(res) != ncols)
        fail("decode", "unexpected column count");
    for (int c = 0; c < ncols; c++)
        if (PQftype(res, c) != types[c] || PQfformat(res, c) != 1)
            fail("decode", "unexpected column type or format");
}

/* Decodes into a freshly allocated array, as a driver builds its list of rows. */
static void decode_users(const PGresult *res, int want_rows)
{
    check_columns(res, USER_TYPES, 8);
    int n = PQntuples(res);
    if (want_rows > 0 && n != want_rows)
        fail("decode", "unexpected row count");
    user_row *rows = malloc(sizeof(user_row) * (size_t)(n ? n : 1));
    if (!rows)
        fail("decode", "out of memory");
    uint64_t acc = 0;
    for (int i = 0; i < n; i++) {
        user_row *r = &rows[i];
        r->id = (int32_t)load_be32(cell(res, i, 0, 4));
        r->name = cell(res, i, 1, -1);
        r->name_len = PQgetlength(res, i, 1);
        r->email = cell(res, i, 2, -1);
        r->email_len = PQgetlength(res, i, 2);
        r->age = (int32_t)load_be32(cell(res, i, 3, 4));
        uint64_t bits = load_be64(cell(res, i, 4, 8));
        memcpy(&r->score, &bits, 8);
        r->active = cell(res, i, 5, 1)[0] != 0;
        r->created_at = (int64_t)load_be64(cell(res, i, 6, 8));
        r->balance = decode_numeric(cell(res, i, 7, -1), PQgetlength(res, i, 7));
        acc += (uint64_t)r->id + (uint64_t)r->name_len + (uint64_t)r->balance;
    }
    sink += acc;
    free(rows);
}

static void decode_series(const PGresult *res, int want_rows)
{
    static const Oid types[1] = {INT4OID};
    check_columns(res, types, 1);
    int n = PQntuples(res);
    if (n != want_rows)
        fail("decode", "unexpected row count");
    int32_t *vals = malloc(sizeof(int32_t) * (size_t)(n ? n : 1));
    if (!vals)
        fail("decode", "out of memory");
    uint64_t acc = 0;
    for (int i = 0; i < n; i++)
        acc += (uint64_t)(vals[i] = (int32_t)load_be32(cell(res, i, 0, 4)));
    sink += acc;
    free(vals);
}

static void check_count(const PGresult *res, long want)
{
    if (atol(PQcmdTuples((PGresult *)res)) != want)
        fail("insert", "unexpected row count");
}

/* ---- running a workload ---- */

typedef struct {
    PGconn *conn;
    bool prepared[N_WORKLOADS];
} floor_conn;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so a child of a big
 * parent would report the parent's peak. */
static long peak_rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld", &kib) == 1)
            break;
    if (f)
        fclose(f);
    if (kib < 0) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        kib = ru.ru_maxrss;
    }
    return kib;
}

static const workload *find_workload(const char *name)
{
    for (size_t w = 0; w < N_WORKLOADS; w++)
        if (strcmp(WORKLOADS[w].name, name) == 0)
            return &WORKLOADS[w];
    return NULL;
}

static const char *stmt_name(const workload *w)
{
    return w->name; /* one named statement per workload is all a connection needs */
}

/* PQprepare needs the parameter types, which are the same for every op of a workload. */
static void prepare(floor_conn *fc, const workload *w)
{
    size_t idx = (size_t)(w - WORKLOADS);
    if (fc->prepared[idx])
        return;
    params p = {0};
    app_row r;
    switch (w->kind) {
    case K_ROWS:
        if (w->limit)
            put_int4(&p, 0);
        break;
    case K_SERIES:
        put_int4(&p, 0);
        break;
    case K_PARAMS:
        put_select_params(&p, 0);
        break;
    case K_INSERT:
    case K_BATCH:
        app_row_for(0, &r);
        put_row(&p, &r);
        break;
    }
    PGresult *res = PQprepare(fc->conn, stmt_name(w), w->sql, p.n, p.types);
    expect(res, PGRES_COMMAND_OK, fc->conn, "prepare");
    PQclear(res);
    fc->prepared[idx] = true;
}

static PGresult *exec_one(floor_conn *fc, const workload *w, bool use_prepared,
                          const params *p)
{
    if (use_prepared)
        return PQexecPrepared(fc->conn, stmt_name(w), p->n, p->values, p->lengths,
                              p->formats, 1);
    return PQexecParams(fc->conn, w->sql, p->n, p->types, p->values, p->lengths, p->formats,
                        1);
}

/* 1000 rows in one pipeline with a single sync: one round trip, one implicit transaction. */
static void run_batch(floor_conn *fc, const workload *w, bool use_prepared,
                      const app_row *rows)
{
    PGconn *conn = fc->conn;
    if (!PQenterPipelineMode(conn))
        fail("pipeline", PQerrorMessage(conn));
    for (int k = 0; k < BATCH_ROWS; k++) {
        params p;
        p.n = 0;
        put_row(&p, &rows[k]);
        int ok = use_prepared
                     ? PQsendQueryPrepared(conn, stmt_name(w), p.n, p.values, p.lengths,
                                           p.formats, 1)
                     : PQsendQueryParams(conn, w->sql, p.n, p.types, p.values, p.lengths,
                                         p.formats, 1);
        if (!ok)
            fail("pipeline send", PQerrorMessage(conn));
    }
    if (!PQpipelineSync(conn))
        fail("pipeline sync", PQerrorMessage(conn));
    for (int k = 0; k < BATCH_ROWS; k++) {
        PGresult *res = PQgetResult(conn);
        expect(res, PGRES_COMMAND_OK, conn, "pipeline result");
        check_count(res, 1);
        PQclear(res);
        res = PQgetResult(conn); /* the NULL that ends each query's results */
        if (res != NULL)
            fail("pipeline", "more than one result for a query");
    }
    PGresult *res = PQgetResult(conn);
    expect(res, PGRES_PIPELINE_SYNC, conn, "pipeline sync result");
    PQclear(res);
    if (!PQexitPipelineMode(conn))
        fail("pipeline exit", PQerrorMessage(conn));
}

/* Runs ops first .. first+n-1 and stores each op's wall time in out[]. */
static void run(floor_conn *fc, const workload *w, bool use_prepared, int64_t first, int n,
                int64_t *out)
{
    if (use_prepared)
        prepare(fc, w);
    app_row *rows = NULL;
    if (w->kind == K_BATCH) {
        rows = malloc(sizeof(app_row) * BATCH_ROWS);
        if (!rows)
            fail("run", "out of memory");
    }
    for (int j = 0; j < n; j++) {
        int64_t i = first + j;
        app_row one;
        if (w->kind == K_INSERT)
            app_row_for(i, &one);
        if (w->kind == K_BATCH)
            for (int k = 0; k < BATCH_ROWS; k++)
                app_row_for(i * BATCH_ROWS + k, &rows[k]);

        int64_t t0 = now_ns();
        if (w->kind == K_BATCH) {
            run_batch(fc, w, use_prepared, rows);
        } else {
            params p;
            p.n = 0;
            switch (w->kind) {
            case K_ROWS:
                if (w->limit)
                    put_int4(&p, window_start(i, w->limit));
                break;
            case K_SERIES:
                put_int4(&p, SERIES_ROWS);
                break;
            case K_PARAMS:
                put_select_params(&p, (int32_t)(1 + i % TABLE_ROWS));
                break;
            case K_INSERT:
                put_row(&p, &one);
                break;
            case K_BATCH:
                break;
            }
            PGresult *res = exec_one(fc, w, use_prepared, &p);
            ExecStatusType want = w->kind == K_INSERT ? PGRES_COMMAND_OK : PGRES_TUPLES_OK;
            expect(res, want, fc->conn, w->name);
            switch (w->kind) {
            case K_ROWS:
                decode_users(res, w->limit);
                break;
            case K_PARAMS:
                decode_users(res, 1);
                break;
            case K_SERIES:
                decode_series(res, SERIES_ROWS);
                break;
            case K_INSERT:
                check_count(res, 1);
                break;
            case K_BATCH:
                break;
            }
            PQclear(res);
        }
        out[j] = now_ns() - t0;
    }
    free(rows);
}

static void print_ns(const int64_t *t, int n)
{
    fputs("ns", stdout);
    for (int j = 0; j < n; j++)
        printf(" %lld", (long long)t[j]);
    fputc('\n', stdout);
}

static bool parse_mode(const char *mode)
{
    if (strcmp(mode, "prepared") == 0)
        return true;
    if (strcmp(mode, "exec") != 0)
        fail("mode must be exec or prepared", mode);
    return false;
}

/* Setup's DROP TABLE IF EXISTS notices are not worth a line on the harness's terminal. */
static void ignore_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

/* "-" reads the DSN from stdin's first line, keeping a password off the command line. */
static PGconn *connect_or_die(const char *dsn)
{
    char buf[4096];
    if (strcmp(dsn, "-") == 0) {
        if (!fgets(buf, sizeof buf, stdin))
            fail("connect", "no DSN on stdin");
        buf[strcspn(buf, "\n")] = '\0';
        dsn = buf;
    }
    PGconn *conn = PQconnectdb(dsn);
    if (PQstatus(conn) != CONNECTION_OK)
        fail("connect", PQerrorMessage(conn));
    PQsetNoticeProcessor(conn, ignore_notice, NULL);
    return conn;
}

/* ---- serve mode ---- */

static void serve_sql(PGconn *conn, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_TUPLES_OK) {
        for (int i = 0; i < PQntuples(res); i++) {
            fputs("row ", stdout);
            for (int c = 0; c < PQnfields(res); c++) {
                if (c)
                    fputc('\t', stdout);
                fputs(PQgetvalue(res, i, c), stdout);
            }
            fputc('\n', stdout);
        }
    } else if (st != PGRES_COMMAND_OK) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", PQresultErrorMessage(res));
        for (char *c = msg; *c; c++)
            if (*c == '\n')
                *c = ' ';
        printf("error %s\n", msg);
    }
    PQclear(res);
    printf("end\n");
}

static int serve(const char *dsn)
{
    serving = true;
    floor_conn fc = {.conn = connect_or_die(dsn)};
    printf("hello %d %d %d\n", PQbackendPID(fc.conn), PQlibVersion(),
           PQserverVersion(fc.conn));
    fflush(stdout);

    size_t cap = 0;
    char *line = NULL;
    ssize_t len;
    int64_t *times = NULL;
    int times_cap = 0;
    while ((len = getline(&line, &cap, stdin)) > 0) {
        if (line[len - 1] == '\n')
            line[--len] = '\0';
        if (strncmp(line, "sql ", 4) == 0) {
            serve_sql(fc.conn, line + 4);
        } else if (strncmp(line, "run ", 4) == 0) {
            char name[64], mode[16];
            long long first;
            int n;
            if (sscanf(line + 4, "%63s %15s %d %lld", name, mode, &n, &first) != 4 || n < 0)
                fail("bad command", line);
            const workload *w = find_workload(name);
            if (!w)
                fail("unknown workload", name);
            if (n > times_cap) {
                times = realloc(times, sizeof(int64_t) * (size_t)n);
                if (!times)
                    fail("serve", "out of memory");
                times_cap = n;
            }
            run(&fc, w, parse_mode(mode), first, n, times);
            print_ns(times, n);
            printf("end\n");
        } else if (strcmp(line, "quit") == 0) {
            break;
        } else {
            fail("bad command", line);
        }
        fflush(stdout);
    }
    free(line);
    free(times);
    PQfinish(fc.conn);
    return 0;
}

/* ---- main ---- */

static int usage(void)
{
    fprintf(stderr, "usage: floor --list\n"
                    "       floor --serve DSN\n"
                    "       floor DSN WORKLOAD exec|prepared ITERATIONS [WARMUP]\n");
    return 2;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--list") == 0) {
        for (size_t w = 0; w < N_WORKLOADS; w++)
            printf("%s\t%s\n", WORKLOADS[w].name, WORKLOADS[w].sql);
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "--serve") == 0)
        return serve(argv[2]);
    if (argc != 5 && argc != 6)
        return usage();

    const workload *w = find_workload(argv[2]);
    if (!w)
        fail("unknown workload", argv[2]);
    bool use_prepared = parse_mode(argv[3]);
    int n = atoi(argv[4]);
    int warmup = argc == 6 ? atoi(argv[5]) : 0;
    if (n <= 0 || warmup < 0)
        return usage();

    floor_conn fc = {.conn = connect_or_die(argv[1])};
    int64_t *times = malloc(sizeof(int64_t) * (size_t)(n > warmup ? n : warmup));
    if (!times)
        fail("main", "out of memory");
    if (use_prepared)
        prepare(&fc, w);
    if (warmup)
        run(&fc, w, use_prepared, 0, warmup, times);
    long before = peak_rss_kib();
    run(&fc, w, use_prepared, warmup, n, times);
    long after = peak_rss_kib();

    printf("pid %d\n", PQbackendPID(fc.conn));
    print_ns(times, n);
    printf("rss_kib %ld %ld\n", before, after);
    free(times);
    PQfinish(fc.conn);
    return 0;
}
