/* Shared basics: Python and libpq headers, branch hints, big-endian access. */
#ifndef OXPG_COMMON_H
#define OXPG_COMMON_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <libpq-fe.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#if defined(__GNUC__) || defined(__clang__)
#define OXPG_LIKELY(x) __builtin_expect(!!(x), 1)
#define OXPG_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define OXPG_NOINLINE __attribute__((noinline))
#else
#define OXPG_LIKELY(x) (x)
#define OXPG_UNLIKELY(x) (x)
#define OXPG_NOINLINE
#endif

/* The wire is big-endian; these read and write through memcpy so unaligned
 * buffers from libpq are safe on every architecture. */
static inline uint16_t oxpg_load_u16(const char *p)
{
    unsigned char b[2];
    memcpy(b, p, 2);
    return (uint16_t)((b[0] << 8) | b[1]);
}

static inline uint32_t oxpg_load_u32(const char *p)
{
    unsigned char b[4];
    memcpy(b, p, 4);
    return ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | b[3];
}

static inline uint64_t oxpg_load_u64(const char *p)
{
    return ((uint64_t)oxpg_load_u32(p) << 32) | oxpg_load_u32(p + 4);
}

static inline void oxpg_store_u16(char *p, uint16_t v)
{
    unsigned char b[2] = {(unsigned char)(v >> 8), (unsigned char)v};
    memcpy(p, b, 2);
}

static inline void oxpg_store_u32(char *p, uint32_t v)
{
    unsigned char b[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};
    memcpy(p, b, 4);
}

static inline void oxpg_store_u64(char *p, uint64_t v)
{
    oxpg_store_u32(p, (uint32_t)(v >> 32));
    oxpg_store_u32(p + 4, (uint32_t)v);
}

/* Seconds on a monotonic clock. */
static inline double oxpg_monotonic(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* PostgreSQL's epoch (2000-01-01) as a proleptic Gregorian ordinal (date.toordinal()). */
#define OXPG_PG_EPOCH_ORDINAL 730120
#define OXPG_USECS_PER_DAY INT64_C(86400000000)

#endif
