/* The scripted server for the tests (mock_server.h). */
#include "mock_server.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct mock_conn {
    int fd;
    lp_reader reader;
    uint8_t *last;
    size_t last_len;
};

struct mock_server {
    int fd;
    int port;
    volatile int stop;
    mock_handler handler;
    void *arg;
    pthread_t thread;
};

static void *serve(void *p) {
    mock_server *s = p;
    while (!s->stop) {
        struct pollfd pfd = {s->fd, POLLIN, 0};
        if (poll(&pfd, 1, 20) <= 0) continue;
        int fd = accept(s->fd, NULL, NULL);
        if (fd < 0) continue;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        mock_conn c = {fd, {0}, NULL, 0};
        lp_reader_init(&c.reader, 64u << 20, 1);
        s->handler(&c, s->arg);
        lp_reader_free(&c.reader);
        free(c.last);
        close(fd);
    }
    return NULL;
}

static mock_server *start(mock_handler handler, void *arg, int small_buffers) {
    mock_server *s = calloc(1, sizeof *s);
    s->handler = handler;
    s->arg = arg;
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (small_buffers) { /* before listen, so accepted sockets inherit them */
        int size = 128 * 1024;
        setsockopt(s->fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
        setsockopt(s->fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    }
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (bind(s->fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(s->fd, 8) != 0 ||
        getsockname(s->fd, (struct sockaddr *)&a, &len) != 0) {
        close(s->fd);
        free(s);
        return NULL;
    }
    s->port = ntohs(a.sin_port);
    pthread_create(&s->thread, NULL, serve, s);
    return s;
}

mock_server *mock_start(mock_handler handler, void *arg) { return start(handler, arg, 0); }

mock_server *mock_start_small_buffers(mock_handler handler, void *arg) {
    return start(handler, arg, 1);
}

int mock_port(const mock_server *s) { return s->port; }

void mock_stop(mock_server *s) {
    if (!s) return;
    s->stop = 1;
    pthread_join(s->thread, NULL);
    close(s->fd);
    free(s);
}

int mock_read(mock_conn *c, lp_frame *f, int timeout_ms) {
    for (;;) {
        int rc = lp_reader_next(&c->reader, f);
        if (rc == 1) {
            free(c->last);
            c->last_len = f->length + LP_LENGTH_SIZE;
            c->last = malloc(c->last_len);
            memcpy(c->last, f->payload - LP_PREFIX_SIZE, c->last_len);
            f->payload = c->last + LP_PREFIX_SIZE;
            return 1;
        }
        if (rc < 0) return 0;
        struct pollfd pfd = {c->fd, POLLIN, 0};
        if (poll(&pfd, 1, timeout_ms) <= 0) return 0;
        size_t avail;
        uint8_t *space = lp_reader_space(&c->reader, &avail);
        ssize_t n = recv(c->fd, space, avail, 0);
        if (n <= 0) return 0;
        lp_reader_commit(&c->reader, (size_t)n);
    }
}

const uint8_t *mock_last_bytes(const mock_conn *c, size_t *len) {
    *len = c->last_len;
    return c->last;
}

int mock_send(mock_conn *c, const void *data, size_t n) {
    const uint8_t *p = data;
    while (n > 0) {
        ssize_t k = send(c->fd, p, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static int send_frame(mock_conn *c, uint8_t flags, uint16_t method, uint32_t id, uint32_t rows,
                      const ProtobufCMessage *msg) {
    size_t len = msg ? protobuf_c_message_get_packed_size(msg) : 0;
    uint8_t *buf = malloc(LP_PREFIX_SIZE + len);
    lp_write_prefix(buf, len, flags, method, id, rows, 0);
    if (msg) protobuf_c_message_pack(msg, buf + LP_PREFIX_SIZE);
    int rc = mock_send(c, buf, LP_PREFIX_SIZE + len);
    free(buf);
    return rc;
}

int mock_reply(mock_conn *c, uint16_t method, uint32_t id, uint32_t rows,
               const ProtobufCMessage *msg) {
    return send_frame(c, LP_FLAG_RESPONSE, method, id, rows, msg);
}

int mock_error(mock_conn *c, uint16_t method, uint32_t id, int code, const char *message,
               unsigned retry_after_ms) {
    Loupe__V1__Status s = LOUPE__V1__STATUS__INIT;
    s.code = (Loupe__V1__StatusCode)code;
    s.message = (char *)message;
    s.retry_after_ms = retry_after_ms;
    return send_frame(c, LP_FLAG_RESPONSE | LP_FLAG_ERROR, method, id, 0, &s.base);
}

int mock_welcome(mock_conn *c, const char *const *scopes, size_t nscopes, uint32_t max_frame,
                 char *token_out, size_t token_size) {
    lp_frame f;
    if (!mock_read(c, &f, 5000) || f.method != LP_METHOD_HELLO) return 0;
    Loupe__V1__Hello *h = loupe__v1__hello__unpack(NULL, f.payload_len, f.payload);
    if (!h) return 0;
    if (token_out) {
        strncpy(token_out, h->token, token_size - 1);
        token_out[token_size - 1] = '\0';
    }
    loupe__v1__hello__free_unpacked(h, NULL);
    Loupe__V1__Limits limits = LOUPE__V1__LIMITS__INIT;
    limits.max_frame_size = max_frame ? max_frame : 8u << 20;
    limits.max_batch_rows = 100000;
    limits.max_in_flight = 64;
    limits.max_similar = 100;
    Loupe__V1__Welcome w = LOUPE__V1__WELCOME__INIT;
    w.principal = "mock";
    w.scopes = (char **)scopes;
    w.n_scopes = nscopes;
    w.limits = &limits;
    w.server_version = "mock 1";
    w.protocol_version = 1;
    return mock_reply(c, LP_METHOD_HELLO, f.request_id, 0, &w.base) == 0;
}

void mock_drain(mock_conn *c, int timeout_ms) {
    uint8_t buf[4096];
    for (;;) {
        struct pollfd pfd = {c->fd, POLLIN, 0};
        if (poll(&pfd, 1, timeout_ms) <= 0) return;
        if (recv(c->fd, buf, sizeof buf, 0) <= 0) return;
    }
}
