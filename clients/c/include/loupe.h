/*
 * loupe.h — libloupe, the C client of the Loupe diamond-pricing protocol (docs/PROTOCOL.md).
 *
 *     loupe_options *o = loupe_options_new();
 *     loupe_options_set_host(o, "127.0.0.1");
 *     loupe_options_set_port(o, 7070);
 *     loupe_options_set_token(o, token);
 *     loupe_client *c = loupe_connect(o);          // a handle even on failure
 *     loupe_options_free(o);
 *     if (loupe_errcode(c) != LOUPE_OK) { fprintf(stderr, "%s\n", loupe_errmsg(c)); ... }
 *
 *     loupe_diamond d = {1.01, LOUPE_CUT_IDEAL, LOUPE_COLOR_G, LOUPE_CLARITY_VS1,
 *                        61.8, 56, 6.43, 6.47, 3.99};
 *     loupe_result *r = loupe_predict(c, &d, NULL);
 *     if (r == NULL) fprintf(stderr, "%s\n", loupe_errmsg(c));
 *     else printf("$%.0f\n", loupe_result_price(r, 0).price);
 *     loupe_result_free(r);
 *     loupe_free(c);
 *
 * OWNERSHIP. Every object the library hands out has exactly one free function:
 *   loupe_options  -> loupe_options_free   (the library copies what it keeps: free it any time)
 *   loupe_client   -> loupe_free
 *   loupe_result   -> loupe_result_free    (results own their memory and outlive the client)
 * Every `const char *` and every pointer to a `const` struct or array returned by an
 * accessor is owned by the object it came from: valid until that object is freed (for the
 * client's error accessors: until the next call on the client). Free functions accept NULL.
 *
 * ERRORS. Functions that return a result return NULL on failure; functions that return an
 * int return LOUPE_OK (0) or an error code. Either way the code and a message stay on the
 * client (loupe_errcode, loupe_errmsg) until the next call on it. There is no global error.
 * A call the server refused (or whose deadline passed) reaches the client's accessors in
 * every mode: a blocking call returns NULL with it there; loupe_get_reply returns a result
 * carrying it (loupe_result_code ...) and puts the same code, message, retry advice and
 * details on the client.
 * Codes 1..16 are the server's status codes: the call failed, the connection stays open
 * unless the server closed it (UNAUTHENTICATED, or an error about the connection itself).
 * Codes from 100 up are the client's own; all but LOUPE_ERR_USAGE and LOUPE_ERR_NOMEM close
 * the connection. loupe_connected tells; loupe_reconnect connects again.
 *
 * THREADS. A loupe_client is not thread-safe: use each client from one thread at a time
 * (different clients in different threads are independent). A loupe_result is immutable:
 * any number of threads may read it at once; free it once, after the readers are done.
 * A loupe_options may be shared read-only once set. The library keeps no global state and
 * never raises SIGPIPE.
 *
 * PIPELINING. loupe_append_* queue calls without waiting (they never block);
 * loupe_get_reply sends what is queued and returns the next reply to arrive. Replies may
 * come in any order: match them with loupe_result_request_id. A call that failed on the
 * server comes back as a result whose loupe_result_code is not LOUPE_OK.
 *
 * BLOCKING. Every call blocks at most the call timeout (loupe_connect: the connect timeout
 * per phase; name resolution uses the system resolver and is not bounded by it).
 *
 * NON-BLOCKING MODE (for event loops; see "Non-blocking mode" below and the README):
 * loupe_connect_start / loupe_connect_poll connect without waiting; then loupe_append_*,
 * loupe_flush (0 sent, 1 more to send: wait for POLLOUT), loupe_consume_input (when the
 * socket is readable), loupe_get_reply (a finished result or NULL, never waits).
 */
#ifndef LOUPE_H
#define LOUPE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && defined(LOUPE_BUILDING)
#define LOUPE_API __attribute__((visibility("default")))
#else
#define LOUPE_API
#endif

#define LOUPE_VERSION_MAJOR 1
#define LOUPE_VERSION_MINOR 2
#define LOUPE_VERSION_PATCH 0
#define LOUPE_VERSION "1.2.0"

/* ---------------------------------------------------------------------------------------
 * Error codes
 * ------------------------------------------------------------------------------------- */

/** Result codes. 1..16 are the protocol's status codes (gRPC numbering) sent by the server. */
typedef enum loupe_code {
    LOUPE_OK = 0,
    LOUPE_CANCELLED = 1,
    LOUPE_UNKNOWN = 2,
    LOUPE_INVALID_ARGUMENT = 3,     /* a bad diamond, level or selector; see the details */
    LOUPE_DEADLINE_EXCEEDED = 4,    /* the call's deadline passed (the server's or the client's check) */
    LOUPE_NOT_FOUND = 5,            /* unknown model, version, alias, dataset or job */
    LOUPE_ALREADY_EXISTS = 6,
    LOUPE_PERMISSION_DENIED = 7,    /* the token's scopes do not allow the method */
    LOUPE_RESOURCE_EXHAUSTED = 8,   /* over a limit (rows per call, rate): see retry_after */
    LOUPE_FAILED_PRECONDITION = 9,
    LOUPE_ABORTED = 10,
    LOUPE_OUT_OF_RANGE = 11,
    LOUPE_UNIMPLEMENTED = 12,
    LOUPE_INTERNAL = 13,
    LOUPE_UNAVAILABLE = 14,         /* starting, draining, no model yet: retry after a while */
    LOUPE_DATA_LOSS = 15,
    LOUPE_UNAUTHENTICATED = 16,     /* bad token (the server closes the connection) */

    /* The client's own codes. All but USAGE and NOMEM leave the connection closed. */
    LOUPE_ERR_IO = 100,             /* connect refused, name not resolved, reset, ... */
    LOUPE_ERR_EOF = 101,            /* the server closed the connection (maybe mid-reply) */
    LOUPE_ERR_TIMEOUT = 102,        /* the connect or call timeout passed */
    LOUPE_ERR_PROTOCOL = 103,       /* bytes that are not the protocol; an undecodable reply */
    LOUPE_ERR_REPLY_TOO_LARGE = 104,/* a reply longer than the maximum reply size */
    LOUPE_ERR_TLS = 105,            /* TLS handshake, certificate, or TLS not built in */
    LOUPE_ERR_NOMEM = 106,          /* out of memory (the connection stays usable) */
    LOUPE_ERR_USAGE = 107,          /* a NULL or bad argument, a call in the wrong state;
                                       nothing was sent (the connection stays usable) */
    LOUPE_ERR_CLOSED = 108          /* the connection was closed by an earlier error */
} loupe_code;

/** The code's name, e.g. "INVALID_ARGUMENT", "ERR_TIMEOUT"; "UNKNOWN_CODE" for others. Static. */
LOUPE_API const char *loupe_code_name(int code);

/* ---------------------------------------------------------------------------------------
 * Diamonds
 * ------------------------------------------------------------------------------------- */

/** Grades, worst to best; 0 means "not given" (the server refuses it). */
enum { LOUPE_CUT_FAIR = 1, LOUPE_CUT_GOOD, LOUPE_CUT_VERY_GOOD, LOUPE_CUT_PREMIUM, LOUPE_CUT_IDEAL };
enum { LOUPE_COLOR_J = 1, LOUPE_COLOR_I, LOUPE_COLOR_H, LOUPE_COLOR_G, LOUPE_COLOR_F,
       LOUPE_COLOR_E, LOUPE_COLOR_D };
enum { LOUPE_CLARITY_I1 = 1, LOUPE_CLARITY_SI2, LOUPE_CLARITY_SI1, LOUPE_CLARITY_VS2,
       LOUPE_CLARITY_VS1, LOUPE_CLARITY_VVS2, LOUPE_CLARITY_VVS1, LOUPE_CLARITY_IF };

/** Grade names ("Very Good" / "very_good" / "VERY GOOD", "G", "VVS1") to codes; 0 if unknown. */
LOUPE_API int loupe_parse_cut(const char *name);
LOUPE_API int loupe_parse_color(const char *name);
LOUPE_API int loupe_parse_clarity(const char *name);

/** One diamond. The field order is the model's feature order. */
typedef struct loupe_diamond {
    double carat;   /* weight, carats */
    int cut;        /* LOUPE_CUT_* */
    int color;      /* LOUPE_COLOR_* */
    int clarity;    /* LOUPE_CLARITY_* */
    double depth;   /* total depth, percent */
    double table;   /* table width, percent */
    double x, y, z; /* length, width, depth in mm */
} loupe_diamond;

/** Many diamonds as columns: each pointer is an array of `rows` values (the caller's memory,
 *  only read during the call). Columns are encoded straight into the request. */
typedef struct loupe_columns {
    size_t rows;
    const double *carat;
    const int *cut;
    const int *color;
    const int *clarity;
    const double *depth;
    const double *table;
    const double *x, *y, *z;
} loupe_columns;

/* ---------------------------------------------------------------------------------------
 * Options and connections
 * ------------------------------------------------------------------------------------- */

typedef struct loupe_options loupe_options;
typedef struct loupe_client loupe_client;
typedef struct loupe_result loupe_result;

/** Defaults: host 127.0.0.1, port 7070, no token, client name "libloupe/" LOUPE_VERSION, connect
 *  timeout 5000 ms, call timeout 60000 ms, maximum reply 16 MiB, no TLS. NULL if out of
 *  memory. Setters copy strings and return LOUPE_OK or LOUPE_ERR_USAGE (bad value) or
 *  LOUPE_ERR_NOMEM. */
LOUPE_API loupe_options *loupe_options_new(void);
LOUPE_API void loupe_options_free(loupe_options *o);
LOUPE_API int loupe_options_set_host(loupe_options *o, const char *host);
LOUPE_API int loupe_options_set_port(loupe_options *o, int port);               /* 1..65535 */
/** The bearer token sent in Hello. NULL or "": no handshake, so only loupe_health works. */
LOUPE_API int loupe_options_set_token(loupe_options *o, const char *token);
LOUPE_API int loupe_options_set_client_name(loupe_options *o, const char *name);
/** Bounds each phase of loupe_connect (TCP connect, TLS handshake, Hello -> Welcome). */
LOUPE_API int loupe_options_set_connect_timeout_ms(loupe_options *o, unsigned ms); /* > 0 */
/** How long a call waits for its reply (0: for ever). Also sent as the frame's deadline. */
LOUPE_API int loupe_options_set_call_timeout_ms(loupe_options *o, unsigned ms);
/** The largest reply frame accepted (length field, bytes; >= 1024). Larger: ERR_REPLY_TOO_LARGE. */
LOUPE_API int loupe_options_set_max_reply_size(loupe_options *o, size_t bytes);
/** The most request bytes appended and not yet sent (default 64 MiB; >= 1024). An append past
 *  it is refused with LOUPE_ERR_USAGE, nothing queued: read replies or flush first. */
LOUPE_API int loupe_options_set_max_queued_bytes(loupe_options *o, size_t bytes);
/** TLS (a build with TLS=1; otherwise this returns LOUPE_ERR_TLS and loupe_connect fails
 *  with it, never falling back to plain TCP): the server's certificate is always verified,
 *  against ca_file (PEM) or the system's CAs when NULL, for server_name (NULL: the host). */
LOUPE_API int loupe_options_set_tls(loupe_options *o, int enable, const char *ca_file,
                                    const char *server_name);
/** 1 if this build has TLS. */
LOUPE_API int loupe_tls_available(void);

/** Connects and performs the handshake. Returns a handle even on failure (check
 *  loupe_errcode), NULL only if out of memory. `o` NULL: the defaults. */
LOUPE_API loupe_client *loupe_connect(const loupe_options *o);
/** Closes the connection (if open) and connects again with the same options; pending calls
 *  are dropped. LOUPE_OK or an error code (also on the handle). */
LOUPE_API int loupe_reconnect(loupe_client *c);
/** Closes the connection and frees the handle. NULL is fine. */
LOUPE_API void loupe_free(loupe_client *c);
/** 1 while the connection is open and usable. */
LOUPE_API int loupe_connected(const loupe_client *c);

/** The last call's code (LOUPE_OK if it succeeded) and message ("" if none): owned by the
 *  client, valid until the next call on it. */
LOUPE_API int loupe_errcode(const loupe_client *c);
LOUPE_API const char *loupe_errmsg(const loupe_client *c);
/** The server's advice with RESOURCE_EXHAUSTED / UNAVAILABLE: wait this long (0: none). */
LOUPE_API unsigned loupe_err_retry_after_ms(const loupe_client *c);
/** The server's details of a refused call: one per bad field (row = -1) or bad row. */
LOUPE_API size_t loupe_err_detail_count(const loupe_client *c);
LOUPE_API int loupe_err_detail(const loupe_client *c, size_t i, long *row, const char **field,
                               const char **reason);

/** What the server said in the handshake (NULL before it, or without a token). */
typedef struct loupe_session {
    const char *principal;          /* whom the token belongs to */
    const char *const *scopes;      /* e.g. "predict", "models:read", "admin" */
    size_t scope_count;
    const char *server_version;
    unsigned protocol_version;
    /* this connection's limits; 0 = none of that kind */
    unsigned max_frame_size, max_batch_rows, frame_deadline_ms, max_similar, max_in_flight,
        rows_per_second;
} loupe_session;
LOUPE_API const loupe_session *loupe_client_session(const loupe_client *c);

/* ---------------------------------------------------------------------------------------
 * Calls (blocking). Each returns a result, or NULL with the error on the client. They refuse
 * (LOUPE_ERR_USAGE) while pipelined replies are pending.
 * ------------------------------------------------------------------------------------- */

/** Options of Predict and BatchPredict; zero-initialise (`loupe_predict_options o = {0};`)
 *  or pass NULL for the server's default model at "production" and a 90% range. */
typedef struct loupe_predict_options {
    const char *model_name;  /* NULL/"": the server's default model */
    unsigned model_version;  /* 0: by alias */
    const char *model_alias; /* NULL/"": "production" */
    double level;            /* coverage of the range in (0, 1); 0: the model's default */
    int explain;             /* ask for the per-feature reasons (when the server has them) */
} loupe_predict_options;

/** Prices one diamond: a 1-row result (loupe_result_price(r, 0), loupe_result_reasons). */
LOUPE_API loupe_result *loupe_predict(loupe_client *c, const loupe_diamond *d,
                                      const loupe_predict_options *o);
/** Prices many diamonds in one call. Invalid rows do not fail the call: they are NaN and
 *  listed by loupe_result_row_error. At most the session's max_batch_rows rows. */
LOUPE_API loupe_result *loupe_batch_predict(loupe_client *c, const loupe_columns *rows,
                                            const loupe_predict_options *o);
/** The registered model versions (of `name`; NULL/"": every model). */
LOUPE_API loupe_result *loupe_list_models(loupe_client *c, const char *name);

/** FindSimilar: `count` (0: 5) training diamonds of the same grades, closest carat first. */
typedef struct loupe_similar_query {
    double carat;
    int cut, color, clarity;
    unsigned count;
} loupe_similar_query;
LOUPE_API loupe_result *loupe_find_similar(loupe_client *c, const loupe_similar_query *q);

/** Retrain (admin scope): starts a job and returns its id (loupe_result_job_id). Zero-init. */
enum { LOUPE_RETRAIN_PRODUCTION_PARAMETERS = 0, LOUPE_RETRAIN_TUNE = 1, LOUPE_RETRAIN_REUSE = 2 };
typedef struct loupe_retrain_options {
    const char *model_name;      /* NULL: the default model */
    const char *dataset;         /* NULL: the newest dataset */
    unsigned dataset_version;    /* 0: the newest version */
    const loupe_columns *rows;   /* optional priced rows to add to the dataset ... */
    const double *prices;        /* ... and their prices (rows->rows of them) */
    int parameters;              /* LOUPE_RETRAIN_*: production's, tune, or reuse a version's */
    unsigned tune_max_trials, tune_max_seconds; /* with LOUPE_RETRAIN_TUNE */
    unsigned reuse_version;      /* with LOUPE_RETRAIN_REUSE; 0: production's */
    double promotion_margin;     /* 0: the server's default (0.01) */
} loupe_retrain_options;
LOUPE_API loupe_result *loupe_retrain(loupe_client *c, const loupe_retrain_options *o);
/** Retrain overriding guardrails for this run (RetrainRequest.accept), by name: e.g.
 *  {"label-shift"}; the others are "decile-regression", "coverage", "reference-regression".
 *  The server records them in the decision; an unknown name is INVALID_ARGUMENT. accept may
 *  be NULL when accept_count is 0 (then this is loupe_retrain). Since 1.1. */
LOUPE_API loupe_result *loupe_retrain_accepting(loupe_client *c, const loupe_retrain_options *o,
                                                const char *const *accept, size_t accept_count);
/** A retrain job's progress (loupe_result_job). */
LOUPE_API loupe_result *loupe_get_job(loupe_client *c, const char *job_id);
/** Liveness and readiness (loupe_result_health). Works without a token. */
LOUPE_API loupe_result *loupe_health(loupe_client *c);

/** A stone this caller priced, and the price it later sold for (ReportOutcomes, predict
 *  scope; since 1.2). Zero-initialise. */
typedef struct loupe_outcome {
    loupe_diamond diamond;   /* the stone, as it was priced */
    double sold_price;       /* dollars, > 0 */
    int64_t sold_unix_ms;    /* when it sold (ms since 1970); 0: unknown (the server takes now) */
    int has_request_id;      /* 1: request_id names the call that priced it */
    uint32_t request_id;     /* that call's request id on the caller's connection (ids restart
                                on every connection: give sold_unix_ms too) */
    const char *outcome_id;  /* the caller's id for the sale; NULL/"": a digest of the fields */
} loupe_outcome;
/** Reports `count` sales (1 .. the session's max_batch_rows; more is RESOURCE_EXHAUSTED) of
 *  `model` (NULL/"": the server's default model), so the server measures each model version
 *  on real sales. An outcome joins only the caller's own calls: by request id, else the
 *  newest Predict of the same diamond. The result: loupe_result_outcomes (how many were
 *  accepted and joined) and loupe_result_row_error (the outcomes refused: a bad diamond, a
 *  sold_price <= 0, a request id that priced another diamond; row = index in `outcomes`).
 *  Reporting the same outcome again changes nothing. A server without a request log answers
 *  UNIMPLEMENTED. Since 1.2. */
LOUPE_API loupe_result *loupe_report_outcomes(loupe_client *c, const loupe_outcome *outcomes,
                                              size_t count, const char *model);

/* ---------------------------------------------------------------------------------------
 * Pipelining: append many calls, then read the replies.
 * ------------------------------------------------------------------------------------- */

/** Queue a call without waiting for anything (a non-blocking write may start sending).
 *  On LOUPE_OK, *request_id (if not NULL) is the id its reply will carry. A request larger
 *  than the server's max_frame_size is refused here with LOUPE_RESOURCE_EXHAUSTED (nothing
 *  queued, the connection stays usable): split the batch. */
LOUPE_API int loupe_append_predict(loupe_client *c, const loupe_diamond *d,
                                   const loupe_predict_options *o, uint32_t *request_id);
LOUPE_API int loupe_append_batch_predict(loupe_client *c, const loupe_columns *rows,
                                         const loupe_predict_options *o, uint32_t *request_id);
/** Sends everything queued, waiting at most the call timeout (reading replies meanwhile so
 *  that neither side stalls). LOUPE_OK or an error code. (Non-blocking mode: 0, 1 or -1, see
 *  below.) */
LOUPE_API int loupe_flush(loupe_client *c);
/** Sends what is queued and returns the next finished result, waiting at most the call
 *  timeout. NULL: nothing pending (LOUPE_ERR_USAGE) or the connection failed (every pending
 *  call is lost). A call the server refused, or whose deadline passed, is a result with
 *  loupe_result_code != LOUPE_OK, and the same code, message, retry advice and details are
 *  on the client (loupe_errcode ...) until its next call; the connection stays open unless
 *  loupe_connected says otherwise. (Non-blocking mode: never waits, see below.) */
LOUPE_API loupe_result *loupe_get_reply(loupe_client *c);
/** Calls appended whose results loupe_get_reply has not returned yet (cancelled ones not
 *  counted). */
LOUPE_API size_t loupe_pending(const loupe_client *c);
/** Gives up on a pipelined call: its reply is read and discarded when it arrives (or now, if
 *  it arrived and was not returned yet), and loupe_get_reply returns the others. The server
 *  may still run it. LOUPE_ERR_USAGE when no call with that id is waiting. */
LOUPE_API int loupe_cancel(loupe_client *c, uint32_t request_id);
/** Changes the call timeout of a connected client (0: for ever), for the calls and waits that
 *  start after it; also sent as their frames' deadline. */
LOUPE_API int loupe_set_call_timeout_ms(loupe_client *c, unsigned ms);

/** The other methods, pipelined (since 1.1): as loupe_health, loupe_list_models,
 *  loupe_find_similar, loupe_get_job and loupe_retrain_accepting, read with loupe_get_reply. */
LOUPE_API int loupe_append_health(loupe_client *c, uint32_t *request_id);
LOUPE_API int loupe_append_list_models(loupe_client *c, const char *name, uint32_t *request_id);
LOUPE_API int loupe_append_find_similar(loupe_client *c, const loupe_similar_query *q,
                                        uint32_t *request_id);
LOUPE_API int loupe_append_get_job(loupe_client *c, const char *job_id, uint32_t *request_id);
LOUPE_API int loupe_append_retrain(loupe_client *c, const loupe_retrain_options *o,
                                   const char *const *accept, size_t accept_count,
                                   uint32_t *request_id);
/** As loupe_report_outcomes, pipelined (since 1.2). */
LOUPE_API int loupe_append_report_outcomes(loupe_client *c, const loupe_outcome *outcomes,
                                           size_t count, const char *model,
                                           uint32_t *request_id);

/* ---------------------------------------------------------------------------------------
 * Per-call deadlines (since 1.1)
 * ------------------------------------------------------------------------------------- */

/** The deadline of each call started after this (a blocking call, or an append), in ms from
 *  its start; 0 (the default): none. Sticky: set it again before a call that needs another.
 *  It travels in the frame's deadline field (the time left when the frame is sent, at most
 *  the call timeout), so the server gives up too; and the client enforces it itself: a call
 *  with no reply by its deadline completes with LOUPE_DEADLINE_EXCEEDED -- a blocking call
 *  returns NULL with it on the client, loupe_get_reply returns a result with that code --
 *  its reply is dropped if it comes later, and the connection stays open. (Unlike the call
 *  timeout, which bounds a blocking wait and closes the connection when it passes.) */
LOUPE_API int loupe_set_deadline_ms(loupe_client *c, unsigned ms);

/* ---------------------------------------------------------------------------------------
 * Non-blocking mode (since 1.1), for event loops (poll, epoll, libuv, libevent ...), in the
 * manner of libpq's asynchronous API. The library never waits; the caller owns the waiting:
 *
 *   - the socket (loupe_socket) belongs to the library: poll it, never read, write or close
 *     it. It changes when connecting moves to another address: ask again after each
 *     loupe_connect_poll, and after loupe_reconnect_start.
 *   - wait for POLLIN whenever calls are pending, and call loupe_consume_input when it is
 *     readable; wait for POLLOUT only while loupe_flush returns 1, and call loupe_flush again
 *     when it is writable. After appending, call loupe_flush.
 *   - then take what finished: while ((r = loupe_get_reply(c)) != NULL) { ... }; NULL with
 *     loupe_errcode(c) == LOUPE_OK means nothing more is finished now.
 *   - act before you wait: append (and flush) the calls of every connection that is up before
 *     each poll, not only after one returns. loupe_connect_poll may return LOUPE_POLL_OK from
 *     any call, the first included, without the socket ever having been ready (the Welcome was
 *     in already), and a socket with nothing in flight never wakes the loop.
 *   - poll no longer than loupe_next_timeout_ms: when it passes, call loupe_connect_poll
 *     (connecting) or loupe_get_reply (a call's deadline passed: its result is ready).
 *   - errors: a call's failure is its result's code (and the client's, as everywhere); a
 *     connection's failure is the code loupe_consume_input / loupe_flush / loupe_connect_poll
 *     report, with loupe_connected 0; results finished before it are still handed out.
 * Blocking calls (loupe_predict ...) are refused in this mode (LOUPE_ERR_USAGE).
 * ------------------------------------------------------------------------------------- */

/** What loupe_connect_poll says (the values of libpq's PostgresPollingStatusType). */
typedef enum loupe_poll_status {
    LOUPE_POLL_FAILED = 0,  /* connecting failed: loupe_errcode, loupe_errmsg say why */
    LOUPE_POLL_READING = 1, /* wait until loupe_socket is readable, then poll again */
    LOUPE_POLL_WRITING = 2, /* wait until loupe_socket is writable, then poll again */
    LOUPE_POLL_OK = 3       /* connected, handshake done: calls may be appended */
} loupe_poll_status;

/** Starts connecting without waiting and returns the handle (NULL only if out of memory),
 *  in non-blocking mode. Resolving the host name still blocks (getaddrinfo): give an IP
 *  address where that matters. A failure so early (a name that does not resolve, TLS not
 *  built in) shows in loupe_errcode, and loupe_connect_poll returns LOUPE_POLL_FAILED. */
LOUPE_API loupe_client *loupe_connect_start(const loupe_options *o);
/** Advances connecting as far as it goes without waiting: the TCP connect (address by
 *  address), the TLS handshake, Hello -> Welcome, each within the connect timeout (checked
 *  when this is called: call it when loupe_next_timeout_ms passes, too). Call it first
 *  right after loupe_connect_start, then each time the socket is ready as it asked. Any call,
 *  the first included, may return LOUPE_POLL_OK: append the connection's calls then, before
 *  polling again (the socket will not become readable of itself). */
LOUPE_API loupe_poll_status loupe_connect_poll(loupe_client *c);
/** loupe_reconnect without waiting: closes (pending calls and unread results are dropped)
 *  and starts connecting again with the same options; then loupe_connect_poll. LOUPE_OK or
 *  an error code (the name did not resolve ...). */
LOUPE_API int loupe_reconnect_start(loupe_client *c);
/** The connection's socket, to poll; -1 when there is none. */
LOUPE_API int loupe_socket(const loupe_client *c);
/** Turns non-blocking mode on (1) or off (0); loupe_connect_start turns it on. LOUPE_OK, or
 *  an error code if replies already received turn out to be broken (the connection closed). */
LOUPE_API int loupe_set_nonblocking(loupe_client *c, int on);
LOUPE_API int loupe_is_nonblocking(const loupe_client *c);
/** Reads what has arrived, until the socket would block (so edge-triggered polling works),
 *  and turns complete replies into results for loupe_get_reply; never waits. LOUPE_OK, or
 *  the code of the failure that closed the connection: the server closed it (LOUPE_ERR_EOF,
 *  also at an orderly end of the stream: the socket is then closed, loupe_socket is -1), a
 *  reset, bytes that are not the protocol, a connection-level error frame, a call-level
 *  UNAUTHENTICATED. Results finished before the failure are still returned by
 *  loupe_get_reply; calls still waiting are lost. */
LOUPE_API int loupe_consume_input(loupe_client *c);
/** 1 while calls are waiting and none has finished: loupe_get_reply would have nothing (in
 *  blocking mode: would wait). 0 when a result is ready, nothing is pending, or the
 *  connection is closed. Reads nothing. */
LOUPE_API int loupe_is_busy(loupe_client *c);
/** Milliseconds until the library needs to be called without the socket being ready: the
 *  earliest deadline of a pending call or of the connect phase; 0 when it has passed or a
 *  result is ready; -1 when there is none (poll without a timeout). */
LOUPE_API int loupe_next_timeout_ms(const loupe_client *c);

/* In non-blocking mode the pipelining functions above behave so:
 *   loupe_append_*   queue as always; they may start sending (no waiting): call loupe_flush.
 *   loupe_flush      sends what the socket takes now: 0 when everything is sent, 1 when
 *                    bytes remain (wait for POLLOUT and call it again), -1 when the
 *                    connection failed (loupe_errcode says why).
 *   loupe_get_reply  the next finished result (a reply, or a call whose deadline passed), or
 *                    NULL: with LOUPE_OK nothing is finished now (or nothing is pending:
 *                    loupe_pending tells), otherwise the connection is closed. No I/O.
 *   loupe_cancel     also drops a result that finished but was not handed out yet. */

/* ---------------------------------------------------------------------------------------
 * Results. Accessors return 0 / NaN / NULL when the result is not of that kind.
 * ------------------------------------------------------------------------------------- */

/** Method ids, as in the frame header. */
enum { LOUPE_METHOD_HEALTH = 2, LOUPE_METHOD_PREDICT = 3, LOUPE_METHOD_BATCH_PREDICT = 4,
       LOUPE_METHOD_FIND_SIMILAR = 5, LOUPE_METHOD_LIST_MODELS = 6, LOUPE_METHOD_RETRAIN = 7,
       LOUPE_METHOD_GET_JOB = 8, LOUPE_METHOD_REPORT_OUTCOMES = 9 /* since 1.2 */ };

LOUPE_API void loupe_result_free(loupe_result *r);
LOUPE_API int loupe_result_method(const loupe_result *r);
LOUPE_API uint32_t loupe_result_request_id(const loupe_result *r);
/** LOUPE_OK, or (results of loupe_get_reply only) the status code (1..16) of a call the
 *  server refused, or LOUPE_DEADLINE_EXCEEDED for a call whose deadline passed on the
 *  client (loupe_set_deadline_ms). Blocking calls return NULL instead of error results. */
LOUPE_API int loupe_result_code(const loupe_result *r);
LOUPE_API const char *loupe_result_message(const loupe_result *r);  /* "" when OK */
LOUPE_API unsigned loupe_result_retry_after_ms(const loupe_result *r);
/** An error result's details, as loupe_err_detail_count / loupe_err_detail. */
LOUPE_API size_t loupe_result_error_detail_count(const loupe_result *r);
LOUPE_API int loupe_result_error_detail(const loupe_result *r, size_t i, long *row,
                                        const char **field, const char **reason);

/* Predict and BatchPredict */
typedef struct loupe_price { double price, low, high; } loupe_price;
/** Rows in the result: 1 for Predict, the request's rows for BatchPredict. */
LOUPE_API size_t loupe_result_rows(const loupe_result *r);
/** Row `row`'s price and range (US dollars; NaN for an invalid row or an out-of-range row). */
LOUPE_API loupe_price loupe_result_price(const loupe_result *r, size_t row);
/** The columns, loupe_result_rows entries each (NULL when there are none). */
LOUPE_API const double *loupe_result_prices(const loupe_result *r);
LOUPE_API const double *loupe_result_lows(const loupe_result *r);
LOUPE_API const double *loupe_result_highs(const loupe_result *r);
LOUPE_API double loupe_result_level(const loupe_result *r);
LOUPE_API const char *loupe_result_model_name(const loupe_result *r);
LOUPE_API unsigned loupe_result_model_version(const loupe_result *r);
/** The rows that failed validation (BatchPredict: row index, column ("" = whole row), reason)
 *  or the outcomes refused (ReportOutcomes: index in its `outcomes`, field, reason). */
LOUPE_API size_t loupe_result_row_error_count(const loupe_result *r);
LOUPE_API int loupe_result_row_error(const loupe_result *r, size_t i, uint32_t *row,
                                     const char **field, const char **reason);
/** Row `row`'s reasons: *count per-feature contributions (carat, cut, color, clarity, depth,
 *  table, x, y, z) in raw-score (log-price) space, base_value + their sum = log(price).
 *  NULL when the server sent none (it does not compute them yet). */
LOUPE_API const double *loupe_result_reasons(const loupe_result *r, size_t row,
                                             double *base_value, size_t *count);

/* ListModels, and the model of a finished job */
typedef struct loupe_parameter { const char *name, *value; } loupe_parameter;
typedef struct loupe_model_info {
    const char *name;
    unsigned version;
    const char *const *aliases;     /* e.g. "production" */
    size_t alias_count;
    int64_t created_unix_ms;
    const char *dataset;
    unsigned dataset_version;
    unsigned metric_rows;           /* the holdout: rows, RMSE and MAE in $, MAPE in %, R² */
    double rmse, mae, mape, r2;
    double level, coverage, median_width; /* the ranges' level, coverage, median width */
    const loupe_parameter *parameters;
    size_t parameter_count;
    unsigned tree_count;
    const char *digest;             /* "sha256:<hex>" */
} loupe_model_info;
LOUPE_API size_t loupe_result_model_count(const loupe_result *r);
LOUPE_API const loupe_model_info *loupe_result_model(const loupe_result *r, size_t i);

/* FindSimilar */
typedef struct loupe_similar { loupe_diamond diamond; double price; uint64_t row; } loupe_similar;
LOUPE_API size_t loupe_result_similar_count(const loupe_result *r);
LOUPE_API const loupe_similar *loupe_result_similar(const loupe_result *r); /* array */
LOUPE_API const char *loupe_result_dataset(const loupe_result *r, unsigned *version);

/* Retrain and GetJob */
enum { LOUPE_JOB_QUEUED = 1, LOUPE_JOB_CLEANING, LOUPE_JOB_TUNING, LOUPE_JOB_TRAINING,
       LOUPE_JOB_EVALUATING, LOUPE_JOB_REGISTERING, LOUPE_JOB_PROMOTING,
       LOUPE_JOB_SUCCEEDED, LOUPE_JOB_FAILED, LOUPE_JOB_CANCELLED };
typedef struct loupe_job {
    const char *job_id;
    int stage;                      /* LOUPE_JOB_*; SUCCEEDED, FAILED, CANCELLED are final */
    double percent;                 /* 0..100 */
    uint64_t eta_ms;                /* 0: unknown or done */
    const char *message;
    int64_t started_unix_ms, finished_unix_ms;
    int finished;                   /* 1 once the stage is final */
    const loupe_model_info *model;  /* the version registered, or NULL */
    int promoted;
    const char *decision;           /* why it was or was not promoted */
    int error_code;                 /* LOUPE_OK, or the failure's status code */
    const char *error_message;
} loupe_job;
LOUPE_API const char *loupe_result_job_id(const loupe_result *r);  /* Retrain and GetJob */
LOUPE_API const loupe_job *loupe_result_job(const loupe_result *r); /* GetJob */

/* ReportOutcomes (since 1.2) */
typedef struct loupe_outcome_summary {
    unsigned accepted;           /* outcomes recorded (the refused ones are row errors) */
    unsigned matched_by_request; /* joined to the caller's call by its request id */
    unsigned matched_by_diamond; /* no request id: joined to the newest Predict of the diamond */
    unsigned unmatched;          /* kept, and still used to compare versions */
} loupe_outcome_summary;
/** What the server did with the outcomes reported (NULL for other results). */
LOUPE_API const loupe_outcome_summary *loupe_result_outcomes(const loupe_result *r);

/* Health */
typedef struct loupe_health_info {
    int live, ready, model_loaded, store_reachable;
    const char *model_name;
    unsigned model_version;
    const char *server_version;
    uint64_t uptime_ms;
    const char *message;            /* why not ready; "" when ready */
} loupe_health_info;
LOUPE_API const loupe_health_info *loupe_result_health(const loupe_result *r);

#ifdef __cplusplus
}
#endif
#endif /* LOUPE_H */
