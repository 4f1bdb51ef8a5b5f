/*
 * Every error path against a scripted server (mock_server.c): refused connections, bad
 * tokens, wrong scopes, a server closing mid-reply or between replies, oversize replies,
 * silence (connect and call timeouts), garbage, connection-level errors; and the happy
 * paths the real server cannot be made to show: replies out of order, per-call errors in a
 * pipeline, the client's own frame-size check, a server that writes before it reads.
 */
#include <math.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "mock_server.h"

static const char *const all_scopes[] = {"predict", "models:read", "admin"};

static loupe_client *connect_to(int port, const char *token, unsigned call_ms, unsigned connect_ms,
                                size_t max_reply) {
    loupe_options *o = loupe_options_new();
    loupe_options_set_port(o, port);
    loupe_options_set_token(o, token);
    loupe_options_set_call_timeout_ms(o, call_ms);
    if (connect_ms) loupe_options_set_connect_timeout_ms(o, connect_ms);
    if (max_reply) loupe_options_set_max_reply_size(o, max_reply);
    loupe_client *c = loupe_connect(o);
    loupe_options_free(o);
    return c;
}

static const loupe_diamond example = {1.01, LOUPE_CUT_IDEAL, LOUPE_COLOR_G, LOUPE_CLARITY_VS1,
                                      61.8, 56, 6.43, 6.47, 3.99};

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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

/* ---- connecting ------------------------------------------------------------------------ */

static void test_refused(void) {
    TEST("refused connection");
    mock_server *s = mock_start(NULL, NULL);
    int port = mock_port(s);
    mock_stop(s); /* nothing listens there any more */
    loupe_client *c = connect_to(port, "t", 1000, 0, 0);
    CHECK(c != NULL);
    CHECK_CODE(c, LOUPE_ERR_IO);
    CHECK_HAS(loupe_errmsg(c), "refused");
    CHECK(!loupe_connected(c));
    CHECK(loupe_predict(c, &example, NULL) == NULL);
    CHECK_CODE(c, LOUPE_ERR_CLOSED);
    loupe_free(c);

    TEST("unresolvable host");
    loupe_options *o = loupe_options_new();
    loupe_options_set_host(o, "no-such-host.invalid");
    c = loupe_connect(o);
    loupe_options_free(o);
    CHECK_CODE(c, LOUPE_ERR_IO);
    CHECK_HAS(loupe_errmsg(c), "cannot resolve");
    loupe_free(c);
}

static void bad_token(mock_conn *c, void *arg) {
    (void)arg;
    lp_frame f;
    if (!mock_read(c, &f, 5000)) return;
    mock_error(c, f.method, f.request_id, LOUPE_UNAUTHENTICATED,
               "the token is not valid for this server", 0);
}

static void test_bad_token(void) {
    TEST("bad token: UNAUTHENTICATED, connection closed");
    mock_server *s = mock_start(bad_token, NULL);
    loupe_client *c = connect_to(mock_port(s), "wrong", 1000, 0, 0);
    CHECK_CODE(c, LOUPE_UNAUTHENTICATED);
    CHECK_HAS(loupe_errmsg(c), "the token is not valid");
    CHECK(!loupe_connected(c));
    CHECK(loupe_client_session(c) == NULL);
    loupe_free(c);
    mock_stop(s);
}

static void silent(mock_conn *c, void *arg) {
    (void)arg;
    mock_drain(c, 3000);
}

static void test_connect_timeout(void) {
    TEST("a server that never answers Hello: connect times out");
    mock_server *s = mock_start(silent, NULL);
    int64_t t0 = now_ms();
    loupe_client *c = connect_to(mock_port(s), "t", 1000, 300, 0);
    int64_t took = now_ms() - t0;
    CHECK_CODE(c, LOUPE_ERR_TIMEOUT);
    CHECK_HAS(loupe_errmsg(c), "Welcome");
    CHECK(took >= 290 && took < 2500);
    CHECK(!loupe_connected(c));
    loupe_free(c);
    mock_stop(s);
}

/* ---- scopes, details, retry advice ----------------------------------------------------- */

static void scoped(mock_conn *c, void *arg) {
    (void)arg;
    static const char *const scopes[] = {"predict"};
    if (!mock_welcome(c, scopes, 1, 0, NULL, 0)) return;
    lp_frame f;
    while (mock_read(c, &f, 5000)) {
        if (f.method == LOUPE_METHOD_LIST_MODELS || f.method == LOUPE_METHOD_RETRAIN) {
            mock_error(c, f.method, f.request_id, LOUPE_PERMISSION_DENIED,
                       "the token's scopes (predict) do not allow ListModels", 0);
        } else if (f.method == LOUPE_METHOD_FIND_SIMILAR) {
            Loupe__V1__FieldViolation v = LOUPE__V1__FIELD_VIOLATION__INIT;
            v.field = "cut";
            v.description = "must be given";
            Loupe__V1__FieldViolation *vs[] = {&v};
            Loupe__V1__RowError re = LOUPE__V1__ROW_ERROR__INIT;
            re.row = 17;
            re.field = "carat";
            re.reason = "carat must be > 0, got -1";
            Loupe__V1__RowError *res[] = {&re};
            Loupe__V1__Status st = LOUPE__V1__STATUS__INIT;
            st.code = LOUPE__V1__STATUS_CODE__STATUS_CODE_INVALID_ARGUMENT;
            st.message = "a grade is missing";
            st.n_field_violations = 1;
            st.field_violations = vs;
            st.n_row_errors = 1;
            st.row_errors = res;
            size_t len = protobuf_c_message_get_packed_size(&st.base);
            uint8_t buf[512];
            lp_write_prefix(buf, len, 0x06, f.method, f.request_id, 0, 0);
            protobuf_c_message_pack(&st.base, buf + 20);
            mock_send(c, buf, 20 + len);
        } else if (f.method == LOUPE_METHOD_HEALTH) {
            mock_error(c, f.method, f.request_id, LOUPE_RESOURCE_EXHAUSTED, "slow down", 250);
        } else if (f.method == LOUPE_METHOD_PREDICT) {
            reply_price(c, f.request_id, 1234);
        }
    }
}

static void test_scopes_and_details(void) {
    TEST("wrong scope: PERMISSION_DENIED, the connection stays usable");
    mock_server *s = mock_start(scoped, NULL);
    loupe_client *c = connect_to(mock_port(s), "predict-only", 2000, 0, 0);
    CHECK_CODE(c, LOUPE_OK);
    const loupe_session *session = loupe_client_session(c);
    CHECK(session != NULL);
    if (session) {
        CHECK_INT(session->scope_count, 1);
        CHECK_STR(session->scopes[0], "predict");
        CHECK_STR(session->principal, "mock");
        CHECK_INT(session->max_batch_rows, 100000);
    }
    CHECK(loupe_list_models(c, NULL) == NULL);
    CHECK_CODE(c, LOUPE_PERMISSION_DENIED);
    CHECK_HAS(loupe_errmsg(c), "do not allow");
    CHECK(loupe_retrain(c, NULL) == NULL);
    CHECK_CODE(c, LOUPE_PERMISSION_DENIED);
    CHECK(loupe_connected(c));
    loupe_result *r = loupe_predict(c, &example, NULL);
    CHECK(r != NULL);
    CHECK_CODE(c, LOUPE_OK);
    CHECK_STR(loupe_errmsg(c), "");
    CHECK(loupe_result_price(r, 0).price == 1234);
    loupe_result_free(r);

    TEST("error details: field violations and row errors");
    loupe_similar_query q = {1, 0, LOUPE_COLOR_G, LOUPE_CLARITY_VS1, 5};
    CHECK(loupe_find_similar(c, &q) == NULL);
    CHECK_CODE(c, LOUPE_INVALID_ARGUMENT);
    CHECK_INT(loupe_err_detail_count(c), 2);
    long row = 0;
    const char *field = NULL, *reason = NULL;
    CHECK_INT(loupe_err_detail(c, 0, &row, &field, &reason), LOUPE_OK);
    CHECK_INT(row, -1);
    CHECK_STR(field, "cut");
    CHECK_STR(reason, "must be given");
    CHECK_INT(loupe_err_detail(c, 1, &row, &field, &reason), LOUPE_OK);
    CHECK_INT(row, 17);
    CHECK_STR(field, "carat");
    CHECK_INT(loupe_err_detail(c, 2, &row, &field, &reason), LOUPE_ERR_USAGE);

    TEST("retry advice");
    CHECK(loupe_health(c) == NULL);
    CHECK_CODE(c, LOUPE_RESOURCE_EXHAUSTED);
    CHECK_INT(loupe_err_retry_after_ms(c), 250);
    r = loupe_predict(c, &example, NULL); /* the next call clears the error */
    CHECK_INT(loupe_err_retry_after_ms(c), 0);
    CHECK_INT(loupe_err_detail_count(c), 0);
    loupe_result_free(r);
    loupe_free(c);
    mock_stop(s);
}

/* ---- the server going away or misbehaving ---------------------------------------------- */

typedef enum { HALF_REPLY, NO_REPLY, OVERSIZE, NEVER, BAD_VERSION, REQUEST_FLAGS, UNKNOWN_ID,
               WRONG_METHOD, GARBAGE_PAYLOAD, CONNECTION_ERROR, SHORT_BATCH, ROW_OUT_OF_RANGE } misbehaviour;

static void misbehave(mock_conn *c, void *arg) {
    misbehaviour m = *(misbehaviour *)arg;
    if (!mock_welcome(c, all_scopes, 3, 0, NULL, 0)) return;
    lp_frame f;
    if (!mock_read(c, &f, 5000)) return;
    uint8_t buf[128];
    Loupe__V1__PredictResponse p = LOUPE__V1__PREDICT_RESPONSE__INIT;
    p.price = 7186;
    size_t len = protobuf_c_message_get_packed_size(&p.base);
    lp_write_prefix(buf, len, LP_FLAG_RESPONSE, f.method, f.request_id, 0, 0);
    protobuf_c_message_pack(&p.base, buf + 20);
    switch (m) {
    case HALF_REPLY: mock_send(c, buf, 14); return; /* then close */
    case NO_REPLY: return;
    case OVERSIZE:
        lp_put32(buf, 100u << 20);
        mock_send(c, buf, 20);
        mock_drain(c, 3000);
        return;
    case NEVER: mock_drain(c, 3000); return;
    case BAD_VERSION: buf[4] = 2; break;
    case REQUEST_FLAGS: buf[5] = LP_FLAG_REQUEST; break;
    case UNKNOWN_ID: lp_put32(buf + 8, f.request_id + 100); break;
    case WRONG_METHOD: lp_put16(buf + 6, LOUPE_METHOD_HEALTH); break;
    case GARBAGE_PAYLOAD: memset(buf + 20, 0xff, len); break;
    case CONNECTION_ERROR:
        mock_error(c, 0, 0, LOUPE_DEADLINE_EXCEEDED,
                   "frame not complete within the frame deadline of 30000 ms", 0);
        return;
    case ROW_OUT_OF_RANGE: {
        /* Three prices for three rows, and a row error naming row 4000000000. */
        double prices[3] = {1, 2, 3};
        Loupe__V1__RowError e = LOUPE__V1__ROW_ERROR__INIT;
        e.row = 4000000000u;
        e.field = "carat";
        e.reason = "carat must be > 0";
        Loupe__V1__RowError *errors[1] = {&e};
        Loupe__V1__BatchPredictResponse b = LOUPE__V1__BATCH_PREDICT_RESPONSE__INIT;
        b.n_prices = b.n_lows = b.n_highs = 3;
        b.prices = b.lows = b.highs = prices;
        b.n_row_errors = 1;
        b.row_errors = errors;
        mock_reply(c, f.method, f.request_id, 3, &b.base);
        mock_drain(c, 3000);
        return;
    }
    case SHORT_BATCH: {
        double prices[2] = {1, 2};
        Loupe__V1__BatchPredictResponse b = LOUPE__V1__BATCH_PREDICT_RESPONSE__INIT;
        b.n_prices = b.n_lows = b.n_highs = 2;
        b.prices = b.lows = b.highs = prices;
        mock_reply(c, f.method, f.request_id, 2, &b.base);
        mock_drain(c, 3000);
        return;
    }
    }
    mock_send(c, buf, 20 + len);
    mock_drain(c, 3000);
}

static loupe_client *misbehaving(mock_server **s, misbehaviour *m, unsigned call_ms,
                                 size_t max_reply) {
    *s = mock_start(misbehave, m);
    return connect_to(mock_port(*s), "t", call_ms, 0, max_reply);
}

static void expect_failure(misbehaviour m, int code, const char *message, const char *name) {
    TEST(name);
    mock_server *s;
    loupe_client *c = misbehaving(&s, &m, 5000, 0);
    CHECK_CODE(c, LOUPE_OK);
    CHECK(loupe_predict(c, &example, NULL) == NULL);
    CHECK_CODE(c, code);
    CHECK_HAS(loupe_errmsg(c), message);
    CHECK(!loupe_connected(c));
    CHECK(loupe_health(c) == NULL);
    CHECK_CODE(c, LOUPE_ERR_CLOSED);
    loupe_free(c);
    mock_stop(s);
}

/* A 3-row BatchPredict against a server whose reply is wrong in way `m`: refused as a
 * protocol error saying `message`. */
static void expect_batch_failure(misbehaviour m, const char *message, const char *name) {
    TEST(name);
    mock_server *s;
    loupe_client *c = misbehaving(&s, &m, 5000, 0);
    double d[3] = {1, 1, 1};
    int e[3] = {1, 1, 1};
    loupe_columns cols = {3, d, e, e, e, d, d, d, d, d};
    CHECK(loupe_batch_predict(c, &cols, NULL) == NULL);
    CHECK_CODE(c, LOUPE_ERR_PROTOCOL);
    CHECK_HAS(loupe_errmsg(c), message);
    loupe_free(c);
    mock_stop(s);
}

static void test_misbehaving_servers(void) {
    expect_failure(HALF_REPLY, LOUPE_ERR_EOF, "in the middle of a reply (14 of 29 bytes received)",
                   "server closing mid-reply");
    expect_failure(NO_REPLY, LOUPE_ERR_EOF, "with 1 call(s) waiting",
                   "server closing with a call waiting");
    expect_failure(BAD_VERSION, LOUPE_ERR_PROTOCOL, "frame version 2",
                   "a frame of another protocol version");
    expect_failure(REQUEST_FLAGS, LOUPE_ERR_PROTOCOL, "flags 0x01", "a request where a reply belongs");
    expect_failure(UNKNOWN_ID, LOUPE_ERR_PROTOCOL, "not waiting for one", "a reply to no call");
    expect_failure(WRONG_METHOD, LOUPE_ERR_PROTOCOL, "with a frame of method 2",
                   "a reply of the wrong method");
    expect_failure(GARBAGE_PAYLOAD, LOUPE_ERR_PROTOCOL, "does not decode",
                   "a payload that does not decode");
    expect_failure(CONNECTION_ERROR, LOUPE_DEADLINE_EXCEEDED, "frame deadline",
                   "a connection-level error frame");
    expect_batch_failure(SHORT_BATCH, "2 prices for 3 rows",
                         "a BatchPredict reply with the wrong number of rows");
    expect_batch_failure(ROW_OUT_OF_RANGE, "naming row 4000000000 of a 3-row batch",
                         "a BatchPredict reply naming a row outside the batch never reaches the caller");
    {
        TEST("oversize reply: refused from its length, no waiting, no allocation");
        misbehaviour m = OVERSIZE;
        mock_server *s;
        loupe_client *c = misbehaving(&s, &m, 5000, 1u << 20);
        int64_t t0 = now_ms();
        CHECK(loupe_predict(c, &example, NULL) == NULL);
        CHECK(now_ms() - t0 < 2000);
        CHECK_CODE(c, LOUPE_ERR_REPLY_TOO_LARGE);
        CHECK_HAS(loupe_errmsg(c), "104857600 bytes exceeds the maximum reply size of 1048576");
        CHECK(!loupe_connected(c));
        loupe_free(c);
        mock_stop(s);
    }
    {
        TEST("call timeout: a server that never answers");
        misbehaviour m = NEVER;
        mock_server *s;
        loupe_client *c = misbehaving(&s, &m, 300, 0);
        int64_t t0 = now_ms();
        CHECK(loupe_predict(c, &example, NULL) == NULL);
        int64_t took = now_ms() - t0;
        CHECK_CODE(c, LOUPE_ERR_TIMEOUT);
        CHECK_HAS(loupe_errmsg(c), "no reply from 127.0.0.1");
        CHECK(took >= 290 && took < 2500);
        CHECK(!loupe_connected(c));

        TEST("reconnect after a failure");
        CHECK_INT(loupe_reconnect(c), LOUPE_OK); /* the mock serves the next connection */
        CHECK(loupe_connected(c));
        CHECK(loupe_predict(c, &example, NULL) == NULL);
        CHECK_CODE(c, LOUPE_ERR_TIMEOUT);
        loupe_free(c);
        mock_stop(s);
    }
}

/* A server that revokes the token after the handshake: UNAUTHENTICATED for the first call,
 * then a close. */
static void revoke_after_hello(mock_conn *c, void *arg) {
    (void)arg;
    if (!mock_welcome(c, all_scopes, 3, 0, NULL, 0)) return;
    lp_frame f;
    if (!mock_read(c, &f, 5000)) return;
    mock_error(c, f.method, f.request_id, LOUPE_UNAUTHENTICATED, "the token was revoked", 0);
}

static void test_unauthenticated_closes(void) {
    TEST("a call-level UNAUTHENTICATED closes the client's side too");
    mock_server *s = mock_start(revoke_after_hello, NULL);
    loupe_client *c = connect_to(mock_port(s), "t", 5000, 0, 0);
    CHECK(loupe_connected(c));
    CHECK(loupe_predict(c, &example, NULL) == NULL);
    CHECK_CODE(c, LOUPE_UNAUTHENTICATED);
    CHECK(!loupe_connected(c));
    CHECK(loupe_predict(c, &example, NULL) == NULL);
    CHECK_CODE(c, LOUPE_ERR_CLOSED);
    loupe_free(c);
    mock_stop(s);
}

static void welcome_then_drain(mock_conn *c, void *arg) {
    (void)arg;
    if (!mock_welcome(c, all_scopes, 3, 0, NULL, 0)) return;
    mock_drain(c, 5000);
}

/* Three calls answered in reverse order, then one more. */
static void three_then_one(mock_conn *c, void *arg) {
    (void)arg;
    if (!mock_welcome(c, all_scopes, 3, 0, NULL, 0)) return;
    uint32_t ids[3];
    lp_frame f;
    for (int i = 0; i < 3; i++) {
        if (!mock_read(c, &f, 5000)) return;
        ids[i] = f.request_id;
    }
    for (int i = 2; i >= 0; i--) reply_price(c, ids[i], 10.0 * ids[i]);
    if (!mock_read(c, &f, 5000)) return;
    reply_price(c, f.request_id, 1.0);
    mock_drain(c, 3000);
}

static void test_cancel(void) {
    TEST("a cancelled pipelined call: its reply is dropped, the others come back");
    mock_server *s = mock_start(three_then_one, NULL);
    loupe_client *c = connect_to(mock_port(s), "t", 5000, 0, 0);
    uint32_t ids[3];
    for (int i = 0; i < 3; i++) CHECK_INT(loupe_append_predict(c, &example, NULL, &ids[i]), LOUPE_OK);
    CHECK_INT(loupe_cancel(c, ids[1]), LOUPE_OK);
    CHECK_INT(loupe_cancel(c, ids[1]), LOUPE_ERR_USAGE); /* already cancelled */
    CHECK_INT(loupe_cancel(c, 999), LOUPE_ERR_USAGE);
    CHECK_INT(loupe_pending(c), 2);
    uint32_t seen[2] = {0, 0};
    for (int i = 0; i < 2; i++) {
        loupe_result *r = loupe_get_reply(c);
        CHECK(r != NULL);
        if (!r) break;
        seen[i] = loupe_result_request_id(r);
        loupe_result_free(r);
    }
    CHECK(seen[0] == ids[2] && seen[1] == ids[0]);
    CHECK_INT(loupe_pending(c), 0);
    CHECK(loupe_get_reply(c) == NULL);
    CHECK_CODE(c, LOUPE_ERR_USAGE);
    /* A blocking call runs once no live call is pending. */
    loupe_result *r = loupe_predict(c, &example, NULL);
    CHECK(r != NULL && loupe_result_price(r, 0).price == 1.0);
    loupe_result_free(r);
    loupe_free(c);
    mock_stop(s);
}

static void test_queue_bound(void) {
    TEST("appends past max_queued_bytes are refused, nothing queued; a flush makes room");
    mock_server *s = mock_start(welcome_then_drain, NULL);
    loupe_options *o = loupe_options_new();
    loupe_options_set_port(o, mock_port(s));
    loupe_options_set_token(o, "t");
    CHECK_INT(loupe_options_set_max_queued_bytes(o, 100), LOUPE_ERR_USAGE);
    CHECK_INT(loupe_options_set_max_queued_bytes(o, 4096), LOUPE_OK);
    loupe_client *c = loupe_connect(o);
    loupe_options_free(o);
    CHECK_CODE(c, LOUPE_OK);
    size_t appended = 0;
    int rc = LOUPE_OK;
    while (appended < 1000 && (rc = loupe_append_predict(c, &example, NULL, NULL)) == LOUPE_OK) appended++;
    CHECK_INT(rc, LOUPE_ERR_USAGE);
    CHECK_HAS(loupe_errmsg(c), "over the limit of 4096");
    CHECK(appended > 10 && appended < 100);
    CHECK_INT(loupe_pending(c), appended);
    CHECK(loupe_connected(c));
    CHECK_INT(loupe_flush(c), LOUPE_OK);
    CHECK_INT(loupe_append_predict(c, &example, NULL, NULL), LOUPE_OK);
    loupe_free(c);
    mock_stop(s);
}

static void test_call_timeout_after_connect(void) {
    TEST("the call timeout can be changed after connecting");
    misbehaviour m = NEVER;
    mock_server *s;
    loupe_client *c = misbehaving(&s, &m, 30000, 0);
    CHECK_INT(loupe_set_call_timeout_ms(c, 200), LOUPE_OK);
    CHECK_INT(loupe_set_call_timeout_ms(NULL, 200), LOUPE_ERR_USAGE);
    int64_t t0 = now_ms();
    CHECK(loupe_predict(c, &example, NULL) == NULL);
    CHECK_CODE(c, LOUPE_ERR_TIMEOUT);
    CHECK(now_ms() - t0 < 5000);
    loupe_free(c);
    mock_stop(s);
}

/* ---- pipelining ------------------------------------------------------------------------ */

static void reverse_order(mock_conn *c, void *arg) {
    uint32_t *deadline_seen = arg;
    if (!mock_welcome(c, all_scopes, 3, 0, NULL, 0)) return;
    uint32_t ids[8];
    lp_frame f;
    for (int i = 0; i < 8; i++) {
        if (!mock_read(c, &f, 5000)) return;
        ids[i] = f.request_id;
        *deadline_seen = f.deadline_ms;
    }
    for (int i = 7; i >= 0; i--) {
        if (i == 3)
            mock_error(c, LOUPE_METHOD_PREDICT, ids[i], LOUPE_INVALID_ARGUMENT,
                       "diamond.carat must be > 0, got -1.0", 0);
        else
            reply_price(c, ids[i], 10.0 * ids[i]);
    }
    mock_drain(c, 3000);
}

static void test_pipelining(void) {
    TEST("pipelined replies in reverse order, matched by request id; an error result");
    uint32_t deadline_seen = 0;
    mock_server *s = mock_start(reverse_order, &deadline_seen);
    loupe_client *c = connect_to(mock_port(s), "t", 4321, 0, 0);
    CHECK(loupe_get_reply(c) == NULL);
    CHECK_CODE(c, LOUPE_ERR_USAGE);
    uint32_t ids[8];
    for (int i = 0; i < 8; i++) CHECK_INT(loupe_append_predict(c, &example, NULL, &ids[i]), 0);
    CHECK_INT(loupe_pending(c), 8);
    CHECK(loupe_predict(c, &example, NULL) == NULL); /* blocking calls wait their turn */
    CHECK_CODE(c, LOUPE_ERR_USAGE);
    CHECK_INT(loupe_pending(c), 8);
    for (int i = 7; i >= 0; i--) {
        loupe_result *r = loupe_get_reply(c);
        CHECK(r != NULL);
        if (!r) break;
        CHECK_INT(loupe_result_request_id(r), ids[i]);
        CHECK_INT(loupe_result_method(r), LOUPE_METHOD_PREDICT);
        if (i == 3) {
            CHECK_INT(loupe_result_code(r), LOUPE_INVALID_ARGUMENT);
            CHECK_HAS(loupe_result_message(r), "carat must be > 0");
            CHECK(isnan(loupe_result_price(r, 0).price));
            /* One shape: the same failure on the client as a blocking call leaves there. */
            CHECK_CODE(c, LOUPE_INVALID_ARGUMENT);
            CHECK_HAS(loupe_errmsg(c), "carat must be > 0");
            CHECK(loupe_connected(c)); /* the connection is fine */
        } else {
            CHECK_INT(loupe_result_code(r), LOUPE_OK);
            CHECK(loupe_result_price(r, 0).price == 10.0 * ids[i]);
        }
        loupe_result_free(r);
    }
    CHECK_INT(loupe_pending(c), 0);
    CHECK_INT(deadline_seen, 4321); /* the call timeout travels as the frame's deadline */
    loupe_free(c);
    mock_stop(s);
}

static void small_frames(mock_conn *c, void *arg) {
    (void)arg;
    if (!mock_welcome(c, all_scopes, 3, 1000, NULL, 0)) return;
    lp_frame f;
    while (mock_read(c, &f, 5000)) {
        if (f.length > 1000) return; /* the client must not send it */
        Loupe__V1__HealthResponse h = LOUPE__V1__HEALTH_RESPONSE__INIT;
        h.live = h.ready = 1;
        mock_reply(c, f.method, f.request_id, 0, &h.base);
    }
}

static void test_frame_limit(void) {
    TEST("a request over the server's frame limit is refused by the client; still usable");
    mock_server *s = mock_start(small_frames, NULL);
    loupe_client *c = connect_to(mock_port(s), "t", 2000, 0, 0);
    double d[100];
    int e[100];
    for (int i = 0; i < 100; i++) d[i] = 1, e[i] = 1;
    loupe_columns cols = {100, d, e, e, e, d, d, d, d, d};
    CHECK(loupe_batch_predict(c, &cols, NULL) == NULL);
    CHECK_CODE(c, LOUPE_RESOURCE_EXHAUSTED);
    CHECK_HAS(loupe_errmsg(c), "maximum frame size of 1000 bytes");
    CHECK_INT(loupe_append_batch_predict(c, &cols, NULL, NULL), LOUPE_RESOURCE_EXHAUSTED);
    CHECK_INT(loupe_pending(c), 0);
    CHECK(loupe_connected(c));
    loupe_result *r = loupe_health(c);
    CHECK(r != NULL && loupe_result_health(r) && loupe_result_health(r)->ready);
    loupe_result_free(r);

    TEST("bad arguments: LOUPE_ERR_USAGE, nothing sent");
    CHECK(loupe_batch_predict(c, NULL, NULL) == NULL);
    CHECK_CODE(c, LOUPE_ERR_USAGE);
    loupe_columns holes = {3, d, e, NULL, e, d, d, d, d, d};
    CHECK(loupe_batch_predict(c, &holes, NULL) == NULL);
    CHECK_CODE(c, LOUPE_ERR_USAGE);
    CHECK_HAS(loupe_errmsg(c), "column color is NULL");
    CHECK(loupe_predict(c, NULL, NULL) == NULL);
    CHECK_CODE(c, LOUPE_ERR_USAGE);
    CHECK(loupe_get_job(c, NULL) == NULL);
    CHECK_CODE(c, LOUPE_ERR_USAGE);
    loupe_retrain_options ro = {0};
    ro.parameters = 99;
    CHECK(loupe_retrain(c, &ro) == NULL);
    CHECK_CODE(c, LOUPE_ERR_USAGE);
    CHECK(loupe_connected(c));
    loupe_free(c);
    mock_stop(s);
}

/* Reads one request, then writes its reply (480 KB) before reading the next, through fixed
 * 128 KiB socket buffers: a client that only reads once it has written everything deadlocks
 * with it (the server blocks writing a reply nobody reads, so it stops reading, so the
 * client's writes block). */
static void writes_before_reading(mock_conn *c, void *arg) {
    int *served = arg;
    if (!mock_welcome(c, all_scopes, 3, 0, NULL, 0)) return;
    size_t n = 20000;
    double *v = calloc(n, sizeof *v);
    for (size_t i = 0; i < n; i++) v[i] = (double)i;
    lp_frame f;
    while (mock_read(c, &f, 5000)) {
        Loupe__V1__BatchPredictRequest *req =
            loupe__v1__batch_predict_request__unpack(NULL, f.payload_len, f.payload);
        size_t rows = req && req->rows ? req->rows->n_carat : 0;
        loupe__v1__batch_predict_request__free_unpacked(req, NULL);
        Loupe__V1__BatchPredictResponse b = LOUPE__V1__BATCH_PREDICT_RESPONSE__INIT;
        b.n_prices = b.n_lows = b.n_highs = rows;
        b.prices = b.lows = b.highs = v;
        if (mock_reply(c, f.method, f.request_id, (uint32_t)rows, &b.base) != 0) break;
        (*served)++;
    }
    free(v);
}

static void test_no_deadlock(void) {
    TEST("pipelining many large calls to a server that writes before it reads");
    int served = 0;
    mock_server *s = mock_start_small_buffers(writes_before_reading, &served);
    loupe_client *c = connect_to(mock_port(s), "t", 20000, 0, 0);
    size_t n = 20000; /* 1 MB requests, 480 KB replies: 12 MB out (past the client's 4 MB
                         send buffer), 5.8 MB back */
    double *d = malloc(n * sizeof *d);
    int *e = malloc(n * sizeof *e);
    for (size_t i = 0; i < n; i++) d[i] = 1.0 + (double)i, e[i] = 1;
    loupe_columns cols = {n, d, e, e, e, d, d, d, d, d};
    int calls = 12;
    for (int i = 0; i < calls; i++) CHECK_INT(loupe_append_batch_predict(c, &cols, NULL, NULL), 0);
    int ok = 0;
    for (int i = 0; i < calls; i++) {
        loupe_result *r = loupe_get_reply(c);
        if (!r) {
            fprintf(stderr, "  %s\n", loupe_errmsg(c));
            break;
        }
        ok += loupe_result_rows(r) == n && loupe_result_prices(r)[n - 1] == (double)(n - 1);
        loupe_result_free(r);
    }
    CHECK_INT(ok, calls);
    free(d);
    free(e);
    loupe_free(c);
    mock_stop(s);
    CHECK_INT(served, calls);
}

static void probe(mock_conn *c, void *arg) {
    int *first_method = arg;
    lp_frame f;
    if (!mock_read(c, &f, 5000)) return;
    *first_method = f.method;
    Loupe__V1__HealthResponse h = LOUPE__V1__HEALTH_RESPONSE__INIT;
    h.live = 1;
    h.message = "no model loaded yet";
    mock_reply(c, f.method, f.request_id, 0, &h.base);
    mock_drain(c, 3000);
}

static void test_no_token_probe(void) {
    TEST("no token: no handshake, Health works; results outlive their client");
    int first = -1;
    mock_server *s = mock_start(probe, &first);
    loupe_client *c = connect_to(mock_port(s), NULL, 2000, 0, 0);
    CHECK_CODE(c, LOUPE_OK);
    CHECK(loupe_client_session(c) == NULL);
    loupe_result *r = loupe_health(c);
    loupe_free(c);
    mock_stop(s);
    CHECK_INT(first, LOUPE_METHOD_HEALTH);
    const loupe_health_info *h = loupe_result_health(r);
    CHECK(h != NULL);
    if (h) {
        CHECK(h->live && !h->ready);
        CHECK_STR(h->message, "no model loaded yet");
    }
    CHECK(loupe_result_job(r) == NULL); /* not that kind of result */
    CHECK(loupe_result_prices(r) == NULL);
    loupe_result_free(r);
}

/* ---- ReportOutcomes ------------------------------------------------------------------ */

/* What the scripted server saw of the first ReportOutcomes request. */
typedef struct outcomes_seen {
    int method;
    uint32_t header_rows;
    size_t n;
    double carat1, price0;
    int64_t sold0;
    int has_id0, has_id1;
    uint32_t id0;
    char outcome_id0[32], outcome_id1[32], model[32];
} outcomes_seen;

/* Answers the first ReportOutcomes with a summary and outcome 2 refused; the second with a
 * refused outcome that was never sent (row 3 of 3). */
static void outcomes_server(mock_conn *c, void *arg) {
    outcomes_seen *seen = arg;
    if (!mock_welcome(c, all_scopes, 3, 0, NULL, 0)) return;
    lp_frame f;
    if (!mock_read(c, &f, 5000)) return;
    Loupe__V1__ReportOutcomesRequest *q = loupe__v1__report_outcomes_request__unpack(
        NULL, f.payload_len, f.payload);
    seen->method = f.method;
    seen->header_rows = f.row_count;
    if (q) {
        seen->n = q->n_outcomes;
        snprintf(seen->model, sizeof seen->model, "%s", q->model);
        if (q->n_outcomes >= 2) {
            const Loupe__V1__Outcome *a = q->outcomes[0], *b = q->outcomes[1];
            seen->price0 = a->sold_price;
            seen->sold0 = a->sold_unix_ms;
            seen->has_id0 = a->has_request_id;
            seen->id0 = a->request_id;
            seen->has_id1 = b->has_request_id;
            seen->carat1 = b->diamond ? b->diamond->carat : 0;
            snprintf(seen->outcome_id0, sizeof seen->outcome_id0, "%s", a->outcome_id);
            snprintf(seen->outcome_id1, sizeof seen->outcome_id1, "%s", b->outcome_id);
        }
        loupe__v1__report_outcomes_request__free_unpacked(q, NULL);
    }
    Loupe__V1__RowError refused = LOUPE__V1__ROW_ERROR__INIT, *list[1] = {&refused};
    refused.row = 2;
    refused.field = "sold_price";
    refused.reason = "sold_price must be a positive number of dollars, got -5.0";
    Loupe__V1__ReportOutcomesResponse r = LOUPE__V1__REPORT_OUTCOMES_RESPONSE__INIT;
    r.accepted = 2;
    r.matched_by_request = 1;
    r.matched_by_diamond = 1;
    r.n_rejected = 1;
    r.rejected = list;
    mock_reply(c, f.method, f.request_id, 0, &r.base);
    if (!mock_read(c, &f, 5000)) return;
    refused.row = 3;
    mock_reply(c, f.method, f.request_id, 0, &r.base);
    mock_drain(c, 3000);
}

static void test_report_outcomes(void) {
    TEST("ReportOutcomes: the request on the wire, the summary, the refused outcomes");
    outcomes_seen seen;
    memset(&seen, 0, sizeof seen);
    mock_server *s = mock_start(outcomes_server, &seen);
    loupe_client *c = connect_to(mock_port(s), "t", 5000, 0, 0);
    loupe_outcome outs[3];
    memset(outs, 0, sizeof outs);
    for (int i = 0; i < 3; i++) outs[i].diamond = example;
    outs[0].sold_price = 5100;
    outs[0].sold_unix_ms = 1796000000000;
    outs[0].has_request_id = 1;
    outs[0].request_id = 7;
    outs[0].outcome_id = "sale-1";
    outs[1].diamond.carat = 0.5;
    outs[1].sold_price = 1500;
    outs[2].sold_price = -5;

    CHECK(loupe_report_outcomes(c, outs, 0, NULL) == NULL);
    CHECK_CODE(c, LOUPE_ERR_USAGE);
    CHECK_HAS(loupe_errmsg(c), "no outcomes");
    CHECK(loupe_report_outcomes(c, NULL, 2, NULL) == NULL);
    CHECK_CODE(c, LOUPE_ERR_USAGE);
    CHECK_HAS(loupe_errmsg(c), "the outcomes are NULL with a count of 2");
    CHECK_INT(loupe_append_report_outcomes(c, NULL, 1, NULL, NULL), LOUPE_ERR_USAGE);
    CHECK_INT(loupe_pending(c), 0); /* nothing was queued */
    CHECK(loupe_connected(c));

    loupe_result *r = loupe_report_outcomes(c, outs, 3, "diamonds");
    CHECK(r != NULL);
    CHECK_INT(seen.method, LOUPE_METHOD_REPORT_OUTCOMES);
    CHECK_INT(seen.header_rows, 0);
    CHECK_INT(seen.n, 3);
    CHECK(seen.price0 == 5100);
    CHECK(seen.sold0 == 1796000000000);
    CHECK_INT(seen.has_id0, 1);
    CHECK_INT(seen.id0, 7);
    CHECK_INT(seen.has_id1, 0);
    CHECK(seen.carat1 == 0.5);
    CHECK_STR(seen.outcome_id0, "sale-1");
    CHECK_STR(seen.outcome_id1, "");
    CHECK_STR(seen.model, "diamonds");
    if (r) {
        CHECK_INT(loupe_result_method(r), LOUPE_METHOD_REPORT_OUTCOMES);
        CHECK_INT(loupe_result_code(r), LOUPE_OK);
        const loupe_outcome_summary *sum = loupe_result_outcomes(r);
        CHECK(sum != NULL);
        if (sum) {
            CHECK_INT(sum->accepted, 2);
            CHECK_INT(sum->matched_by_request, 1);
            CHECK_INT(sum->matched_by_diamond, 1);
            CHECK_INT(sum->unmatched, 0);
        }
        CHECK_INT(loupe_result_row_error_count(r), 1);
        uint32_t row = 0;
        const char *field = NULL, *reason = NULL;
        CHECK_INT(loupe_result_row_error(r, 0, &row, &field, &reason), LOUPE_OK);
        CHECK_INT(row, 2);
        CHECK_STR(field, "sold_price");
        CHECK_HAS(reason, "positive");
        CHECK_INT(loupe_result_row_error(r, 1, &row, &field, &reason), LOUPE_ERR_USAGE);
        CHECK_INT(loupe_result_rows(r), 0);
        CHECK(loupe_result_health(r) == NULL);
    }
    loupe_result_free(r);

    TEST("ReportOutcomes: a reply refusing an outcome never sent is a protocol error");
    uint32_t id = 0;
    CHECK_INT(loupe_append_report_outcomes(c, outs, 3, NULL, &id), LOUPE_OK);
    CHECK(id != 0);
    r = loupe_get_reply(c);
    CHECK(r == NULL);
    CHECK_CODE(c, LOUPE_ERR_PROTOCOL);
    CHECK_HAS(loupe_errmsg(c), "naming outcome 3 of 3");
    CHECK(!loupe_connected(c));
    loupe_free(c);
    mock_stop(s);
}

int main(void) {
    test_refused();
    test_bad_token();
    test_connect_timeout();
    test_scopes_and_details();
    test_misbehaving_servers();
    test_unauthenticated_closes();
    test_queue_bound();
    test_cancel();
    test_call_timeout_after_connect();
    test_pipelining();
    test_frame_limit();
    test_no_deadlock();
    test_no_token_probe();
    test_report_outcomes();
    return check_done("test_mock");
}
