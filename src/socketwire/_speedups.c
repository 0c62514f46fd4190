/*
 * Compiled helpers of socketwire's sans-I/O core.
 *
 * apply_mask(data, mask) -> bytes: RFC 6455 section 5.3 masking (XOR with the
 * 4-byte key repeated), eight bytes at a time. Every frame a client sends is
 * masked, so a server unmasks every incoming message; in pure Python the best
 * is one big-integer XOR, several times slower (see core/websocket/frames.py,
 * which falls back to it when this module is not built).
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

static PyObject *
apply_mask(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer data, mask;
    PyObject *out = NULL;

    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "apply_mask() takes exactly 2 arguments (data, mask)");
        return NULL;
    }
    if (PyObject_GetBuffer(args[0], &data, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    if (PyObject_GetBuffer(args[1], &mask, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&data);
        return NULL;
    }
    if (mask.len != 4) {
        PyErr_Format(PyExc_ValueError, "a masking key is 4 bytes, got %zd", mask.len);
        goto done;
    }
    out = PyBytes_FromStringAndSize(NULL, data.len);
    if (out != NULL) {
        const unsigned char *src = (const unsigned char *)data.buf;
        const unsigned char *key = (const unsigned char *)mask.buf;
        unsigned char *dst = (unsigned char *)PyBytes_AS_STRING(out);
        Py_ssize_t n = data.len, i = 0;
        uint32_t k32;
        uint64_t k64;

        /* Both halves of k64 hold the key in memory order, whatever the
           endianness, so block i (a multiple of 8) starts at key byte 0. */
        memcpy(&k32, key, 4);
        k64 = ((uint64_t)k32 << 32) | (uint64_t)k32;
        for (; i + 8 <= n; i += 8) {
            uint64_t v;
            memcpy(&v, src + i, 8);
            v ^= k64;
            memcpy(dst + i, &v, 8);
        }
        for (; i < n; i++) {
            dst[i] = src[i] ^ key[i & 3];
        }
    }
done:
    PyBuffer_Release(&mask);
    PyBuffer_Release(&data);
    return out;
}

static PyMethodDef speedups_methods[] = {
    {"apply_mask", (PyCFunction)(void (*)(void))apply_mask, METH_FASTCALL,
     "apply_mask(data, mask) -> bytes: XOR data with the 4-byte mask repeated."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT, "socketwire._speedups",
    "Compiled helpers of socketwire's sans-I/O core.", -1, speedups_methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModule_Create(&speedups_module);
}
