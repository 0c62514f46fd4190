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
 * as the caller saw them: it first picks the writers that may be written
 * directly, then writes to all of them.
 *
 * On Linux the writes of a large broadcast go to the kernel through io_uring:
 * one io_uring_enter() submits up to RING_ENTRIES sends (the same non-blocking
 * send, MSG_DONTWAIT | MSG_NOSIGNAL, so a full buffer is reported at once,
 * never waited for) and returns when all have completed, which saves the
 * system call's own cost on each recipient but the first (measured in
 * bench/RESULTS.md). The ring is opened on first use, once per process (a
 * forked child opens its own); where io_uring is missing or refused (an old
 * kernel, a seccomp profile, io_uring_disabled), or fails once, the plain
 * loop of send() is used, deciding exactly the same. set_uring() turns it off.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#if defined(__linux__) && defined(__has_include)
#if __has_include(<linux/io_uring.h>)
#include <linux/io_uring.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
/* IORING_OP_SEND is an enum member: IORING_FEAT_NATIVE_WORKERS (5.12) stands
   for a header recent enough to have it. */
#if defined(__NR_io_uring_setup) && defined(__NR_io_uring_enter) && \
    defined(IORING_FEAT_SINGLE_MMAP) && defined(IORING_FEAT_NATIVE_WORKERS)
#define HAVE_URING 1
#endif
#endif
#endif

#define SEND_FLAGS (MSG_DONTWAIT | MSG_NOSIGNAL)

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

/* One non-blocking send, retried only when a signal interrupted it. */
static ssize_t
send_once(int fd, const void *buf, size_t len)
{
    ssize_t n;
    do {
        n = send(fd, buf, len, SEND_FLAGS);
    } while (n < 0 && errno == EINTR);
    return n;
}

/* -- io_uring ------------------------------------------------------------------------------ */

/* set_uring(): 0 off, 1 on for batches of at least URING_MIN sends, 2 on for
   any batch (tests). */
static int uring_mode = 1;
/* Below this many sends, one send() each costs no more than the ring. */
#define URING_MIN 8

#ifdef HAVE_URING
#define RING_ENTRIES 256

typedef struct {
    int fd; /* -1: not open */
    int broken; /* refused or failed: the plain loop from now on */
    void *ring;
    size_t ring_size;
    struct io_uring_sqe *sqes;
    size_t sqes_size;
    unsigned entries;
    unsigned *sq_head, *sq_tail, *sq_mask;
    unsigned *cq_head, *cq_tail, *cq_mask;
    struct io_uring_cqe *cqes;
} Ring;

static Ring ring = {.fd = -1};
/* Set in a forked child (pthread_atfork): the ring it holds is its parent's.
   Cheaper than comparing getpid() at each broadcast, a system call. */
static volatile int ring_inherited = 0;

static void
on_fork_child(void)
{
    ring_inherited = 1;
}

static void
ring_forget(void)
{
    if (ring.ring != NULL) {
        munmap(ring.ring, ring.ring_size);
    }
    if (ring.sqes != NULL) {
        munmap(ring.sqes, ring.sqes_size);
    }
    if (ring.fd >= 0) {
        close(ring.fd);
    }
    ring.fd = -1;
    ring.ring = NULL;
    ring.sqes = NULL;
}

/* The ring's memory shared with the kernel, or NULL. */
static void *
ring_map(size_t size, off_t offset)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring.fd, offset);
    return p == MAP_FAILED ? NULL : p;
}

/* Kernels from 6.1 on: a send with MSG_DONTWAIT that finds no room completes
   with -EAGAIN at once (older ones may wait for room, which would block the
   event loop here). */
static int
kernel_recent_enough(void)
{
    struct utsname u;
    int major = 0, minor = 0;

    if (uname(&u) < 0 || sscanf(u.release, "%d.%d", &major, &minor) != 2) {
        return 0;
    }
    return major > 6 || (major == 6 && minor >= 1);
}

/* 1 when the ring is open for this process, 0 when it cannot be. */
static int
ring_ready(void)
{
    struct io_uring_params p;
    unsigned *array;
    size_t sq_size, cq_size;
    int fd;

    if (ring.fd >= 0 && !ring_inherited) {
        return 1;
    }
    if (ring_inherited) {
        /* Inherited through fork: the parent's ring (or its failure), not
           this process's. */
        ring_inherited = 0;
        ring_forget();
        ring.broken = 0;
    }
    if (ring.broken) {
        return 0;
    }
    ring.broken = 1; /* until it is open */
    if (!kernel_recent_enough()) {
        return 0;
    }
    memset(&p, 0, sizeof p);
    fd = (int)syscall(__NR_io_uring_setup, RING_ENTRIES, &p);
    if (fd < 0) {
        return 0;
    }
    ring.fd = fd;
    if (!(p.features & IORING_FEAT_SINGLE_MMAP)) {
        ring_forget();
        return 0;
    }
    sq_size = p.sq_off.array + p.sq_entries * sizeof(unsigned);
    cq_size = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
    ring.ring_size = sq_size > cq_size ? sq_size : cq_size;
    ring.sqes_size = p.sq_entries * sizeof(struct io_uring_sqe);
    ring.ring = ring_map(ring.ring_size, IORING_OFF_SQ_RING);
    ring.sqes = ring_map(ring.sqes_size, IORING_OFF_SQES);
    if (ring.ring == NULL || ring.sqes == NULL) {
        ring_forget();
        return 0;
    }
    ring.entries = p.sq_entries;
    ring.sq_head = (unsigned *)((char *)ring.ring + p.sq_off.head);
    ring.sq_tail = (unsigned *)((char *)ring.ring + p.sq_off.tail);
    ring.sq_mask = (unsigned *)((char *)ring.ring + p.sq_off.ring_mask);
    ring.cq_head = (unsigned *)((char *)ring.ring + p.cq_off.head);
    ring.cq_tail = (unsigned *)((char *)ring.ring + p.cq_off.tail);
    ring.cq_mask = (unsigned *)((char *)ring.ring + p.cq_off.ring_mask);
    ring.cqes = (struct io_uring_cqe *)((char *)ring.ring + p.cq_off.cqes);
    /* Slot i of the ring always names entry i: entries are filled in order. */
    array = (unsigned *)((char *)ring.ring + p.sq_off.array);
    for (unsigned i = 0; i < p.sq_entries; i++) {
        array[i] = i;
    }
    ring.broken = 0;
    return 1;
}

static int
ring_enter(unsigned to_submit, unsigned min_complete)
{
    return (int)syscall(__NR_io_uring_enter, ring.fd, to_submit, min_complete,
                        IORING_ENTER_GETEVENTS, NULL, 0);
}

/* One send of buf to each of fds[0..count) (count <= ring.entries); result[j]
   is the bytes it sent, or negative (a completion's -errno, or -1 for a send
   not made). Returns the number of sends that
   completed; the others (only after a failure of the ring, which is then
   closed for good) were not made, their result -1. When some completion could
   not be collected, *in_flight is set: the kernel may still read buf. */
static Py_ssize_t
ring_send(const int *fds, Py_ssize_t count, const void *buf, size_t len, ssize_t *result,
          int *in_flight)
{
    unsigned tail = *ring.sq_tail, mask = *ring.sq_mask, head;
    unsigned submitted, completed = 0;

    for (Py_ssize_t j = 0; j < count; j++) {
        struct io_uring_sqe *sqe = &ring.sqes[(tail + (unsigned)j) & mask];
        memset(sqe, 0, sizeof *sqe);
        sqe->opcode = IORING_OP_SEND;
        sqe->fd = fds[j];
        sqe->addr = (uint64_t)(uintptr_t)buf;
        sqe->len = (uint32_t)len;
        sqe->msg_flags = SEND_FLAGS;
        sqe->user_data = (uint64_t)j;
        result[j] = -1;
    }
    __atomic_store_n(ring.sq_tail, tail + (unsigned)count, __ATOMIC_RELEASE);
    for (;;) {
        unsigned left = tail + (unsigned)count - __atomic_load_n(ring.sq_head, __ATOMIC_ACQUIRE);
        submitted = (unsigned)count - left;
        /* Collect what has completed. */
        head = *ring.cq_head;
        while (head != __atomic_load_n(ring.cq_tail, __ATOMIC_ACQUIRE)) {
            struct io_uring_cqe *cqe = &ring.cqes[head & *ring.cq_mask];
            if (cqe->user_data < (uint64_t)count) {
                result[cqe->user_data] = cqe->res;
            }
            head++;
            completed++;
        }
        __atomic_store_n(ring.cq_head, head, __ATOMIC_RELEASE);
        if (left == 0 && completed >= submitted) {
            return (Py_ssize_t)completed;
        }
        if (ring_enter(left, submitted + left - completed) < 0 && errno != EINTR) {
            break;
        }
    }
    /* The ring failed: take back what it did not consume (nothing reads the
       ring outside io_uring_enter), and use it no more. */
    __atomic_store_n(ring.sq_tail, __atomic_load_n(ring.sq_head, __ATOMIC_ACQUIRE),
                     __ATOMIC_RELEASE);
    if (completed < submitted) {
        *in_flight = 1;
    }
    else {
        ring_forget();
    }
    ring.broken = 1;
    return (Py_ssize_t)completed;
}
#endif /* HAVE_URING */

/* Writes buf to each of fds[0..count), result[j] being the bytes sent or negative. */
static void
send_each(const int *fds, Py_ssize_t count, const void *buf, size_t len, ssize_t *result,
          int *in_flight)
{
    Py_ssize_t j = 0;

#ifdef HAVE_URING
    /* (A completion reports at most INT_MAX bytes: larger frames take send().) */
    if (uring_mode && count >= (uring_mode == 2 ? 1 : URING_MIN) && len <= (1u << 30) &&
        ring_ready()) {
        while (j < count) {
            Py_ssize_t chunk = count - j < (Py_ssize_t)ring.entries ? count - j
                                                                   : (Py_ssize_t)ring.entries;
            Py_ssize_t done = ring_send(fds + j, chunk, buf, len, result + j, in_flight);
            if (done < chunk) {
                if (*in_flight) {
                    /* Not knowing what the kernel still does, send nothing more.
                       The unfinished ones go back to the caller as not sent, so
                       their transports write them again: should the kernel
                       still complete them, those recipients get the frames
                       twice. Not seen: with MSG_DONTWAIT every send completes
                       inside the io_uring_enter() that submits it, so this needs
                       that call to fail while sends are in flight. */
                    for (Py_ssize_t k = j + chunk; k < count; k++) {
                        result[k] = -1;
                    }
                    return;
                }
                /* The ring failed: the unmade sends of this chunk and the
                   rest, one by one. */
                for (Py_ssize_t k = j; k < j + chunk; k++) {
                    if (result[k] < 0) {
                        result[k] = send_once(fds[k], buf, len);
                    }
                }
            }
            j += chunk;
            if (ring.broken) {
                break;
            }
        }
    }
#else
    (void)in_flight;
#endif
    for (; j < count; j++) {
        result[j] = send_once(fds[j], buf, len);
    }
}

static PyObject *
send_all(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer data;
    PyObject *writers, *rest = NULL;
    Py_ssize_t n, count = 0;
    Py_ssize_t *index;
    ssize_t *result;
    int *fds, in_flight = 0;
    void *block;

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
    /* Nothing called here changes the list (the caller's own); its length is
       read once. */
    n = PyList_GET_SIZE(writers);
    /* Per eligible writer: its index, the send's result and its descriptor, in
       one block (the two 8-byte arrays first, so each part is aligned). */
    if ((size_t)n > PY_SSIZE_T_MAX / (2 * sizeof(ssize_t) + sizeof(int))) {
        PyBuffer_Release(&data);
        return PyErr_NoMemory();
    }
    block = PyMem_Malloc((n > 0 ? (size_t)n : 1) * (2 * sizeof(ssize_t) + sizeof(int)));
    if (block == NULL) {
        PyBuffer_Release(&data);
        return PyErr_NoMemory();
    }
    index = (Py_ssize_t *)block;
    result = (ssize_t *)(index + n);
    fds = (int *)(result + n);
    /* The writers that may be written directly. */
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *w = PyList_GET_ITEM(writers, i);
        long fd;

        Py_INCREF(w);
        fd = direct_fd(w);
        if (fd >= 0) {
            int idle = transport_idle(w);
            if (idle < 0) {
                fd = -2;
            }
            else if (!idle) {
                fd = -1;
            }
        }
        Py_DECREF(w);
        if (fd == -2) {
            goto done;
        }
        if (fd >= 0) {
            index[count] = i;
            fds[count] = (int)fd;
            count++;
        }
    }
    send_each(fds, count, data.buf, (size_t)data.len, result, &in_flight);
    if (in_flight) {
        /* The kernel may still read the frames: they must outlive this call. */
        Py_INCREF(args[1]);
    }
    /* The others, in order: those not eligible (0), those not taken whole. */
    rest = PyList_New(0);
    if (rest == NULL) {
        goto done;
    }
    for (Py_ssize_t i = 0, k = 0; i < n; i++) {
        Py_ssize_t sent = 0;
        if (k < count && index[k] == i) {
            ssize_t r = result[k++];
            if (r == data.len) {
                continue;
            }
            sent = r > 0 ? (Py_ssize_t)r : 0;
        }
        if (append_rest(rest, i, sent) < 0) {
            Py_CLEAR(rest);
            goto done;
        }
    }
done:
    PyMem_Free(block);
    PyBuffer_Release(&data);
    return rest;
}

static PyObject *
set_uring(PyObject *module, PyObject *arg)
{
    long mode = PyLong_AsLong(arg);
    if (mode == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (mode < 0 || mode > 2) {
        PyErr_SetString(PyExc_ValueError, "set_uring(): 0 (off), 1 (on) or 2 (every batch)");
        return NULL;
    }
    uring_mode = (int)mode;
    Py_RETURN_NONE;
}

static PyObject *
uring_state(PyObject *module, PyObject *unused)
{
#ifdef HAVE_URING
    if (uring_mode == 0) {
        return PyUnicode_FromString("off");
    }
    if (ring.fd >= 0 && !ring_inherited && !ring.broken) {
        return PyUnicode_FromString("open");
    }
    if (ring.broken && !ring_inherited) {
        return PyUnicode_FromString("unavailable");
    }
    return PyUnicode_FromString("unopened");
#else
    return PyUnicode_FromString("unsupported");
#endif
}

static PyMethodDef fanout_methods[] = {
    {"send_all", (PyCFunction)(void (*)(void))send_all, METH_FASTCALL,
     "send_all(writers, data) -> list: write data straight to each writer's descriptor "
     "where it may be; the flat [index, sent, ...] of the others."},
    {"set_uring", set_uring, METH_O,
     "set_uring(mode): 0 writes with one send() each, 1 (the default) submits batches "
     "through io_uring where the kernel offers it, 2 does so for batches of any size."},
    {"uring_state", uring_state, METH_NOARGS,
     "uring_state() -> str: 'open', 'unopened' (not needed yet), 'unavailable' "
     "(refused or failed here), 'off' (set_uring(0)) or 'unsupported' (built without "
     "io_uring)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef fanout_module = {
    PyModuleDef_HEAD_INIT, "socketwire._fanout",
    "A broadcast's frames written to many WebSockets in one compiled loop.", -1, fanout_methods,
};

PyMODINIT_FUNC
PyInit__fanout(void)
{
#ifdef HAVE_URING
    if (pthread_atfork(NULL, NULL, on_fork_child) != 0) {
        uring_mode = 0; /* no way to tell a child from its parent: no ring */
    }
#endif
    s_direct = PyUnicode_InternFromString("direct");
    s_transport = PyUnicode_InternFromString("transport");
    s_is_closing = PyUnicode_InternFromString("is_closing");
    s_buffer_size = PyUnicode_InternFromString("get_write_buffer_size");
    if (s_direct == NULL || s_transport == NULL || s_is_closing == NULL || s_buffer_size == NULL) {
        return NULL;
    }
    return PyModule_Create(&fanout_module);
}
