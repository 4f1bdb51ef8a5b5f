/*
 * libFuzzer target for the reply reader (after redis/hiredis fuzzing/reply_reader_fuzzer.c):
 * the input is a byte stream from a server. It is fed to the frame reader in chunks (the
 * first byte picks the chunk size), every frame that comes out is decoded as the reply of
 * its method (or as a Status), and every accessor of the result is walked. Inputs are capped
 * at 1 MiB and the reader's maximum frame at 1 MiB, so a run cannot allocate without bound.
 *
 *   make fuzz && build-fuzz/reply_reader_fuzzer fuzz/corpus     (or fuzz/run SECONDS)
 *
 * fuzz/replay.c runs the same function over the seed corpus in the normal tests.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile size_t sink;

static void touch(const char *s) {
    if (s) sink += strlen(s);
}

static void walk_model(const loupe_model_info *m) {
    if (!m) return;
    touch(m->name), touch(m->dataset), touch(m->digest);
    for (size_t i = 0; i < m->alias_count; i++) touch(m->aliases[i]);
    for (size_t i = 0; i < m->parameter_count; i++)
        touch(m->parameters[i].name), touch(m->parameters[i].value);
    sink += m->version + m->tree_count + m->metric_rows;
}

static void walk(const loupe_result *r) {
    sink += (size_t)loupe_result_code(r) + loupe_result_request_id(r);
    touch(loupe_result_message(r));
    for (size_t i = 0; i < loupe_result_error_detail_count(r); i++) {
        long row;
        const char *field, *reason;
        loupe_result_error_detail(r, i, &row, &field, &reason);
        touch(field), touch(reason);
    }
    size_t rows = loupe_result_rows(r);
    const double *p = loupe_result_prices(r), *l = loupe_result_lows(r), *h = loupe_result_highs(r);
    for (size_t i = 0; i < rows; i++) {
        loupe_price x = loupe_result_price(r, i);
        sink += (size_t)(isnan(x.price) + isnan(p[i]) + isnan(l[i]) + isnan(h[i]));
        size_t count = 0;
        double base;
        const double *why = loupe_result_reasons(r, i, &base, &count);
        for (size_t k = 0; k < count; k++) sink += (size_t)isnan(why[k]);
    }
    touch(loupe_result_model_name(r));
    for (size_t i = 0; i < loupe_result_row_error_count(r); i++) {
        uint32_t row;
        const char *field, *reason;
        loupe_result_row_error(r, i, &row, &field, &reason);
        touch(field), touch(reason);
    }
    for (size_t i = 0; i < loupe_result_model_count(r); i++) walk_model(loupe_result_model(r, i));
    const loupe_similar *s = loupe_result_similar(r);
    for (size_t i = 0; i < loupe_result_similar_count(r); i++) sink += (size_t)s[i].row;
    touch(loupe_result_dataset(r, NULL));
    touch(loupe_result_job_id(r));
    const loupe_job *j = loupe_result_job(r);
    if (j) {
        touch(j->job_id), touch(j->message), touch(j->decision), touch(j->error_message);
        walk_model(j->model);
    }
    const loupe_outcome_summary *os = loupe_result_outcomes(r);
    if (os) sink += os->accepted + os->matched_by_request + os->matched_by_diamond + os->unmatched;
    const loupe_health_info *hi = loupe_result_health(r);
    if (hi) touch(hi->model_name), touch(hi->server_version), touch(hi->message);
    if (r->method == LP_METHOD_HELLO && r->code == LOUPE_OK) {
        touch(r->session.principal), touch(r->session.server_version);
        for (size_t i = 0; i < r->session.scope_count; i++) touch(r->session.scopes[i]);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0 || size > (1u << 20)) return 0;
    size_t chunk = 1 + data[0] * 37u;
    data++, size--;
    lp_reader reader;
    lp_reader_init(&reader, 1u << 20, 0);
    for (size_t at = 0; at < size;) {
        size_t n = size - at < chunk ? size - at : chunk;
        if (lp_reader_feed(&reader, data + at, n) != 0) break;
        at += n;
        lp_frame f;
        int rc;
        while ((rc = lp_reader_next(&reader, &f)) == 1) {
            int error = (f.flags & LP_FLAG_ERROR) != 0;
            if (f.request_id == 0 && error) {
                lp_status_free(lp_status_decode(f.payload, f.payload_len));
                continue;
            }
            loupe_result *r = lp_result_decode(f.method, f.request_id, error, f.payload,
                                               f.payload_len,
                                               f.row_count ? f.row_count : SIZE_MAX);
            if (r) walk(r);
            loupe_result_free(r);
        }
        if (rc < 0) break;
    }
    lp_reader_free(&reader);
    return 0;
}
