/* hstore (contrib extension; its OID differs per database, so a client finds it by
 * name in the catalog) -> dict[str, str | None].
 * Wire form (hstore_send): int32 pair count, then per pair int32 key length and the
 * key's bytes, int32 value length (-1 for NULL) and the value's bytes. Keys are
 * unique and sorted by the server; a repeated key here keeps the last value. */
#include "oxpg/codecs.h"

PyObject *oxpg_decode_hstore(OxpgState *st, const char *data, int len)
{
    if (OXPG_UNLIKELY(len < 4))
        return oxpg_decode_malformed(st, "hstore", len);
    int32_t count = (int32_t)oxpg_load_u32(data);
    /* Each pair takes at least its two 4-byte lengths. */
    if (count < 0 || count > (len - 4) / 8)
        return oxpg_decode_malformed(st, "hstore", len);
    PyObject *dict = PyDict_New();
    if (dict == NULL)
        return NULL;
    const char *p = data + 4;
    const char *end = data + len;
    for (int32_t i = 0; i < count; i++) {
        if (end - p < 4)
            goto malformed;
        int32_t klen = (int32_t)oxpg_load_u32(p);
        p += 4;
        if (klen < 0 || klen > end - p)
            goto malformed;
        const char *key_data = p;
        p += klen;
        if (end - p < 4)
            goto malformed;
        int32_t vlen = (int32_t)oxpg_load_u32(p);
        p += 4;
        if (vlen < -1 || (vlen > 0 && vlen > end - p))
            goto malformed;
        PyObject *key = oxpg_decode_text(st, key_data, klen);
        if (key == NULL)
            goto fail;
        PyObject *value = vlen == -1 ? Py_NewRef(Py_None) : oxpg_decode_text(st, p, vlen);
        if (vlen > 0)
            p += vlen;
        if (value == NULL) {
            Py_DECREF(key);
            goto fail;
        }
        int rc = PyDict_SetItem(dict, key, value);
        Py_DECREF(key);
        Py_DECREF(value);
        if (rc < 0)
            goto fail;
    }
    if (p != end)
        goto malformed;
    return dict;
malformed:
    oxpg_decode_malformed(st, "hstore", len);
fail:
    Py_DECREF(dict);
    return NULL;
}
