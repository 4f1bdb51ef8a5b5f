/* What the library's files share; nothing here is public. */
#ifndef LOUPE_INTERNAL_H
#define LOUPE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "loupe.h"
#include "reader.h"
#include "loupe/v1/frame.pb-c.h"
#include "loupe/v1/handshake.pb-c.h"
#include "loupe/v1/health.pb-c.h"
#include "loupe/v1/jobs.pb-c.h"
#include "loupe/v1/models.pb-c.h"
#include "loupe/v1/predict.pb-c.h"
#include "loupe/v1/similar.pb-c.h"
#include "loupe/v1/status.pb-c.h"

#define LP_METHOD_HELLO 1
#define LP_DEFAULT_MAX_REPLY (16u * 1024u * 1024u)
#define LP_DEFAULT_MAX_QUEUED (64u * 1024u * 1024u)
/* Frames the server accepts before the handshake (Hello, Health). */
#define LP_MAX_FRAME_BEFORE_HANDSHAKE 8192u
/* Decoding a reply may allocate at most this many times its size, plus LP_DECODE_SLACK:
 * a hostile reply of tiny repeated sub-messages cannot make the client allocate gigabytes. */
#define LP_DECODE_FACTOR 8u
#define LP_DECODE_SLACK (1u << 20)

struct loupe_options {
    char *host;
    int port;
    char *token;
    char *client_name;
    unsigned connect_timeout_ms;
    unsigned call_timeout_ms;
    size_t max_reply;
    size_t max_queued; /* request bytes appended and not yet sent */
    int tls;
    char *ca_file;
    char *server_name;
};

/* What becomes of a call's reply when it arrives. */
enum { LP_CALL_LIVE = 0, LP_CALL_CANCELLED = 1, LP_CALL_EXPIRED = 2 };

/* A call whose reply has not been read. */
typedef struct lp_pending {
    uint32_t id;
    uint16_t method;
    uint8_t state;    /* LP_CALL_*: a cancelled or expired call's reply is read and dropped */
    size_t rows;      /* BatchPredict: the rows asked for */
    int64_t deadline; /* CLOCK_MONOTONIC ms past which it completes DEADLINE_EXCEEDED; -1 none */
    unsigned deadline_ms; /* the deadline it was given (for the message) */
} lp_pending;

/* A queued frame with a deadline, not yet started on the wire: its header's deadline field
 * is rewritten with the time left just before it is sent. */
typedef struct lp_unsent {
    uint64_t pos;        /* its first byte's position in the connection's output stream */
    int64_t deadline;    /* the call's deadline (monotonic ms) */
    uint32_t timeout_ms; /* the call timeout when it was queued (0: none): the field's cap */
} lp_unsent;

/* Where a connection is. */
enum { LP_ST_CLOSED = 0, LP_ST_TRANSPORT, LP_ST_HELLO, LP_ST_READY };
/* Where the transport is (io.c). */
enum { LP_PHASE_NONE = 0, LP_PHASE_TCP, LP_PHASE_TLS, LP_PHASE_DONE };

struct loupe_client {
    loupe_options opt; /* a private copy */

    /* transport (io.c) */
    int fd;            /* -1: closed */
    int connected;     /* handshake done (or skipped), no connection error since */
    int state;         /* LP_ST_*: connecting (transport, Hello), ready, closed */
    int nonblocking;   /* loupe_set_nonblocking: nothing waits, blocking calls refused */
    int64_t phase_deadline; /* connecting: when the current phase times out */
    void *addrs;       /* connecting: the struct addrinfo list, and the next address to try */
    void *addr_next;
    int io_phase;      /* LP_PHASE_* */
    int connect_errno; /* the last address's failure */
    int conn_wants;    /* connecting: the poll event the transport waits for */
    void *tls;         /* SSL *, with TLS */
    void *tls_ctx;     /* SSL_CTX * */
    void *tls_bio;     /* BIO_METHOD * */
    int read_wants;    /* the poll events a blocked read waits for (TLS may want POLLOUT) */
    int write_wants;

    lp_reader reader;
    uint8_t *wbuf;     /* queued request bytes: [wstart, wend) */
    size_t wstart, wend, wcap;
    uint64_t wqueued, wsent; /* bytes queued and sent on this connection, in all */
    lp_unsent *unsent; /* frames with a deadline not yet started: [unsent_head, nunsent) */
    size_t unsent_head, nunsent, unsent_cap;
    int write_failed;  /* the code of a failed send; the queued bytes were dropped */
    char write_errstr[256];

    uint32_t next_id;
    lp_pending *pending;
    size_t npending, pending_cap;
    unsigned deadline_ms;  /* loupe_set_deadline_ms: each new call's deadline (0: none) */

    /* results complete and not yet handed out by loupe_get_reply, oldest first */
    loupe_result *ready_head, *ready_tail;
    size_t nready;

    loupe_result *welcome; /* the handshake's reply (a result of method Hello) */

    /* the last call's error */
    int err;
    char errstr[1400];
    Loupe__V1__Status *err_status; /* the server's Status, for the details */
};

/* A decoded message together with the allocator that owns its memory. */
struct loupe_result {
    int method;
    uint32_t request_id;
    int code;
    const char *message;            /* "" when OK; owned by status or by message_own */
    char *message_own;
    unsigned retry_after_ms;
    Loupe__V1__Status *status;      /* error results */
    ProtobufCMessage *msg;          /* the decoded response */

    size_t rows;
    const double *prices, *lows, *highs;
    double one[3];                  /* Predict's price, low, high */
    double level;
    const char *model_name;
    unsigned model_version;

    void *views;                    /* one allocation for the structs below */
    loupe_model_info *models;
    size_t model_count;
    loupe_similar *similar;
    size_t similar_count;
    loupe_job job;
    loupe_health_info health;
    loupe_session session;
    loupe_outcome_summary outcomes;

    struct loupe_result *next;      /* the client's queue of finished results */
};

/* result.c */
/** Decodes a reply frame's payload into a result (never NULL but when out of memory).
 *  expected_rows: the BatchPredict request's rows, or SIZE_MAX if unknown. A payload that
 *  does not decode gives a result with code LOUPE_ERR_PROTOCOL. */
loupe_result *lp_result_decode(int method, uint32_t request_id, int error, const uint8_t *payload,
                               size_t len, size_t expected_rows);
/** Decodes a Status payload with the decoding budget; NULL if it does not decode. */
Loupe__V1__Status *lp_status_decode(const uint8_t *payload, size_t len);
void lp_status_free(Loupe__V1__Status *s);
/** A copy of a Status (for the client's error when a reply carried it); NULL if none. */
Loupe__V1__Status *lp_status_copy(const Loupe__V1__Status *s);
/** A result the client makes itself for a call (e.g. its deadline passed): code and message,
 *  nothing else. NULL when out of memory. */
loupe_result *lp_result_local(int method, uint32_t request_id, int code, const char *message);
/** A status code from the wire as a loupe_code (unknown numbers and OK read as UNKNOWN). */
int lp_status_code(int wire);
size_t lp_status_detail_count(const Loupe__V1__Status *s);
int lp_status_detail(const Loupe__V1__Status *s, size_t i, long *row, const char **field,
                     const char **reason);

/* io.c: the transport. Reads and writes return >0 bytes, 0 at EOF (reads), LP_IO_AGAIN when
 * they would block (c->read_wants / c->write_wants say which poll events to wait for), or
 * LP_IO_ERROR with the error set on the client. */
#define LP_IO_AGAIN (-1)
#define LP_IO_ERROR (-2)
/** Resolves the host and prepares to connect (io_phase TCP). LOUPE_OK or an error code. */
int lp_io_connect_start(loupe_client *c);
/** Advances the TCP connect (address by address) and the TLS handshake without waiting:
 *  LOUPE_OK once the transport is ready (io_phase DONE), LP_IO_AGAIN (c->conn_wants says
 *  which poll event to wait for), or an error code (set on the client). */
int lp_io_connect_step(loupe_client *c);
/** Waits for `events` on fd until the deadline: 1 ready, 0 timed out, -1 error (errno). */
int lp_io_wait(int fd, short events, int64_t deadline_ms);
long lp_io_read(loupe_client *c, uint8_t *buf, size_t n);
long lp_io_write(loupe_client *c, const uint8_t *buf, size_t n);
void lp_io_close(loupe_client *c);
int lp_io_tls_available(void);

/* client.c */
__attribute__((format(printf, 3, 4))) int lp_set_error(loupe_client *c, int code,
                                                         const char *fmt, ...);
int64_t lp_now_ms(void);

#endif
