/* Geometric types -> tuples of floats (shapes in docs/types.md):
 *   point (x, y)            line (a, b, c) for ax + by + c = 0
 *   lseg ((x1, y1), (x2, y2))   box ((x_high, y_high), (x_low, y_low))
 *   path (points, closed)   polygon points   circle ((x, y), r)
 * where points is a tuple of (x, y). Every coordinate is a float8 on the wire. */
#include "oxpg/codecs.h"

#define POINT_SIZE 16

static double load_double(const char *p)
{
    uint64_t bits = oxpg_load_u64(p);
    double d;
    memcpy(&d, &bits, 8);
    return d;
}

static PyObject *point_at(const char *p)
{
    return Py_BuildValue("(dd)", load_double(p), load_double(p + 8));
}

/* A tuple of n points starting at p; the caller checked the length. */
static PyObject *points_at(const char *p, int32_t n)
{
    PyObject *tuple = PyTuple_New(n);
    if (tuple == NULL)
        return NULL;
    for (int32_t k = 0; k < n; k++) {
        PyObject *point = point_at(p + (size_t)k * POINT_SIZE);
        if (point == NULL) {
            Py_DECREF(tuple);
            return NULL;
        }
        PyTuple_SET_ITEM(tuple, k, point);
    }
    return tuple;
}

/* The point count at data + offset, checked against len; -1 when malformed. */
static int32_t point_count(const char *data, int len, int offset)
{
    if (len < offset + 4)
        return -1;
    int32_t n = (int32_t)oxpg_load_u32(data + offset);
    if (n < 0 || (int64_t)offset + 4 + (int64_t)n * POINT_SIZE != len)
        return -1;
    return n;
}

PyObject *oxpg_decode_point(OxpgState *st, const char *data, int len)
{
    if (OXPG_UNLIKELY(len != POINT_SIZE))
        return oxpg_decode_malformed(st, "point", len);
    return point_at(data);
}

PyObject *oxpg_decode_line(OxpgState *st, const char *data, int len)
{
    if (OXPG_UNLIKELY(len != 24))
        return oxpg_decode_malformed(st, "line", len);
    return Py_BuildValue("(ddd)", load_double(data), load_double(data + 8), load_double(data + 16));
}

/* lseg and box: two points. A box comes upper-right corner first, as PostgreSQL prints it. */
PyObject *oxpg_decode_lseg(OxpgState *st, const char *data, int len)
{
    if (OXPG_UNLIKELY(len != 2 * POINT_SIZE))
        return oxpg_decode_malformed(st, "lseg", len);
    return points_at(data, 2);
}

PyObject *oxpg_decode_box(OxpgState *st, const char *data, int len)
{
    if (OXPG_UNLIKELY(len != 2 * POINT_SIZE))
        return oxpg_decode_malformed(st, "box", len);
    return points_at(data, 2);
}

/* path: a closed flag byte, int32 point count, the points -> (points, closed). */
PyObject *oxpg_decode_path(OxpgState *st, const char *data, int len)
{
    int32_t n = point_count(data, len, 1);
    if (OXPG_UNLIKELY(n < 0 || (data[0] != 0 && data[0] != 1)))
        return oxpg_decode_malformed(st, "path", len);
    PyObject *points = points_at(data + 5, n);
    if (points == NULL)
        return NULL;
    PyObject *value = PyTuple_Pack(2, points, data[0] ? Py_True : Py_False);
    Py_DECREF(points);
    return value;
}

/* polygon: int32 point count, the points -> a tuple of points. */
PyObject *oxpg_decode_polygon(OxpgState *st, const char *data, int len)
{
    int32_t n = point_count(data, len, 0);
    if (OXPG_UNLIKELY(n < 0))
        return oxpg_decode_malformed(st, "polygon", len);
    return points_at(data + 4, n);
}

/* circle: center x, center y, radius -> ((x, y), r). */
PyObject *oxpg_decode_circle(OxpgState *st, const char *data, int len)
{
    if (OXPG_UNLIKELY(len != 24))
        return oxpg_decode_malformed(st, "circle", len);
    return Py_BuildValue("((dd)d)", load_double(data), load_double(data + 8), load_double(data + 16));
}
