/*
 * Compiled helpers of socketwire's sans-I/O core.
 *
 * apply_mask(data, mask) -> bytes: RFC 6455 section 5.3 masking (XOR with the
 * 4-byte key repeated), eight bytes at a time. Every frame a client sends is
 * masked, so a server unmasks every incoming message; in pure Python the best
 * is one big-integer XOR, several times slower (see core/websocket/frames.py,
 * which falls back to it when this module is not built).
 *
 * scan_events(loads, reserved, data, max_message_size, validate_utf8): the
 * commonest read of a server, decoded in one call: whole masked WebSocket text
 * frames, each an Engine.IO message carrying a Socket.IO EVENT on "/" with or
 * without an ack id ("42[...]", "42<id>[...]"). Returns the flat list
 * [ack_id, data, ack_id, data, ...] (ack_id None when none was asked for), or
 * None when anything in the read is different (see core/wire.py, whose
 * pure-Python scan_events decides exactly the same).
 *
 * scan_packets(loads, reserved, data, max_message_size, validate_utf8): the
 * same for a client: whole unmasked text frames, each an EVENT on "/" or an
 * ACK on "/" ("43<id>[...]"), as the flat list [ptype, ack_id, data, ...]
 * (ptype 2 or 3), or None. Both share scan_frames and scan_one, in a mode.
 *
 * ack_frame(ack_id, body): the unmasked WebSocket frame of the Engine.IO
 * message of a Socket.IO ACK on "/" ("43<id>" + body), or None for an id
 * outside 0..2**63-1.
 *
 * message_frame(text, mask): the masked WebSocket frame a client sends for the
 * Engine.IO message "4" + text, in one allocation.
 *
 * scan_head(shared_values, shared_max_len, max_head_size, max_headers, data):
 * the commonest request head of a server, read in one call: a complete
 * "GET <origin-form target> HTTP/1.1" head with no body, every line in the
 * strict grammar of RFC 9112 (see http/head.py). Returns (method, target,
 * headers, end, keep_alive, upgrade) or None, in which case httptools reads the
 * same bytes and decides (errors included).
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

/* RFC 3629 UTF-8, as strict as Python's decoder: no overlong forms, no
   surrogates, nothing past U+10FFFF. ASCII runs go eight bytes at a time. */
static int
utf8_valid(const unsigned char *s, Py_ssize_t n)
{
    Py_ssize_t i = 0;
    while (i < n) {
        if (i + 8 <= n) {
            uint64_t v;
            memcpy(&v, s + i, 8);
            if (!(v & 0x8080808080808080ULL)) {
                i += 8;
                continue;
            }
        }
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
        }
        else if (c >= 0xC2 && c <= 0xDF) {
            if (i + 1 >= n || (s[i + 1] & 0xC0) != 0x80) {
                return 0;
            }
            i += 2;
        }
        else if (c >= 0xE0 && c <= 0xEF) {
            if (i + 2 >= n || (s[i + 1] & 0xC0) != 0x80 || (s[i + 2] & 0xC0) != 0x80) {
                return 0;
            }
            if (c == 0xE0 && s[i + 1] < 0xA0) {
                return 0; /* overlong */
            }
            if (c == 0xED && s[i + 1] > 0x9F) {
                return 0; /* surrogate */
            }
            i += 3;
        }
        else if (c >= 0xF0 && c <= 0xF4) {
            if (i + 3 >= n || (s[i + 1] & 0xC0) != 0x80 || (s[i + 2] & 0xC0) != 0x80
                || (s[i + 3] & 0xC0) != 0x80) {
                return 0;
            }
            if (c == 0xF0 && s[i + 1] < 0x90) {
                return 0; /* overlong */
            }
            if (c == 0xF4 && s[i + 1] > 0x8F) {
                return 0; /* past U+10FFFF */
            }
            i += 4;
        }
        else {
            return 0;
        }
    }
    return 1;
}

/* Limits shared with core/wire.py and core/socketio/packet.py. */
#define WIRE_MAX_ID_DIGITS 18   /* ids up to 10**18 - 1 fit in 63 bits */
#define WIRE_MAX_DEPTH 254      /* packet.MAX_DEPTH */
#define WIRE_DEPTH_SCREEN 509   /* packet._DEPTH_SCREEN: 2 * MAX_DEPTH + 1 */

/* What a scan reads: a server reads masked frames of EVENTs and gives pairs
   [ack_id, data]; a client reads unmasked frames (RFC 6455 section 5.1) of
   EVENTs and ACKs and gives triples [ptype, ack_id, data]. */
typedef enum { SCAN_SERVER, SCAN_CLIENT } scan_mode;

/* One frame's payload (at p, n bytes; masked with the key at mask, or not
   masked when mask is NULL): the packet it carries appended to out (0), not
   a packet of the fast path (1), or an error raised (-1). */
static int
scan_one(const unsigned char *p, Py_ssize_t n, const unsigned char *mask, scan_mode mode,
         int validate_utf8, PyObject *loads, PyObject *reserved, PyObject *out)
{
    unsigned char head[WIRE_MAX_ID_DIGITS + 3];
    Py_ssize_t k, i, depth;
    long long ack = 0;
    PyObject *body, *value, *name, *ack_obj;
    unsigned char *b;
    int is_ack;

    /* "4" (Engine.IO message), "2" (Socket.IO EVENT) or, for a client, "3"
       (ACK), digits, "[" */
    if (n < 3) {
        return 1;
    }
    for (k = 0; k < n && k < (Py_ssize_t)sizeof(head); k++) {
        head[k] = mask != NULL ? p[k] ^ mask[k & 3] : p[k];
        if (k >= 2 && head[k] == '[') {
            break;
        }
    }
    if (k >= n || k >= (Py_ssize_t)sizeof(head) || head[0] != '4') {
        return 1;
    }
    is_ack = head[1] == '3';
    if (head[1] != '2' && !(is_ack && mode == SCAN_CLIENT)) {
        return 1;
    }
    /* An ACK needs its id. */
    if (is_ack && k == 2) {
        return 1;
    }
    for (i = 2; i < k; i++) {
        if (head[i] < '0' || head[i] > '9') {
            return 1;
        }
        ack = ack * 10 + (head[i] - '0');
    }
    body = PyBytes_FromStringAndSize(NULL, n - k);
    if (body == NULL) {
        return -1;
    }
    b = (unsigned char *)PyBytes_AS_STRING(body);
    depth = 0;
    if (mask != NULL) {
        for (i = k; i < n; i++) {
            unsigned char c = p[i] ^ mask[i & 3];
            b[i - k] = c;
            depth += (c == '[') | (c == '{');
        }
    }
    else {
        memcpy(b, p + k, n - k);
        /* Brackets are only counted when the payload is long enough to nest
           too deep (below). */
        if (n - 1 > WIRE_DEPTH_SCREEN) {
            for (i = 0; i < n - k; i++) {
                depth += (b[i] == '[') | (b[i] == '{');
            }
        }
    }
    if (validate_utf8 && !utf8_valid(b, n - k)) {
        Py_DECREF(body);
        return 1;
    }
    /* A payload that might nest deeper than the encoder writes back takes the
       general decoder, which checks (packet.PacketDecoder._check_depth). */
    if (n - 1 > WIRE_DEPTH_SCREEN && depth > WIRE_MAX_DEPTH) {
        Py_DECREF(body);
        return 1;
    }
    value = PyObject_CallOneArg(loads, body);
    Py_DECREF(body);
    if (value == NULL) {
        if (PyErr_ExceptionMatches(PyExc_Exception)) {
            PyErr_Clear(); /* the general decoder has fallbacks and the exact error */
            return 1;
        }
        return -1;
    }
    /* socket.io-parser's isPayloadValid. Text that starts with "[" and that
       the decoder reads whole is an array; the check is kept for a decoder
       other than orjson. An ACK: an array (maybe empty). An EVENT: a
       non-empty array whose first element is a number or a string that is
       not a reserved name (only ints are numbers here, as in the general
       decoder). */
    if (!PyList_CheckExact(value) || (!is_ack && PyList_GET_SIZE(value) == 0)) {
        Py_DECREF(value);
        return 1;
    }
    if (!is_ack) {
        name = PyList_GET_ITEM(value, 0);
        if (PyUnicode_CheckExact(name)) {
            int r = PySet_Contains(reserved, name);
            if (r != 0) {
                Py_DECREF(value);
                return r < 0 ? -1 : 1;
            }
        }
        else if (!PyLong_CheckExact(name)) {
            Py_DECREF(value);
            return 1;
        }
    }
    if (k == 2) {
        ack_obj = Py_NewRef(Py_None);
    }
    else {
        ack_obj = PyLong_FromLongLong(ack);
        if (ack_obj == NULL) {
            Py_DECREF(value);
            return -1;
        }
    }
    if (mode == SCAN_CLIENT) {
        /* Small ints are shared: no allocation. */
        PyObject *ptype = PyLong_FromLong(is_ack ? 3 : 2);
        int r = ptype == NULL ? -1 : PyList_Append(out, ptype);
        Py_XDECREF(ptype);
        if (r < 0) {
            Py_DECREF(ack_obj);
            Py_DECREF(value);
            return -1;
        }
    }
    if (PyList_Append(out, ack_obj) < 0 || PyList_Append(out, value) < 0) {
        Py_DECREF(ack_obj);
        Py_DECREF(value);
        return -1;
    }
    Py_DECREF(ack_obj);
    Py_DECREF(value);
    return 0;
}

/* A whole read of frames (see scan_events and scan_packets below). */
static PyObject *
scan_frames(PyObject *const *args, Py_ssize_t nargs, scan_mode mode, const char *fname)
{
    Py_buffer data;
    Py_ssize_t max_size, pos = 0, n;
    Py_ssize_t key_len = mode == SCAN_SERVER ? 4 : 0;
    unsigned char mask_bit = mode == SCAN_SERVER ? 0x80 : 0;
    int validate_utf8;
    PyObject *loads, *reserved, *out = NULL;
    const unsigned char *d;

    if (nargs != 4 && nargs != 5) {
        PyErr_Format(PyExc_TypeError,
                     "%s() takes 4 or 5 arguments "
                     "(loads, reserved, data, max_message_size[, validate_utf8])",
                     fname);
        return NULL;
    }
    loads = args[0];
    reserved = args[1];
    max_size = PyLong_AsSsize_t(args[3]);
    if (max_size == -1 && PyErr_Occurred()) {
        return NULL;
    }
    validate_utf8 = nargs == 5 ? PyObject_IsTrue(args[4]) : 1;
    if (validate_utf8 < 0) {
        return NULL;
    }
    if (!PyAnySet_Check(reserved)) {
        PyErr_Format(PyExc_TypeError, "%s(): reserved must be a set or frozenset", fname);
        return NULL;
    }
    if (PyObject_GetBuffer(args[2], &data, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    d = (const unsigned char *)data.buf;
    n = data.len;
    if (n == 0) {
        goto none;
    }
    out = PyList_New(0);
    if (out == NULL) {
        goto done;
    }
    while (pos < n) {
        Py_ssize_t length, hp;
        int r;
        /* RFC 6455 section 5.2: FIN, no RSV bit, text; masked by a client,
           not by a server (section 5.1); a 7- or 16-bit length. Anything else
           (fragments, control frames, binary, 64-bit lengths, violations)
           takes the general parser. */
        if (n - pos < 2 || d[pos] != 0x81 || (d[pos + 1] & 0x80) != mask_bit) {
            goto none;
        }
        length = d[pos + 1] & 0x7F;
        hp = pos + 2;
        if (length == 127) {
            goto none;
        }
        if (length == 126) {
            if (n - hp < 2) {
                goto none;
            }
            length = ((Py_ssize_t)d[hp] << 8) | d[hp + 1];
            hp += 2;
        }
        /* Over the limit, or not all here: the general parser answers (1009)
           or keeps the partial frame. */
        if (length > max_size || n - hp < key_len || n - hp - key_len < length) {
            goto none;
        }
        r = scan_one(d + hp + key_len, length, key_len ? d + hp : NULL, mode, validate_utf8,
                     loads, reserved, out);
        if (r < 0) {
            Py_CLEAR(out);
            goto done;
        }
        if (r > 0) {
            goto none;
        }
        pos = hp + key_len + length;
    }
    goto done;
none:
    Py_XDECREF(out);
    out = Py_NewRef(Py_None);
done:
    PyBuffer_Release(&data);
    return out;
}

static PyObject *
scan_events(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    return scan_frames(args, nargs, SCAN_SERVER, "scan_events");
}

static PyObject *
scan_packets(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    return scan_frames(args, nargs, SCAN_CLIENT, "scan_packets");
}

/* A frame header (RFC 6455 section 5.2) for a payload of n bytes, FIN and
   text, the mask bit as given: its size (2, 4 or 10), written to o. */
static Py_ssize_t
text_header(unsigned char *o, Py_ssize_t n, unsigned char mask_bit)
{
    o[0] = 0x81;
    if (n < 126) {
        o[1] = mask_bit | (unsigned char)n;
        return 2;
    }
    if (n < 65536) {
        o[1] = mask_bit | 126;
        o[2] = (unsigned char)(n >> 8);
        o[3] = (unsigned char)n;
        return 4;
    }
    o[1] = mask_bit | 127;
    for (int j = 0; j < 8; j++) {
        o[2 + j] = (unsigned char)((uint64_t)n >> (56 - 8 * j));
    }
    return 10;
}

static PyObject *
ack_frame(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer body;
    PyObject *out;
    long long ack;
    int overflow;
    char digits[24];
    int nd;
    Py_ssize_t n, h;
    unsigned char *o;

    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "ack_frame() takes exactly 2 arguments (ack_id, body)");
        return NULL;
    }
    if (!PyLong_CheckExact(args[0])) {
        Py_RETURN_NONE;
    }
    ack = PyLong_AsLongLongAndOverflow(args[0], &overflow);
    if (ack == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (overflow || ack < 0) {
        Py_RETURN_NONE;
    }
    /* The digits, written backwards (snprintf's format machinery costs more
       than the rest of the frame). */
    nd = 0;
    do {
        digits[sizeof(digits) - 1 - nd++] = (char)('0' + ack % 10);
        ack /= 10;
    } while (ack);
    if (PyObject_GetBuffer(args[1], &body, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    /* "4" Engine.IO message, "3" Socket.IO ACK, the id, the JSON array. */
    n = 2 + nd + body.len;
    h = n < 126 ? 2 : (n < 65536 ? 4 : 10);
    out = PyBytes_FromStringAndSize(NULL, h + n);
    if (out != NULL) {
        o = (unsigned char *)PyBytes_AS_STRING(out);
        /* FIN, text; a server does not mask (RFC 6455 5.1) */
        text_header(o, n, 0);
        o[h] = '4';
        o[h + 1] = '3';
        memcpy(o + h + 2, digits + sizeof(digits) - nd, nd);
        memcpy(o + h + 2 + nd, body.buf, body.len);
    }
    PyBuffer_Release(&body);
    return out;
}

static PyObject *
message_frame(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer text, mask;
    PyObject *out = NULL;

    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "message_frame() takes exactly 2 arguments (text, mask)");
        return NULL;
    }
    if (PyObject_GetBuffer(args[0], &text, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    if (PyObject_GetBuffer(args[1], &mask, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&text);
        return NULL;
    }
    if (mask.len != 4) {
        PyErr_Format(PyExc_ValueError, "a masking key is 4 bytes, got %zd", mask.len);
        goto done;
    }
    {
        /* "4" (Engine.IO message) and the text, masked (RFC 6455 5.3): the
           frame a client sends, in one allocation. */
        Py_ssize_t n = 1 + text.len;
        Py_ssize_t h = n < 126 ? 2 : (n < 65536 ? 4 : 10);
        Py_ssize_t i = 0;
        unsigned char *o, *payload;
        const unsigned char *key = (const unsigned char *)mask.buf;
        uint32_t k32;
        uint64_t k64;

        out = PyBytes_FromStringAndSize(NULL, h + 4 + n);
        if (out == NULL) {
            goto done;
        }
        o = (unsigned char *)PyBytes_AS_STRING(out);
        text_header(o, n, 0x80);
        memcpy(o + h, key, 4);
        payload = o + h + 4;
        payload[0] = '4';
        memcpy(payload + 1, text.buf, text.len);
        /* As apply_mask: both halves of k64 hold the key in memory order. */
        memcpy(&k32, key, 4);
        k64 = ((uint64_t)k32 << 32) | (uint64_t)k32;
        for (; i + 8 <= n; i += 8) {
            uint64_t v;
            memcpy(&v, payload + i, 8);
            v ^= k64;
            memcpy(payload + i, &v, 8);
        }
        for (; i < n; i++) {
            payload[i] ^= key[i & 3];
        }
    }
done:
    PyBuffer_Release(&mask);
    PyBuffer_Release(&text);
    return out;
}

/* -- scan_head --------------------------------------------------------------------- */

/* Byte classes of the strict head grammar, filled at import. */
#define HC_TCHAR 1  /* a header name's characters: RFC 9110 section 5.6.2 tchar */
#define HC_VALUE 2  /* a header value's visible characters (VCHAR, no obs-text) */
#define HC_TARGET 4 /* a request target's: RFC 3986 unreserved, reserved but '#', '%' */
static unsigned char head_class[256];

static void
init_head_classes(void)
{
    const char *tchar_extra = "!#$%&'*+-.^_`|~";
    const char *target_extra = "-._~:/?[]@!$&'()*+,;=%";
    for (int c = 0x21; c < 0x7f; c++) {
        head_class[c] |= HC_VALUE;
        if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
            head_class[c] |= HC_TCHAR | HC_TARGET;
        }
    }
    for (const char *p = tchar_extra; *p; p++) {
        head_class[(unsigned char)*p] |= HC_TCHAR;
    }
    for (const char *p = target_extra; *p; p++) {
        head_class[(unsigned char)*p] |= HC_TARGET;
    }
}

/* Whether the lower-cased name n (length len) equals the literal lit. */
#define NAME_IS(n, len, lit) ((len) == sizeof(lit) - 1 && memcmp((n), (lit), (len)) == 0)

/* The tokens of a Connection value (RFC 9110 section 7.6.1: a comma-separated
   list, optional whitespace around the commas), as flags. */
#define CONN_CLOSE 1
#define CONN_UPGRADE 2

static int
connection_tokens(const unsigned char *v, Py_ssize_t len)
{
    int flags = 0;
    Py_ssize_t i = 0;
    while (i < len) {
        while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ',')) {
            i++;
        }
        Py_ssize_t start = i;
        while (i < len && v[i] != ',') {
            i++;
        }
        Py_ssize_t end = i;
        while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t')) {
            end--;
        }
        Py_ssize_t n = end - start;
        if (n == 5 && PyOS_strnicmp((const char *)v + start, "close", 5) == 0) {
            flags |= CONN_CLOSE;
        }
        else if (n == 7 && PyOS_strnicmp((const char *)v + start, "upgrade", 7) == 0) {
            flags |= CONN_UPGRADE;
        }
    }
    return flags;
}

/* The longest header name read here; a longer one is left to httptools. */
#define HEAD_NAME_MAX 64

static PyObject *head_get; /* the interned method name "GET" */

static PyObject *
scan_head(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError,
                        "scan_head(shared_values, shared_max_len, max_head_size, "
                        "max_headers, data) takes 5 arguments");
        return NULL;
    }
    PyObject *shared = args[0], *data = args[4];
    if (!PyBytes_Check(data) || !PyFrozenSet_Check(shared)) {
        PyErr_SetString(PyExc_TypeError, "scan_head: data must be bytes, shared_values a frozenset");
        return NULL;
    }
    Py_ssize_t shared_max = PyLong_AsSsize_t(args[1]);
    Py_ssize_t max_head = PyLong_AsSsize_t(args[2]);
    Py_ssize_t max_headers = PyLong_AsSsize_t(args[3]);
    if ((max_head == -1 || max_headers == -1 || shared_max == -1) && PyErr_Occurred()) {
        return NULL;
    }
    const unsigned char *b = (const unsigned char *)PyBytes_AS_STRING(data);
    Py_ssize_t n = PyBytes_GET_SIZE(data);
    /* Nothing past the largest head accepted is looked at. */
    if (n > max_head) {
        n = max_head;
    }
    /* The request line: "GET " origin-form " HTTP/1.1" CRLF. */
    if (n < 16 || memcmp(b, "GET /", 5) != 0) {
        Py_RETURN_NONE;
    }
    Py_ssize_t p = 4;
    while (p < n && (head_class[b[p]] & HC_TARGET)) {
        p++;
    }
    Py_ssize_t target_end = p;
    if (n - p < 11 || memcmp(b + p, " HTTP/1.1\r\n", 11) != 0) {
        Py_RETURN_NONE;
    }
    p += 11;
    PyObject *headers = PyDict_New();
    if (headers == NULL) {
        return NULL;
    }
    Py_ssize_t count = 0;
    int conn = 0, upgrade_header = 0;
    char lower[HEAD_NAME_MAX];
    for (;;) {
        if (n - p < 2) {
            goto fall_back; /* incomplete, or over max_head_size */
        }
        if (b[p] == '\r') {
            if (b[p + 1] != '\n') {
                goto fall_back;
            }
            p += 2;
            break;
        }
        /* field-name ":" OWS field-value OWS CRLF, with no whitespace around
           the value here (nor an empty one) and no obs-fold or obs-text. */
        Py_ssize_t name_start = p;
        while (p < n && (head_class[b[p]] & HC_TCHAR)) {
            p++;
        }
        Py_ssize_t name_len = p - name_start;
        if (p == n || b[p] != ':' || name_len == 0 || name_len > HEAD_NAME_MAX) {
            goto fall_back;
        }
        p++;
        while (p < n && (b[p] == ' ' || b[p] == '\t')) {
            p++;
        }
        Py_ssize_t value_start = p;
        while (p < n && ((head_class[b[p]] & HC_VALUE) || b[p] == ' ' || b[p] == '\t')) {
            p++;
        }
        Py_ssize_t value_len = p - value_start;
        if (n - p < 2 || b[p] != '\r' || b[p + 1] != '\n' || value_len == 0 ||
            b[p - 1] == ' ' || b[p - 1] == '\t') {
            goto fall_back;
        }
        p += 2;
        if (++count > max_headers) {
            goto fall_back;
        }
        for (Py_ssize_t i = 0; i < name_len; i++) {
            unsigned char c = b[name_start + i];
            lower[i] = (char)((c >= 'A' && c <= 'Z') ? c + 32 : c);
        }
        const unsigned char *value = b + value_start;
        /* A body (its length or coding), an expectation, or the framing header
           that llhttp also reads under another name: httptools decides. */
        if (NAME_IS(lower, name_len, "content-length") ||
            NAME_IS(lower, name_len, "transfer-encoding") ||
            NAME_IS(lower, name_len, "expect") ||
            NAME_IS(lower, name_len, "proxy-connection")) {
            goto fall_back;
        }
        if (NAME_IS(lower, name_len, "connection")) {
            conn |= connection_tokens(value, value_len);
        }
        else if (NAME_IS(lower, name_len, "upgrade")) {
            upgrade_header = 1;
        }
        PyObject *key = PyUnicode_FromStringAndSize(lower, name_len);
        if (key == NULL) {
            goto error;
        }
        PyUnicode_InternInPlace(&key);
        /* A repeated name is merged by add_header (http/request.py): httptools. */
        int seen = PyDict_Contains(headers, key);
        if (seen != 0) {
            Py_DECREF(key);
            if (seen < 0) {
                goto error;
            }
            goto fall_back;
        }
        PyObject *val = PyUnicode_DecodeLatin1((const char *)value, value_len, NULL);
        if (val == NULL) {
            Py_DECREF(key);
            goto error;
        }
        if (value_len < shared_max) {
            int is_shared = PySet_Contains(shared, key);
            if (is_shared < 0) {
                Py_DECREF(key);
                Py_DECREF(val);
                goto error;
            }
            if (is_shared) {
                PyUnicode_InternInPlace(&val);
            }
        }
        int rc = PyDict_SetItem(headers, key, val);
        Py_DECREF(key);
        Py_DECREF(val);
        if (rc < 0) {
            goto error;
        }
    }
    PyObject *target = PyUnicode_DecodeLatin1((const char *)b + 4, target_end - 4, NULL);
    if (target == NULL) {
        goto error;
    }
    PyObject *keep_alive = (conn & CONN_CLOSE) ? Py_False : Py_True;
    PyObject *upgrade = (upgrade_header && (conn & CONN_UPGRADE)) ? Py_True : Py_False;
    return Py_BuildValue("(ONNnOO)", head_get, target, headers, p, keep_alive, upgrade);

fall_back:
    Py_DECREF(headers);
    Py_RETURN_NONE;
error:
    Py_DECREF(headers);
    return NULL;
}

static PyMethodDef speedups_methods[] = {
    {"apply_mask", (PyCFunction)(void (*)(void))apply_mask, METH_FASTCALL,
     "apply_mask(data, mask) -> bytes: XOR data with the 4-byte mask repeated."},
    {"scan_events", (PyCFunction)(void (*)(void))scan_events, METH_FASTCALL,
     "scan_events(loads, reserved, data, max_message_size, validate_utf8) -> list | None: "
     "the Socket.IO events on \"/\" of a read of whole masked text frames, flat "
     "[ack_id, data, ...], or None."},
    {"scan_packets", (PyCFunction)(void (*)(void))scan_packets, METH_FASTCALL,
     "scan_packets(loads, reserved, data, max_message_size, validate_utf8) -> list | None: "
     "the Socket.IO events and acks on \"/\" of a read of whole unmasked text frames, "
     "flat [ptype, ack_id, data, ...], or None."},
    {"ack_frame", (PyCFunction)(void (*)(void))ack_frame, METH_FASTCALL,
     "ack_frame(ack_id, body) -> bytes | None: the WebSocket frame of \"43<id>\" + body."},
    {"message_frame", (PyCFunction)(void (*)(void))message_frame, METH_FASTCALL,
     "message_frame(text, mask) -> bytes: the masked WebSocket frame of \"4\" + text."},
    {"scan_head", (PyCFunction)(void (*)(void))scan_head, METH_FASTCALL,
     "scan_head(shared_values, shared_max_len, max_head_size, max_headers, data) -> "
     "tuple | None: a complete strict GET head without a body, as (method, target, "
     "headers, end, keep_alive, upgrade), or None."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT, "socketwire._speedups",
    "Compiled helpers of socketwire's sans-I/O core.", -1, speedups_methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    init_head_classes();
    head_get = PyUnicode_InternFromString("GET");
    if (head_get == NULL) {
        return NULL;
    }
    return PyModule_Create(&speedups_module);
}
