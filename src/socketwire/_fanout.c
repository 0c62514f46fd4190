/*
 * socketwire._fanout: a broadcast's frames written to many WebSockets of the
 * built-in server in one compiled loop (see socketwire/engine/fanout.py, whose
 * pure-Python send_all decides exactly the same).
 *
 * send_all(writers, data) -> list: for each writer (or None) of the list, the
 * frames go straight to its descriptor with one non-blocking send() when the
 * writer offers one (its "direct" attribute is >= 0) and its transport is
 * neither closing nor holding unsent bytes (a direct write would overtake
 * them). Returns the flat list [index, sent, index, sent, ...] of the writers
 * that did not take the whole frames this way: sent 0 when nothing was
 * written (not eligible, or the kernel's buffer is full, or an error that the
 * transport's own write will meet and report), sent > 0 when only the first
 * bytes were taken (the rest must follow before anything else).
 *
 * The loop calls nothing but the transports' is_closing() and
 * get_write_buffer_size(), so no handler runs in between and the writers stay
 * as the caller saw them.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <sys/socket.h>
#include <sys/types.h>

static PyObject *s_direct, *s_transport, *s_is_closing, *s_buffer_size;

/* The writer's descriptor for a direct write, -1 when it has none, -2 on error. */
static long
direct_fd(PyObject *w)
{
    PyObject *v;
    long fd;

    if (w == Py_None) {
        return -1;
    }
    v = PyObject_GetAttr(w, s_direct);
    if (v == NULL) {
        if (PyErr_ExceptionMatches(PyExc_AttributeError)) {
            PyErr_Clear(); /* a writer that never writes directly (ASGI, a test's) */
            return -1;
        }
        return -2;
    }
    fd = PyLong_AsLong(v);
    Py_DECREF(v);
    if (fd == -1 && PyErr_Occurred()) {
        return -2;
    }
    return fd < 0 ? -1 : fd;
}

/* 1 when the transport of w may be written around (open, nothing buffered),
   0 when not, -1 on error. */
static int
transport_idle(PyObject *w)
{
    PyObject *t, *r;
    int closing;
    Py_ssize_t buffered;

    t = PyObject_GetAttr(w, s_transport);
    if (t == NULL) {
        return -1;
    }
    r = PyObject_CallMethodNoArgs(t, s_is_closing);
    if (r == NULL) {
        Py_DECREF(t);
        return -1;
    }
    closing = PyObject_IsTrue(r);
    Py_DECREF(r);
    if (closing != 0) {
        Py_DECREF(t);
        return closing < 0 ? -1 : 0;
    }
    r = PyObject_CallMethodNoArgs(t, s_buffer_size);
    Py_DECREF(t);
    if (r == NULL) {
        return -1;
    }
    buffered = PyLong_AsSsize_t(r);
    Py_DECREF(r);
    if (buffered == -1 && PyErr_Occurred()) {
        return -1;
    }
    return buffered == 0;
}

static int
append_rest(PyObject *rest, Py_ssize_t i, Py_ssize_t sent)
{
    PyObject *a = PyLong_FromSsize_t(i), *b;
    if (a == NULL) {
        return -1;
    }
    b = PyLong_FromSsize_t(sent);
    if (b == NULL || PyList_Append(rest, a) < 0 || PyList_Append(rest, b) < 0) {
        Py_DECREF(a);
        Py_XDECREF(b);
        return -1;
    }
    Py_DECREF(a);
    Py_DECREF(b);
    return 0;
}

static PyObject *
send_all(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer data;
    PyObject *writers, *rest;
    Py_ssize_t i;

    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "send_all() takes exactly 2 arguments (writers, data)");
        return NULL;
    }
    writers = args[0];
    if (!PyList_CheckExact(writers)) {
        PyErr_SetString(PyExc_TypeError, "send_all(): writers must be a list");
        return NULL;
    }
    if (PyObject_GetBuffer(args[1], &data, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    rest = PyList_New(0);
    if (rest == NULL) {
        goto done;
    }
    /* The list is the caller's own and nothing called here changes it; its
       length is read again at each step all the same. */
    for (i = 0; i < PyList_GET_SIZE(writers); i++) {
        PyObject *w = PyList_GET_ITEM(writers, i);
        Py_ssize_t sent = 0;
        long fd;

        Py_INCREF(w);
        fd = direct_fd(w);
        if (fd == -2) {
            Py_DECREF(w);
            Py_CLEAR(rest);
            goto done;
        }
        if (fd >= 0) {
            int idle = transport_idle(w);
            if (idle < 0) {
                Py_DECREF(w);
                Py_CLEAR(rest);
                goto done;
            }
            if (idle) {
                ssize_t n;
                do {
                    n = send((int)fd, data.buf, (size_t)data.len, MSG_DONTWAIT | MSG_NOSIGNAL);
                } while (n < 0 && errno == EINTR);
                if (n == data.len) {
                    Py_DECREF(w);
                    continue;
                }
                sent = n > 0 ? n : 0;
            }
        }
        Py_DECREF(w);
        if (append_rest(rest, i, sent) < 0) {
            Py_CLEAR(rest);
            goto done;
        }
    }
done:
    PyBuffer_Release(&data);
    return rest;
}

static PyMethodDef fanout_methods[] = {
    {"send_all", (PyCFunction)(void (*)(void))send_all, METH_FASTCALL,
     "send_all(writers, data) -> list: write data straight to each writer's descriptor "
     "where it may be; the flat [index, sent, ...] of the others."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef fanout_module = {
    PyModuleDef_HEAD_INIT, "socketwire._fanout",
    "A broadcast's frames written to many WebSockets in one compiled loop.", -1, fanout_methods,
};

PyMODINIT_FUNC
PyInit__fanout(void)
{
    s_direct = PyUnicode_InternFromString("direct");
    s_transport = PyUnicode_InternFromString("transport");
    s_is_closing = PyUnicode_InternFromString("is_closing");
    s_buffer_size = PyUnicode_InternFromString("get_write_buffer_size");
    if (s_direct == NULL || s_transport == NULL || s_is_closing == NULL || s_buffer_size == NULL) {
        return NULL;
    }
    return PyModule_Create(&fanout_module);
}
