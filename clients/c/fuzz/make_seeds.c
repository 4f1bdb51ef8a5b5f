/*
 * Writes the seed corpus of the reply reader fuzzer: one file per kind of reply, a stream of
 * all of them, and broken frames. Each file starts with the chunk-size byte the fuzz target
 * reads.   make_seeds fuzz/corpus
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static uint8_t stream[1 << 16];
static size_t stream_len;

static size_t frame(uint8_t *out, uint8_t flags, uint16_t method, uint32_t id, uint32_t rows,
                    const ProtobufCMessage *m) {
    size_t len = m ? protobuf_c_message_get_packed_size(m) : 0;
    lp_write_prefix(out, len, flags, method, id, rows, 0);
    if (m) protobuf_c_message_pack(m, out + LP_PREFIX_SIZE);
    return LP_PREFIX_SIZE + len;
}

static void write_seed(const char *dir, const char *name, uint8_t chunk, const uint8_t *bytes,
                       size_t len) {
    char path[1024];
    snprintf(path, sizeof path, "%s/seed-%s.bin", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(1);
    }
    fputc(chunk, f);
    fwrite(bytes, 1, len, f);
    fclose(f);
}

/* Writes a seed of one reply frame and appends it to the all-in-one stream. */
static void seed(const char *dir, const char *name, uint8_t flags, uint16_t method, uint32_t rows,
                 const ProtobufCMessage *m) {
    uint8_t buf[8192];
    size_t n = frame(buf, flags, method, 7, rows, m);
    write_seed(dir, name, 0, buf, n);
    memcpy(stream + stream_len, buf, n);
    stream_len += n;
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "fuzz/corpus";

    Loupe__V1__PredictResponse p = LOUPE__V1__PREDICT_RESPONSE__INIT;
    double why[9] = {0.1, -0.2, 0.3, 0.01, 0, 0, 0.5, 0.2, 0.1};
    Loupe__V1__Explanation ex = LOUPE__V1__EXPLANATION__INIT;
    ex.base_value = 7.9, ex.n_contributions = 9, ex.contributions = why;
    p.price = 7186, p.low = 6323, p.high = 8167, p.level = 0.9;
    p.model_name = "diamonds", p.model_version = 7, p.explanation = &ex;
    seed(dir, "predict", LP_FLAG_RESPONSE, LOUPE_METHOD_PREDICT, 0, &p.base);

    double prices[3] = {100, 0.0 / 0.0, 300}, contributions[27];
    for (int i = 0; i < 27; i++) contributions[i] = i * 0.01;
    Loupe__V1__RowError re = LOUPE__V1__ROW_ERROR__INIT;
    re.row = 1, re.field = "carat", re.reason = "carat must be > 0, got -1.0";
    Loupe__V1__RowError *res[] = {&re};
    Loupe__V1__BatchExplanation bex = LOUPE__V1__BATCH_EXPLANATION__INIT;
    bex.base_value = 7.5, bex.feature_count = 9, bex.n_contributions = 27;
    bex.contributions = contributions;
    Loupe__V1__BatchPredictResponse b = LOUPE__V1__BATCH_PREDICT_RESPONSE__INIT;
    b.n_prices = b.n_lows = b.n_highs = 3;
    b.prices = b.lows = b.highs = prices;
    b.n_row_errors = 1, b.row_errors = res, b.level = 0.9, b.model_name = "diamonds";
    b.model_version = 7, b.explanation = &bex;
    seed(dir, "batch", LP_FLAG_RESPONSE, LOUPE_METHOD_BATCH_PREDICT, 3, &b.base);

    Loupe__V1__HealthResponse h = LOUPE__V1__HEALTH_RESPONSE__INIT;
    h.live = h.ready = h.model_loaded = h.store_reachable = 1;
    h.model_name = "diamonds", h.model_version = 7, h.server_version = "loupe 0.3.0";
    h.uptime_ms = 123456;
    seed(dir, "health", LP_FLAG_RESPONSE, LOUPE_METHOD_HEALTH, 0, &h.base);

    Loupe__V1__Diamond d = LOUPE__V1__DIAMOND__INIT;
    d.carat = 1.01, d.cut = 5, d.color = 4, d.clarity = 5, d.depth = 61.8, d.table = 56;
    d.x = 6.43, d.y = 6.47, d.z = 3.99;
    Loupe__V1__SimilarDiamond s1 = LOUPE__V1__SIMILAR_DIAMOND__INIT;
    s1.diamond = &d, s1.price = 7000, s1.row = 12345;
    Loupe__V1__SimilarDiamond *sims[] = {&s1, &s1};
    Loupe__V1__FindSimilarResponse fs = LOUPE__V1__FIND_SIMILAR_RESPONSE__INIT;
    fs.n_diamonds = 2, fs.diamonds = sims, fs.dataset = "diamonds", fs.dataset_version = 1;
    seed(dir, "similar", LP_FLAG_RESPONSE, LOUPE_METHOD_FIND_SIMILAR, 0, &fs.base);

    Loupe__V1__Parameter p1 = LOUPE__V1__PARAMETER__INIT;
    p1.name = "num_leaves", p1.value = "63";
    Loupe__V1__Parameter *params[] = {&p1, &p1};
    Loupe__V1__ModelMetrics metrics = LOUPE__V1__MODEL_METRICS__INIT;
    metrics.rows = 2686, metrics.rmse = 502.9, metrics.r2 = 0.98;
    char *aliases[] = {"production"};
    Loupe__V1__ModelVersion v = LOUPE__V1__MODEL_VERSION__INIT;
    v.name = "diamonds", v.version = 7, v.n_aliases = 1, v.aliases = aliases;
    v.metrics = &metrics, v.n_parameters = 2, v.parameters = params;
    v.digest = "sha256:00", v.tree_count = 982;
    Loupe__V1__ModelVersion *versions[] = {&v, &v};
    Loupe__V1__ListModelsResponse lm = LOUPE__V1__LIST_MODELS_RESPONSE__INIT;
    lm.n_models = 2, lm.models = versions;
    seed(dir, "models", LP_FLAG_RESPONSE, LOUPE_METHOD_LIST_MODELS, 0, &lm.base);

    Loupe__V1__RetrainResponse rt = LOUPE__V1__RETRAIN_RESPONSE__INIT;
    rt.job_id = "job-1";
    seed(dir, "retrain", LP_FLAG_RESPONSE, LOUPE_METHOD_RETRAIN, 0, &rt.base);

    Loupe__V1__Status fail = LOUPE__V1__STATUS__INIT;
    fail.code = 15, fail.message = "checksum";
    Loupe__V1__JobResult jr = LOUPE__V1__JOB_RESULT__INIT;
    jr.model = &v, jr.promoted = 1, jr.decision = "better by 2%", jr.error = &fail;
    Loupe__V1__Job job = LOUPE__V1__JOB__INIT;
    job.job_id = "job-1", job.stage = 8, job.percent = 100, job.message = "done";
    job.result = &jr;
    Loupe__V1__GetJobResponse gj = LOUPE__V1__GET_JOB_RESPONSE__INIT;
    gj.job = &job;
    seed(dir, "job", LP_FLAG_RESPONSE, LOUPE_METHOD_GET_JOB, 0, &gj.base);

    Loupe__V1__RowError refused = LOUPE__V1__ROW_ERROR__INIT, *refusals[] = {&refused};
    refused.row = 1, refused.field = "sold_price", refused.reason = "must be > 0";
    Loupe__V1__ReportOutcomesResponse ro = LOUPE__V1__REPORT_OUTCOMES_RESPONSE__INIT;
    ro.accepted = 2, ro.matched_by_request = 1, ro.unmatched = 1;
    ro.n_rejected = 1, ro.rejected = refusals;
    seed(dir, "outcomes", LP_FLAG_RESPONSE, LOUPE_METHOD_REPORT_OUTCOMES, 0, &ro.base);

    char *scopes[] = {"predict", "models:read"};
    Loupe__V1__Limits limits = LOUPE__V1__LIMITS__INIT;
    limits.max_frame_size = 8 << 20, limits.max_batch_rows = 100000, limits.max_in_flight = 64;
    Loupe__V1__Welcome w = LOUPE__V1__WELCOME__INIT;
    w.principal = "acme", w.n_scopes = 2, w.scopes = scopes, w.limits = &limits;
    w.server_version = "loupe 0.3.0", w.protocol_version = 1;
    seed(dir, "welcome", LP_FLAG_RESPONSE, LP_METHOD_HELLO, 0, &w.base);

    Loupe__V1__FieldViolation fv = LOUPE__V1__FIELD_VIOLATION__INIT;
    fv.field = "diamond.carat", fv.description = "must be > 0, got -1";
    Loupe__V1__FieldViolation *fvs[] = {&fv};
    Loupe__V1__Status st = LOUPE__V1__STATUS__INIT;
    st.code = 3, st.message = "diamond.carat must be > 0, got -1.0";
    st.n_field_violations = 1, st.field_violations = fvs, st.n_row_errors = 1;
    st.row_errors = res, st.retry_after_ms = 5;
    seed(dir, "error", LP_FLAG_RESPONSE | LP_FLAG_ERROR, LOUPE_METHOD_PREDICT, 0, &st.base);

    uint8_t buf[8192];
    size_t n = frame(buf, LP_FLAG_RESPONSE | LP_FLAG_ERROR, 0, 0, 0, &st.base);
    lp_put32(buf + 8, 0);
    write_seed(dir, "connection-error", 3, buf, n);
    n = frame(buf, LP_FLAG_RESPONSE, LOUPE_METHOD_HEALTH, 1, 0, NULL);
    write_seed(dir, "empty", 0, buf, n);

    write_seed(dir, "stream-bytewise", 0, stream, stream_len);
    write_seed(dir, "stream-chunked", 5, stream, stream_len);
    write_seed(dir, "stream-whole", 255, stream, stream_len);
    write_seed(dir, "truncated", 1, stream, stream_len / 2);

    n = frame(buf, LP_FLAG_RESPONSE, LOUPE_METHOD_PREDICT, 1, 0, &p.base);
    buf[4] = 2;
    write_seed(dir, "bad-version", 0, buf, n);
    buf[4] = 1, buf[5] = 0x0a;
    write_seed(dir, "bad-flags", 0, buf, n);
    buf[5] = 2;
    lp_put32(buf, 3);
    write_seed(dir, "short-length", 0, buf, n);
    lp_put32(buf, 0x7fffffff);
    write_seed(dir, "huge-length", 0, buf, n);
    fprintf(stderr, "make_seeds: wrote the seed corpus to %s\n", dir);
    return 0;
}
