/* The transport: a non-blocking TCP socket, optionally wrapped in TLS (OpenSSL, TLS=1). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"

#ifdef LOUPE_TLS
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#endif

static const char *errno_text(int e, char *buf, size_t n) {
    if (strerror_r(e, buf, n) != 0) snprintf(buf, n, "error %d", e);
    return buf;
}

static int set_nonblocking(int fd) {
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) return -1;
    flags = fcntl(fd, F_GETFD);
    if (flags < 0 || fcntl(fd, F_SETFD, flags | FD_CLOEXEC) < 0) return -1;
    return 0;
}

int lp_io_wait(int fd, short events, int64_t deadline_ms) {
    for (;;) {
        int64_t left = deadline_ms - lp_now_ms();
        if (left < 0) left = 0;
        struct pollfd p = {fd, events, 0};
        int rc = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
        if (rc > 0) return 1;
        if (rc == 0) return 0;
        if (errno != EINTR) return -1;
    }
}

#ifdef LOUPE_TLS
static int tls_start(loupe_client *c);
static int tls_step(loupe_client *c);
#endif

static void free_addresses(loupe_client *c) {
    if (c->addrs) freeaddrinfo(c->addrs);
    c->addrs = c->addr_next = NULL;
}

int lp_io_connect_start(loupe_client *c) {
    char port[16], text[128];
    if (c->opt.tls && !lp_io_tls_available())
        return lp_set_error(c, LOUPE_ERR_TLS,
                            "TLS was asked for, but this libloupe was built without it (make "
                            "TLS=1)");
    snprintf(port, sizeof port, "%d", c->opt.port);
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(c->opt.host, port, &hints, &res);
    if (rc != 0)
        return lp_set_error(c, LOUPE_ERR_IO, "cannot resolve \"%s\": %s", c->opt.host,
                            rc == EAI_SYSTEM ? errno_text(errno, text, sizeof text)
                                             : gai_strerror(rc));
    c->addrs = c->addr_next = res;
    c->connect_errno = ECONNREFUSED;
    c->io_phase = LP_PHASE_TCP;
    return LOUPE_OK;
}

/* Starts a connect to the next address: 1 with c->fd set (connected or in progress), 0 when
 * that address failed at once (c->connect_errno), -1 when no address is left. */
static int connect_next(loupe_client *c) {
    const struct addrinfo *ai = c->addr_next;
    if (!ai) return -1;
    c->addr_next = ai->ai_next;
    int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (fd < 0) {
        c->connect_errno = errno;
        return 0;
    }
    int one = 1;
    if (set_nonblocking(fd) != 0) goto fail;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    /* EINTR: the connect goes on in the background, as with EINPROGRESS. */
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS && errno != EINTR)
        goto fail;
    c->fd = fd;
    return 1;
fail:
    c->connect_errno = errno;
    close(fd);
    return 0;
}

int lp_io_connect_step(loupe_client *c) {
    char text[128];
    for (;;) {
        switch (c->io_phase) {
        case LP_PHASE_TCP: {
            if (c->fd < 0) {
                int rc = connect_next(c);
                if (rc == 0) continue;
                if (rc < 0) {
                    free_addresses(c);
                    c->io_phase = LP_PHASE_NONE;
                    return lp_set_error(c, LOUPE_ERR_IO, "cannot connect to %s:%d: %s",
                                        c->opt.host, c->opt.port,
                                        errno_text(c->connect_errno, text, sizeof text));
                }
            }
            /* Writable means the connect finished, one way or the other: SO_ERROR says. */
            struct pollfd p = {c->fd, POLLOUT, 0};
            int ready = poll(&p, 1, 0);
            if (ready == 0 || (ready < 0 && errno == EINTR)) {
                c->conn_wants = POLLOUT;
                return LP_IO_AGAIN;
            }
            int so = 0;
            socklen_t len = sizeof so;
            if (ready < 0 || getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &so, &len) != 0) so = errno;
            if (so != 0) {
                c->connect_errno = so;
                close(c->fd);
                c->fd = -1;
                continue; /* the next address */
            }
            free_addresses(c);
            c->read_wants = POLLIN;
            c->write_wants = POLLOUT;
#ifdef LOUPE_TLS
            if (c->opt.tls) {
                c->io_phase = LP_PHASE_TLS;
                int rc = tls_start(c);
                if (rc != LOUPE_OK) return rc;
                continue;
            }
#endif
            c->io_phase = LP_PHASE_DONE;
            return LOUPE_OK;
        }
#ifdef LOUPE_TLS
        case LP_PHASE_TLS: return tls_step(c);
#endif
        case LP_PHASE_DONE: return LOUPE_OK;
        default: return lp_set_error(c, LOUPE_ERR_USAGE, "not connecting");
        }
    }
}

static long io_error(loupe_client *c, const char *what, int e) {
    char text[128];
    lp_set_error(c, LOUPE_ERR_IO, "%s %s:%d: %s", what, c->opt.host, c->opt.port,
                 errno_text(e, text, sizeof text));
    return LP_IO_ERROR;
}

#ifdef LOUPE_TLS
static long tls_read(loupe_client *c, uint8_t *buf, size_t n);
static long tls_write(loupe_client *c, const uint8_t *buf, size_t n);
#endif

long lp_io_read(loupe_client *c, uint8_t *buf, size_t n) {
#ifdef LOUPE_TLS
    if (c->tls) return tls_read(c, buf, n);
#endif
    for (;;) {
        ssize_t r = recv(c->fd, buf, n, 0);
        if (r >= 0) return (long)r;
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            c->read_wants = POLLIN;
            return LP_IO_AGAIN;
        }
        return io_error(c, "reading from", errno);
    }
}

long lp_io_write(loupe_client *c, const uint8_t *buf, size_t n) {
#ifdef LOUPE_TLS
    if (c->tls) return tls_write(c, buf, n);
#endif
    for (;;) {
        ssize_t r = send(c->fd, buf, n, MSG_NOSIGNAL);
        if (r >= 0) return (long)r;
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            c->write_wants = POLLOUT;
            return LP_IO_AGAIN;
        }
        return io_error(c, "writing to", errno);
    }
}

void lp_io_close(loupe_client *c) {
#ifdef LOUPE_TLS
    if (c->tls) {
        SSL_shutdown(c->tls); /* one non-blocking try at close_notify */
        SSL_free(c->tls);     /* frees the BIO too */
        c->tls = NULL;
    }
    if (c->tls_ctx) {
        SSL_CTX_free(c->tls_ctx);
        c->tls_ctx = NULL;
    }
    if (c->tls_bio) {
        BIO_meth_free(c->tls_bio);
        c->tls_bio = NULL;
    }
#endif
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    free_addresses(c);
    c->io_phase = LP_PHASE_NONE;
}

#ifndef LOUPE_TLS
int lp_io_tls_available(void) { return 0; }
#else
int lp_io_tls_available(void) { return 1; }

/* A socket BIO that sends with MSG_NOSIGNAL, so a closed peer never raises SIGPIPE. */
static int bio_write(BIO *b, const char *data, int len) {
    int fd = (int)(intptr_t)BIO_get_data(b);
    BIO_clear_retry_flags(b);
    ssize_t n;
    do n = send(fd, data, (size_t)len, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) BIO_set_retry_write(b);
    return (int)n;
}

static int bio_read(BIO *b, char *buf, int len) {
    int fd = (int)(intptr_t)BIO_get_data(b);
    BIO_clear_retry_flags(b);
    ssize_t n;
    do n = recv(fd, buf, (size_t)len, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) BIO_set_retry_read(b);
    return (int)n;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr) {
    (void)b, (void)num, (void)ptr;
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int bio_create(BIO *b) {
    BIO_set_init(b, 1);
    return 1;
}

/* The OpenSSL error queue (or the verification failure) in words, then cleared. */
static int tls_error(loupe_client *c, const char *what) {
    char text[256] = "";
    unsigned long e = ERR_get_error();
    if (c->tls && SSL_get_verify_result(c->tls) != X509_V_OK)
        snprintf(text, sizeof text, "certificate verification failed: %s",
                 X509_verify_cert_error_string(SSL_get_verify_result(c->tls)));
    else if (e)
        ERR_error_string_n(e, text, sizeof text);
    else
        snprintf(text, sizeof text, "the connection closed");
    ERR_clear_error();
    return lp_set_error(c, LOUPE_ERR_TLS, "TLS %s %s:%d: %s", what, c->opt.host, c->opt.port,
                        text);
}

static int tls_start(loupe_client *c) {
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) return tls_error(c, "setup for");
    c->tls_ctx = ctx;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF); /* our frames detect truncation */
    if (c->opt.ca_file ? SSL_CTX_load_verify_locations(ctx, c->opt.ca_file, NULL) != 1
                       : SSL_CTX_set_default_verify_paths(ctx) != 1)
        return tls_error(c, "loading CA certificates for");
    BIO_METHOD *method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "loupe socket");
    if (!method) return tls_error(c, "setup for");
    c->tls_bio = method;
    BIO_meth_set_write(method, bio_write);
    BIO_meth_set_read(method, bio_read);
    BIO_meth_set_ctrl(method, bio_ctrl);
    BIO_meth_set_create(method, bio_create);
    SSL *ssl = SSL_new(ctx);
    if (!ssl) return tls_error(c, "setup for");
    c->tls = ssl;
    BIO *bio = BIO_new(method);
    if (!bio) return tls_error(c, "setup for");
    BIO_set_data(bio, (void *)(intptr_t)c->fd);
    SSL_set_bio(ssl, bio, bio);
    SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    const char *name = c->opt.server_name ? c->opt.server_name : c->opt.host;
    unsigned char addr[16];
    int is_ip = inet_pton(AF_INET, name, addr) == 1 || inet_pton(AF_INET6, name, addr) == 1;
    if (is_ip) {
        if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) != 1)
            return tls_error(c, "setup for");
    } else if (SSL_set_tlsext_host_name(ssl, name) != 1 || SSL_set1_host(ssl, name) != 1) {
        return tls_error(c, "setup for");
    }
    return LOUPE_OK;
}

/* One non-blocking step of the handshake: LOUPE_OK when done, LP_IO_AGAIN (conn_wants), or
 * LOUPE_ERR_TLS. */
static int tls_step(loupe_client *c) {
    ERR_clear_error();
    int rc = SSL_connect(c->tls);
    if (rc == 1) {
        c->io_phase = LP_PHASE_DONE;
        return LOUPE_OK;
    }
    int e = SSL_get_error(c->tls, rc);
    if (e == SSL_ERROR_WANT_READ) c->conn_wants = POLLIN;
    else if (e == SSL_ERROR_WANT_WRITE) c->conn_wants = POLLOUT;
    else return tls_error(c, "handshake with");
    return LP_IO_AGAIN;
}

/* After SSL_read / SSL_write returned rc <= 0: AGAIN (with wants), 0 (EOF), or ERROR. */
static long tls_result(loupe_client *c, int rc, int *wants, const char *what) {
    int e = SSL_get_error(c->tls, rc);
    switch (e) {
    case SSL_ERROR_WANT_READ: *wants = POLLIN; return LP_IO_AGAIN;
    case SSL_ERROR_WANT_WRITE: *wants = POLLOUT; return LP_IO_AGAIN;
    case SSL_ERROR_ZERO_RETURN: return 0;
    case SSL_ERROR_SYSCALL:
        if (errno == 0 || ERR_peek_error() == 0) {
            if (errno != 0) return io_error(c, what, errno);
            return 0;
        }
        /* fall through */
    default: tls_error(c, what); return LP_IO_ERROR;
    }
}

static long tls_read(loupe_client *c, uint8_t *buf, size_t n) {
    ERR_clear_error();
    errno = 0;
    int rc = SSL_read(c->tls, buf, n > INT_MAX ? INT_MAX : (int)n);
    if (rc > 0) return rc;
    return tls_result(c, rc, &c->read_wants, "reading from");
}

static long tls_write(loupe_client *c, const uint8_t *buf, size_t n) {
    ERR_clear_error();
    errno = 0;
    int rc = SSL_write(c->tls, buf, n > INT_MAX ? INT_MAX : (int)n);
    if (rc > 0) return rc;
    long r = tls_result(c, rc, &c->write_wants, "writing to");
    if (r == 0) return io_error(c, "writing to", EPIPE);
    return r;
}
#endif
