/*
 * Connections: connecting (blocking, or step by step for an event loop), queueing requests,
 * moving bytes, matching replies to calls, deadlines.
 *
 * Replies are decoded into results as they are matched and queued on the client (ready_head)
 * until loupe_get_reply hands them out; a call whose deadline passes gets a DEADLINE_EXCEEDED
 * result in that queue too, and its reply is dropped when it comes. Blocking reads decode
 * one reply at a time (later bytes wait in the frame reader, so a failure behind a good reply
 * is reported by the next call, not the one that got the good reply); loupe_consume_input
 * decodes everything that has arrived.
 */
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

/* ---- finished results ----------------------------------------------------------------- */

static void push_ready(loupe_client *c, loupe_result *r) {
    r->next = NULL;
    if (c->ready_tail) c->ready_tail->next = r;
    else c->ready_head = r;
    c->ready_tail = r;
    c->nready++;
}

static loupe_result *pop_ready(loupe_client *c) {
    loupe_result *r = c->ready_head;
    if (!r) return NULL;
    c->ready_head = r->next;
    if (!c->ready_head) c->ready_tail = NULL;
    c->nready--;
    r->next = NULL;
    return r;
}

static void free_ready(loupe_client *c) {
    loupe_result *r;
    while ((r = pop_ready(c)) != NULL) loupe_result_free(r);
}

/* Closes the connection; queued requests and pending calls are dropped. Results already
 * finished stay queued for loupe_get_reply. */
static void close_connection(loupe_client *c) {
    lp_io_close(c);
    c->connected = 0;
    c->state = LP_ST_CLOSED;
    c->npending = 0;
    c->wstart = c->wend = 0;
    c->wqueued = c->wsent = 0;
    c->unsent_head = c->nunsent = 0;
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
                                        "ListModels", "Retrain",     "GetJob",
                                        "ReportOutcomes"};
    return method >= 0 && method <= LOUPE_METHOD_REPORT_OUTCOMES ? names[method] : "unknown";
}

/* Calls whose results loupe_get_reply has yet to hand out (not cancelled ones). */
static size_t live_pending(const loupe_client *c) {
    size_t n = c->nready;
    for (size_t i = 0; i < c->npending; i++) n += c->pending[i].state == LP_CALL_LIVE;
    return n;
}

/* The earliest deadline of a call still waiting (monotonic ms), or -1. */
static int64_t earliest_deadline(const loupe_client *c) {
    int64_t at = -1;
    for (size_t i = 0; i < c->npending; i++) {
        const lp_pending *p = &c->pending[i];
        if (p->state == LP_CALL_LIVE && p->deadline >= 0 && (at < 0 || p->deadline < at))
            at = p->deadline;
    }
    return at;
}

/* Calls whose deadline has passed complete now, each with a DEADLINE_EXCEEDED result queued
 * with the finished ones; their replies are dropped if they come. (Out of memory: the call
 * waits for the next look.) */
static void expire(loupe_client *c) {
    int64_t now = -1;
    for (size_t i = 0; i < c->npending; i++) {
        lp_pending *p = &c->pending[i];
        if (p->state != LP_CALL_LIVE || p->deadline < 0) continue;
        if (now < 0) now = lp_now_ms();
        if (p->deadline > now) continue;
        char text[256];
        snprintf(text, sizeof text,
                 "no reply to %s (request %lu) within its deadline of %u ms (the client gave "
                 "up on it: its reply is dropped if it comes; the connection stays open)",
                 call_name(p->method), (unsigned long)p->id, p->deadline_ms);
        loupe_result *r = lp_result_local(p->method, p->id, LOUPE_DEADLINE_EXCEEDED, text);
        if (!r) return;
        p->state = LP_CALL_EXPIRED;
        push_ready(c, r);
    }
}

/* ---- writing -------------------------------------------------------------------------- */

/* Rewrites the deadline field of each queued frame not yet started with the time its call
 * has left (at least 1 ms: 0 would mean none), capped by the call timeout it was queued with:
 * the server learns how long the client will really wait, however long the frame was queued. */
static void patch_deadlines(loupe_client *c) {
    if (c->unsent_head == c->nunsent) return;
    int64_t now = lp_now_ms();
    for (size_t i = c->unsent_head; i < c->nunsent; i++) {
        const lp_unsent *u = &c->unsent[i];
        int64_t left = u->deadline - now;
        if (left < 1) left = 1;
        uint32_t ms = left > (int64_t)UINT32_MAX ? UINT32_MAX : (uint32_t)left;
        if (u->timeout_ms && u->timeout_ms < ms) ms = u->timeout_ms;
        /* the deadline field: 4 length bytes, then header bytes 12..15 */
        lp_put32(c->wbuf + c->wstart + (size_t)(u->pos - c->wsent) + LP_LENGTH_SIZE + 12, ms);
    }
}

/* Forgets the frames whose first byte went out (their deadline field is on its way). */
static void forget_started(loupe_client *c) {
    while (c->unsent_head < c->nunsent && c->unsent[c->unsent_head].pos < c->wsent)
        c->unsent_head++;
    if (c->unsent_head == c->nunsent) c->unsent_head = c->nunsent = 0;
}

/* Writes queued bytes until the socket would block; 1 if any went out. A failed write drops
 * the queue and is remembered (write_failed): the reading side may still learn why from
 * the server (an error frame) before the connection is reported closed. */
static int try_write(loupe_client *c) {
    int progress = 0;
    if (c->wend > c->wstart && !c->write_failed) patch_deadlines(c);
    while (c->wend > c->wstart && !c->write_failed) {
        long n = lp_io_write(c, c->wbuf + c->wstart, c->wend - c->wstart);
        if (n > 0) {
            c->wstart += (size_t)n;
            c->wsent += (uint64_t)n;
            progress = 1;
            continue;
        }
        if (n == LP_IO_AGAIN) break;
        c->write_failed = c->err;
        size_t len = strnlen(c->errstr, sizeof c->write_errstr - 1);
        memcpy(c->write_errstr, c->errstr, len);
        c->write_errstr[len] = '\0';
        c->wstart = c->wend = 0;
        c->wsent = c->wqueued;
        c->unsent_head = c->nunsent = 0;
        c->err = LOUPE_OK;
        c->errstr[0] = '\0';
    }
    forget_started(c);
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

/* Room for one more entry in the list of frames whose deadline field is patched. 0 or -1. */
static int unsent_reserve(loupe_client *c) {
    if (c->nunsent < c->unsent_cap) return 0;
    if (c->unsent_head > 0) {
        memmove(c->unsent, c->unsent + c->unsent_head,
                (c->nunsent - c->unsent_head) * sizeof *c->unsent);
        c->nunsent -= c->unsent_head;
        c->unsent_head = 0;
        return 0;
    }
    size_t cap = c->unsent_cap ? c->unsent_cap * 2 : 16;
    lp_unsent *u = realloc(c->unsent, cap * sizeof *u);
    if (!u) return -1;
    c->unsent = u;
    c->unsent_cap = cap;
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
    unsigned deadline_ms = method == LP_METHOD_HELLO ? 0 : c->deadline_ms;
    if (wreserve(c, LP_PREFIX_SIZE + payload) != 0 || (deadline_ms && unsent_reserve(c) != 0))
        return lp_set_error(c, LOUPE_ERR_NOMEM, "out of memory queueing a %zu-byte request",
                            payload + LP_PREFIX_SIZE);
    uint32_t id = c->next_id++;
    if (c->next_id == 0) c->next_id = 1; /* 0 belongs to connection-level errors */
    /* The frame's deadline: how long the client waits (the call timeout, the call's own
     * deadline, whichever is shorter); rewritten with the time left when it is sent. */
    uint32_t field = method == LP_METHOD_HELLO ? 0 : c->opt.call_timeout_ms;
    if (deadline_ms && (field == 0 || deadline_ms < field)) field = deadline_ms;
    int64_t deadline = deadline_ms ? lp_now_ms() + deadline_ms : -1;
    uint8_t *p = c->wbuf + c->wend;
    lp_write_prefix(p, payload, LP_FLAG_REQUEST, (uint16_t)method, id, header_rows, field);
    protobuf_c_message_pack(msg, p + LP_PREFIX_SIZE);
    if (deadline_ms)
        c->unsent[c->nunsent++] = (lp_unsent){c->wqueued, deadline, c->opt.call_timeout_ms};
    c->wend += LP_PREFIX_SIZE + payload;
    c->wqueued += LP_PREFIX_SIZE + payload;
    c->pending[c->npending++] =
        (lp_pending){id, (uint16_t)method, LP_CALL_LIVE, expected_rows, deadline, deadline_ms};
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

/* Matches one reply frame to its call: its result joins the finished ones, or (a cancelled
 * or expired call) it is dropped. LOUPE_OK, or an error code: the connection failed (a
 * connection-level error, a reply that is not the protocol, a call-level UNAUTHENTICATED,
 * after which the server closes), or LOUPE_ERR_NOMEM (that call is lost, the connection
 * stays open). */
static int take_frame(loupe_client *c, const lp_frame *f) {
    int error = (f->flags & LP_FLAG_ERROR) != 0;
    if (f->request_id == 0) {
        if (!error)
            return fail_connection(c, LOUPE_ERR_PROTOCOL, "%s:%d sent a reply with request id 0",
                                   c->opt.host, c->opt.port);
        /* A connection-level error: the server closes the connection after it. */
        Loupe__V1__Status *s = lp_status_decode(f->payload, f->payload_len);
        if (!s)
            return fail_connection(c, LOUPE_ERR_PROTOCOL,
                                   "%s:%d sent a connection error whose Status does not decode",
                                   c->opt.host, c->opt.port);
        int code = fail_connection(c, lp_status_code(s->code), "%s (%s:%d closed the connection)",
                                   s->message ? s->message : "", c->opt.host, c->opt.port);
        c->err_status = s;
        return code;
    }
    size_t i = 0;
    while (i < c->npending && c->pending[i].id != f->request_id) i++;
    if (i == c->npending)
        return fail_connection(c, LOUPE_ERR_PROTOCOL,
                               "%s:%d sent a reply to request %lu, which is not waiting for one",
                               c->opt.host, c->opt.port, (unsigned long)f->request_id);
    lp_pending call = c->pending[i];
    if (call.method != f->method)
        return fail_connection(c, LOUPE_ERR_PROTOCOL,
                               "%s:%d answered request %lu (%s) with a frame of method %u",
                               c->opt.host, c->opt.port, (unsigned long)f->request_id,
                               call_name(call.method), (unsigned)f->method);
    c->pending[i] = c->pending[--c->npending];
    if (call.state != LP_CALL_LIVE) {
        /* Nobody wants this reply; but an UNAUTHENTICATED one still means the server closes. */
        if (error) {
            Loupe__V1__Status *s = lp_status_decode(f->payload, f->payload_len);
            int code = s ? lp_status_code(s->code) : LOUPE_OK;
            lp_status_free(s);
            if (code == LOUPE_UNAUTHENTICATED)
                return fail_connection(c, code, "the token is no longer valid (%s:%d closed "
                                                "the connection)", c->opt.host, c->opt.port);
        }
        return LOUPE_OK;
    }
    loupe_result *r = lp_result_decode(f->method, f->request_id, error, f->payload,
                                       f->payload_len, call.rows);
    if (!r)
        return lp_set_error(c, LOUPE_ERR_NOMEM, "out of memory decoding the reply to request %lu",
                            (unsigned long)f->request_id);
    if (r->code == LOUPE_ERR_PROTOCOL) {
        fail_connection(c, LOUPE_ERR_PROTOCOL, "%s:%d sent %s (request %lu)", c->opt.host,
                        c->opt.port, r->message, (unsigned long)f->request_id);
        loupe_result_free(r);
        return LOUPE_ERR_PROTOCOL;
    }
    push_ready(c, r);
    /* UNAUTHENTICATED always comes with a close (a token revoked or expired since the
     * handshake): the client closes too, so loupe_connected says so and the next call fails
     * at once with LOUPE_ERR_CLOSED instead of being sent into a closed socket. */
    if (r->code == LOUPE_UNAUTHENTICATED)
        return fail_connection(c, r->code, "%s (%s:%d closed the connection)", r->message,
                               c->opt.host, c->opt.port);
    return LOUPE_OK;
}

/* Matches the whole frames received so far (one_result: until one result is ready).
 * LOUPE_OK, or what take_frame or the frame reader found. */
static int decode_buffered(loupe_client *c, int one_result) {
    lp_frame f;
    while (c->fd >= 0 && !(one_result && c->ready_head)) {
        int r = lp_reader_next(&c->reader, &f);
        if (r == 0) break;
        if (r < 0)
            return fail_connection(c, c->reader.err, "%s:%d sent %s", c->opt.host, c->opt.port,
                                   c->reader.errstr);
        int rc = take_frame(c, &f);
        if (rc != LOUPE_OK) return rc;
    }
    return LOUPE_OK;
}

/* Reads whatever has arrived, without waiting, until the socket would block, matching replies
 * as they complete. LOUPE_OK, or the error that failed the connection (results finished
 * before it stay queued). */
static int read_available(loupe_client *c) {
    for (;;) {
        if (c->fd < 0) return c->err != LOUPE_OK ? c->err : LOUPE_ERR_CLOSED;
        size_t avail = 0;
        uint8_t *space = lp_reader_space(&c->reader, &avail);
        if (!space) return fail_connection(c, LOUPE_ERR_NOMEM, "out of memory reading a reply");
        long n = lp_io_read(c, space, avail);
        if (n > 0) {
            lp_reader_commit(&c->reader, (size_t)n);
            int rc = decode_buffered(c, 0);
            if (rc != LOUPE_OK) return rc;
            continue;
        }
        if (n == 0) return fail_eof(c);
        if (n == LP_IO_ERROR) {
            close_connection(c);
            return c->err;
        }
        return LOUPE_OK; /* would block */
    }
}

/* Blocking: moves bytes both ways until a result is ready (for_reply; a call's deadline
 * passing makes one) or everything queued is sent (!for_reply), at most until deadline_ms
 * (-1: none), then the connection fails with LOUPE_ERR_TIMEOUT. Reads even while sending, so
 * that a server that stops reading until its replies drain never deadlocks with us. */
static int pump(loupe_client *c, int for_reply, int64_t deadline_ms, unsigned timeout_ms,
                const char *waiting_for) {
    for (;;) {
        if (for_reply) {
            expire(c);
            if (!c->ready_head && c->fd >= 0) {
                int rc = decode_buffered(c, 1);
                if (rc != LOUPE_OK && !c->ready_head) return rc;
            }
            if (c->ready_head) return LOUPE_OK;
        } else if (c->write_failed) {
            return fail_connection(c, c->write_failed, "%s", c->write_errstr);
        } else if (c->wend == c->wstart) {
            return LOUPE_OK;
        }
        if (c->fd < 0) return c->err != LOUPE_OK ? c->err : LOUPE_ERR_CLOSED;
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
        int64_t now = lp_now_ms(), wake = deadline_ms;
        if (deadline_ms >= 0 && deadline_ms - now <= 0)
            return fail_connection(c, LOUPE_ERR_TIMEOUT,
                                   "no %s from %s:%d within %u ms (%zu call(s) waiting; the "
                                   "connection is closed)",
                                   waiting_for, c->opt.host, c->opt.port, timeout_ms,
                                   c->npending);
        if (for_reply) { /* wake up when a call's deadline passes */
            int64_t d = earliest_deadline(c);
            if (d >= 0 && (wake < 0 || d < wake)) wake = d;
        }
        int timeout = -1;
        if (wake >= 0) {
            int64_t left = wake - now;
            timeout = left < 0 ? 0 : left > INT_MAX ? INT_MAX : (int)left;
        }
        struct pollfd p = {c->fd, events, 0};
        if (poll(&p, 1, timeout) < 0 && errno != EINTR)
            return fail_connection(c, LOUPE_ERR_IO, "waiting for %s:%d failed", c->opt.host,
                                   c->opt.port);
    }
}

/* Blocking: the next finished result (a reply, or a call whose deadline passed). NULL with
 * the error set when the connection failed or timed out. */
static loupe_result *read_reply(loupe_client *c, int64_t deadline_ms, unsigned timeout_ms,
                                const char *waiting_for) {
    if (pump(c, 1, deadline_ms, timeout_ms, waiting_for) != LOUPE_OK) return NULL;
    return pop_ready(c);
}

/* ---- connecting ----------------------------------------------------------------------- */

static int copy_string(char **dst, const char *src) {
    if (!src) return 0;
    *dst = malloc(strlen(src) + 1);
    if (!*dst) return -1;
    strcpy(*dst, src);
    return 0;
}

/* Starts connecting: forgets the old connection with its calls and results, resolves the
 * host (the one step that blocks: getaddrinfo). LOUPE_OK or an error code. */
static int start_connection(loupe_client *c) {
    clear_error(c);
    close_connection(c);
    free_ready(c);
    loupe_result_free(c->welcome);
    c->welcome = NULL;
    c->next_id = 1;
    int rc = lp_io_connect_start(c);
    if (rc != LOUPE_OK) {
        close_connection(c);
        return rc;
    }
    c->state = LP_ST_TRANSPORT;
    c->phase_deadline = lp_now_ms() + c->opt.connect_timeout_ms;
    return LOUPE_OK;
}

/* The reply to Hello: the session, or why the server refused. Takes r. */
static int welcome(loupe_client *c, loupe_result *r) {
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

static loupe_poll_status ready(loupe_client *c) {
    c->state = LP_ST_READY;
    c->connected = 1;
    return LOUPE_POLL_OK;
}

/* Advances connecting as far as it goes without waiting: TCP connect (address by address),
 * TLS handshake, Hello -> Welcome, each phase within the connect timeout. */
static loupe_poll_status connect_step(loupe_client *c) {
    for (;;) {
        switch (c->state) {
        case LP_ST_READY: return LOUPE_POLL_OK;
        case LP_ST_TRANSPORT: {
            int phase = c->io_phase;
            int rc = lp_io_connect_step(c);
            if (c->io_phase != phase && c->io_phase != LP_PHASE_DONE)
                c->phase_deadline = lp_now_ms() + c->opt.connect_timeout_ms;
            if (rc == LP_IO_AGAIN) {
                if (lp_now_ms() >= c->phase_deadline) {
                    if (c->io_phase == LP_PHASE_TLS)
                        fail_connection(c, LOUPE_ERR_TIMEOUT,
                                        "no TLS handshake with %s:%d within %u ms", c->opt.host,
                                        c->opt.port, c->opt.connect_timeout_ms);
                    else
                        fail_connection(c, LOUPE_ERR_TIMEOUT, "no connection to %s:%d within %u ms",
                                        c->opt.host, c->opt.port, c->opt.connect_timeout_ms);
                    return LOUPE_POLL_FAILED;
                }
                return c->conn_wants == POLLIN ? LOUPE_POLL_READING : LOUPE_POLL_WRITING;
            }
            if (rc != LOUPE_OK) {
                close_connection(c);
                return LOUPE_POLL_FAILED;
            }
            if (!c->opt.token) return ready(c); /* no handshake: a Health probe */
            Loupe__V1__Hello hello = LOUPE__V1__HELLO__INIT;
            hello.protocol_version = LP_VERSION;
            hello.token = c->opt.token;
            hello.client_name = c->opt.client_name ? c->opt.client_name : "";
            if (append_frame(c, LP_METHOD_HELLO, 0, &hello.base, SIZE_MAX, NULL) != LOUPE_OK) {
                close_connection(c);
                return LOUPE_POLL_FAILED;
            }
            c->state = LP_ST_HELLO;
            c->phase_deadline = lp_now_ms() + c->opt.connect_timeout_ms;
            continue;
        }
        case LP_ST_HELLO: {
            try_write(c);
            int rc = read_available(c);
            if (c->ready_head) /* the Welcome, or the server's refusal */
                return welcome(c, pop_ready(c)) == LOUPE_OK ? ready(c) : LOUPE_POLL_FAILED;
            if (rc != LOUPE_OK) {
                if (c->fd >= 0) close_connection(c);
                return LOUPE_POLL_FAILED;
            }
            if (c->write_failed) {
                fail_connection(c, c->write_failed, "%s", c->write_errstr);
                return LOUPE_POLL_FAILED;
            }
            if (lp_now_ms() >= c->phase_deadline) {
                fail_connection(c, LOUPE_ERR_TIMEOUT,
                                "no Welcome from %s:%d within %u ms (the connection is closed)",
                                c->opt.host, c->opt.port, c->opt.connect_timeout_ms);
                return LOUPE_POLL_FAILED;
            }
            int wants = c->wend > c->wstart ? c->write_wants : c->read_wants;
            return wants == POLLOUT ? LOUPE_POLL_WRITING : LOUPE_POLL_READING;
        }
        default: return LOUPE_POLL_FAILED;
        }
    }
}

/* Blocking: connects and performs the handshake. */
static int open_connection(loupe_client *c) {
    int rc = start_connection(c);
    if (rc != LOUPE_OK) return rc;
    for (;;) {
        loupe_poll_status st = connect_step(c);
        if (st == LOUPE_POLL_OK) return LOUPE_OK;
        if (st == LOUPE_POLL_FAILED) return c->err;
        short events = st == LOUPE_POLL_READING ? POLLIN : POLLOUT;
        if (lp_io_wait(c->fd, events, c->phase_deadline) < 0)
            return fail_connection(c, LOUPE_ERR_IO, "waiting for %s:%d failed", c->opt.host,
                                   c->opt.port);
    }
}

static loupe_client *new_client(const loupe_options *o) {
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
    return c;
nomem:
    loupe_free(c);
    loupe_options_free(defaults);
    return NULL;
}

loupe_client *loupe_connect(const loupe_options *o) {
    loupe_client *c = new_client(o);
    if (c) open_connection(c);
    return c;
}

/* As libpq's PQconnectStart: the first step is taken at once, so the socket exists (and the
 * TCP connect is under way) when the caller first asks for it. */
static int start_nonblocking(loupe_client *c) {
    int rc = start_connection(c);
    if (rc == LOUPE_OK && connect_step(c) == LOUPE_POLL_FAILED) rc = c->err;
    return rc;
}

loupe_client *loupe_connect_start(const loupe_options *o) {
    loupe_client *c = new_client(o);
    if (c) {
        c->nonblocking = 1;
        start_nonblocking(c);
    }
    return c;
}

loupe_poll_status loupe_connect_poll(loupe_client *c) {
    return c ? connect_step(c) : LOUPE_POLL_FAILED;
}

int loupe_reconnect(loupe_client *c) {
    if (!c) return LOUPE_ERR_USAGE;
    return open_connection(c);
}

int loupe_reconnect_start(loupe_client *c) {
    if (!c) return LOUPE_ERR_USAGE;
    return start_nonblocking(c);
}

void loupe_free(loupe_client *c) {
    if (!c) return;
    lp_io_close(c);
    lp_reader_free(&c->reader);
    free(c->wbuf);
    free(c->pending);
    free(c->unsent);
    free_ready(c);
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

int loupe_socket(const loupe_client *c) { return c ? c->fd : -1; }

int loupe_set_call_timeout_ms(loupe_client *c, unsigned ms) {
    if (!c) return LOUPE_ERR_USAGE;
    c->opt.call_timeout_ms = ms;
    return LOUPE_OK;
}

int loupe_set_deadline_ms(loupe_client *c, unsigned ms) {
    if (!c) return LOUPE_ERR_USAGE;
    c->deadline_ms = ms;
    return LOUPE_OK;
}

int loupe_set_nonblocking(loupe_client *c, int on) {
    if (!c) return LOUPE_ERR_USAGE;
    c->nonblocking = on != 0;
    /* Whole replies a blocking read left in the frame reader: an event loop would not hear of
     * them (their bytes were read already), so they are matched now. */
    if (on && c->state == LP_ST_READY) return decode_buffered(c, 0);
    return LOUPE_OK;
}

int loupe_is_nonblocking(const loupe_client *c) { return c && c->nonblocking; }

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
        if (c->pending[i].id == request_id && c->pending[i].state == LP_CALL_LIVE) {
            c->pending[i].state = LP_CALL_CANCELLED;
            return LOUPE_OK;
        }
    }
    /* Finished but not handed out yet: dropped now. */
    for (loupe_result **at = &c->ready_head, *prev = NULL; *at; prev = *at, at = &(*at)->next) {
        if ((*at)->request_id != request_id) continue;
        loupe_result *r = *at;
        *at = r->next;
        if (c->ready_tail == r) c->ready_tail = prev;
        c->nready--;
        loupe_result_free(r);
        return LOUPE_OK;
    }
    return lp_set_error(c, LOUPE_ERR_USAGE, "no call with request id %lu is waiting for a reply",
                        (unsigned long)request_id);
}

int loupe_next_timeout_ms(const loupe_client *c) {
    if (!c) return -1;
    if (c->ready_head) return 0; /* loupe_get_reply has something now */
    int64_t at = -1;
    if (c->state == LP_ST_TRANSPORT || c->state == LP_ST_HELLO) at = c->phase_deadline;
    else if (c->state == LP_ST_READY) at = earliest_deadline(c);
    if (at < 0) return -1;
    int64_t left = at - lp_now_ms();
    return left <= 0 ? 0 : left > INT_MAX ? INT_MAX : (int)left;
}

/* ---- calls ---------------------------------------------------------------------------- */

/* Every public entry point starts here: the last call's error is forgotten. */
static int begin(loupe_client *c) {
    if (!c) return LOUPE_ERR_USAGE;
    clear_error(c);
    if (c->state == LP_ST_TRANSPORT || c->state == LP_ST_HELLO)
        return lp_set_error(c, LOUPE_ERR_USAGE,
                            "the connection to %s:%d is still being set up: call "
                            "loupe_connect_poll until it returns LOUPE_POLL_OK",
                            c->opt.host, c->opt.port);
    if (!c->connected)
        return lp_set_error(c, LOUPE_ERR_CLOSED,
                            "the connection to %s:%d is closed (an earlier error closed it): "
                            "loupe_reconnect, or free the client",
                            c->opt.host, c->opt.port);
    return LOUPE_OK;
}

static int begin_blocking(loupe_client *c) {
    int rc = begin(c);
    if (rc == LOUPE_OK && c->nonblocking)
        return lp_set_error(c, LOUPE_ERR_USAGE,
                            "a blocking call on a client in non-blocking mode: append it "
                            "(loupe_append_*) and read it with loupe_get_reply, or "
                            "loupe_set_nonblocking(c, 0) first");
    if (rc == LOUPE_OK && live_pending(c) > 0)
        return lp_set_error(c, LOUPE_ERR_USAGE,
                            "%zu pipelined call(s) are waiting for replies: read them with "
                            "loupe_get_reply (or loupe_cancel them) before a blocking call",
                            live_pending(c));
    return rc;
}

/* The one shape of a call's failure: its code, message, retry advice and details on the
 * client (loupe_errcode ...), whether a blocking call returned NULL or a reply carried it. */
static void set_call_error(loupe_client *c, const loupe_result *r) {
    lp_set_error(c, r->code, "%s", r->message);
    lp_status_free(c->err_status);
    c->err_status = lp_status_copy(r->status);
}

/* A blocking call: queue, send, wait for the reply; a server error goes onto the client. */
static loupe_result *call(loupe_client *c, int method, uint32_t header_rows,
                          const ProtobufCMessage *msg, size_t expected_rows) {
    if (append_frame(c, method, header_rows, msg, expected_rows, NULL) != LOUPE_OK) return NULL;
    loupe_result *r = read_reply(c, call_deadline(c), c->opt.call_timeout_ms, "reply");
    if (r && r->code != LOUPE_OK) {
        lp_set_error(c, r->code, "%s", r->message);
        c->err_status = r->status; /* moved: the message was copied first */
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


typedef struct retrain_msg {
    Loupe__V1__RetrainRequest request;
    Loupe__V1__LabelledRows rows;
    Loupe__V1__DiamondColumns columns;
    Loupe__V1__TuningBudget tune;
    Loupe__V1__ReuseParameters reuse;
    uint32_t header_rows;
} retrain_msg;

static int build_retrain(loupe_client *c, retrain_msg *m, const loupe_retrain_options *o,
                         const char *const *accept, size_t accept_count) {
    loupe_retrain_options none;
    if (!o) {
        memset(&none, 0, sizeof none);
        o = &none;
    }
    loupe__v1__retrain_request__init(&m->request);
    loupe__v1__labelled_rows__init(&m->rows);
    loupe__v1__tuning_budget__init(&m->tune);
    loupe__v1__reuse_parameters__init(&m->reuse);
    m->header_rows = 0;
    if (o->model_name) m->request.model_name = (char *)o->model_name;
    if (o->dataset) m->request.dataset = (char *)o->dataset;
    m->request.dataset_version = o->dataset_version;
    if (o->rows) {
        int rc = set_columns(c, &m->columns, o->rows);
        if (rc != LOUPE_OK) return rc;
        if (o->rows->rows > 0 && !o->prices)
            return lp_set_error(c, LOUPE_ERR_USAGE, "%zu rows but no prices", o->rows->rows);
        m->rows.diamonds = &m->columns;
        m->rows.n_prices = o->rows->rows;
        m->rows.prices = (double *)o->prices;
        m->request.rows = &m->rows;
        m->header_rows = (uint32_t)o->rows->rows;
    }
    switch (o->parameters) {
    case LOUPE_RETRAIN_PRODUCTION_PARAMETERS: break;
    case LOUPE_RETRAIN_TUNE:
        m->tune.max_trials = o->tune_max_trials;
        m->tune.max_seconds = o->tune_max_seconds;
        m->request.parameters_case = LOUPE__V1__RETRAIN_REQUEST__PARAMETERS_TUNE;
        m->request.tune = &m->tune;
        break;
    case LOUPE_RETRAIN_REUSE:
        m->reuse.version = o->reuse_version;
        m->request.parameters_case = LOUPE__V1__RETRAIN_REQUEST__PARAMETERS_REUSE;
        m->request.reuse = &m->reuse;
        break;
    default:
        return lp_set_error(c, LOUPE_ERR_USAGE, "parameters %d: expected LOUPE_RETRAIN_*",
                            o->parameters);
    }
    m->request.promotion_margin = o->promotion_margin;
    if (accept_count > 0 && !accept)
        return lp_set_error(c, LOUPE_ERR_USAGE, "accept is NULL with a count of %zu",
                            accept_count);
    for (size_t i = 0; i < accept_count; i++)
        if (!accept[i] || !*accept[i])
            return lp_set_error(c, LOUPE_ERR_USAGE,
                                "accept[%zu] is %s: expected a guardrail's name, e.g. "
                                "\"label-shift\"",
                                i, accept[i] ? "empty" : "NULL");
    m->request.n_accept = accept_count;
    m->request.accept = (char **)accept;
    return LOUPE_OK;
}

static int build_similar(loupe_client *c, Loupe__V1__FindSimilarRequest *m,
                         const loupe_similar_query *q) {
    loupe__v1__find_similar_request__init(m);
    if (!q) return lp_set_error(c, LOUPE_ERR_USAGE, "the query is NULL");
    m->carat = q->carat;
    m->cut = (Loupe__V1__Cut)q->cut;
    m->color = (Loupe__V1__Color)q->color;
    m->clarity = (Loupe__V1__Clarity)q->clarity;
    m->count = q->count;
    return LOUPE_OK;
}

/* A ReportOutcomesRequest: its Outcome and Diamond messages and the pointers to them live in
 * one allocation (memory), freed once the request is packed. */
typedef struct outcomes_msg {
    Loupe__V1__ReportOutcomesRequest request;
    void *memory;
} outcomes_msg;

static int build_outcomes(loupe_client *c, outcomes_msg *m, const loupe_outcome *outcomes,
                          size_t count, const char *model) {
    m->memory = NULL;
    loupe__v1__report_outcomes_request__init(&m->request);
    if (count == 0)
        return lp_set_error(c, LOUPE_ERR_USAGE,
                            "no outcomes: report at least one sale (nothing was sent)");
    if (!outcomes)
        return lp_set_error(c, LOUPE_ERR_USAGE, "the outcomes are NULL with a count of %zu",
                            count);
    size_t each =
        sizeof(Loupe__V1__Outcome *) + sizeof(Loupe__V1__Outcome) + sizeof(Loupe__V1__Diamond);
    Loupe__V1__Outcome **list = count > SIZE_MAX / each ? NULL : malloc(count * each);
    if (!list)
        return lp_set_error(c, LOUPE_ERR_NOMEM, "out of memory building %zu outcomes", count);
    Loupe__V1__Outcome *msgs = (Loupe__V1__Outcome *)(list + count);
    Loupe__V1__Diamond *diamonds = (Loupe__V1__Diamond *)(msgs + count);
    for (size_t i = 0; i < count; i++) {
        const loupe_outcome *o = &outcomes[i];
        loupe__v1__outcome__init(&msgs[i]);
        set_diamond(&diamonds[i], &o->diamond);
        msgs[i].diamond = &diamonds[i];
        msgs[i].sold_price = o->sold_price;
        msgs[i].sold_unix_ms = o->sold_unix_ms;
        msgs[i].has_request_id = o->has_request_id != 0;
        msgs[i].request_id = o->has_request_id ? o->request_id : 0;
        if (o->outcome_id) msgs[i].outcome_id = (char *)o->outcome_id;
        list[i] = &msgs[i];
    }
    m->request.n_outcomes = count;
    m->request.outcomes = list;
    if (model) m->request.model = (char *)model;
    m->memory = list;
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
    Loupe__V1__FindSimilarRequest m;
    if (begin_blocking(c) != LOUPE_OK || build_similar(c, &m, q) != LOUPE_OK) return NULL;
    return call(c, LOUPE_METHOD_FIND_SIMILAR, 0, &m.base, SIZE_MAX);
}

loupe_result *loupe_retrain(loupe_client *c, const loupe_retrain_options *o) {
    return loupe_retrain_accepting(c, o, NULL, 0);
}

loupe_result *loupe_retrain_accepting(loupe_client *c, const loupe_retrain_options *o,
                                      const char *const *accept, size_t accept_count) {
    retrain_msg m;
    if (begin_blocking(c) != LOUPE_OK || build_retrain(c, &m, o, accept, accept_count) != LOUPE_OK)
        return NULL;
    return call(c, LOUPE_METHOD_RETRAIN, m.header_rows, &m.request.base, SIZE_MAX);
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

loupe_result *loupe_report_outcomes(loupe_client *c, const loupe_outcome *outcomes,
                                    size_t count, const char *model) {
    outcomes_msg m;
    if (begin_blocking(c) != LOUPE_OK || build_outcomes(c, &m, outcomes, count, model) != LOUPE_OK)
        return NULL;
    loupe_result *r = call(c, LOUPE_METHOD_REPORT_OUTCOMES, 0, &m.request.base, count);
    free(m.memory);
    return r;
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

int loupe_append_health(loupe_client *c, uint32_t *request_id) {
    int rc = begin(c);
    Loupe__V1__HealthRequest m = LOUPE__V1__HEALTH_REQUEST__INIT;
    if (rc == LOUPE_OK)
        rc = append_frame(c, LOUPE_METHOD_HEALTH, 0, &m.base, SIZE_MAX, request_id);
    return rc;
}

int loupe_append_list_models(loupe_client *c, const char *name, uint32_t *request_id) {
    int rc = begin(c);
    Loupe__V1__ListModelsRequest m = LOUPE__V1__LIST_MODELS_REQUEST__INIT;
    if (name) m.name = (char *)name;
    if (rc == LOUPE_OK)
        rc = append_frame(c, LOUPE_METHOD_LIST_MODELS, 0, &m.base, SIZE_MAX, request_id);
    return rc;
}

int loupe_append_find_similar(loupe_client *c, const loupe_similar_query *q,
                              uint32_t *request_id) {
    Loupe__V1__FindSimilarRequest m;
    int rc = begin(c);
    if (rc == LOUPE_OK) rc = build_similar(c, &m, q);
    if (rc == LOUPE_OK)
        rc = append_frame(c, LOUPE_METHOD_FIND_SIMILAR, 0, &m.base, SIZE_MAX, request_id);
    return rc;
}

int loupe_append_get_job(loupe_client *c, const char *job_id, uint32_t *request_id) {
    int rc = begin(c);
    if (rc == LOUPE_OK && !job_id) rc = lp_set_error(c, LOUPE_ERR_USAGE, "the job id is NULL");
    Loupe__V1__GetJobRequest m = LOUPE__V1__GET_JOB_REQUEST__INIT;
    m.job_id = (char *)(job_id ? job_id : "");
    if (rc == LOUPE_OK)
        rc = append_frame(c, LOUPE_METHOD_GET_JOB, 0, &m.base, SIZE_MAX, request_id);
    return rc;
}

int loupe_append_retrain(loupe_client *c, const loupe_retrain_options *o,
                         const char *const *accept, size_t accept_count, uint32_t *request_id) {
    retrain_msg m;
    int rc = begin(c);
    if (rc == LOUPE_OK) rc = build_retrain(c, &m, o, accept, accept_count);
    if (rc == LOUPE_OK)
        rc = append_frame(c, LOUPE_METHOD_RETRAIN, m.header_rows, &m.request.base, SIZE_MAX,
                          request_id);
    return rc;
}

int loupe_append_report_outcomes(loupe_client *c, const loupe_outcome *outcomes, size_t count,
                                  const char *model, uint32_t *request_id) {
    outcomes_msg m = {.memory = NULL};
    int rc = begin(c);
    if (rc == LOUPE_OK) rc = build_outcomes(c, &m, outcomes, count, model);
    if (rc == LOUPE_OK)
        rc = append_frame(c, LOUPE_METHOD_REPORT_OUTCOMES, 0, &m.request.base, count, request_id);
    free(m.memory);
    return rc;
}

int loupe_flush(loupe_client *c) {
    int rc = begin(c);
    if (!c) return rc;
    if (!c->nonblocking) {
        if (rc != LOUPE_OK) return rc;
        return pump(c, 0, call_deadline(c), c->opt.call_timeout_ms, "progress sending");
    }
    if (rc != LOUPE_OK) return -1;
    try_write(c);
    if (c->write_failed) {
        /* The server may have said why it closed (an error frame): read that first. */
        read_available(c);
        if (c->fd >= 0) fail_connection(c, c->write_failed, "%s", c->write_errstr);
        return -1;
    }
    /* TLS: a read that waited for the socket to be writable (rare) goes on now. */
    if (c->read_wants == POLLOUT && read_available(c) != LOUPE_OK) return -1;
    return c->wend > c->wstart ? 1 : 0;
}

int loupe_consume_input(loupe_client *c) {
    int rc = begin(c);
    if (rc != LOUPE_OK) return rc;
    expire(c); /* a reply read after its call's deadline is late: dropped */
    rc = read_available(c);
    /* TLS: a write that waited for the socket to be readable goes on now. */
    if (rc == LOUPE_OK && c->wend > c->wstart && c->write_wants == POLLIN) try_write(c);
    return rc;
}

int loupe_is_busy(loupe_client *c) {
    if (!c || c->state != LP_ST_READY) return 0;
    expire(c);
    if (c->ready_head) return 0;
    for (size_t i = 0; i < c->npending; i++)
        if (c->pending[i].state == LP_CALL_LIVE) return 1;
    return 0;
}

loupe_result *loupe_get_reply(loupe_client *c) {
    if (!c) return NULL;
    clear_error(c);
    if (c->state == LP_ST_READY) {
        expire(c);
        /* Non-blocking: no I/O, only what has arrived (normally matched by consume_input). */
        if (c->nonblocking && !c->ready_head && decode_buffered(c, 1) != LOUPE_OK &&
            !c->ready_head)
            return NULL;
    }
    loupe_result *r = pop_ready(c);
    if (!r) {
        if (begin(c) != LOUPE_OK) return NULL;
        if (c->nonblocking) return NULL; /* nothing finished yet: LOUPE_OK */
        if (live_pending(c) == 0) {
            lp_set_error(c, LOUPE_ERR_USAGE, "no calls are waiting for a reply");
            return NULL;
        }
        r = read_reply(c, call_deadline(c), c->opt.call_timeout_ms, "reply");
        if (!r) return NULL;
    }
    if (r->code != LOUPE_OK) set_call_error(c, r);
    return r;
}
