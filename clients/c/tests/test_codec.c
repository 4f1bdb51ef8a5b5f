/*
 * Bytes and decoding: the client's request bytes are docs/PROTOCOL.md's worked example to
 * the byte; BatchPredict and Retrain columns go out exactly as given; every kind of reply
 * decodes into the views the header promises; a hostile reply cannot make decoding
 * allocate without bound.
 */
#include <math.h>
#include <stdlib.h>

#include "check.h"
#include "mock_server.h"

static const uint8_t doc_request[82] = {
    0x00, 0x00, 0x00, 0x4e, 0x01, 0x01, 0x00, 0x03, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x3c, 0x09, 0x29, 0x5c, 0x8f, 0xc2, 0xf5,
    0x28, 0xf0, 0x3f, 0x10, 0x05, 0x18, 0x04, 0x20, 0x05, 0x29, 0x66, 0x66, 0x66, 0x66,
    0x66, 0xe6, 0x4e, 0x40, 0x31, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x4c, 0x40, 0x39,
    0xb8, 0x1e, 0x85, 0xeb, 0x51, 0xb8, 0x19, 0x40, 0x41, 0xe1, 0x7a, 0x14, 0xae, 0x47,
    0xe1, 0x19, 0x40, 0x49, 0xec, 0x51, 0xb8, 0x1e, 0x85, 0xeb, 0x0f, 0x40};

static const uint8_t doc_reply[68] = {
    0x00, 0x00, 0x00, 0x40, 0x01, 0x02, 0x00, 0x03, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x09, 0x00, 0x00, 0x00, 0x00, 0x00, 0x12, 0xbc,
    0x40, 0x11, 0x00, 0x00, 0x00, 0x00, 0x00, 0xb3, 0xb8, 0x40, 0x19, 0x00, 0x00, 0x00,
    0x00, 0x00, 0xe7, 0xbf, 0x40, 0x21, 0xcd, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xec, 0x3f,
    0x2a, 0x08, 0x64, 0x69, 0x61, 0x6d, 0x6f, 0x6e, 0x64, 0x73, 0x30, 0x07};

static const char doc_error_message[] = "diamond.carat must be > 0, got -1.0";

/* What the scripted server captured. */
typedef struct capture {
    uint8_t first[128];
    size_t first_len;
    Loupe__V1__BatchPredictRequest *batch;
    uint32_t batch_rows;
    Loupe__V1__RetrainRequest *retrain;
    uint32_t retrain_rows;
} capture;

static void doc_server(mock_conn *c, void *arg) {
    capture *cap = arg;
    static const char *const scopes[] = {"predict", "admin"};
    if (!mock_welcome(c, scopes, 2, 0, NULL, 0)) return;
    lp_frame f;
    size_t len;
    if (!mock_read(c, &f, 5000)) return;
    const uint8_t *raw = mock_last_bytes(c, &len);
    cap->first_len = len < sizeof cap->first ? len : sizeof cap->first;
    memcpy(cap->first, raw, cap->first_len);
    /* The example's reply, to this call's request id (the Hello had id 1). */
    uint8_t reply[sizeof doc_reply];
    memcpy(reply, doc_reply, sizeof reply);
    lp_put32(reply + 8, f.request_id);
    mock_send(c, reply, sizeof reply);
    if (!mock_read(c, &f, 5000)) return;
    uint8_t err[59] = {0x00, 0x00, 0x00, 0x37, 0x01, 0x06, 0x00, 0x03, 0x00, 0x00, 0x00, 0x02,
                       0, 0, 0, 0, 0, 0, 0, 0, 0x08, 0x03, 0x12, 0x23};
    memcpy(err + 24, doc_error_message, 35);
    lp_put32(err + 8, f.request_id);
    mock_send(c, err, sizeof err);
    while (mock_read(c, &f, 5000)) {
        if (f.method == LOUPE_METHOD_BATCH_PREDICT) {
            cap->batch = loupe__v1__batch_predict_request__unpack(NULL, f.payload_len, f.payload);
            cap->batch_rows = f.row_count;
            mock_error(c, f.method, f.request_id, LOUPE_UNAVAILABLE, "captured", 0);
        } else if (f.method == LOUPE_METHOD_RETRAIN) {
            cap->retrain = loupe__v1__retrain_request__unpack(NULL, f.payload_len, f.payload);
            cap->retrain_rows = f.row_count;
            Loupe__V1__RetrainResponse r = LOUPE__V1__RETRAIN_RESPONSE__INIT;
            r.job_id = "job-1";
            mock_reply(c, f.method, f.request_id, 0, &r.base);
        }
    }
}

static int same_doubles(const double *a, const double *b, size_t n) {
    return n == 0 || memcmp(a, b, n * sizeof *a) == 0;
}

static int same_ints(const int *a, const Loupe__V1__Cut *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (a[i] != (int)b[i]) return 0;
    return 1;
}

static void test_wire_bytes(void) {
    TEST("the worked example: request bytes, reply, error reply (docs/PROTOCOL.md)");
    capture cap;
    memset(&cap, 0, sizeof cap);
    mock_server *s = mock_start(doc_server, &cap);
    loupe_options *o = loupe_options_new();
    loupe_options_set_port(o, mock_port(s));
    loupe_options_set_call_timeout_ms(o, 0); /* deadline 0, as in the example */
    loupe_options_set_token(o, "t");
    loupe_client *c = loupe_connect(o);
    loupe_options_free(o);
    loupe_diamond d = {1.01, LOUPE_CUT_IDEAL, LOUPE_COLOR_G, LOUPE_CLARITY_VS1,
                       61.8, 56, 6.43, 6.47, 3.99};
    loupe_result *r = loupe_predict(c, &d, NULL);
    /* Byte for byte, but for the request id: the example's call is the first (id 1); ours
     * follows the Hello, so it is id 2. */
    uint8_t expected[sizeof doc_request];
    memcpy(expected, doc_request, sizeof expected);
    lp_put32(expected + 8, 2);
    CHECK_INT(cap.first_len, sizeof doc_request);
    CHECK(memcmp(cap.first, expected, sizeof expected) == 0);
    CHECK(r != NULL);
    loupe_price p = loupe_result_price(r, 0);
    CHECK(p.price == 7186 && p.low == 6323 && p.high == 8167);
    CHECK(loupe_result_level(r) == 0.9);
    CHECK_STR(loupe_result_model_name(r), "diamonds");
    CHECK_INT(loupe_result_model_version(r), 7);
    CHECK_INT(loupe_result_rows(r), 1);
    CHECK(loupe_result_prices(r)[0] == 7186 && loupe_result_highs(r)[0] == 8167);
    CHECK(loupe_result_reasons(r, 0, NULL, NULL) == NULL); /* the server sent none */
    loupe_result_free(r);

    d.carat = -1;
    CHECK(loupe_predict(c, &d, NULL) == NULL);
    CHECK_CODE(c, LOUPE_INVALID_ARGUMENT);
    CHECK_STR(loupe_errmsg(c), doc_error_message);
    CHECK(loupe_connected(c));

    TEST("BatchPredict: the columns go out exactly as given");
    enum { N = 1001 };
    static double carat[N], depth[N], table[N], x[N], y[N], z[N];
    static int cut[N], color[N], clarity[N];
    for (int i = 0; i < N; i++) {
        carat[i] = 0.2 + i * 0.001;
        depth[i] = 55 + (i % 13);
        table[i] = 50 + (i % 17) * 0.5;
        x[i] = 4 + i * 1e-3, y[i] = 4.01 + i * 1e-3, z[i] = 2.5 + i * 1e-4;
        cut[i] = 1 + i % 5, color[i] = 1 + i % 7, clarity[i] = 1 + i % 8;
    }
    carat[5] = NAN;
    cut[6] = 0;     /* "not given" */
    color[7] = -3;  /* negative enums are 10-byte varints */
    clarity[8] = 300;
    loupe_columns cols = {N, carat, cut, color, clarity, depth, table, x, y, z};
    loupe_predict_options po = {"diamonds", 3, NULL, 0.8, 1};
    CHECK(loupe_batch_predict(c, &cols, &po) == NULL);
    CHECK_CODE(c, LOUPE_UNAVAILABLE);
    CHECK(cap.batch != NULL);
    if (cap.batch) {
        const Loupe__V1__DiamondColumns *m = cap.batch->rows;
        CHECK_INT(cap.batch_rows, N);
        CHECK(m && m->n_carat == N && m->n_cut == N && m->n_z == N);
        if (m && m->n_carat == N && m->n_cut == N && m->n_color == N && m->n_clarity == N) {
            CHECK(same_doubles(m->carat, carat, N) && same_doubles(m->depth, depth, N) &&
                  same_doubles(m->table, table, N) && same_doubles(m->x, x, N) &&
                  same_doubles(m->y, y, N) && same_doubles(m->z, z, N));
            CHECK(same_ints(cut, m->cut, N));
            CHECK(same_ints(color, (const Loupe__V1__Cut *)m->color, N));
            CHECK(same_ints(clarity, (const Loupe__V1__Cut *)m->clarity, N));
        }
        CHECK(cap.batch->model && strcmp(cap.batch->model->name, "diamonds") == 0 &&
              cap.batch->model->version == 3);
        CHECK(cap.batch->level == 0.8 && cap.batch->explain);
        loupe__v1__batch_predict_request__free_unpacked(cap.batch, NULL);
    }

    TEST("Retrain: labelled rows, tuning budget, header row count");
    double prices[3] = {500, 600, 700};
    loupe_columns three = {3, carat, cut, color, clarity, depth, table, x, y, z};
    loupe_retrain_options ro = {0};
    ro.dataset = "diamonds";
    ro.rows = &three;
    ro.prices = prices;
    ro.parameters = LOUPE_RETRAIN_TUNE;
    ro.tune_max_trials = 20;
    ro.tune_max_seconds = 60;
    ro.promotion_margin = 0.02;
    r = loupe_retrain(c, &ro);
    CHECK(r != NULL);
    CHECK_STR(loupe_result_job_id(r), "job-1");
    CHECK(loupe_result_job(r) == NULL); /* a Retrain result has the id only */
    loupe_result_free(r);
    CHECK(cap.retrain != NULL);
    if (cap.retrain) {
        const Loupe__V1__RetrainRequest *m = cap.retrain;
        CHECK_INT(cap.retrain_rows, 3);
        CHECK_STR(m->dataset, "diamonds");
        CHECK(m->rows && m->rows->n_prices == 3 && m->rows->prices[2] == 700);
        CHECK(m->rows && m->rows->diamonds && m->rows->diamonds->n_x == 3 &&
              m->rows->diamonds->x[1] == x[1]);
        CHECK(m->parameters_case == LOUPE__V1__RETRAIN_REQUEST__PARAMETERS_TUNE && m->tune &&
              m->tune->max_trials == 20 && m->tune->max_seconds == 60);
        CHECK(m->promotion_margin == 0.02);
        loupe__v1__retrain_request__free_unpacked(cap.retrain, NULL);
    }
    loupe_free(c);
    mock_stop(s);
}

/* Packs msg and decodes it as a reply of `method`. */
static loupe_result *roundtrip(int method, const ProtobufCMessage *msg, size_t rows) {
    size_t len = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = malloc(len + 1);
    protobuf_c_message_pack(msg, buf);
    loupe_result *r = lp_result_decode(method, 9, 0, buf, len, rows);
    free(buf);
    return r;
}

static void test_views(void) {
    TEST("BatchPredict views: prices, NaN rows, row errors, reasons");
    double prices[3] = {100, NAN, 300}, lows[3] = {90, NAN, 270}, highs[3] = {110, NAN, 330};
    double contributions[6] = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6};
    Loupe__V1__RowError re = LOUPE__V1__ROW_ERROR__INIT;
    re.row = 1;
    re.field = "carat";
    re.reason = "carat must be > 0, got -1";
    Loupe__V1__RowError *res[] = {&re};
    Loupe__V1__BatchExplanation ex = LOUPE__V1__BATCH_EXPLANATION__INIT;
    ex.base_value = 7.5;
    ex.feature_count = 2;
    ex.n_contributions = 6;
    ex.contributions = contributions;
    Loupe__V1__BatchPredictResponse b = LOUPE__V1__BATCH_PREDICT_RESPONSE__INIT;
    b.n_prices = b.n_lows = b.n_highs = 3;
    b.prices = prices, b.lows = lows, b.highs = highs;
    b.n_row_errors = 1;
    b.row_errors = res;
    b.level = 0.9;
    b.model_name = "diamonds";
    b.model_version = 2;
    b.explanation = &ex;
    loupe_result *r = roundtrip(LOUPE_METHOD_BATCH_PREDICT, &b.base, 3);
    CHECK_INT(loupe_result_code(r), LOUPE_OK);
    CHECK_INT(loupe_result_request_id(r), 9);
    CHECK_INT(loupe_result_rows(r), 3);
    CHECK(loupe_result_price(r, 2).high == 330);
    CHECK(isnan(loupe_result_price(r, 1).price));
    CHECK(isnan(loupe_result_price(r, 3).price)); /* past the end */
    CHECK_INT(loupe_result_row_error_count(r), 1);
    uint32_t row;
    const char *field, *reason;
    CHECK_INT(loupe_result_row_error(r, 0, &row, &field, &reason), LOUPE_OK);
    CHECK_INT(row, 1);
    CHECK_STR(field, "carat");
    CHECK_INT(loupe_result_row_error(r, 1, &row, &field, &reason), LOUPE_ERR_USAGE);
    double base;
    size_t count;
    const double *why = loupe_result_reasons(r, 2, &base, &count);
    CHECK(why && count == 2 && base == 7.5 && why[0] == 0.5 && why[1] == 0.6);
    CHECK(loupe_result_reasons(r, 3, &base, &count) == NULL && count == 0);
    CHECK_INT(loupe_result_model_count(r), 0);
    loupe_result_free(r);

    TEST("ListModels views: models, aliases, metrics, parameters");
    Loupe__V1__Parameter p1 = LOUPE__V1__PARAMETER__INIT, p2 = LOUPE__V1__PARAMETER__INIT;
    p1.name = "num_leaves", p1.value = "63";
    p2.name = "learning_rate", p2.value = "0.05";
    Loupe__V1__Parameter *params[] = {&p1, &p2};
    Loupe__V1__ModelMetrics metrics = LOUPE__V1__MODEL_METRICS__INIT;
    metrics.rows = 2686, metrics.rmse = 502.9, metrics.r2 = 0.98, metrics.coverage = 0.901;
    char *aliases[] = {"production", "staging"};
    Loupe__V1__ModelVersion v1 = LOUPE__V1__MODEL_VERSION__INIT,
                            v2 = LOUPE__V1__MODEL_VERSION__INIT;
    v1.name = "diamonds", v1.version = 1, v1.n_aliases = 2, v1.aliases = aliases;
    v1.metrics = &metrics, v1.n_parameters = 2, v1.parameters = params;
    v1.digest = "sha256:abc", v1.tree_count = 982, v1.created_unix_ms = 1700000000000;
    v2.name = "diamonds", v2.version = 2, v2.n_parameters = 1, v2.parameters = params + 1;
    Loupe__V1__ModelVersion *versions[] = {&v1, &v2};
    Loupe__V1__ListModelsResponse lm = LOUPE__V1__LIST_MODELS_RESPONSE__INIT;
    lm.n_models = 2, lm.models = versions;
    r = roundtrip(LOUPE_METHOD_LIST_MODELS, &lm.base, SIZE_MAX);
    CHECK_INT(loupe_result_model_count(r), 2);
    const loupe_model_info *m = loupe_result_model(r, 0);
    CHECK(m && m->version == 1 && m->alias_count == 2 && m->tree_count == 982);
    if (m) {
        CHECK_STR(m->aliases[1], "staging");
        CHECK(m->metric_rows == 2686 && m->rmse == 502.9 && m->coverage == 0.901);
        CHECK_INT(m->parameter_count, 2);
        CHECK_STR(m->parameters[1].name, "learning_rate");
        CHECK_STR(m->digest, "sha256:abc");
        CHECK(m->created_unix_ms == 1700000000000);
    }
    m = loupe_result_model(r, 1);
    CHECK(m && m->parameter_count == 1 && strcmp(m->parameters[0].value, "0.05") == 0 &&
          m->alias_count == 0 && m->metric_rows == 0);
    CHECK(loupe_result_model(r, 2) == NULL);
    CHECK(isnan(loupe_result_price(r, 0).price));
    loupe_result_free(r);

    TEST("GetJob views: stage, result, registered model, failure");
    Loupe__V1__Status failure = LOUPE__V1__STATUS__INIT;
    failure.code = LOUPE__V1__STATUS_CODE__STATUS_CODE_DATA_LOSS;
    failure.message = "blob sha256:… failed its checksum";
    Loupe__V1__JobResult jr = LOUPE__V1__JOB_RESULT__INIT;
    jr.model = &v1, jr.promoted = 1, jr.decision = "RMSE 490.1 < 502.9 by 2.5%";
    jr.error = &failure;
    Loupe__V1__Job job = LOUPE__V1__JOB__INIT;
    job.job_id = "job-7", job.stage = LOUPE__V1__JOB_STAGE__JOB_STAGE_FAILED;
    job.percent = 100, job.message = "failed", job.result = &jr, job.finished_unix_ms = 5;
    Loupe__V1__GetJobResponse gj = LOUPE__V1__GET_JOB_RESPONSE__INIT;
    gj.job = &job;
    r = roundtrip(LOUPE_METHOD_GET_JOB, &gj.base, SIZE_MAX);
    const loupe_job *j = loupe_result_job(r);
    CHECK(j != NULL);
    if (j) {
        CHECK_STR(j->job_id, "job-7");
        CHECK(j->stage == LOUPE_JOB_FAILED && j->finished && j->percent == 100);
        CHECK(j->model && j->model->parameter_count == 2 && j->promoted);
        CHECK_INT(j->error_code, LOUPE_DATA_LOSS);
        CHECK_HAS(j->error_message, "checksum");
        CHECK_HAS(j->decision, "2.5%");
    }
    CHECK_STR(loupe_result_job_id(r), "job-7");
    loupe_result_free(r);
    Loupe__V1__GetJobResponse empty = LOUPE__V1__GET_JOB_RESPONSE__INIT;
    r = roundtrip(LOUPE_METHOD_GET_JOB, &empty.base, SIZE_MAX);
    j = loupe_result_job(r);
    CHECK(j && j->stage == 0 && !j->finished && j->model == NULL && strcmp(j->job_id, "") == 0);
    loupe_result_free(r);

    TEST("FindSimilar views");
    Loupe__V1__Diamond d1 = LOUPE__V1__DIAMOND__INIT;
    d1.carat = 1.0, d1.cut = LOUPE__V1__CUT__CUT_IDEAL, d1.z = 3.9;
    Loupe__V1__SimilarDiamond s1 = LOUPE__V1__SIMILAR_DIAMOND__INIT,
                              s2 = LOUPE__V1__SIMILAR_DIAMOND__INIT;
    s1.diamond = &d1, s1.price = 5000, s1.row = 42;
    s2.price = 10; /* no diamond: zeros */
    Loupe__V1__SimilarDiamond *sims[] = {&s1, &s2};
    Loupe__V1__FindSimilarResponse fs = LOUPE__V1__FIND_SIMILAR_RESPONSE__INIT;
    fs.n_diamonds = 2, fs.diamonds = sims, fs.dataset = "diamonds", fs.dataset_version = 3;
    r = roundtrip(LOUPE_METHOD_FIND_SIMILAR, &fs.base, SIZE_MAX);
    CHECK_INT(loupe_result_similar_count(r), 2);
    const loupe_similar *sim = loupe_result_similar(r);
    CHECK(sim && sim[0].diamond.carat == 1.0 && sim[0].diamond.cut == LOUPE_CUT_IDEAL &&
          sim[0].price == 5000 && sim[0].row == 42 && sim[0].diamond.z == 3.9);
    CHECK(sim && sim[1].diamond.carat == 0 && sim[1].price == 10);
    unsigned dv = 0;
    CHECK_STR(loupe_result_dataset(r, &dv), "diamonds");
    CHECK_INT(dv, 3);
    loupe_result_free(r);

    TEST("error results; unknown status numbers read as UNKNOWN");
    Loupe__V1__Status st = LOUPE__V1__STATUS__INIT;
    st.code = 99;
    st.message = "from the future";
    size_t len = protobuf_c_message_get_packed_size(&st.base);
    uint8_t buf[64];
    protobuf_c_message_pack(&st.base, buf);
    r = lp_result_decode(LOUPE_METHOD_PREDICT, 3, 1, buf, len, SIZE_MAX);
    CHECK_INT(loupe_result_code(r), LOUPE_UNKNOWN);
    CHECK_STR(loupe_result_message(r), "from the future");
    CHECK_INT(loupe_result_rows(r), 0);
    loupe_result_free(r);

    TEST("a payload that does not decode: LOUPE_ERR_PROTOCOL");
    uint8_t junk[] = {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f};
    r = lp_result_decode(LOUPE_METHOD_LIST_MODELS, 3, 0, junk, sizeof junk, SIZE_MAX);
    CHECK_INT(loupe_result_code(r), LOUPE_ERR_PROTOCOL);
    CHECK_HAS(loupe_result_message(r), "ListModels");
    loupe_result_free(r);
    r = lp_result_decode(42, 3, 0, junk, 0, SIZE_MAX);
    CHECK_INT(loupe_result_code(r), LOUPE_ERR_PROTOCOL);
    loupe_result_free(r);
}

static void test_decode_budget(void) {
    TEST("a reply of 100,000 empty sub-messages exceeds the decoding budget");
    size_t n = 100000;
    uint8_t *buf = malloc(2 * n);
    for (size_t i = 0; i < n; i++) buf[2 * i] = 0x0a, buf[2 * i + 1] = 0x00;
    /* 200 KB that would unpack into ~13 MB of ModelVersion structs */
    loupe_result *r = lp_result_decode(LOUPE_METHOD_LIST_MODELS, 1, 0, buf, 2 * n, SIZE_MAX);
    CHECK_INT(loupe_result_code(r), LOUPE_ERR_PROTOCOL);
    loupe_result_free(r);
    /* 1,000 of them fit in the slack */
    r = lp_result_decode(LOUPE_METHOD_LIST_MODELS, 1, 0, buf, 2000, SIZE_MAX);
    CHECK_INT(loupe_result_code(r), LOUPE_OK);
    CHECK_INT(loupe_result_model_count(r), 1000);
    loupe_result_free(r);
    free(buf);
}

static void test_names(void) {
    TEST("grade names and code names");
    CHECK_INT(loupe_parse_cut("Very Good"), LOUPE_CUT_VERY_GOOD);
    CHECK_INT(loupe_parse_cut("very_good"), LOUPE_CUT_VERY_GOOD);
    CHECK_INT(loupe_parse_cut("IDEAL"), LOUPE_CUT_IDEAL);
    CHECK_INT(loupe_parse_cut("Good"), LOUPE_CUT_GOOD);
    CHECK_INT(loupe_parse_cut("Goo"), 0);
    CHECK_INT(loupe_parse_cut(""), 0);
    CHECK_INT(loupe_parse_cut(NULL), 0);
    CHECK_INT(loupe_parse_color("d"), LOUPE_COLOR_D);
    CHECK_INT(loupe_parse_color("K"), 0);
    CHECK_INT(loupe_parse_clarity("VVS1"), LOUPE_CLARITY_VVS1);
    CHECK_INT(loupe_parse_clarity("if"), LOUPE_CLARITY_IF);
    CHECK_INT(loupe_parse_clarity("I2"), 0);
    CHECK_STR(loupe_code_name(LOUPE_PERMISSION_DENIED), "PERMISSION_DENIED");
    CHECK_STR(loupe_code_name(LOUPE_ERR_REPLY_TOO_LARGE), "ERR_REPLY_TOO_LARGE");
    CHECK_STR(loupe_code_name(LOUPE_ERR_CLOSED), "ERR_CLOSED");
    CHECK_STR(loupe_code_name(50), "UNKNOWN_CODE");

    TEST("options refuse bad values");
    loupe_options *o = loupe_options_new();
    CHECK_INT(loupe_options_set_port(o, 0), LOUPE_ERR_USAGE);
    CHECK_INT(loupe_options_set_port(o, 65536), LOUPE_ERR_USAGE);
    CHECK_INT(loupe_options_set_host(o, ""), LOUPE_ERR_USAGE);
    CHECK_INT(loupe_options_set_connect_timeout_ms(o, 0), LOUPE_ERR_USAGE);
    CHECK_INT(loupe_options_set_max_reply_size(o, 100), LOUPE_ERR_USAGE);
    CHECK_INT(loupe_options_set_token(o, "a"), LOUPE_OK);
    CHECK_INT(loupe_options_set_token(o, NULL), LOUPE_OK);
    CHECK_INT(loupe_options_set_tls(o, 1, NULL, NULL), loupe_tls_available() ? LOUPE_OK
                                                                             : LOUPE_ERR_TLS);
    if (!loupe_tls_available()) { /* TLS asked for, not built in: no silent plain TCP */
        loupe_options_set_port(o, 1);
        loupe_client *c = loupe_connect(o);
        CHECK_CODE(c, LOUPE_ERR_TLS);
        CHECK_HAS(loupe_errmsg(c), "built without");
        loupe_free(c);
    }
    loupe_options_free(o);
    loupe_options_free(NULL);
    loupe_free(NULL);
    loupe_result_free(NULL);
    CHECK_INT(loupe_errcode(NULL), LOUPE_ERR_USAGE);
}

int main(void) {
    test_wire_bytes();
    test_views();
    test_decode_budget();
    test_names();
    return check_done("test_codec");
}
