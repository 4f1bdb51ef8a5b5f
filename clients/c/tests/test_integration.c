/*
 * Against a live server (or a gateway in front of one):
 *
 *   LOUPE_ADDR=127.0.0.1:7070 LOUPE_TOKEN=... test_integration
 *
 * LOUPE_TEST_ADMIN=0 skips the admin calls (Retrain) for a token without the admin scope;
 * LOUPE_TEST_SCOPE_DENIED=1 expects the admin calls to be refused instead (a partner token).
 * LOUPE_TLS_CA=cert.pem connects with TLS, verifying the server against that CA (a build
 * with TLS=1). LOUPE_TEST_LIGHT=1 skips the two calls that move the most data (for slow
 * runs: TLS under valgrind). tests/run starts `loupe serve` (and a TLS terminator) and sets these.
 */
#include <math.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "loupe.h"

static char host[256] = "127.0.0.1";
static int port = 7070;
static const char *token = "";
static const char *tls_ca = NULL;
static int light = 0; /* LOUPE_TEST_LIGHT=1: skip the calls that move the most data */

static loupe_client *open_client(const char *with_token, unsigned call_ms) {
    loupe_options *o = loupe_options_new();
    loupe_options_set_host(o, host);
    loupe_options_set_port(o, port);
    loupe_options_set_token(o, with_token);
    loupe_options_set_client_name(o, "libloupe-integration-test");
    if (call_ms) loupe_options_set_call_timeout_ms(o, call_ms);
    if (tls_ca) CHECK_INT(loupe_options_set_tls(o, 1, tls_ca, NULL), LOUPE_OK);
    loupe_client *c = loupe_connect(o);
    loupe_options_free(o);
    return c;
}

static const loupe_diamond example = {1.01, LOUPE_CUT_IDEAL, LOUPE_COLOR_G, LOUPE_CLARITY_VS1,
                                      61.8, 56, 6.43, 6.47, 3.99};

/* n plausible diamonds as columns (allocated once; free with free_columns). */
typedef struct owned_columns {
    loupe_columns cols;
    double *carat, *depth, *table, *x, *y, *z;
    int *cut, *color, *clarity;
} owned_columns;

static owned_columns make_columns(size_t n) {
    owned_columns o;
    o.carat = malloc(n * sizeof(double)), o.depth = malloc(n * sizeof(double));
    o.table = malloc(n * sizeof(double)), o.x = malloc(n * sizeof(double));
    o.y = malloc(n * sizeof(double)), o.z = malloc(n * sizeof(double));
    o.cut = malloc(n * sizeof(int)), o.color = malloc(n * sizeof(int));
    o.clarity = malloc(n * sizeof(int));
    for (size_t i = 0; i < n; i++) {
        double carat = 0.3 + (double)(i % 200) * 0.01;
        double side = 6.43 * cbrt(carat / 1.01);
        o.carat[i] = carat;
        o.x[i] = side, o.y[i] = side * 1.006, o.z[i] = side * 0.62;
        o.depth[i] = 100 * o.z[i] / ((o.x[i] + o.y[i]) / 2);
        o.table[i] = 55 + (double)(i % 5);
        o.cut[i] = 1 + (int)(i % 5), o.color[i] = 1 + (int)(i / 5 % 7);
        o.clarity[i] = 1 + (int)(i / 35 % 8);
    }
    o.cols = (loupe_columns){n, o.carat, o.cut, o.color, o.clarity, o.depth, o.table,
                             o.x, o.y, o.z};
    return o;
}

static void free_columns(owned_columns *o) {
    free(o->carat), free(o->depth), free(o->table), free(o->x), free(o->y), free(o->z);
    free(o->cut), free(o->color), free(o->clarity);
}

static loupe_diamond row_of(const loupe_columns *c, size_t i) {
    return (loupe_diamond){c->carat[i], c->cut[i], c->color[i], c->clarity[i], c->depth[i],
                           c->table[i], c->x[i], c->y[i], c->z[i]};
}

static void test_session_and_health(loupe_client *c) {
    TEST("handshake: principal, scopes, limits");
    const loupe_session *s = loupe_client_session(c);
    CHECK(s != NULL);
    if (!s) return;
    CHECK(s->principal[0] != '\0');
    int predict = 0;
    /* "admin" includes every other scope. */
    for (size_t i = 0; i < s->scope_count; i++)
        predict |= strcmp(s->scopes[i], "predict") == 0 || strcmp(s->scopes[i], "admin") == 0;
    CHECK(predict);
    CHECK(s->max_frame_size >= 1u << 20);
    CHECK(s->max_batch_rows > 0);
    CHECK_INT(s->protocol_version, 1);

    TEST("Health");
    loupe_result *r = loupe_health(c);
    CHECK(r != NULL);
    const loupe_health_info *h = loupe_result_health(r);
    CHECK(h && h->live && h->ready && h->model_loaded && h->model_version >= 1);
    if (h) CHECK_STR(h->model_name, "diamonds");
    loupe_result_free(r);
}

static void test_predict(loupe_client *c) {
    TEST("Predict: price within its range, the level asked for");
    loupe_result *r = loupe_predict(c, &example, NULL);
    CHECK(r != NULL);
    loupe_price p = loupe_result_price(r, 0);
    CHECK(p.price > 1000 && p.price < 100000);
    CHECK(p.low <= p.price && p.price <= p.high);
    CHECK(fabs(loupe_result_level(r) - 0.9) < 1e-12);
    CHECK_STR(loupe_result_model_name(r), "diamonds");
    CHECK(loupe_result_model_version(r) >= 1);
    loupe_predict_options half = {0};
    half.level = 0.5;
    loupe_result *r2 = loupe_predict(c, &example, &half);
    CHECK(r2 != NULL);
    loupe_price p2 = loupe_result_price(r2, 0);
    CHECK(p2.price == p.price);
    CHECK(p2.high - p2.low < p.high - p.low);
    CHECK(fabs(loupe_result_level(r2) - 0.5) < 1e-12);
    loupe_result_free(r2);

    TEST("Predict with explain: reasons when the server has them");
    loupe_predict_options why = {0};
    why.explain = 1;
    r2 = loupe_predict(c, &example, &why);
    CHECK(r2 != NULL);
    double base;
    size_t count;
    const double *reasons = loupe_result_reasons(r2, 0, &base, &count);
    if (reasons) { /* base + contributions = log(price) */
        double sum = base;
        for (size_t i = 0; i < count; i++) sum += reasons[i];
        CHECK(count == 9 && fabs(exp(sum) - loupe_result_price(r2, 0).price) < 1e-6 * p.price);
    }
    loupe_result_free(r2);

    TEST("Predict: an invalid diamond is INVALID_ARGUMENT with the field; still connected");
    loupe_diamond bad = example;
    bad.carat = -1;
    CHECK(loupe_predict(c, &bad, NULL) == NULL);
    CHECK_CODE(c, LOUPE_INVALID_ARGUMENT);
    CHECK_HAS(loupe_errmsg(c), "carat");
    CHECK(loupe_err_detail_count(c) >= 1);
    const char *field = NULL;
    long row = 0;
    loupe_err_detail(c, 0, &row, &field, NULL);
    CHECK_HAS(field, "carat");
    CHECK_INT(row, -1);
    CHECK(loupe_connected(c));
    bad = example;
    bad.cut = 0;
    CHECK(loupe_predict(c, &bad, NULL) == NULL);
    CHECK_CODE(c, LOUPE_INVALID_ARGUMENT);

    TEST("Predict: an unknown model is NOT_FOUND");
    loupe_predict_options other = {0};
    other.model_name = "no-such-model";
    CHECK(loupe_predict(c, &example, &other) == NULL);
    CHECK_CODE(c, LOUPE_NOT_FOUND);
    other.model_name = NULL;
    other.model_version = 9999;
    CHECK(loupe_predict(c, &example, &other) == NULL);
    CHECK_CODE(c, LOUPE_NOT_FOUND);
    CHECK(loupe_connected(c));
    loupe_result_free(r);
}

/* The same counts from two reports of the same outcomes: reporting again changes nothing. */
static void check_outcome_report(const loupe_result *r) {
    CHECK(r != NULL);
    if (!r) return;
    CHECK_INT(loupe_result_method(r), LOUPE_METHOD_REPORT_OUTCOMES);
    const loupe_outcome_summary *s = loupe_result_outcomes(r);
    CHECK(s != NULL);
    if (!s) return;
    CHECK_INT(s->accepted, 2);
    /* How each joins depends on when the request log wrote the Predict: any way adds up. */
    CHECK_INT(s->matched_by_request + s->matched_by_diamond + s->unmatched, 2);
    CHECK_INT(loupe_result_row_error_count(r), 1);
    uint32_t row = 9;
    const char *field = NULL, *reason = NULL;
    CHECK_INT(loupe_result_row_error(r, 0, &row, &field, &reason), LOUPE_OK);
    CHECK_INT(row, 2);
    CHECK_STR(field, "sold_price");
    CHECK_HAS(reason, "positive");
}

static void test_report_outcomes(loupe_client *c) {
    TEST("ReportOutcomes: one joined by request id, one by diamond, one refused; again the same");
    loupe_result *p = loupe_predict(c, &example, NULL);
    CHECK(p != NULL);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    char id[64];
    snprintf(id, sizeof id, "libloupe-test-%lld-%ld", (long long)now, (long)getpid());
    loupe_outcome outs[3];
    memset(outs, 0, sizeof outs);
    for (int i = 0; i < 3; i++) outs[i].diamond = example, outs[i].sold_unix_ms = now;
    outs[0].sold_price = 5200;
    outs[0].has_request_id = 1;
    outs[0].request_id = loupe_result_request_id(p);
    outs[0].outcome_id = id;
    outs[1].sold_price = 5150;
    outs[2].sold_price = -5;
    loupe_result_free(p);
    loupe_result *r = loupe_report_outcomes(c, outs, 3, NULL);
    if (!r) fprintf(stderr, "  %s: %s\n", loupe_code_name(loupe_errcode(c)), loupe_errmsg(c));
    check_outcome_report(r);
    loupe_result_free(r);

    uint32_t rid = 0;
    CHECK_INT(loupe_append_report_outcomes(c, outs, 3, "", &rid), LOUPE_OK);
    r = loupe_get_reply(c);
    CHECK(r != NULL && loupe_result_request_id(r) == rid);
    check_outcome_report(r);
    loupe_result_free(r);

    TEST("ReportOutcomes: none is refused before sending");
    CHECK(loupe_report_outcomes(c, outs, 0, NULL) == NULL);
    CHECK_CODE(c, LOUPE_ERR_USAGE);
    CHECK(loupe_connected(c));
    CHECK_INT(loupe_pending(c), 0);
}

static void test_batch(loupe_client *c) {
    TEST("BatchPredict: 1000 rows; bad rows are NaN with row errors; rows match Predict");
    owned_columns o = make_columns(1000);
    o.carat[3] = -1;
    o.cut[7] = 0;
    loupe_result *r = loupe_batch_predict(c, &o.cols, NULL);
    CHECK(r != NULL);
    CHECK_INT(loupe_result_rows(r), 1000);
    const double *prices = loupe_result_prices(r);
    int priced = 0;
    for (size_t i = 0; prices && i < 1000; i++) priced += !isnan(prices[i]) && prices[i] > 0;
    CHECK_INT(priced, 998);
    CHECK(prices && isnan(prices[3]) && isnan(prices[7]));
    CHECK_INT(loupe_result_row_error_count(r), 2);
    uint32_t bad_rows[2] = {0, 0};
    for (size_t i = 0; i < 2; i++) loupe_result_row_error(r, i, &bad_rows[i], NULL, NULL);
    CHECK((bad_rows[0] == 3 && bad_rows[1] == 7) || (bad_rows[0] == 7 && bad_rows[1] == 3));
    const char *reason = NULL;
    loupe_result_row_error(r, 0, NULL, NULL, &reason);
    CHECK(reason && reason[0]);
    for (size_t i = 10; i < 1000; i += 197) {
        loupe_diamond d = row_of(&o.cols, i);
        loupe_result *one = loupe_predict(c, &d, NULL);
        CHECK(one && loupe_result_price(one, 0).price == prices[i] &&
              loupe_result_price(one, 0).low == loupe_result_lows(r)[i]);
        loupe_result_free(one);
    }
    loupe_result_free(r);
    free_columns(&o);

    const loupe_session *s = loupe_client_session(c);
    if (!light && s && s->max_batch_rows > 0 && s->max_batch_rows < 150000) {
        TEST("BatchPredict over max_batch_rows: RESOURCE_EXHAUSTED from the server");
        o = make_columns(s->max_batch_rows + 1);
        CHECK(loupe_batch_predict(c, &o.cols, NULL) == NULL);
        CHECK_CODE(c, LOUPE_RESOURCE_EXHAUSTED);
        CHECK(loupe_connected(c));
        free_columns(&o);
    }
    if (s && s->max_frame_size > 0) {
        TEST("BatchPredict over the frame size: refused by the client, nothing sent");
        size_t n = s->max_frame_size / 50 + 1000; /* about 51 bytes a row */
        o = make_columns(n);
        CHECK(loupe_batch_predict(c, &o.cols, NULL) == NULL);
        CHECK_CODE(c, LOUPE_RESOURCE_EXHAUSTED);
        CHECK_HAS(loupe_errmsg(c), "nothing was sent");
        /* The hint is a size the server takes: never above max_batch_rows. */
        const char *hint = strstr(loupe_errmsg(c), "send at most about ");
        CHECK(hint != NULL);
        if (hint && s->max_batch_rows > 0) CHECK(strtoul(hint + 19, NULL, 10) <= s->max_batch_rows);
        CHECK(loupe_connected(c));
        free_columns(&o);
    }
    r = loupe_predict(c, &example, NULL);
    CHECK(r != NULL);
    loupe_result_free(r);
}

static void test_pipelining(loupe_client *c) {
    TEST("pipelining: 40 BatchPredict and 40 Predict calls in flight, matched by id");
    enum { ROWS = 1000 };
    owned_columns o = make_columns(ROWS);
    loupe_result *reference = loupe_batch_predict(c, &o.cols, NULL);
    CHECK(reference != NULL);
    if (!reference) return;
    enum { CALLS = 40 };
    uint32_t batch_ids[CALLS], predict_ids[CALLS];
    for (int i = 0; i < CALLS; i++) {
        CHECK_INT(loupe_append_batch_predict(c, &o.cols, NULL, &batch_ids[i]), LOUPE_OK);
        loupe_diamond d = row_of(&o.cols, (size_t)i * 7);
        CHECK_INT(loupe_append_predict(c, &d, NULL, &predict_ids[i]), LOUPE_OK);
    }
    CHECK_INT(loupe_flush(c), LOUPE_OK);
    int batches = 0, predicts = 0;
    while (loupe_pending(c) > 0) {
        loupe_result *r = loupe_get_reply(c);
        if (!r) {
            fprintf(stderr, "  get_reply: %s\n", loupe_errmsg(c));
            CHECK(0);
            break;
        }
        uint32_t id = loupe_result_request_id(r);
        if (loupe_result_method(r) == LOUPE_METHOD_BATCH_PREDICT) {
            int known = 0;
            for (int i = 0; i < CALLS; i++) known |= batch_ids[i] == id;
            batches += known && loupe_result_rows(r) == ROWS &&
                       memcmp(loupe_result_prices(r), loupe_result_prices(reference),
                              ROWS * sizeof(double)) == 0;
        } else {
            for (int i = 0; i < CALLS; i++)
                if (predict_ids[i] == id)
                    predicts += loupe_result_price(r, 0).price ==
                                loupe_result_prices(reference)[(size_t)i * 7];
        }
        loupe_result_free(r);
    }
    CHECK_INT(batches, CALLS);
    CHECK_INT(predicts, CALLS);

    TEST("pipelining past the server's in-flight limit (backpressure, no deadlock)");
    const loupe_session *s = loupe_client_session(c);
    int many = s && s->max_in_flight ? (int)s->max_in_flight * 2 + 2 : 200;
    if (light) many = 0;
    for (int i = 0; i < many; i++)
        CHECK_INT(loupe_append_batch_predict(c, &o.cols, NULL, NULL), LOUPE_OK);
    int got = 0;
    while (loupe_pending(c) > 0) {
        loupe_result *r = loupe_get_reply(c);
        if (!r) break;
        got += loupe_result_code(r) == LOUPE_OK && loupe_result_rows(r) == ROWS;
        loupe_result_free(r);
    }
    CHECK_INT(got, many);
    loupe_result_free(reference);
    free_columns(&o);
}

/* Connects without waiting (loupe_connect_start / loupe_connect_poll), TLS too when asked. */
static loupe_client *start_client(const char *with_token) {
    loupe_options *o = loupe_options_new();
    loupe_options_set_host(o, host);
    loupe_options_set_port(o, port);
    loupe_options_set_token(o, with_token);
    loupe_options_set_client_name(o, "libloupe-integration-test (event loop)");
    if (tls_ca) loupe_options_set_tls(o, 1, tls_ca, NULL);
    loupe_client *c = loupe_connect_start(o);
    loupe_options_free(o);
    return c;
}

/* Several connections driven from one poll() loop, as a partner's event loop would: connect
 * without waiting, pipeline BatchPredict slices over all of them, compare every price with
 * one blocking call over the whole batch. */
static void test_event_loop(loupe_client *blocking) {
    TEST("event loop: 4 connections from one poll() loop, 24 calls pipelined, same prices");
    enum { CONNS = 4, CALLS = 24, SLICE = 250, DEPTH = 3 };
    owned_columns o = make_columns((size_t)CALLS * SLICE);
    loupe_result *reference = loupe_batch_predict(blocking, &o.cols, NULL);
    CHECK(reference != NULL);
    if (!reference) {
        free_columns(&o);
        return;
    }
    loupe_client *c[CONNS];
    int state[CONNS]; /* loupe_poll_status while connecting; then LOUPE_POLL_OK */
    int more[CONNS], in_flight[CONNS], health[CONNS]; /* health: 0 not asked, 1 asked, 2 answered */
    uint32_t id_of[CONNS][DEPTH + 1];
    int call_of[CONNS][DEPTH + 1];
    for (int k = 0; k < CONNS; k++) {
        c[k] = start_client(token);
        state[k] = loupe_connect_poll(c[k]);
        more[k] = in_flight[k] = health[k] = 0;
        if (k % 2) loupe_set_deadline_ms(c[k], 120000); /* sent, and never reached */
    }
    int next = 0, done = 0, same = 0, failed = 0, healthy = 0, answered = 0;
    double t0 = check_clock();
    while ((done < CALLS || answered < CONNS) && !failed && check_clock() - t0 < 120) {
        struct pollfd p[CONNS];
        for (int k = 0; k < CONNS; k++) {
            short ev = state[k] == LOUPE_POLL_READING ? POLLIN
                       : state[k] == LOUPE_POLL_WRITING ? POLLOUT
                                                        : (short)(POLLIN | (more[k] ? POLLOUT : 0));
            p[k] = (struct pollfd){loupe_socket(c[k]), ev, 0};
        }
        poll(p, CONNS, 1000);
        for (int k = 0; k < CONNS && !failed; k++) {
            if (state[k] != LOUPE_POLL_OK) {
                state[k] = loupe_connect_poll(c[k]);
                if (state[k] == LOUPE_POLL_FAILED) {
                    fprintf(stderr, "  connect: %s\n", loupe_errmsg(c[k]));
                    failed = 1;
                }
                if (state[k] != LOUPE_POLL_OK) continue;
            }
            if (health[k] == 0) { /* each connection also asks Health once it is up */
                CHECK(loupe_append_health(c[k], NULL) == LOUPE_OK);
                health[k] = 1;
            }
            if ((p[k].revents & (POLLIN | POLLHUP | POLLERR)) && loupe_consume_input(c[k]) != LOUPE_OK) {
                fprintf(stderr, "  consume: %s\n", loupe_errmsg(c[k]));
                failed = 1;
                break;
            }
            loupe_result *r;
            while ((r = loupe_get_reply(c[k])) != NULL) {
                if (loupe_result_method(r) == LOUPE_METHOD_HEALTH) {
                    const loupe_health_info *h = loupe_result_health(r);
                    healthy += h && h->ready;
                    if (!h || !h->ready)
                        fprintf(stderr, "  Health: %s: %s %s\n", loupe_code_name(loupe_result_code(r)),
                                loupe_result_message(r), h ? h->message : "");
                    answered++;
                    health[k] = 2;
                } else {
                    for (int j = 0; j < in_flight[k]; j++) {
                        if (id_of[k][j] != loupe_result_request_id(r)) continue;
                        size_t first = (size_t)call_of[k][j] * SLICE;
                        same += loupe_result_code(r) == LOUPE_OK && loupe_result_rows(r) == SLICE &&
                                memcmp(loupe_result_prices(r), loupe_result_prices(reference) + first,
                                       SLICE * sizeof(double)) == 0;
                        id_of[k][j] = id_of[k][in_flight[k] - 1];
                        call_of[k][j] = call_of[k][--in_flight[k]];
                        done++;
                        break;
                    }
                }
                loupe_result_free(r);
            }
            if (loupe_errcode(c[k]) != LOUPE_OK && !loupe_connected(c[k])) {
                fprintf(stderr, "  get_reply: %s\n", loupe_errmsg(c[k]));
                failed = 1;
                break;
            }
            while (in_flight[k] < DEPTH && next < CALLS) {
                size_t first = (size_t)next * SLICE;
                loupe_columns slice = {SLICE, o.carat + first, o.cut + first, o.color + first,
                                       o.clarity + first, o.depth + first, o.table + first,
                                       o.x + first, o.y + first, o.z + first};
                if (loupe_append_batch_predict(c[k], &slice, NULL, &id_of[k][in_flight[k]]) != LOUPE_OK) {
                    fprintf(stderr, "  append: %s\n", loupe_errmsg(c[k]));
                    failed = 1;
                    break;
                }
                call_of[k][in_flight[k]++] = next++;
            }
            more[k] = loupe_flush(c[k]);
            if (more[k] < 0) {
                fprintf(stderr, "  flush: %s\n", loupe_errmsg(c[k]));
                failed = 1;
            }
        }
    }
    CHECK(!failed);
    CHECK_INT(done, CALLS);
    CHECK_INT(same, CALLS);
    CHECK_INT(healthy, CONNS);
    for (int k = 0; k < CONNS; k++) {
        CHECK(loupe_connected(c[k]));
        CHECK_INT(loupe_pending(c[k]), 0);
        loupe_free(c[k]);
    }
    loupe_result_free(reference);
    free_columns(&o);

    TEST("event loop: a bad token fails the handshake without waiting");
    loupe_client *bad = start_client("loupe_notatoken");
    loupe_poll_status st;
    t0 = check_clock();
    while ((st = loupe_connect_poll(bad)) == LOUPE_POLL_READING || st == LOUPE_POLL_WRITING) {
        if (check_clock() - t0 > 60) break;
        struct pollfd p = {loupe_socket(bad), st == LOUPE_POLL_READING ? POLLIN : POLLOUT, 0};
        poll(&p, 1, 1000);
    }
    CHECK_INT(st, LOUPE_POLL_FAILED);
    CHECK_CODE(bad, LOUPE_UNAUTHENTICATED);
    loupe_free(bad);
}

static void test_models_and_similar(loupe_client *c) {
    TEST("ListModels");
    loupe_result *r = loupe_list_models(c, NULL);
    CHECK(r != NULL);
    CHECK(loupe_result_model_count(r) >= 1);
    int production = 0;
    for (size_t i = 0; i < loupe_result_model_count(r); i++) {
        const loupe_model_info *m = loupe_result_model(r, i);
        CHECK_STR(m->name, "diamonds");
        CHECK(strncmp(m->digest, "sha256:", 7) == 0);
        CHECK(m->tree_count > 0 && m->parameter_count > 0 && m->rmse > 0);
        for (size_t a = 0; a < m->alias_count; a++)
            production += strcmp(m->aliases[a], "production") == 0;
    }
    CHECK_INT(production, 1);
    loupe_result_free(r);
    r = loupe_list_models(c, "no-such-model");
    CHECK(r == NULL ? loupe_errcode(c) == LOUPE_NOT_FOUND : loupe_result_model_count(r) == 0);
    loupe_result_free(r);

    TEST("FindSimilar: same grades, closest carat first");
    loupe_similar_query q = {1.01, LOUPE_CUT_IDEAL, LOUPE_COLOR_G, LOUPE_CLARITY_VS1, 5};
    r = loupe_find_similar(c, &q);
    CHECK(r != NULL);
    size_t n = loupe_result_similar_count(r);
    CHECK(n == 5);
    const loupe_similar *s = loupe_result_similar(r);
    for (size_t i = 0; i < n; i++) {
        CHECK(s[i].diamond.cut == LOUPE_CUT_IDEAL && s[i].diamond.color == LOUPE_COLOR_G &&
              s[i].diamond.clarity == LOUPE_CLARITY_VS1 && s[i].price > 0);
        if (i > 0) CHECK(fabs(s[i].diamond.carat - 1.01) >= fabs(s[i - 1].diamond.carat - 1.01));
    }
    CHECK(loupe_result_dataset(r, NULL) != NULL);
    loupe_result_free(r);
    const loupe_session *session = loupe_client_session(c);
    if (session && session->max_similar) {
        q.count = session->max_similar + 1;
        CHECK(loupe_find_similar(c, &q) == NULL);
        CHECK_CODE(c, LOUPE_RESOURCE_EXHAUSTED);
    }
    q.count = 5;
    q.cut = 0;
    CHECK(loupe_find_similar(c, &q) == NULL);
    CHECK_CODE(c, LOUPE_INVALID_ARGUMENT);

    TEST("GetJob: an unknown job is NOT_FOUND");
    CHECK(loupe_get_job(c, "no-such-job") == NULL);
    CHECK_CODE(c, LOUPE_NOT_FOUND);
    CHECK(loupe_connected(c));
}

static void test_retrain(loupe_client *c, int denied) {
    TEST(denied ? "Retrain without the admin scope: PERMISSION_DENIED"
                : "Retrain (reuse production's parameters) and GetJob until it is final");
    loupe_retrain_options o = {0};
    o.parameters = LOUPE_RETRAIN_REUSE;
    loupe_result *r = loupe_retrain(c, &o);
    if (denied) {
        CHECK(r == NULL);
        CHECK_CODE(c, LOUPE_PERMISSION_DENIED);
        loupe_result_free(r);
        return;
    }
    CHECK(r != NULL);
    if (!r) return;
    const char *id = loupe_result_job_id(r);
    CHECK(id && id[0]);
    const loupe_job *j = NULL;
    loupe_result *status = NULL;
    for (int i = 0; i < 1200; i++) { /* up to 2 minutes */
        loupe_result_free(status);
        status = loupe_get_job(c, id);
        j = loupe_result_job(status);
        if (!j || j->finished) break;
        nanosleep(&(struct timespec){0, 100000000}, NULL);
    }
    CHECK(j && j->finished);
    if (j) {
        CHECK_STR(j->job_id, id);
        CHECK_INT(j->stage, LOUPE_JOB_SUCCEEDED);
        CHECK(j->model != NULL && j->model->version >= 2);
        CHECK(j->decision[0] != '\0');
        CHECK(j->percent == 100);
    }
    loupe_result_free(status);
    loupe_result_free(r);
}

static void test_connection_errors(void) {
    TEST("a bad token: UNAUTHENTICATED, connection closed");
    loupe_client *c = open_client("not-the-token", 0);
    CHECK_CODE(c, LOUPE_UNAUTHENTICATED);
    CHECK(!loupe_connected(c));
    CHECK(loupe_predict(c, &example, NULL) == NULL);
    CHECK_CODE(c, LOUPE_ERR_CLOSED);
    loupe_free(c);

    TEST("no token: Health answers, Predict is UNAUTHENTICATED");
    c = open_client(NULL, 0);
    CHECK_CODE(c, LOUPE_OK);
    loupe_result *r = loupe_health(c);
    CHECK(r && loupe_result_health(r) && loupe_result_health(r)->live);
    loupe_result_free(r);
    CHECK(loupe_predict(c, &example, NULL) == NULL);
    CHECK_CODE(c, LOUPE_UNAUTHENTICATED);
    loupe_free(c);

    TEST("results outlive their client; reconnect");
    c = open_client(token, 0);
    r = loupe_predict(c, &example, NULL);
    CHECK_INT(loupe_reconnect(c), LOUPE_OK);
    loupe_result *r2 = loupe_predict(c, &example, NULL);
    loupe_free(c);
    CHECK(r && r2 && loupe_result_price(r, 0).price == loupe_result_price(r2, 0).price);
    CHECK_STR(loupe_result_model_name(r), "diamonds");
    loupe_result_free(r);
    loupe_result_free(r2);
}

static void test_tls_refusals(void) {
    TEST("TLS: a certificate for another name is refused");
    loupe_options *o = loupe_options_new();
    loupe_options_set_host(o, host);
    loupe_options_set_port(o, port);
    loupe_options_set_token(o, token);
    loupe_options_set_tls(o, 1, tls_ca, "other.example");
    loupe_client *c = loupe_connect(o);
    CHECK_CODE(c, LOUPE_ERR_TLS);
    CHECK_HAS(loupe_errmsg(c), "certificate verification failed");
    CHECK(!loupe_connected(c));
    loupe_free(c);

    TEST("TLS: a self-signed certificate is refused against the system's CAs");
    loupe_options_set_tls(o, 1, NULL, NULL);
    c = loupe_connect(o);
    CHECK_CODE(c, LOUPE_ERR_TLS);
    loupe_free(c);
    loupe_options_free(o);
}

int main(void) {
    const char *addr = getenv("LOUPE_ADDR");
    token = getenv("LOUPE_TOKEN");
    if (!addr || !token) {
        fprintf(stderr, "test_integration: set LOUPE_ADDR=HOST:PORT and LOUPE_TOKEN\n");
        return 2;
    }
    const char *colon = strrchr(addr, ':');
    if (!colon || (size_t)(colon - addr) >= sizeof host) return 2;
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    port = atoi(colon + 1);
    const char *admin = getenv("LOUPE_TEST_ADMIN");
    tls_ca = getenv("LOUPE_TLS_CA");
    light = getenv("LOUPE_TEST_LIGHT") && strcmp(getenv("LOUPE_TEST_LIGHT"), "1") == 0;
    if (tls_ca && !*tls_ca) tls_ca = NULL;
    const char *denied = getenv("LOUPE_TEST_SCOPE_DENIED");

    loupe_client *c = open_client(token, 60000);
    CHECK_CODE(c, LOUPE_OK);
    if (loupe_errcode(c) != LOUPE_OK) {
        loupe_free(c);
        return check_done("test_integration");
    }
    test_session_and_health(c);
    test_predict(c);
    test_report_outcomes(c);
    test_batch(c);
    test_pipelining(c);
    test_event_loop(c);
    test_models_and_similar(c);
    if (denied && strcmp(denied, "1") == 0) test_retrain(c, 1);
    else if (!admin || strcmp(admin, "0") != 0) test_retrain(c, 0);
    loupe_free(c);
    test_connection_errors();
    if (tls_ca) test_tls_refusals();
    return check_done("test_integration");
}
