/*
 * Non-blocking mode (and per-call deadlines) against the scripted server: connecting step by
 * step, a refused port, a server that never says Welcome; every send and recv cut short;
 * replies split at every byte; the peer closing in the middle of a frame; a deadline passing
 * (the late reply dropped, the frame's deadline field); cancel; one error shape in every
 * mode; the other methods pipelined; Retrain's accept list.
 *
 * Built with -Wl,--wrap=send,--wrap=recv: on the socket in `short_fd`, every other send and
 * recv says EAGAIN and the others move at most 7 bytes, so the library's partial-write and
 * partial-read paths run on every frame, whatever the kernel's buffers would have done.
 *
 * No check depends on how fast the machine is: loops that wait for the library give up after
 * GUARD_S seconds of wall clock only so that a broken library fails instead of hanging.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "mock_server.h"

#ifndef GUARD_S
#define GUARD_S 20.0
#endif

/* ---- short sends and receives on one socket ------------------------------------------- */

static atomic_int short_fd = -1;
static unsigned short_turn; /* the test thread's only */
static unsigned short_sends, short_recvs;

ssize_t __real_send(int fd, const void *buf, size_t n, int flags);
ssize_t __real_recv(int fd, void *buf, size_t n, int flags);

ssize_t __wrap_send(int fd, const void *buf, size_t n, int flags);
ssize_t __wrap_send(int fd, const void *buf, size_t n, int flags) {
    if (fd != atomic_load(&short_fd) || n == 0) return __real_send(fd, buf, n, flags);
    if (++short_turn % 2 == 0) {
        errno = EAGAIN;
        return -1;
    }
    size_t k = 1 + short_turn % 7;
    short_sends++;
    return __real_send(fd, buf, n < k ? n : k, flags);
}

ssize_t __wrap_recv(int fd, void *buf, size_t n, int flags);
ssize_t __wrap_recv(int fd, void *buf, size_t n, int flags) {
    if (fd != atomic_load(&short_fd) || n == 0) return __real_recv(fd, buf, n, flags);
    if (++short_turn % 2 == 0) {
        errno = EAGAIN;
        return -1;
    }
    size_t k = 1 + short_turn % 7;
    short_recvs++;
    return __real_recv(fd, buf, n < k ? n : k, flags);
}

/* ---- helpers ----------------------------------------------------------------------------- */

static const char *const all_scopes[] = {"predict", "models:read", "admin"};
static const loupe_diamond example = {1.01, LOUPE_CUT_IDEAL, LOUPE_COLOR_G, LOUPE_CLARITY_VS1,
                                      61.8, 56, 6.43, 6.47, 3.99};

static loupe_options *options(int port, const char *token, unsigned connect_ms) {
    loupe_options *o = loupe_options_new();
    loupe_options_set_port(o, port);
    loupe_options_set_token(o, token);
    loupe_options_set_call_timeout_ms(o, 10000);
    if (connect_ms) loupe_options_set_connect_timeout_ms(o, connect_ms);
    return o;
}

/* Connects without waiting, driving loupe_connect_poll from poll(2) as an event loop would.
 * *polls: how many times connect_poll asked to wait. */
static loupe_client *connect_nb(int port, const char *token, unsigned connect_ms, int *polls) {
    loupe_options *o = options(port, token, connect_ms);
    loupe_client *c = loupe_connect_start(o);
    loupe_options_free(o);
    if (polls) *polls = 0;
    double t0 = check_clock();
    loupe_poll_status st;
    while ((st = loupe_connect_poll(c)) == LOUPE_POLL_READING || st == LOUPE_POLL_WRITING) {
        if (check_clock() - t0 > GUARD_S) break;
        int timeout = loupe_next_timeout_ms(c);
        struct pollfd p = {loupe_socket(c), st == LOUPE_POLL_READING ? POLLIN : POLLOUT, 0};
        poll(&p, 1, timeout < 0 || timeout > 1000 ? 1000 : timeout);
        if (polls) (*polls)++;
    }
    return c;
}

/* One turn of an event loop: wait for the socket (POLLIN; POLLOUT while *more_to_send) or the
 * next deadline, then consume input and flush. LOUPE_OK or the code that closed the
 * connection. */
static int turn(loupe_client *c, int *more_to_send) {
    int timeout = loupe_next_timeout_ms(c);
    struct pollfd p = {loupe_socket(c), (short)(POLLIN | (*more_to_send ? POLLOUT : 0)), 0};
    poll(&p, 1, timeout < 0 || timeout > 200 ? 200 : timeout);
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
        int rc = loupe_consume_input(c);
        if (rc != LOUPE_OK) return rc;
    }
    if (*more_to_send) {
        int f = loupe_flush(c);
        if (f < 0) return loupe_errcode(c);
        *more_to_send = f;
    }
    return LOUPE_OK;
}

/* Flushes, then turns the loop until a result is finished (or the connection fails). */
static loupe_result *next_result(loupe_client *c) {
    int more = loupe_flush(c);
    if (more < 0) return NULL;
    double t0 = check_clock();
    for (;;) {
        loupe_result *r = loupe_get_reply(c);
        if (r || loupe_errcode(c) != LOUPE_OK) return r;
        if (check_clock() - t0 > GUARD_S) {
            fprintf(stderr, "  (gave up waiting for a result)\n");
            return NULL;
        }
        if (turn(c, &more) != LOUPE_OK) return loupe_get_reply(c);
    }
}

static void reply_price(mock_conn *c, uint32_t id, double price) {
    Loupe__V1__PredictResponse p = LOUPE__V1__PREDICT_RESPONSE__INIT;
    p.price = price;
    p.low = price * 0.9;
    p.high = price * 1.1;
    p.level = 0.9;
    p.model_name = "diamonds";
    p.model_version = 7;
    mock_reply(c, LOUPE_METHOD_PREDICT, id, 0, &p.base);
}

/* The bytes of a frame (prefix and payload) into buf; returns its length. */
static size_t frame_bytes(uint8_t *buf, uint8_t flags, uint16_t method, uint32_t id,
                          const ProtobufCMessage *msg) {
    size_t len = protobuf_c_message_get_packed_size(msg);
    lp_write_prefix(buf, len, flags, method, id, 0, 0);
    protobuf_c_message_pack(msg, buf + LP_PREFIX_SIZE);
    return LP_PREFIX_SIZE + len;
}

/* A Predict reply for `id` (price 7186) and an INVALID_ARGUMENT reply with one field
 * violation for `id2`, back to back in buf. *first: the first frame's length. */
static size_t two_replies(uint8_t *buf, uint32_t id, uint32_t id2, size_t *first) {
    Loupe__V1__PredictResponse p = LOUPE__V1__PREDICT_RESPONSE__INIT;
    p.price = 7186;
    p.low = 6323;
    p.high = 8167;
    p.level = 0.9;
    p.model_name = "diamonds";
    p.model_version = 7;
    *first = frame_bytes(buf, LP_FLAG_RESPONSE, LOUPE_METHOD_PREDICT, id, &p.base);
    Loupe__V1__FieldViolation v = LOUPE__V1__FIELD_VIOLATION__INIT;
    v.field = "diamond.carat";
    v.description = "must be > 0, got -1.0";
    Loupe__V1__FieldViolation *vs[] = {&v};
    Loupe__V1__Status st = LOUPE__V1__STATUS__INIT;
    st.code = LOUPE__V1__STATUS_CODE__STATUS_CODE_INVALID_ARGUMENT;
    st.message = "diamond.carat must be > 0, got -1.0";
    st.n_field_violations = 1;
    st.field_violations = vs;
    return *first + frame_bytes(buf + *first, LP_FLAG_RESPONSE | LP_FLAG_ERROR,
                                LOUPE_METHOD_PREDICT, id2, &st.base);
}

/* Predict replies (price 10 x id) to every request, until the client closes. */
static void answer_all(mock_conn *c, void *arg) {
    (void)arg;
    if (!mock_welcome(c, all_scopes, 3, 0, NULL, 0)) return;
    lp_frame f;
    while (mock_read(c, &f, 10000)) reply_price(c, f.request_id, 10.0 * f.request_id);
}

/* ---- connecting ------------------------------------------------------------------------ */

static void test_connect(void) {
    TEST("connect without waiting: TCP, Hello -> Welcome, then a call");
    mock_server *s = mock_start(answer_all, NULL);
    loupe_options *o = options(mock_port(s), "t", 0);
    loupe_client *c = loupe_connect_start(o);
    loupe_options_free(o);
    CHECK(c != NULL);
    CHECK_CODE(c, LOUPE_OK);
    CHECK(loupe_is_nonblocking(c));
    CHECK(loupe_socket(c) >= 0); /* the connect is under way (or done) */
    loupe_free(c);

    /* What stalled score_csv_async (issue 24): the Welcome is in before connect_poll runs
     * (on a busy machine even before loupe_connect_start returns), so connect_poll says OK
     * at once, with nothing pending, and no socket event will follow. */
    TEST("connect without waiting: connect_poll says OK at once when the Welcome is in");
    o = options(mock_port(s), "t", 0);
    c = loupe_connect_start(o);
    loupe_options_free(o);
    double t0 = check_clock();
    while (c->state == LP_ST_TRANSPORT && check_clock() - t0 < GUARD_S) { /* TCP still going */
        struct pollfd w = {loupe_socket(c), POLLOUT, 0};
        poll(&w, 1, 200);
        loupe_connect_poll(c);
    }
    if (c->state == LP_ST_HELLO) { /* the Hello is out: wait for the Welcome, unread */
        struct pollfd in = {loupe_socket(c), POLLIN, 0};
        CHECK_INT(poll(&in, 1, (int)(GUARD_S * 1000)), 1);
    }
    CHECK_INT(loupe_connect_poll(c), LOUPE_POLL_OK);
    CHECK_INT(loupe_pending(c), 0);
    CHECK_INT(loupe_next_timeout_ms(c), -1); /* nothing to wake a loop: the caller acts now */
    loupe_free(c);

    c = connect_nb(mock_port(s), "t", 0, NULL);
    CHECK_INT(loupe_connect_poll(c), LOUPE_POLL_OK);
    CHECK(loupe_connected(c));
    const loupe_session *session = loupe_client_session(c);
    CHECK(session && strcmp(session->principal, "mock") == 0);
    CHECK_INT(loupe_next_timeout_ms(c), -1); /* nothing to time */
    CHECK_INT(loupe_is_busy(c), 0);

    TEST("non-blocking: get_reply with nothing finished is NULL and LOUPE_OK");
    CHECK(loupe_get_reply(c) == NULL);
    CHECK_CODE(c, LOUPE_OK);
    uint32_t id = 0;
    CHECK_INT(loupe_append_predict(c, &example, NULL, &id), LOUPE_OK);
    uint32_t first_id = id;
    CHECK_INT(loupe_is_busy(c), 1);
    CHECK(loupe_get_reply(c) == NULL); /* no I/O: nothing was even sent */
    CHECK_CODE(c, LOUPE_OK);
    CHECK_INT(loupe_pending(c), 1);
    loupe_result *r = next_result(c);
    CHECK(r != NULL);
    CHECK_INT(loupe_result_request_id(r), id);
    CHECK(loupe_result_price(r, 0).price == 10.0 * id);
    loupe_result_free(r);
    CHECK_INT(loupe_pending(c), 0);
    CHECK_INT(loupe_is_busy(c), 0);

    TEST("non-blocking: blocking calls are refused; blocking mode again works");
    CHECK(loupe_predict(c, &example, NULL) == NULL);
    CHECK_CODE(c, LOUPE_ERR_USAGE);
    CHECK_HAS(loupe_errmsg(c), "non-blocking mode");
    CHECK(loupe_connected(c));
    CHECK_INT(loupe_set_nonblocking(c, 0), LOUPE_OK);
    CHECK(!loupe_is_nonblocking(c));
    r = loupe_predict(c, &example, NULL);
    CHECK(r != NULL && loupe_result_price(r, 0).price > 0);
    loupe_result_free(r);
    CHECK(loupe_get_reply(c) == NULL); /* blocking mode, nothing pending: a usage error */
    CHECK_CODE(c, LOUPE_ERR_USAGE);

    TEST("reconnect without waiting");
    CHECK_INT(loupe_set_nonblocking(c, 1), LOUPE_OK);
    CHECK_INT(loupe_reconnect_start(c), LOUPE_OK);
    t0 = check_clock();
    loupe_poll_status st;
    while ((st = loupe_connect_poll(c)) == LOUPE_POLL_READING || st == LOUPE_POLL_WRITING) {
        if (check_clock() - t0 > GUARD_S) break;
        struct pollfd p = {loupe_socket(c), st == LOUPE_POLL_READING ? POLLIN : POLLOUT, 0};
        poll(&p, 1, 200);
    }
    CHECK_INT(st, LOUPE_POLL_OK);
    CHECK_INT(loupe_append_predict(c, &example, NULL, &id), LOUPE_OK);
    CHECK_INT(id, first_id); /* request ids start again on a new connection */
    r = next_result(c);
    CHECK(r != NULL && loupe_result_price(r, 0).price == 10.0 * id);
    loupe_result_free(r);
    loupe_free(c);
    mock_stop(s);
}

static void test_connect_refused(void) {
    TEST("connect without waiting to a refused port: LOUPE_POLL_FAILED, ERR_IO");
    mock_server *s = mock_start(NULL, NULL);
    int port = mock_port(s);
    mock_stop(s); /* nothing listens there any more */
    loupe_client *c = connect_nb(port, "t", 0, NULL);
    CHECK(c != NULL);
    CHECK_INT(loupe_connect_poll(c), LOUPE_POLL_FAILED);
    CHECK_CODE(c, LOUPE_ERR_IO);
    CHECK_HAS(loupe_errmsg(c), "refused");
    CHECK(!loupe_connected(c));
    CHECK_INT(loupe_socket(c), -1);
    CHECK_INT(loupe_next_timeout_ms(c), -1);
    CHECK_INT(loupe_append_predict(c, &example, NULL, NULL), LOUPE_ERR_CLOSED);
    CHECK_INT(loupe_consume_input(c), LOUPE_ERR_CLOSED);
    CHECK_INT(loupe_flush(c), -1);
    loupe_free(c);

    TEST("connect without waiting to a name that does not resolve");
    loupe_options *o = loupe_options_new();
    loupe_options_set_host(o, "no-such-host.invalid");
    c = loupe_connect_start(o);
    loupe_options_free(o);
    CHECK_CODE(c, LOUPE_ERR_IO);
    CHECK_HAS(loupe_errmsg(c), "cannot resolve");
    CHECK_INT(loupe_connect_poll(c), LOUPE_POLL_FAILED);
    loupe_free(c);
}

static void silent(mock_conn *c, void *arg) {
    (void)arg;
    mock_drain(c, 5000);
}

static void test_connect_timeout(void) {
    TEST("while connecting: no calls yet, the phase's timeout to wait for");
    mock_server *s = mock_start(silent, NULL);
    loupe_options *o = options(mock_port(s), "t", 5000);
    loupe_client *c = loupe_connect_start(o);
    loupe_options_free(o);
    CHECK(loupe_socket(c) >= 0);
    CHECK(!loupe_connected(c));
    int polled = loupe_connect_poll(c);
    CHECK(polled == LOUPE_POLL_READING || polled == LOUPE_POLL_WRITING);
    int timeout = loupe_next_timeout_ms(c); /* the phase's, at most its 5 s */
    CHECK(timeout >= 0 && timeout <= 5000);
    CHECK_INT(loupe_append_predict(c, &example, NULL, NULL), LOUPE_ERR_USAGE);
    CHECK_HAS(loupe_errmsg(c), "still being set up");
    CHECK(loupe_get_reply(c) == NULL);
    CHECK_CODE(c, LOUPE_ERR_USAGE);
    CHECK_INT(loupe_is_busy(c), 0);
    loupe_free(c);

    TEST("connect without waiting to a server that never says Welcome: ERR_TIMEOUT");
    c = connect_nb(mock_port(s), "t", 200, NULL);
    CHECK_INT(loupe_connect_poll(c), LOUPE_POLL_FAILED);
    CHECK_CODE(c, LOUPE_ERR_TIMEOUT);
    CHECK_HAS(loupe_errmsg(c), "no Welcome");
    CHECK(!loupe_connected(c));
    loupe_free(c);
    mock_stop(s);
}

/* ---- bytes in pieces ------------------------------------------------------------------- */

enum { SHORT_ROWS = 300, SHORT_CALLS = 2 };

/* Checks each BatchPredict request's columns (carat[i] = call + i / 1000) and answers with
 * price = 1000 x carat. *ok counts the requests that arrived intact. */
static void check_columns(mock_conn *c, void *arg) {
    int *ok = arg;
    if (!mock_welcome(c, all_scopes, 3, 0, NULL, 0)) return;
    double prices[SHORT_ROWS];
    lp_frame f;
    for (int call = 0; call < SHORT_CALLS && mock_read(c, &f, 10000); call++) {
        Loupe__V1__BatchPredictRequest *req =
            loupe__v1__batch_predict_request__unpack(NULL, f.payload_len, f.payload);
        int good = req && req->rows && req->rows->n_carat == SHORT_ROWS &&
                   f.row_count == SHORT_ROWS;
        for (size_t i = 0; good && i < SHORT_ROWS; i++) {
            good = req->rows->carat[i] == call + (double)i / 1000 && req->rows->cut[i] == 5 &&
                   req->rows->z[i] == 3.99;
            prices[i] = 1000 * req->rows->carat[i];
        }
        loupe__v1__batch_predict_request__free_unpacked(req, NULL);
        *ok += good;
        Loupe__V1__BatchPredictResponse b = LOUPE__V1__BATCH_PREDICT_RESPONSE__INIT;
        b.n_prices = b.n_lows = b.n_highs = SHORT_ROWS;
        b.prices = b.lows = b.highs = prices;
        mock_reply(c, f.method, f.request_id, SHORT_ROWS, &b.base);
    }
    mock_drain(c, 10000);
}

static void test_short_io(void) {
    TEST("every send and recv cut short (at most 7 bytes, every other one EAGAIN)");
    int ok = 0;
    mock_server *s = mock_start(check_columns, &ok);
    loupe_client *c = connect_nb(mock_port(s), "t", 0, NULL);
    CHECK_INT(loupe_connect_poll(c), LOUPE_POLL_OK);
    atomic_store(&short_fd, loupe_socket(c));
    double carat[SHORT_ROWS * SHORT_CALLS], other[SHORT_ROWS * SHORT_CALLS], z[SHORT_ROWS * SHORT_CALLS];
    int grade[SHORT_ROWS * SHORT_CALLS];
    for (int i = 0; i < SHORT_ROWS * SHORT_CALLS; i++) {
        carat[i] = i / SHORT_ROWS + (double)(i % SHORT_ROWS) / 1000;
        other[i] = 6.4, z[i] = 3.99, grade[i] = 5;
    }
    uint32_t ids[SHORT_CALLS];
    for (int k = 0; k < SHORT_CALLS; k++) {
        size_t at = (size_t)k * SHORT_ROWS;
        loupe_columns cols = {SHORT_ROWS, carat + at, grade, grade, grade, other, other, other,
                              other, z};
        CHECK_INT(loupe_append_batch_predict(c, &cols, NULL, &ids[k]), LOUPE_OK);
    }
    int more = loupe_flush(c), saw_more = more == 1, got = 0;
    double t0 = check_clock();
    while (got < SHORT_CALLS && check_clock() - t0 < GUARD_S) {
        int rc = turn(c, &more);
        saw_more |= more == 1;
        if (rc != LOUPE_OK) {
            fprintf(stderr, "  %s\n", loupe_errmsg(c));
            break;
        }
        loupe_result *r;
        while ((r = loupe_get_reply(c)) != NULL) {
            int k = loupe_result_request_id(r) == ids[1];
            int good = loupe_result_code(r) == LOUPE_OK && loupe_result_rows(r) == SHORT_ROWS;
            for (size_t i = 0; good && i < SHORT_ROWS; i++)
                good = loupe_result_prices(r)[i] == 1000 * carat[(size_t)k * SHORT_ROWS + i];
            CHECK(good);
            got++;
            loupe_result_free(r);
        }
    }
    atomic_store(&short_fd, -1);
    CHECK_INT(got, SHORT_CALLS);
    CHECK(saw_more);                        /* flush said "more to send" */
    CHECK(short_sends > 2 && short_recvs > 2); /* the cuts happened */
    loupe_free(c);
    mock_stop(s);
    CHECK_INT(ok, SHORT_CALLS); /* the server got every byte, in order */
}

enum { BIG_ROWS = 2900 }; /* a reply of ~70 KB: more than the reader takes in one read */

typedef struct big_script {
    sem_t sent;
    size_t bytes;
} big_script;

/* Answers one BatchPredict with BIG_ROWS prices in one send, says how many bytes it sent. */
static void big_reply(mock_conn *c, void *arg) {
    big_script *b = arg;
    if (!mock_welcome(c, all_scopes, 3, 0, NULL, 0)) return;
    lp_frame f;
    if (!mock_read(c, &f, 10000)) return;
    static double prices[BIG_ROWS];
    for (int i = 0; i < BIG_ROWS; i++) prices[i] = i;
    Loupe__V1__BatchPredictResponse m = LOUPE__V1__BATCH_PREDICT_RESPONSE__INIT;
    m.n_prices = m.n_lows = m.n_highs = BIG_ROWS;
    m.prices = m.lows = m.highs = prices;
    b->bytes = LP_PREFIX_SIZE + protobuf_c_message_get_packed_size(&m.base);
    mock_reply(c, f.method, f.request_id, BIG_ROWS, &m.base);
    sem_post(&b->sent);
    mock_drain(c, 10000);
}

static void test_edge_triggered(void) {
    TEST("one consume_input reads until the socket would block (edge-triggered polling)");
    big_script b;
    sem_init(&b.sent, 0, 0);
    mock_server *s = mock_start(big_reply, &b);
    loupe_client *c = connect_nb(mock_port(s), "t", 0, NULL);
    int size = 1 << 20; /* room for the whole reply in the socket */
    setsockopt(loupe_socket(c), SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    static double d[BIG_ROWS];
    static int e[BIG_ROWS];
    for (int i = 0; i < BIG_ROWS; i++) d[i] = 1, e[i] = 1;
    loupe_columns cols = {BIG_ROWS, d, e, e, e, d, d, d, d, d};
    CHECK_INT(loupe_append_batch_predict(c, &cols, NULL, NULL), LOUPE_OK);
    int more = loupe_flush(c);
    double t0 = check_clock();
    while (more == 1 && check_clock() - t0 < GUARD_S) turn(c, &more);
    sem_wait(&b.sent);
    int queued = 0; /* wait until the whole reply is in the socket: no edge will come after */
    while (ioctl(loupe_socket(c), FIONREAD, &queued) == 0 && (size_t)queued < b.bytes &&
           check_clock() - t0 < GUARD_S) {
        struct pollfd p = {-1, 0, 0};
        poll(&p, 0, 5);
    }
    CHECK_INT(queued, b.bytes);
    CHECK(b.bytes > 65536);
    CHECK_INT(loupe_consume_input(c), LOUPE_OK);
    ioctl(loupe_socket(c), FIONREAD, &queued);
    CHECK_INT(queued, 0);
    loupe_result *r = loupe_get_reply(c);
    CHECK(r && loupe_result_rows(r) == BIG_ROWS && loupe_result_prices(r)[BIG_ROWS - 1] == BIG_ROWS - 1);
    loupe_result_free(r);
    loupe_free(c);
    mock_stop(s);
    sem_destroy(&b.sent);
}

/* A gate between the test and the server's thread. */
typedef struct split_script {
    sem_t sent, go;
    size_t cut; /* send the replies' first `cut` bytes, wait for go, send the rest */
    int close_after_cut; /* instead of the rest: close the connection */
    int rounds;
} split_script;

static void split_replies(mock_conn *c, void *arg) {
    split_script *s = arg;
    if (!mock_welcome(c, all_scopes, 3, 0, NULL, 0)) return;
    for (int round = 0; round < s->rounds; round++) {
        lp_frame f;
        uint32_t id[2];
        for (int i = 0; i < 2; i++) {
            if (!mock_read(c, &f, 10000)) return;
            id[i] = f.request_id;
        }
        uint8_t buf[512];
        size_t first, len = two_replies(buf, id[0], id[1], &first);
        size_t cut = s->cut < len ? s->cut : len;
        mock_send(c, buf, cut);
        sem_post(&s->sent);
        sem_wait(&s->go);
        if (s->close_after_cut) return;
        mock_send(c, buf + cut, len - cut);
    }
    mock_drain(c, 10000);
}

/* Consumes until the client holds `want_ready` finished results and `want_buffered` bytes of
 * an incomplete frame (or the guard passes). */
static int consume_until(loupe_client *c, size_t want_ready, size_t want_buffered) {
    double t0 = check_clock();
    while (c->nready != want_ready || lp_reader_buffered(&c->reader) != want_buffered) {
        if (check_clock() - t0 > GUARD_S) return 0;
        struct pollfd p = {loupe_socket(c), POLLIN, 0};
        poll(&p, 1, 50);
        if (loupe_consume_input(c) != LOUPE_OK) return 0;
    }
    return 1;
}

static void test_split_replies(void) {
    TEST("two replies split at every byte: nothing is finished before its last byte");
    uint8_t probe[512];
    size_t first, len = two_replies(probe, 1, 2, &first);
    split_script s;
    sem_init(&s.sent, 0, 0);
    sem_init(&s.go, 0, 0);
    s.close_after_cut = 0;
    s.rounds = (int)len - 1;
    mock_server *server = mock_start(split_replies, &s);
    loupe_client *c = connect_nb(mock_port(server), "t", 0, NULL);
    CHECK_INT(loupe_connect_poll(c), LOUPE_POLL_OK);
    int failures_before = check_failures;
    for (size_t cut = 1; cut < len && check_failures == failures_before; cut++) {
        s.cut = cut;
        uint32_t a, b;
        loupe_diamond bad = example;
        bad.carat = -1;
        CHECK_INT(loupe_append_predict(c, &example, NULL, &a), LOUPE_OK);
        CHECK_INT(loupe_append_predict(c, &bad, NULL, &b), LOUPE_OK);
        CHECK_INT(loupe_flush(c), 0);
        sem_wait(&s.sent);
        int first_done = cut >= first;
        CHECK(consume_until(c, first_done, first_done ? cut - first : cut));
        CHECK_INT(loupe_is_busy(c), !first_done);
        CHECK_INT(loupe_next_timeout_ms(c), first_done ? 0 : -1);
        loupe_result *r = loupe_get_reply(c);
        CHECK_INT(r != NULL, first_done);
        if (r) {
            CHECK_INT(loupe_result_request_id(r), a);
            CHECK(loupe_result_price(r, 0).price == 7186);
            loupe_result_free(r);
        }
        CHECK_CODE(c, LOUPE_OK);
        CHECK(loupe_get_reply(c) == NULL); /* the second reply is not whole yet */
        CHECK_INT(loupe_is_busy(c), 1);
        sem_post(&s.go);
        CHECK(consume_until(c, first_done ? 1 : 2, 0));
        CHECK_INT(loupe_is_busy(c), 0);
        if (!first_done) {
            r = loupe_get_reply(c);
            CHECK(r && loupe_result_request_id(r) == a && loupe_result_code(r) == LOUPE_OK);
            loupe_result_free(r);
        }
        r = loupe_get_reply(c);
        CHECK(r != NULL);
        if (r) {
            CHECK_INT(loupe_result_request_id(r), b);
            CHECK_INT(loupe_result_code(r), LOUPE_INVALID_ARGUMENT);
            CHECK_INT(loupe_result_error_detail_count(r), 1);
            loupe_result_free(r);
        }
        CHECK_CODE(c, LOUPE_INVALID_ARGUMENT); /* on the client too */
        CHECK_INT(loupe_err_detail_count(c), 1);
        CHECK(loupe_connected(c));
        CHECK_INT(loupe_pending(c), 0);
        if (check_failures != failures_before)
            fprintf(stderr, "  (at a split after byte %zu of %zu)\n", cut, len);
    }
    loupe_free(c);
    mock_stop(server);
    sem_destroy(&s.sent);
    sem_destroy(&s.go);
}

static void test_close_mid_frame(void) {
    TEST("the server closes in the middle of a frame: ERR_EOF; the whole reply before it is kept");
    uint8_t probe[512];
    size_t first, len = two_replies(probe, 1, 2, &first);
    /* cuts inside the second frame: in its length, its header, its payload */
    size_t cuts[] = {first + 1, first + 3, first + 4, first + 5, first + 12, first + 19,
                     first + 20, first + 21, len - 1};
    for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++) {
        split_script s;
        sem_init(&s.sent, 0, 0);
        sem_init(&s.go, 0, 0);
        s.cut = cuts[k];
        s.close_after_cut = 1;
        s.rounds = 1;
        mock_server *server = mock_start(split_replies, &s);
        loupe_client *c = connect_nb(mock_port(server), "t", 0, NULL);
        uint32_t a, b;
        CHECK_INT(loupe_append_predict(c, &example, NULL, &a), LOUPE_OK);
        CHECK_INT(loupe_append_predict(c, &example, NULL, &b), LOUPE_OK);
        CHECK_INT(loupe_flush(c), 0);
        sem_wait(&s.sent);
        sem_post(&s.go); /* the server closes */
        int rc = LOUPE_OK;
        double t0 = check_clock();
        while (rc == LOUPE_OK && check_clock() - t0 < GUARD_S) {
            struct pollfd p = {loupe_socket(c), POLLIN, 0};
            poll(&p, 1, 50);
            rc = loupe_consume_input(c);
        }
        CHECK_INT(rc, LOUPE_ERR_EOF);
        CHECK_CODE(c, LOUPE_ERR_EOF);
        CHECK_HAS(loupe_errmsg(c), "in the middle of a reply");
        CHECK(!loupe_connected(c));
        CHECK_INT(loupe_socket(c), -1);
        CHECK_INT(loupe_pending(c), 1); /* the finished one; the other call is lost */
        loupe_result *r = loupe_get_reply(c);
        CHECK(r && loupe_result_request_id(r) == a && loupe_result_price(r, 0).price == 7186);
        loupe_result_free(r);
        CHECK(loupe_get_reply(c) == NULL);
        CHECK_CODE(c, LOUPE_ERR_CLOSED);
        CHECK_INT(loupe_is_busy(c), 0);
        loupe_free(c);
        mock_stop(server);
        sem_destroy(&s.sent);
        sem_destroy(&s.go);
    }

    TEST("the server closes between frames with a call waiting: ERR_EOF");
    split_script s;
    sem_init(&s.sent, 0, 0);
    sem_init(&s.go, 0, 0);
    s.cut = first;
    s.close_after_cut = 1;
    s.rounds = 1;
    mock_server *server = mock_start(split_replies, &s);
    loupe_client *c = connect_nb(mock_port(server), "t", 0, NULL);
    CHECK_INT(loupe_append_predict(c, &example, NULL, NULL), LOUPE_OK);
    CHECK_INT(loupe_append_predict(c, &example, NULL, NULL), LOUPE_OK);
    loupe_result *r = next_result(c); /* the first reply */
    CHECK(r != NULL);
    loupe_result_free(r);
    sem_wait(&s.sent);
    sem_post(&s.go);
    r = next_result(c);
    CHECK(r == NULL);
    CHECK_CODE(c, LOUPE_ERR_CLOSED); /* consume_input reported the EOF; now it is closed */
    CHECK(!loupe_connected(c));
    loupe_free(c);
    mock_stop(server);
    sem_destroy(&s.sent);
    sem_destroy(&s.go);
}

/* ---- deadlines ------------------------------------------------------------------------- */

typedef struct hold_script {
    sem_t release;
    uint32_t deadline_field[4];
    int requests;
} hold_script;

/* Holds the first request until released, then answers it (late) and every later one. Not
 * released within GUARD_S: closes the connection (a client still waiting sees ERR_EOF). */
static void hold_first(mock_conn *c, void *arg) {
    hold_script *h = arg;
    if (!mock_welcome(c, all_scopes, 3, 0, NULL, 0)) return;
    lp_frame f;
    if (!mock_read(c, &f, 10000)) return;
    h->deadline_field[h->requests++] = f.deadline_ms;
    uint32_t first = f.request_id;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += (time_t)GUARD_S;
    if (sem_timedwait(&h->release, &until) != 0) return;
    reply_price(c, first, 1);
    while (mock_read(c, &f, 10000)) {
        if (h->requests < 4) h->deadline_field[h->requests++] = f.deadline_ms;
        reply_price(c, f.request_id, 10.0 * f.request_id);
    }
}

static void test_deadline_nonblocking(void) {
    TEST("non-blocking: a call past its deadline completes DEADLINE_EXCEEDED; its late reply is dropped");
    hold_script h = {.requests = 0};
    sem_init(&h.release, 0, 0);
    mock_server *s = mock_start(hold_first, &h);
    loupe_client *c = connect_nb(mock_port(s), "t", 0, NULL);
    CHECK_INT(loupe_set_deadline_ms(c, 150), LOUPE_OK);
    CHECK_INT(loupe_set_deadline_ms(NULL, 150), LOUPE_ERR_USAGE);
    uint32_t late;
    CHECK_INT(loupe_append_predict(c, &example, NULL, &late), LOUPE_OK);
    int timeout = loupe_next_timeout_ms(c);
    CHECK(timeout >= 0 && timeout <= 150);
    loupe_result *r = next_result(c);
    CHECK(r != NULL);
    if (r) {
        CHECK_INT(loupe_result_request_id(r), late);
        CHECK_INT(loupe_result_method(r), LOUPE_METHOD_PREDICT);
        CHECK_INT(loupe_result_code(r), LOUPE_DEADLINE_EXCEEDED);
        CHECK_HAS(loupe_result_message(r), "within its deadline of 150 ms");
        CHECK(isnan(loupe_result_price(r, 0).price));
    }
    loupe_result_free(r);
    CHECK_CODE(c, LOUPE_DEADLINE_EXCEEDED); /* the one shape: on the client too */
    CHECK(loupe_connected(c));
    CHECK_INT(loupe_pending(c), 0);
    CHECK_INT(loupe_is_busy(c), 0);
    CHECK_INT(loupe_next_timeout_ms(c), -1);
    CHECK_INT(loupe_cancel(c, late), LOUPE_ERR_USAGE); /* it is over */

    TEST("the late reply is read and dropped; the next call's reply comes through");
    CHECK_INT(loupe_set_deadline_ms(c, 0), LOUPE_OK);
    sem_post(&h.release);
    uint32_t next;
    CHECK_INT(loupe_append_predict(c, &example, NULL, &next), LOUPE_OK);
    r = next_result(c);
    CHECK(r && loupe_result_request_id(r) == next && loupe_result_price(r, 0).price == 10.0 * next);
    loupe_result_free(r);
    CHECK(loupe_connected(c));
    loupe_free(c);
    mock_stop(s);
    CHECK(h.deadline_field[0] >= 1 && h.deadline_field[0] <= 150); /* sent with the frame */
    CHECK_INT(h.deadline_field[1], 10000); /* no deadline: the call timeout, as before */
    sem_destroy(&h.release);
}

static void test_deadline_blocking(void) {
    TEST("blocking: a call past its deadline returns NULL with DEADLINE_EXCEEDED; connection open");
    hold_script h = {.requests = 0};
    sem_init(&h.release, 0, 0);
    mock_server *s = mock_start(hold_first, &h);
    loupe_options *o = options(mock_port(s), "t", 0);
    loupe_client *c = loupe_connect(o);
    loupe_options_free(o);
    CHECK_CODE(c, LOUPE_OK);
    loupe_set_deadline_ms(c, 100);
    loupe_set_call_timeout_ms(c, 0); /* only the deadline can end the wait */
    CHECK(loupe_predict(c, &example, NULL) == NULL);
    CHECK_CODE(c, LOUPE_DEADLINE_EXCEEDED);
    CHECK_HAS(loupe_errmsg(c), "deadline of 100 ms");
    CHECK(loupe_connected(c));
    CHECK_INT(loupe_pending(c), 0);
    sem_post(&h.release);
    loupe_set_deadline_ms(c, 0);
    loupe_result *r = loupe_predict(c, &example, NULL); /* the late reply is dropped on the way */
    CHECK(r != NULL && loupe_result_price(r, 0).price == 10.0 * loupe_result_request_id(r));
    CHECK_CODE(c, LOUPE_OK);
    loupe_result_free(r);

    TEST("pipelined, blocking get_reply: calls whose deadline does not pass are answered");
    loupe_set_deadline_ms(c, 60000);
    uint32_t ids[2];
    CHECK_INT(loupe_append_predict(c, &example, NULL, &ids[0]), LOUPE_OK);
    CHECK_INT(loupe_append_predict(c, &example, NULL, &ids[1]), LOUPE_OK);
    for (int i = 0; i < 2; i++) {
        r = loupe_get_reply(c);
        CHECK(r != NULL && loupe_result_code(r) == LOUPE_OK);
        loupe_result_free(r);
    }
    loupe_free(c);
    mock_stop(s);
    sem_destroy(&h.release);
}

static void record_deadlines(mock_conn *c, void *arg) {
    hold_script *h = arg;
    if (!mock_welcome(c, all_scopes, 3, 0, NULL, 0)) return;
    lp_frame f;
    while (h->requests < 4 && mock_read(c, &f, 10000)) {
        h->deadline_field[h->requests++] = f.deadline_ms;
        reply_price(c, f.request_id, 1);
    }
    mock_drain(c, 10000);
}

static void test_deadline_field(void) {
    TEST("the frame's deadline field is the time left when it is sent, capped by the call timeout");
    hold_script h = {.requests = 0};
    mock_server *s = mock_start(record_deadlines, &h);
    loupe_client *c = connect_nb(mock_port(s), "t", 0, NULL);
    loupe_set_deadline_ms(c, 5000);
    CHECK_INT(loupe_append_predict(c, &example, NULL, NULL), LOUPE_OK);
    struct timespec pause = {0, 300 * 1000 * 1000};
    nanosleep(&pause, NULL); /* queued, not sent: at least 300 ms of its 5000 pass */
    loupe_result *r = next_result(c);
    loupe_result_free(r);
    loupe_set_call_timeout_ms(c, 1000);
    CHECK_INT(loupe_append_predict(c, &example, NULL, NULL), LOUPE_OK);
    r = next_result(c);
    loupe_result_free(r);
    loupe_free(c);
    mock_stop(s);
    CHECK_INT(h.requests, 2);
    CHECK(h.deadline_field[0] >= 1 && h.deadline_field[0] <= 4700);
    CHECK(h.deadline_field[1] >= 1 && h.deadline_field[1] <= 1000);
}

/* ---- cancel ---------------------------------------------------------------------------- */

/* Three requests answered in reverse order; then each later one at once. */
static void three_reversed(mock_conn *c, void *arg) {
    (void)arg;
    if (!mock_welcome(c, all_scopes, 3, 0, NULL, 0)) return;
    uint32_t ids[3];
    lp_frame f;
    for (int i = 0; i < 3; i++) {
        if (!mock_read(c, &f, 10000)) return;
        ids[i] = f.request_id;
    }
    for (int i = 2; i >= 0; i--) reply_price(c, ids[i], 10.0 * ids[i]);
    while (mock_read(c, &f, 10000)) reply_price(c, f.request_id, 10.0 * f.request_id);
}

static void test_cancel(void) {
    TEST("non-blocking cancel: a waiting call's reply is dropped, the others come");
    mock_server *s = mock_start(three_reversed, NULL);
    loupe_client *c = connect_nb(mock_port(s), "t", 0, NULL);
    uint32_t ids[3];
    for (int i = 0; i < 3; i++) CHECK_INT(loupe_append_predict(c, &example, NULL, &ids[i]), 0);
    CHECK_INT(loupe_cancel(c, ids[1]), LOUPE_OK);
    CHECK_INT(loupe_pending(c), 2);
    uint32_t seen[2] = {0, 0};
    for (int i = 0; i < 2; i++) {
        loupe_result *r = next_result(c);
        CHECK(r != NULL);
        if (r) seen[i] = loupe_result_request_id(r);
        loupe_result_free(r);
    }
    CHECK(seen[0] == ids[2] && seen[1] == ids[0]);
    CHECK_INT(loupe_pending(c), 0);
    CHECK_INT(loupe_is_busy(c), 0);

    TEST("non-blocking cancel of a call whose reply arrived but was not handed out");
    uint32_t id;
    CHECK_INT(loupe_append_predict(c, &example, NULL, &id), LOUPE_OK);
    int more = loupe_flush(c);
    double t0 = check_clock();
    while (loupe_is_busy(c) && check_clock() - t0 < GUARD_S) turn(c, &more);
    CHECK_INT(loupe_pending(c), 1);
    CHECK_INT(loupe_cancel(c, id), LOUPE_OK);
    CHECK_INT(loupe_pending(c), 0);
    CHECK(loupe_get_reply(c) == NULL);
    CHECK_CODE(c, LOUPE_OK);
    CHECK(loupe_connected(c));
    loupe_free(c);
    mock_stop(s);
}

/* The token revoked after the handshake: UNAUTHENTICATED for the first call, then a close. */
static void revoke_after_hello(mock_conn *c, void *arg) {
    (void)arg;
    if (!mock_welcome(c, all_scopes, 3, 0, NULL, 0)) return;
    lp_frame f;
    if (!mock_read(c, &f, 10000)) return;
    mock_error(c, f.method, f.request_id, LOUPE_UNAUTHENTICATED, "the token was revoked", 0);
}

static void test_unauthenticated(void) {
    TEST("non-blocking: a call-level UNAUTHENTICATED closes; its result is still handed out");
    mock_server *s = mock_start(revoke_after_hello, NULL);
    loupe_client *c = connect_nb(mock_port(s), "t", 0, NULL);
    uint32_t id;
    CHECK_INT(loupe_append_predict(c, &example, NULL, &id), LOUPE_OK);
    int more = loupe_flush(c), rc = LOUPE_OK;
    double t0 = check_clock();
    while (rc == LOUPE_OK && check_clock() - t0 < GUARD_S) rc = turn(c, &more);
    CHECK_INT(rc, LOUPE_UNAUTHENTICATED);
    CHECK(!loupe_connected(c));
    loupe_result *r = loupe_get_reply(c);
    CHECK(r && loupe_result_request_id(r) == id && loupe_result_code(r) == LOUPE_UNAUTHENTICATED);
    CHECK_CODE(c, LOUPE_UNAUTHENTICATED);
    loupe_result_free(r);
    CHECK(loupe_get_reply(c) == NULL);
    CHECK_CODE(c, LOUPE_ERR_CLOSED);
    loupe_free(c);
    mock_stop(s);
}

/* ---- one error shape ------------------------------------------------------------------- */

static void refuse_similar(mock_conn *c, void *arg) {
    (void)arg;
    if (!mock_welcome(c, all_scopes, 3, 0, NULL, 0)) return;
    lp_frame f;
    while (mock_read(c, &f, 10000)) {
        Loupe__V1__FieldViolation v = LOUPE__V1__FIELD_VIOLATION__INIT;
        v.field = "cut";
        v.description = "must be given";
        Loupe__V1__FieldViolation *vs[] = {&v};
        Loupe__V1__Status st = LOUPE__V1__STATUS__INIT;
        st.code = LOUPE__V1__STATUS_CODE__STATUS_CODE_INVALID_ARGUMENT;
        st.message = "a grade is missing";
        st.retry_after_ms = 75;
        st.n_field_violations = 1;
        st.field_violations = vs;
        uint8_t buf[256];
        size_t n = frame_bytes(buf, LP_FLAG_RESPONSE | LP_FLAG_ERROR, f.method, f.request_id,
                               &st.base);
        mock_send(c, buf, n);
    }
}

/* The client's error accessors say exactly what the server said. */
static void check_shape(loupe_client *c, const char *mode) {
    TEST(mode);
    CHECK_CODE(c, LOUPE_INVALID_ARGUMENT);
    CHECK_STR(loupe_errmsg(c), "a grade is missing");
    CHECK_INT(loupe_err_retry_after_ms(c), 75);
    CHECK_INT(loupe_err_detail_count(c), 1);
    long row = 0;
    const char *field = NULL, *reason = NULL;
    CHECK_INT(loupe_err_detail(c, 0, &row, &field, &reason), LOUPE_OK);
    CHECK_INT(row, -1);
    CHECK_STR(field, "cut");
    CHECK_STR(reason, "must be given");
    CHECK(loupe_connected(c));
}

static void test_one_error_shape(void) {
    mock_server *s = mock_start(refuse_similar, NULL);
    loupe_options *o = options(mock_port(s), "t", 0);
    loupe_client *c = loupe_connect(o);
    loupe_options_free(o);
    loupe_similar_query q = {1, 0, LOUPE_COLOR_G, LOUPE_CLARITY_VS1, 5};
    CHECK(loupe_find_similar(c, &q) == NULL);
    check_shape(c, "one error shape: a blocking call");

    CHECK_INT(loupe_append_find_similar(c, &q, NULL), LOUPE_OK);
    loupe_result *r = loupe_get_reply(c);
    check_shape(c, "one error shape: pipelined, blocking loupe_get_reply");
    CHECK(r && loupe_result_code(r) == LOUPE_INVALID_ARGUMENT &&
          loupe_result_retry_after_ms(r) == 75 && loupe_result_error_detail_count(r) == 1);
    CHECK_STR(loupe_result_message(r), "a grade is missing");
    loupe_result_free(r);

    CHECK_INT(loupe_set_nonblocking(c, 1), LOUPE_OK);
    CHECK_INT(loupe_append_find_similar(c, &q, NULL), LOUPE_OK);
    r = next_result(c);
    check_shape(c, "one error shape: non-blocking loupe_get_reply");
    CHECK(r && loupe_result_code(r) == LOUPE_INVALID_ARGUMENT);
    loupe_result_free(r);
    loupe_free(c);
    mock_stop(s);
}

/* ---- the other methods pipelined; Retrain's accept ------------------------------------- */

/* Answers each method; a Retrain's job id is its accept list joined with ','. */
static void every_method(mock_conn *c, void *arg) {
    (void)arg;
    if (!mock_welcome(c, all_scopes, 3, 0, NULL, 0)) return;
    lp_frame f;
    while (mock_read(c, &f, 10000)) {
        switch (f.method) {
        case LOUPE_METHOD_RETRAIN: {
            Loupe__V1__RetrainRequest *req =
                loupe__v1__retrain_request__unpack(NULL, f.payload_len, f.payload);
            char joined[256] = "";
            for (size_t i = 0; req && i < req->n_accept; i++) {
                if (i) strcat(joined, ",");
                strncat(joined, req->accept[i], 100);
            }
            if (req && req->tune) strcat(joined, " (tune)");
            loupe__v1__retrain_request__free_unpacked(req, NULL);
            Loupe__V1__RetrainResponse m = LOUPE__V1__RETRAIN_RESPONSE__INIT;
            m.job_id = joined;
            mock_reply(c, f.method, f.request_id, 0, &m.base);
            break;
        }
        case LOUPE_METHOD_HEALTH: {
            Loupe__V1__HealthResponse m = LOUPE__V1__HEALTH_RESPONSE__INIT;
            m.live = m.ready = 1;
            mock_reply(c, f.method, f.request_id, 0, &m.base);
            break;
        }
        case LOUPE_METHOD_LIST_MODELS: {
            Loupe__V1__ModelVersion v = LOUPE__V1__MODEL_VERSION__INIT;
            v.name = "diamonds";
            v.version = 3;
            Loupe__V1__ModelVersion *vs[] = {&v};
            Loupe__V1__ListModelsResponse m = LOUPE__V1__LIST_MODELS_RESPONSE__INIT;
            m.n_models = 1;
            m.models = vs;
            mock_reply(c, f.method, f.request_id, 0, &m.base);
            break;
        }
        case LOUPE_METHOD_GET_JOB: {
            Loupe__V1__GetJobRequest *req =
                loupe__v1__get_job_request__unpack(NULL, f.payload_len, f.payload);
            Loupe__V1__Job j = LOUPE__V1__JOB__INIT;
            j.job_id = req ? req->job_id : "";
            j.stage = LOUPE__V1__JOB_STAGE__JOB_STAGE_TRAINING;
            Loupe__V1__GetJobResponse m = LOUPE__V1__GET_JOB_RESPONSE__INIT;
            m.job = &j;
            mock_reply(c, f.method, f.request_id, 0, &m.base);
            loupe__v1__get_job_request__free_unpacked(req, NULL);
            break;
        }
        case LOUPE_METHOD_FIND_SIMILAR: {
            Loupe__V1__FindSimilarResponse m = LOUPE__V1__FIND_SIMILAR_RESPONSE__INIT;
            mock_reply(c, f.method, f.request_id, 0, &m.base);
            break;
        }
        case LOUPE_METHOD_REPORT_OUTCOMES: { /* every outcome accepted, none joined */
            Loupe__V1__ReportOutcomesRequest *req =
                loupe__v1__report_outcomes_request__unpack(NULL, f.payload_len, f.payload);
            Loupe__V1__ReportOutcomesResponse m = LOUPE__V1__REPORT_OUTCOMES_RESPONSE__INIT;
            m.accepted = m.unmatched = req ? (uint32_t)req->n_outcomes : 0;
            mock_reply(c, f.method, f.request_id, 0, &m.base);
            loupe__v1__report_outcomes_request__free_unpacked(req, NULL);
            break;
        }
        default: reply_price(c, f.request_id, 1); break;
        }
    }
}

static void test_retrain_accept_and_appends(void) {
    TEST("Retrain: the accept list reaches the server (blocking and appended)");
    mock_server *s = mock_start(every_method, NULL);
    loupe_options *o = options(mock_port(s), "t", 0);
    loupe_client *c = loupe_connect(o);
    loupe_options_free(o);
    loupe_result *r = loupe_retrain(c, NULL);
    CHECK(r && strcmp(loupe_result_job_id(r), "") == 0);
    loupe_result_free(r);
    static const char *const accept[] = {"label-shift", "coverage"};
    loupe_retrain_options ro = {0};
    ro.parameters = LOUPE_RETRAIN_TUNE;
    ro.tune_max_seconds = 60;
    r = loupe_retrain_accepting(c, &ro, accept, 2);
    CHECK(r != NULL);
    if (r) CHECK_STR(loupe_result_job_id(r), "label-shift,coverage (tune)");
    loupe_result_free(r);
    CHECK(loupe_retrain_accepting(c, NULL, NULL, 1) == NULL);
    CHECK_CODE(c, LOUPE_ERR_USAGE);
    static const char *const holes[] = {"label-shift", NULL};
    CHECK(loupe_retrain_accepting(c, NULL, holes, 2) == NULL);
    CHECK_CODE(c, LOUPE_ERR_USAGE);
    CHECK_HAS(loupe_errmsg(c), "accept[1] is NULL");
    CHECK_INT(loupe_append_retrain(c, NULL, holes, 2, NULL), LOUPE_ERR_USAGE);
    CHECK_INT(loupe_pending(c), 0);

    TEST("non-blocking: every method appended, each result of its kind");
    CHECK_INT(loupe_set_nonblocking(c, 1), LOUPE_OK);
    loupe_similar_query q = {1, LOUPE_CUT_IDEAL, LOUPE_COLOR_G, LOUPE_CLARITY_VS1, 5};
    loupe_outcome sold[2] = {{example, 5000, 0, 0, 0, NULL}, {example, 5100, 0, 1, 1, "x"}};
    uint32_t ids[6];
    CHECK_INT(loupe_append_retrain(c, NULL, accept, 1, &ids[0]), LOUPE_OK);
    CHECK_INT(loupe_append_health(c, &ids[1]), LOUPE_OK);
    CHECK_INT(loupe_append_list_models(c, "diamonds", &ids[2]), LOUPE_OK);
    CHECK_INT(loupe_append_get_job(c, "job-1", &ids[3]), LOUPE_OK);
    CHECK_INT(loupe_append_find_similar(c, &q, &ids[4]), LOUPE_OK);
    CHECK_INT(loupe_append_report_outcomes(c, sold, 2, NULL, &ids[5]), LOUPE_OK);
    CHECK_INT(loupe_append_report_outcomes(c, sold, 0, NULL, NULL), LOUPE_ERR_USAGE);
    CHECK_INT(loupe_append_get_job(c, NULL, NULL), LOUPE_ERR_USAGE);
    CHECK_INT(loupe_append_find_similar(c, NULL, NULL), LOUPE_ERR_USAGE);
    int seen = 0;
    for (int i = 0; i < 6; i++) {
        r = next_result(c);
        CHECK(r != NULL);
        if (!r) break;
        uint32_t id = loupe_result_request_id(r);
        int method = loupe_result_method(r);
        if (id == ids[0] && method == LOUPE_METHOD_RETRAIN)
            seen += strcmp(loupe_result_job_id(r), "label-shift") == 0;
        if (id == ids[1] && method == LOUPE_METHOD_HEALTH)
            seen += loupe_result_health(r) && loupe_result_health(r)->ready;
        if (id == ids[2] && method == LOUPE_METHOD_LIST_MODELS)
            seen += loupe_result_model_count(r) == 1 && loupe_result_model(r, 0)->version == 3;
        if (id == ids[3] && method == LOUPE_METHOD_GET_JOB)
            seen += loupe_result_job(r) && strcmp(loupe_result_job(r)->job_id, "job-1") == 0;
        if (id == ids[4] && method == LOUPE_METHOD_FIND_SIMILAR)
            seen += loupe_result_similar_count(r) == 0 && loupe_result_code(r) == LOUPE_OK;
        if (id == ids[5] && method == LOUPE_METHOD_REPORT_OUTCOMES)
            seen += loupe_result_outcomes(r) && loupe_result_outcomes(r)->accepted == 2 &&
                    loupe_result_row_error_count(r) == 0;
        loupe_result_free(r);
    }
    CHECK_INT(seen, 6);
    loupe_free(c);
    mock_stop(s);
}

int main(void) {
    test_connect();
    test_connect_refused();
    test_connect_timeout();
    test_short_io();
    test_split_replies();
    test_edge_triggered();
    test_close_mid_frame();
    test_deadline_nonblocking();
    test_deadline_blocking();
    test_deadline_field();
    test_cancel();
    test_unauthenticated();
    test_one_error_shape();
    test_retrain_accept_and_appends();
    return check_done("test_nonblocking");
}
