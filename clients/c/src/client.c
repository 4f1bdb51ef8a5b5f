/* Connections: connect and handshake, queueing requests, moving bytes, matching replies. */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

/* append starts sending once this much is queued (without waiting). */
#define LP_EAGER_WRITE (256u * 1024u)

int64_t lp_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int lp_set_error(loupe_client *c, int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    c->err = code;
    vsnprintf(c->errstr, sizeof c->errstr, fmt, ap);
    va_end(ap);
    return code;
}

static void clear_error(loupe_client *c) {
    c->err = LOUPE_OK;
    c->errstr[0] = '\0';
    lp_status_free(c->err_status);
    c->err_status = NULL;
}

/* Closes the connection; queued requests and pending calls are dropped. */
static void close_connection(loupe_client *c) {
    lp_io_close(c);
    c->connected = 0;
    c->npending = 0;
    c->wstart = c->wend = 0;
    c->write_failed = 0;
    lp_reader_reset(&c->reader);
}

/* Sets the error and closes the connection: the byte stream can no longer be trusted. */
__attribute__((format(printf, 3, 4))) static int fail_connection(loupe_client *c, int code,
                                                                 const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    c->err = code;
    vsnprintf(c->errstr, sizeof c->errstr, fmt, ap);
    va_end(ap);
    close_connection(c);
    return code;
}

static int64_t call_deadline(const loupe_client *c) {
    return c->opt.call_timeout_ms ? lp_now_ms() + c->opt.call_timeout_ms : -1;
}

static const char *call_name(int method) {
    static const char *const names[] = {"connection", "Hello",       "Health",
                                        "Predict",    "BatchPredict", "FindSimilar",
                                        "ListModels", "Retrain",     "GetJob"};
    return method >= 0 && method <= 8 ? names[method] : "unknown";
}

/* ---- writing -------------------------------------------------------------------------- */

/* Writes queued bytes until the socket would block; 1 if any went out. A failed write drops
 * the queue and is remembered (write_failed): the reading side may still learn why from
 * the server (an error frame) before the connection is reported closed. */
static int try_write(loupe_client *c) {
    int progress = 0;
    while (c->wend > c->wstart && !c->write_failed) {
        long n = lp_io_write(c, c->wbuf + c->wstart, c->wend - c->wstart);
        if (n > 0) {
            c->wstart += (size_t)n;
            progress = 1;
            continue;
        }
        if (n == LP_IO_AGAIN) break;
        c->write_failed = c->err;
        size_t len = strnlen(c->errstr, sizeof c->write_errstr - 1);
        memcpy(c->write_errstr, c->errstr, len);
        c->write_errstr[len] = '\0';
        c->wstart = c->wend = 0;
        c->err = LOUPE_OK;
        c->errstr[0] = '\0';
    }
    if (c->wstart == c->wend) c->wstart = c->wend = 0;
    return progress;
}

static int wreserve(loupe_client *c, size_t need) {
    if (c->wcap - c->wend >= need) return 0;
    if (c->wstart > 0) {
        memmove(c->wbuf, c->wbuf + c->wstart, c->wend - c->wstart);
        c->wend -= c->wstart;
        c->wstart = 0;
        if (c->wcap - c->wend >= need) return 0;
    }
    size_t cap = c->wcap ? c->wcap * 2 : 64u * 1024u;
    while (cap - c->wend < need) {
        if (cap > SIZE_MAX / 2) return -1;
        cap *= 2;
    }
    uint8_t *b = realloc(c->wbuf, cap);
    if (!b) return -1;
    c->wbuf = b;
    c->wcap = cap;
    return 0;
}

/* The largest frame the server accepts now. */
static uint32_t frame_limit(const loupe_client *c) {
    if (c->welcome && c->welcome->session.max_frame_size > 0)
        return c->welcome->session.max_frame_size;
    return c->welcome ? UINT32_MAX : LP_MAX_FRAME_BEFORE_HANDSHAKE;
}

/* Queues one request frame: the header, then the message packed straight behind it. */
static int append_frame(loupe_client *c, int method, uint32_t header_rows,
                        const ProtobufCMessage *msg, size_t expected_rows, uint32_t *id_out) {
    size_t payload = protobuf_c_message_get_packed_size(msg);
    uint32_t limit = frame_limit(c);
    if (payload > limit - LP_HEADER_SIZE || limit < LP_HEADER_SIZE) {
        if (method == LOUPE_METHOD_BATCH_PREDICT && header_rows > 0 && limit > 1024) {
            size_t per_row = payload / header_rows + 1;
            size_t fit = (limit - LP_HEADER_SIZE - 64) / per_row;
            /* The hint never exceeds what the server accepts per call either. */
            unsigned max_rows = c->welcome ? c->welcome->session.max_batch_rows : 0;
            if (max_rows > 0 && fit > max_rows) fit = max_rows;
            return lp_set_error(c, LOUPE_RESOURCE_EXHAUSTED,
                                "a BatchPredict request of %zu bytes (%u rows) exceeds the "
                                "server's maximum frame size of %u bytes: send at most about "
                                "%zu rows per call (nothing was sent)",
                                payload + LP_HEADER_SIZE, header_rows, limit, fit);
        }
        return lp_set_error(c, LOUPE_RESOURCE_EXHAUSTED,
                            "a %s request of %zu bytes exceeds the server's maximum frame size "
                            "of %u bytes (nothing was sent)",
                            call_name(method), payload + LP_HEADER_SIZE, limit);
    }
    if (c->npending == c->pending_cap) {
        size_t cap = c->pending_cap ? c->pending_cap * 2 : 16;
        lp_pending *p = realloc(c->pending, cap * sizeof *p);
        if (!p) return lp_set_error(c, LOUPE_ERR_NOMEM, "out of memory queueing a call");
        c->pending = p;
        c->pending_cap = cap;
    }
    /* The queue of unsent requests is bounded: a caller appending a whole file without reading
     * replies gets a clear error, not an ever-growing buffer. The handshake is never refused. */
    size_t queued = c->wend - c->wstart;
    if (method != LP_METHOD_HELLO && queued + LP_PREFIX_SIZE + payload > c->opt.max_queued)
        return lp_set_error(c, LOUPE_ERR_USAGE,
                            "queueing this %zu-byte request would leave %zu bytes unsent, over "
                            "the limit of %zu (loupe_options_set_max_queued_bytes): read replies "
                            "with loupe_get_reply or send with loupe_flush first (nothing queued)",
                            payload + LP_PREFIX_SIZE, queued + LP_PREFIX_SIZE + payload,
                            c->opt.max_queued);
    if (wreserve(c, LP_PREFIX_SIZE + payload) != 0)
        return lp_set_error(c, LOUPE_ERR_NOMEM, "out of memory queueing a %zu-byte request",
                            payload + LP_PREFIX_SIZE);
    uint32_t id = c->next_id++;
    if (c->next_id == 0) c->next_id = 1; /* 0 belongs to connection-level errors */
    uint8_t *p = c->wbuf + c->wend;
    lp_write_prefix(p, payload, LP_FLAG_REQUEST, (uint16_t)method, id, header_rows,
                    method == LP_METHOD_HELLO ? 0 : c->opt.call_timeout_ms);
    protobuf_c_message_pack(msg, p + LP_PREFIX_SIZE);
    c->wend += LP_PREFIX_SIZE + payload;
    c->pending[c->npending++] = (lp_pending){id, (uint16_t)method, expected_rows, 0};
    if (id_out) *id_out = id;
    if (c->wend - c->wstart >= LP_EAGER_WRITE) try_write(c);
    return LOUPE_OK;
}

/* ---- reading -------------------------------------------------------------------------- */

static int fail_eof(loupe_client *c) {
    size_t partial = lp_reader_buffered(&c->reader);
    if (partial > 0) {
        uint32_t length = lp_reader_pending_length(&c->reader);
        if (length > 0)
            return fail_connection(c, LOUPE_ERR_EOF,
                                   "%s:%d closed the connection in the middle of a reply "
                                   "(%zu of %lu bytes received)",
                                   c->opt.host, c->opt.port, partial,
                                   (unsigned long)length + LP_LENGTH_SIZE);
        return fail_connection(c, LOUPE_ERR_EOF,
                               "%s:%d closed the connection in the middle of a reply "
                               "(%zu bytes of its length received)",
                               c->opt.host, c->opt.port, partial);
    }
    if (c->write_failed)
        return fail_connection(c, LOUPE_ERR_EOF, "%s:%d closed the connection (%s)",
                               c->opt.host, c->opt.port, c->write_errstr);
    return fail_connection(c, LOUPE_ERR_EOF,
                           "%s:%d closed the connection with %zu call(s) waiting for a reply",
                           c->opt.host, c->opt.port, c->npending);
}

/* Moves bytes both ways until a whole reply is in (f != NULL) or everything queued is sent
 * (f == NULL), at most until the deadline (-1: none). Reads even while sending, so that a
 * server that stops reading until its replies drain never deadlocks with us. */
static int pump(loupe_client *c, lp_frame *f, int64_t deadline_ms, unsigned timeout_ms,
                const char *waiting_for) {
    for (;;) {
        if (f) {
            int r = lp_reader_next(&c->reader, f);
            if (r == 1) return LOUPE_OK;
            if (r < 0)
                return fail_connection(c, c->reader.err, "%s:%d sent %s", c->opt.host,
                                       c->opt.port, c->reader.errstr);
        } else if (c->write_failed) {
            return fail_connection(c, c->write_failed, "%s", c->write_errstr);
        } else if (c->wend == c->wstart) {
            return LOUPE_OK;
        }
        int progress = try_write(c);
        size_t avail = 0;
        uint8_t *space = lp_reader_space(&c->reader, &avail);
        if (!space) return fail_connection(c, LOUPE_ERR_NOMEM, "out of memory reading a reply");
        long n = lp_io_read(c, space, avail);
        if (n > 0) {
            lp_reader_commit(&c->reader, (size_t)n);
            continue;
        }
        if (n == 0) return fail_eof(c);
        if (n == LP_IO_ERROR) {
            close_connection(c);
            return c->err;
        }
        if (progress) continue;
        short events = (short)c->read_wants;
        if (c->wend > c->wstart && !c->write_failed) events |= (short)c->write_wants;
        int timeout = -1;
        if (deadline_ms >= 0) {
            int64_t left = deadline_ms - lp_now_ms();
            if (left <= 0)
                return fail_connection(c, LOUPE_ERR_TIMEOUT,
                                       "no %s from %s:%d within %u ms (%zu call(s) waiting; the "
                                       "connection is closed)",
                                       waiting_for, c->opt.host, c->opt.port, timeout_ms,
                                       c->npending);
            timeout = left > INT_MAX ? INT_MAX : (int)left;
        }
        struct pollfd p = {c->fd, events, 0};
        if (poll(&p, 1, timeout) < 0 && errno != EINTR)
            return fail_connection(c, LOUPE_ERR_IO, "waiting for %s:%d failed", c->opt.host,
                                   c->opt.port);
    }
}

/* Calls waiting for a reply that were not cancelled. */
static size_t live_pending(const loupe_client *c) {
    size_t n = 0;
    for (size_t i = 0; i < c->npending; i++) n += !c->pending[i].cancelled;
    return n;
}

/* Reads the next reply to a call not cancelled and matches it to its call (replies to
 * cancelled calls are read and dropped on the way). NULL with the error set on failure. */
static loupe_result *read_reply(loupe_client *c, int64_t deadline_ms, unsigned timeout_ms,
                                const char *waiting_for) {
    lp_frame f;
next:
    if (pump(c, &f, deadline_ms, timeout_ms, waiting_for) != LOUPE_OK) return NULL;
    int error = (f.flags & LP_FLAG_ERROR) != 0;
    if (f.request_id == 0) {
        if (!error) {
            fail_connection(c, LOUPE_ERR_PROTOCOL, "%s:%d sent a reply with request id 0",
                            c->opt.host, c->opt.port);
            return NULL;
        }
        /* A connection-level error: the server closes the connection after it. */
        Loupe__V1__Status *s = lp_status_decode(f.payload, f.payload_len);
        if (!s) {
            fail_connection(c, LOUPE_ERR_PROTOCOL,
                            "%s:%d sent a connection error whose Status does not decode",
                            c->opt.host, c->opt.port);
            return NULL;
        }
        fail_connection(c, lp_status_code(s->code), "%s (%s:%d closed the connection)",
                        s->message ? s->message : "", c->opt.host, c->opt.port);
        c->err_status = s;
        return NULL;
    }
    size_t i = 0;
    while (i < c->npending && c->pending[i].id != f.request_id) i++;
    if (i == c->npending) {
        fail_connection(c, LOUPE_ERR_PROTOCOL,
                        "%s:%d sent a reply to request %lu, which is not waiting for one",
                        c->opt.host, c->opt.port, (unsigned long)f.request_id);
        return NULL;
    }
    lp_pending call = c->pending[i];
    if (call.method != f.method) {
        fail_connection(c, LOUPE_ERR_PROTOCOL,
                        "%s:%d answered request %lu (%s) with a frame of method %u",
                        c->opt.host, c->opt.port, (unsigned long)f.request_id,
                        call_name(call.method), (unsigned)f.method);
        return NULL;
    }
    c->pending[i] = c->pending[--c->npending];
    if (call.cancelled) goto next;
    loupe_result *r = lp_result_decode(f.method, f.request_id, error, f.payload, f.payload_len,
                                       call.rows);
    if (!r) {
        lp_set_error(c, LOUPE_ERR_NOMEM, "out of memory decoding the reply to request %lu",
                     (unsigned long)f.request_id);
        return NULL;
    }
    if (r->code == LOUPE_ERR_PROTOCOL) {
        fail_connection(c, LOUPE_ERR_PROTOCOL, "%s:%d sent %s (request %lu)", c->opt.host,
                        c->opt.port, r->message, (unsigned long)f.request_id);
        loupe_result_free(r);
        return NULL;
    }
    /* UNAUTHENTICATED always comes with a close (a token revoked or expired since the
     * handshake): the client closes too, so loupe_connected says so and the next call fails
     * at once with LOUPE_ERR_CLOSED instead of being sent into a closed socket. */
    if (r->code == LOUPE_UNAUTHENTICATED) close_connection(c);
    return r;
}

/* ---- connecting ----------------------------------------------------------------------- */

static int copy_string(char **dst, const char *src) {
    if (!src) return 0;
    *dst = malloc(strlen(src) + 1);
    if (!*dst) return -1;
    strcpy(*dst, src);
    return 0;
}

static int handshake(loupe_client *c, int64_t deadline_ms) {
    Loupe__V1__Hello hello = LOUPE__V1__HELLO__INIT;
    hello.protocol_version = LP_VERSION;
    hello.token = c->opt.token;
    hello.client_name = c->opt.client_name ? c->opt.client_name : "";
    int rc = append_frame(c, LP_METHOD_HELLO, 0, &hello.base, SIZE_MAX, NULL);
    if (rc != LOUPE_OK) {
        close_connection(c);
        return rc;
    }
    loupe_result *r = read_reply(c, deadline_ms, c->opt.connect_timeout_ms, "Welcome");
    if (!r) return c->err;
    if (r->code != LOUPE_OK) {
        int code = r->code;
        fail_connection(c, code, "%s:%d refused the handshake: %s", c->opt.host, c->opt.port,
                        r->message);
        c->err_status = r->status;
        r->status = NULL;
        loupe_result_free(r);
        return code;
    }
    if (r->session.protocol_version > LP_VERSION) {
        unsigned v = r->session.protocol_version;
        loupe_result_free(r);
        return fail_connection(c, LOUPE_ERR_PROTOCOL,
                               "%s:%d speaks protocol version %u; this client speaks %u",
                               c->opt.host, c->opt.port, v, (unsigned)LP_VERSION);
    }
    c->welcome = r;
    return LOUPE_OK;
}

static int open_connection(loupe_client *c) {
    clear_error(c);
    close_connection(c);
    loupe_result_free(c->welcome);
    c->welcome = NULL;
    c->next_id = 1;
    int64_t deadline = lp_now_ms() + c->opt.connect_timeout_ms;
    int rc = lp_io_connect(c, deadline);
    if (rc != LOUPE_OK) {
        close_connection(c);
        return rc;
    }
    c->connected = 1; /* for the handshake's own call */
    if (c->opt.token) {
        rc = handshake(c, lp_now_ms() + c->opt.connect_timeout_ms);
        if (rc != LOUPE_OK) return rc;
    }
    return LOUPE_OK;
}

loupe_client *loupe_connect(const loupe_options *o) {
    loupe_options *defaults = NULL;
    if (!o && !(o = defaults = loupe_options_new())) return NULL;
    loupe_client *c = calloc(1, sizeof *c);
    if (!c) goto nomem;
    c->fd = -1;
    c->opt = *o;
    c->opt.host = c->opt.token = c->opt.client_name = c->opt.ca_file = c->opt.server_name = NULL;
    if (copy_string(&c->opt.host, o->host) || copy_string(&c->opt.token, o->token) ||
        copy_string(&c->opt.client_name, o->client_name) ||
        copy_string(&c->opt.ca_file, o->ca_file) ||
        copy_string(&c->opt.server_name, o->server_name))
        goto nomem;
    lp_reader_init(&c->reader, (uint32_t)c->opt.max_reply, 0);
    loupe_options_free(defaults);
    open_connection(c);
    return c;
nomem:
    loupe_free(c);
    loupe_options_free(defaults);
    return NULL;
}

int loupe_reconnect(loupe_client *c) {
    if (!c) return LOUPE_ERR_USAGE;
    return open_connection(c);
}

void loupe_free(loupe_client *c) {
    if (!c) return;
    lp_io_close(c);
    lp_reader_free(&c->reader);
    free(c->wbuf);
    free(c->pending);
    loupe_result_free(c->welcome);
    lp_status_free(c->err_status);
    free(c->opt.host);
    free(c->opt.token);
    free(c->opt.client_name);
    free(c->opt.ca_file);
    free(c->opt.server_name);
    free(c);
}

int loupe_connected(const loupe_client *c) { return c && c->connected; }

int loupe_set_call_timeout_ms(loupe_client *c, unsigned ms) {
    if (!c) return LOUPE_ERR_USAGE;
    c->opt.call_timeout_ms = ms;
    return LOUPE_OK;
}
int loupe_errcode(const loupe_client *c) { return c ? c->err : LOUPE_ERR_USAGE; }
const char *loupe_errmsg(const loupe_client *c) { return c ? c->errstr : "no client (NULL)"; }

unsigned loupe_err_retry_after_ms(const loupe_client *c) {
    return c && c->err_status ? c->err_status->retry_after_ms : 0;
}

size_t loupe_err_detail_count(const loupe_client *c) {
    return c ? lp_status_detail_count(c->err_status) : 0;
}

int loupe_err_detail(const loupe_client *c, size_t i, long *row, const char **field,
                     const char **reason) {
    return c ? lp_status_detail(c->err_status, i, row, field, reason) : LOUPE_ERR_USAGE;
}

const loupe_session *loupe_client_session(const loupe_client *c) {
    return c && c->welcome ? &c->welcome->session : NULL;
}

size_t loupe_pending(const loupe_client *c) { return c ? live_pending(c) : 0; }

int loupe_cancel(loupe_client *c, uint32_t request_id) {
    if (!c) return LOUPE_ERR_USAGE;
    for (size_t i = 0; i < c->npending; i++) {
        if (c->pending[i].id == request_id && !c->pending[i].cancelled) {
            c->pending[i].cancelled = 1;
            return LOUPE_OK;
        }
    }
    return lp_set_error(c, LOUPE_ERR_USAGE, "no call with request id %lu is waiting for a reply",
                        (unsigned long)request_id);
}

/* ---- calls ---------------------------------------------------------------------------- */

/* Every public entry point starts here: the last call's error is forgotten. */
static int begin(loupe_client *c) {
    if (!c) return LOUPE_ERR_USAGE;
    clear_error(c);
    if (!c->connected)
        return lp_set_error(c, LOUPE_ERR_CLOSED,
                            "the connection to %s:%d is closed (an earlier error closed it): "
                            "loupe_reconnect, or free the client",
                            c->opt.host, c->opt.port);
    return LOUPE_OK;
}

static int begin_blocking(loupe_client *c) {
    int rc = begin(c);
    if (rc == LOUPE_OK && live_pending(c) > 0)
        return lp_set_error(c, LOUPE_ERR_USAGE,
                            "%zu pipelined call(s) are waiting for replies: read them with "
                            "loupe_get_reply (or loupe_cancel them) before a blocking call",
                            live_pending(c));
    return rc;
}

/* A blocking call: queue, send, wait for the reply; a server error goes onto the client. */
static loupe_result *call(loupe_client *c, int method, uint32_t header_rows,
                          const ProtobufCMessage *msg, size_t expected_rows) {
    if (append_frame(c, method, header_rows, msg, expected_rows, NULL) != LOUPE_OK) return NULL;
    loupe_result *r = read_reply(c, call_deadline(c), c->opt.call_timeout_ms, "reply");
    if (r && r->code != LOUPE_OK) {
        lp_set_error(c, r->code, "%s", r->message);
        c->err_status = r->status;
        r->status = NULL;
        loupe_result_free(r);
        return NULL;
    }
    return r;
}

static void set_selector(Loupe__V1__ModelSelector *sel, const loupe_predict_options *o) {
    loupe__v1__model_selector__init(sel);
    sel->name = (char *)(o->model_name ? o->model_name : "");
    sel->version = o->model_version;
    sel->alias = (char *)(o->model_alias ? o->model_alias : "");
}

static int has_selector(const loupe_predict_options *o) {
    return o && ((o->model_name && *o->model_name) || o->model_version ||
                 (o->model_alias && *o->model_alias));
}

static void set_diamond(Loupe__V1__Diamond *m, const loupe_diamond *d) {
    loupe__v1__diamond__init(m);
    m->carat = d->carat;
    m->cut = (Loupe__V1__Cut)d->cut;
    m->color = (Loupe__V1__Color)d->color;
    m->clarity = (Loupe__V1__Clarity)d->clarity;
    m->depth = d->depth;
    m->table = d->table;
    m->x = d->x;
    m->y = d->y;
    m->z = d->z;
}

/* Points a DiamondColumns message at the caller's arrays: packing copies them straight into
 * the request (no per-row work beyond the enum varints, no copy in between). */
static int set_columns(loupe_client *c, Loupe__V1__DiamondColumns *m, const loupe_columns *cols) {
    loupe__v1__diamond_columns__init(m);
    if (!cols) return lp_set_error(c, LOUPE_ERR_USAGE, "the columns are NULL");
    if (cols->rows > UINT32_MAX)
        return lp_set_error(c, LOUPE_ERR_USAGE, "%zu rows: at most %lu per call", cols->rows,
                            (unsigned long)UINT32_MAX);
    if (cols->rows == 0) return LOUPE_OK;
    const void *arrays[9] = {cols->carat, cols->cut,   cols->color, cols->clarity, cols->depth,
                             cols->table, cols->x,     cols->y,     cols->z};
    static const char *const names[9] = {"carat", "cut",   "color", "clarity", "depth",
                                         "table", "x",     "y",     "z"};
    for (int i = 0; i < 9; i++)
        if (!arrays[i])
            return lp_set_error(c, LOUPE_ERR_USAGE, "column %s is NULL for %zu rows", names[i],
                                cols->rows);
    size_t n = cols->rows;
    m->n_carat = m->n_cut = m->n_color = m->n_clarity = m->n_depth = m->n_table = m->n_x =
        m->n_y = m->n_z = n;
    m->carat = (double *)cols->carat;
    m->cut = (Loupe__V1__Cut *)cols->cut;
    m->color = (Loupe__V1__Color *)cols->color;
    m->clarity = (Loupe__V1__Clarity *)cols->clarity;
    m->depth = (double *)cols->depth;
    m->table = (double *)cols->table;
    m->x = (double *)cols->x;
    m->y = (double *)cols->y;
    m->z = (double *)cols->z;
    return LOUPE_OK;
}

typedef struct predict_msg {
    Loupe__V1__Diamond diamond;
    Loupe__V1__ModelSelector selector;
    Loupe__V1__PredictRequest request;
} predict_msg;

static int build_predict(loupe_client *c, predict_msg *m, const loupe_diamond *d,
                         const loupe_predict_options *o) {
    if (!d) return lp_set_error(c, LOUPE_ERR_USAGE, "the diamond is NULL");
    set_diamond(&m->diamond, d);
    loupe__v1__predict_request__init(&m->request);
    m->request.diamond = &m->diamond;
    if (has_selector(o)) {
        set_selector(&m->selector, o);
        m->request.model = &m->selector;
    }
    m->request.level = o ? o->level : 0;
    m->request.explain = o ? o->explain != 0 : 0;
    return LOUPE_OK;
}

typedef struct batch_msg {
    Loupe__V1__DiamondColumns columns;
    Loupe__V1__ModelSelector selector;
    Loupe__V1__BatchPredictRequest request;
} batch_msg;

static int build_batch(loupe_client *c, batch_msg *m, const loupe_columns *cols,
                       const loupe_predict_options *o) {
    int rc = set_columns(c, &m->columns, cols);
    if (rc != LOUPE_OK) return rc;
    loupe__v1__batch_predict_request__init(&m->request);
    m->request.rows = &m->columns;
    if (has_selector(o)) {
        set_selector(&m->selector, o);
        m->request.model = &m->selector;
    }
    m->request.level = o ? o->level : 0;
    m->request.explain = o ? o->explain != 0 : 0;
    return LOUPE_OK;
}

loupe_result *loupe_predict(loupe_client *c, const loupe_diamond *d,
                            const loupe_predict_options *o) {
    predict_msg m;
    if (begin_blocking(c) != LOUPE_OK || build_predict(c, &m, d, o) != LOUPE_OK) return NULL;
    return call(c, LOUPE_METHOD_PREDICT, 0, &m.request.base, SIZE_MAX);
}

loupe_result *loupe_batch_predict(loupe_client *c, const loupe_columns *rows,
                                  const loupe_predict_options *o) {
    batch_msg m;
    if (begin_blocking(c) != LOUPE_OK || build_batch(c, &m, rows, o) != LOUPE_OK) return NULL;
    return call(c, LOUPE_METHOD_BATCH_PREDICT, (uint32_t)rows->rows, &m.request.base, rows->rows);
}

loupe_result *loupe_list_models(loupe_client *c, const char *name) {
    if (begin_blocking(c) != LOUPE_OK) return NULL;
    Loupe__V1__ListModelsRequest m = LOUPE__V1__LIST_MODELS_REQUEST__INIT;
    if (name) m.name = (char *)name;
    return call(c, LOUPE_METHOD_LIST_MODELS, 0, &m.base, SIZE_MAX);
}

loupe_result *loupe_find_similar(loupe_client *c, const loupe_similar_query *q) {
    if (begin_blocking(c) != LOUPE_OK) return NULL;
    if (!q) {
        lp_set_error(c, LOUPE_ERR_USAGE, "the query is NULL");
        return NULL;
    }
    Loupe__V1__FindSimilarRequest m = LOUPE__V1__FIND_SIMILAR_REQUEST__INIT;
    m.carat = q->carat;
    m.cut = (Loupe__V1__Cut)q->cut;
    m.color = (Loupe__V1__Color)q->color;
    m.clarity = (Loupe__V1__Clarity)q->clarity;
    m.count = q->count;
    return call(c, LOUPE_METHOD_FIND_SIMILAR, 0, &m.base, SIZE_MAX);
}

loupe_result *loupe_retrain(loupe_client *c, const loupe_retrain_options *o) {
    if (begin_blocking(c) != LOUPE_OK) return NULL;
    loupe_retrain_options none;
    if (!o) {
        memset(&none, 0, sizeof none);
        o = &none;
    }
    Loupe__V1__RetrainRequest m = LOUPE__V1__RETRAIN_REQUEST__INIT;
    Loupe__V1__LabelledRows rows = LOUPE__V1__LABELLED_ROWS__INIT;
    Loupe__V1__DiamondColumns columns;
    Loupe__V1__TuningBudget tune = LOUPE__V1__TUNING_BUDGET__INIT;
    Loupe__V1__ReuseParameters reuse = LOUPE__V1__REUSE_PARAMETERS__INIT;
    uint32_t header_rows = 0;
    if (o->model_name) m.model_name = (char *)o->model_name;
    if (o->dataset) m.dataset = (char *)o->dataset;
    m.dataset_version = o->dataset_version;
    if (o->rows) {
        if (set_columns(c, &columns, o->rows) != LOUPE_OK) return NULL;
        if (o->rows->rows > 0 && !o->prices) {
            lp_set_error(c, LOUPE_ERR_USAGE, "%zu rows but no prices", o->rows->rows);
            return NULL;
        }
        rows.diamonds = &columns;
        rows.n_prices = o->rows->rows;
        rows.prices = (double *)o->prices;
        m.rows = &rows;
        header_rows = (uint32_t)o->rows->rows;
    }
    switch (o->parameters) {
    case LOUPE_RETRAIN_PRODUCTION_PARAMETERS: break;
    case LOUPE_RETRAIN_TUNE:
        tune.max_trials = o->tune_max_trials;
        tune.max_seconds = o->tune_max_seconds;
        m.parameters_case = LOUPE__V1__RETRAIN_REQUEST__PARAMETERS_TUNE;
        m.tune = &tune;
        break;
    case LOUPE_RETRAIN_REUSE:
        reuse.version = o->reuse_version;
        m.parameters_case = LOUPE__V1__RETRAIN_REQUEST__PARAMETERS_REUSE;
        m.reuse = &reuse;
        break;
    default:
        lp_set_error(c, LOUPE_ERR_USAGE, "parameters %d: expected LOUPE_RETRAIN_*",
                     o->parameters);
        return NULL;
    }
    m.promotion_margin = o->promotion_margin;
    return call(c, LOUPE_METHOD_RETRAIN, header_rows, &m.base, SIZE_MAX);
}

loupe_result *loupe_get_job(loupe_client *c, const char *job_id) {
    if (begin_blocking(c) != LOUPE_OK) return NULL;
    if (!job_id) {
        lp_set_error(c, LOUPE_ERR_USAGE, "the job id is NULL");
        return NULL;
    }
    Loupe__V1__GetJobRequest m = LOUPE__V1__GET_JOB_REQUEST__INIT;
    m.job_id = (char *)job_id;
    return call(c, LOUPE_METHOD_GET_JOB, 0, &m.base, SIZE_MAX);
}

loupe_result *loupe_health(loupe_client *c) {
    if (begin_blocking(c) != LOUPE_OK) return NULL;
    Loupe__V1__HealthRequest m = LOUPE__V1__HEALTH_REQUEST__INIT;
    return call(c, LOUPE_METHOD_HEALTH, 0, &m.base, SIZE_MAX);
}

/* ---- pipelining ----------------------------------------------------------------------- */

int loupe_append_predict(loupe_client *c, const loupe_diamond *d, const loupe_predict_options *o,
                         uint32_t *request_id) {
    predict_msg m;
    int rc = begin(c);
    if (rc == LOUPE_OK) rc = build_predict(c, &m, d, o);
    if (rc == LOUPE_OK)
        rc = append_frame(c, LOUPE_METHOD_PREDICT, 0, &m.request.base, SIZE_MAX, request_id);
    return rc;
}

int loupe_append_batch_predict(loupe_client *c, const loupe_columns *rows,
                               const loupe_predict_options *o, uint32_t *request_id) {
    batch_msg m;
    int rc = begin(c);
    if (rc == LOUPE_OK) rc = build_batch(c, &m, rows, o);
    if (rc == LOUPE_OK)
        rc = append_frame(c, LOUPE_METHOD_BATCH_PREDICT, (uint32_t)rows->rows, &m.request.base,
                          rows->rows, request_id);
    return rc;
}

int loupe_flush(loupe_client *c) {
    int rc = begin(c);
    if (rc != LOUPE_OK) return rc;
    return pump(c, NULL, call_deadline(c), c->opt.call_timeout_ms, "progress sending");
}

loupe_result *loupe_get_reply(loupe_client *c) {
    if (begin(c) != LOUPE_OK) return NULL;
    if (live_pending(c) == 0) {
        lp_set_error(c, LOUPE_ERR_USAGE, "no calls are waiting for a reply");
        return NULL;
    }
    return read_reply(c, call_deadline(c), c->opt.call_timeout_ms, "reply");
}
