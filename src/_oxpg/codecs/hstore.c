/* hstore (contrib extension; its OID differs per database, so a client finds it by
 * name in the catalog) -> dict[str, str | None].
 * Wire form (hstore_send): int32 pair count, then per pair int32 key length and the
 * key's bytes, int32 value length (-1 for NULL) and the value's bytes. Keys are
 * unique and sorted by the server; a repeated key here keeps the last value. */
#include "oxpg/codecs.h"
#include "oxpg/rcursor.h"

PyObject *oxpg_decode_hstore(OxpgState *st, const char *data, int len)
{
    OxpgReadCursor in = oxpg_rc(data, len);
    int32_t count;
    /* Each pair takes at least its two 4-byte lengths. */
    if (oxpg_rc_i32(&in, &count) < 0 || count < 0 || count > oxpg_rc_left(&in) / 8)
        return oxpg_decode_malformed(st, "hstore", len);
    PyObject *dict = PyDict_New();
    if (dict == NULL)
        return NULL;
    for (int32_t i = 0; i < count; i++) {
        const char *key_data, *value_data;
        int32_t klen, vlen;
        /* A key is never NULL; a value may be. */
        if (oxpg_rc_value(&in, &key_data, &klen) < 0 || key_data == NULL ||
            oxpg_rc_value(&in, &value_data, &vlen) < 0)
            goto malformed;
        PyObject *key = oxpg_decode_text(st, key_data, klen);
        if (key == NULL)
            goto fail;
        PyObject *value = value_data == NULL ? Py_NewRef(Py_None) : oxpg_decode_text(st, value_data, vlen);
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
    if (!oxpg_rc_done(&in))
        goto malformed;
    return dict;
malformed:
    oxpg_decode_malformed(st, "hstore", len);
fail:
    Py_DECREF(dict);
    return NULL;
}
