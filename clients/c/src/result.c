/* Results: decoding reply payloads (with an allocation budget) and the accessors. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define S(x) ((x) ? (const char *)(x) : "")

/* ---- decoding with a budget ----------------------------------------------------------- */

typedef struct lp_budget {
    ProtobufCAllocator allocator;
    size_t used, limit;
} lp_budget;

static void *budget_alloc(void *data, size_t size) {
    lp_budget *b = data;
    if (size > b->limit - b->used) return NULL;
    b->used += size;
    return malloc(size ? size : 1);
}

static void *plain_alloc(void *data, size_t size) {
    (void)data;
    return malloc(size ? size : 1);
}

static void plain_free(void *data, void *p) {
    (void)data;
    free(p);
}

/* Frees what budget_alloc allocated (both use malloc). No state: safe from any thread. */
static ProtobufCAllocator lp_allocator = {plain_alloc, plain_free, NULL};

static ProtobufCMessage *decode(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t n) {
    lp_budget b;
    b.allocator.alloc = budget_alloc;
    b.allocator.free = plain_free;
    b.allocator.allocator_data = &b;
    b.used = 0;
    b.limit = n > (SIZE_MAX - LP_DECODE_SLACK) / LP_DECODE_FACTOR
                  ? SIZE_MAX
                  : n * LP_DECODE_FACTOR + LP_DECODE_SLACK;
    return protobuf_c_message_unpack(d, &b.allocator, n, n ? p : (const uint8_t *)"");
}

static void free_message(ProtobufCMessage *m) {
    if (m) protobuf_c_message_free_unpacked(m, &lp_allocator);
}

Loupe__V1__Status *lp_status_decode(const uint8_t *payload, size_t len) {
    return (Loupe__V1__Status *)decode(&loupe__v1__status__descriptor, payload, len);
}

void lp_status_free(Loupe__V1__Status *s) { free_message((ProtobufCMessage *)s); }

Loupe__V1__Status *lp_status_copy(const Loupe__V1__Status *s) {
    if (!s) return NULL;
    size_t n = protobuf_c_message_get_packed_size(&s->base);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) return NULL;
    protobuf_c_message_pack(&s->base, buf);
    Loupe__V1__Status *copy = lp_status_decode(buf, n);
    free(buf);
    return copy;
}

int lp_status_code(int wire) {
    return wire >= LOUPE_CANCELLED && wire <= LOUPE_UNAUTHENTICATED ? wire : LOUPE_UNKNOWN;
}

size_t lp_status_detail_count(const Loupe__V1__Status *s) {
    return s ? s->n_field_violations + s->n_row_errors : 0;
}

int lp_status_detail(const Loupe__V1__Status *s, size_t i, long *row, const char **field,
                     const char **reason) {
    if (!s || i >= lp_status_detail_count(s)) return LOUPE_ERR_USAGE;
    if (i < s->n_field_violations) {
        const Loupe__V1__FieldViolation *v = s->field_violations[i];
        if (row) *row = -1;
        if (field) *field = S(v->field);
        if (reason) *reason = S(v->description);
    } else {
        const Loupe__V1__RowError *e = s->row_errors[i - s->n_field_violations];
        if (row) *row = (long)e->row;
        if (field) *field = S(e->field);
        if (reason) *reason = S(e->reason);
    }
    return LOUPE_OK;
}

/* ---- building results ----------------------------------------------------------------- */

static const char *method_name(int method) {
    static const char *const names[] = {"connection", "Hello",       "Health",
                                        "Predict",    "BatchPredict", "FindSimilar",
                                        "ListModels", "Retrain",     "GetJob",
                                        "ReportOutcomes"};
    return method >= 0 && method <= LOUPE_METHOD_REPORT_OUTCOMES ? names[method] : "unknown method";
}

__attribute__((format(printf, 2, 3))) static loupe_result *protocol_error(loupe_result *r,
                                                                          const char *fmt, ...) {
    free_message(r->msg);
    r->msg = NULL;
    free(r->views);
    r->views = NULL;
    r->rows = 0;
    r->prices = r->lows = r->highs = NULL;
    r->code = LOUPE_ERR_PROTOCOL;
    char text[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    r->message_own = malloc(strlen(text) + 1);
    if (r->message_own) {
        strcpy(r->message_own, text);
        r->message = r->message_own;
    } else {
        r->message = "a reply that does not decode";
    }
    return r;
}

static size_t count_parameters(const Loupe__V1__ModelVersion *m) { return m ? m->n_parameters : 0; }

static void fill_model(loupe_model_info *info, const Loupe__V1__ModelVersion *m,
                       loupe_parameter **cursor) {
    memset(info, 0, sizeof *info);
    info->name = S(m->name);
    info->version = m->version;
    info->aliases = (const char *const *)m->aliases;
    info->alias_count = m->n_aliases;
    info->created_unix_ms = m->created_unix_ms;
    info->dataset = S(m->dataset);
    info->dataset_version = m->dataset_version;
    if (m->metrics) {
        const Loupe__V1__ModelMetrics *x = m->metrics;
        info->metric_rows = x->rows;
        info->rmse = x->rmse;
        info->mae = x->mae;
        info->mape = x->mape;
        info->r2 = x->r2;
        info->level = x->level;
        info->coverage = x->coverage;
        info->median_width = x->median_width;
    }
    info->parameters = *cursor;
    info->parameter_count = m->n_parameters;
    for (size_t i = 0; i < m->n_parameters; i++) {
        (*cursor)[i].name = S(m->parameters[i]->name);
        (*cursor)[i].value = S(m->parameters[i]->value);
    }
    *cursor += m->n_parameters;
    info->tree_count = m->tree_count;
    info->digest = S(m->digest);
}

/* Allocates views for `models` model infos and `params` parameters. 0 or -1. */
static int alloc_model_views(loupe_result *r, size_t models, size_t params,
                             loupe_parameter **cursor) {
    if (models == 0) return 0;
    if (models > SIZE_MAX / 2 / sizeof(loupe_model_info) ||
        params > SIZE_MAX / 2 / sizeof(loupe_parameter))
        return -1;
    r->views = malloc(models * sizeof(loupe_model_info) + params * sizeof(loupe_parameter));
    if (!r->views) return -1;
    r->models = r->views;
    *cursor = (loupe_parameter *)(r->models + models);
    return 0;
}

static loupe_result *nomem(loupe_result *r) {
    loupe_result_free(r);
    return NULL;
}

#define DECODE(type, descriptor)                                                             \
    type *m = (type *)(r->msg = decode(&descriptor, payload, len));                          \
    if (!m)                                                                                  \
        return protocol_error(r, "a %s reply that does not decode (%zu bytes)",              \
                              method_name(method), len)

loupe_result *lp_result_decode(int method, uint32_t request_id, int error, const uint8_t *payload,
                               size_t len, size_t expected_rows) {
    loupe_result *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->method = method;
    r->request_id = request_id;
    r->message = "";
    r->level = NAN;
    if (error) {
        r->status = lp_status_decode(payload, len);
        if (!r->status)
            return protocol_error(r, "a %s error reply whose Status does not decode (%zu bytes)",
                                  method_name(method), len);
        r->code = lp_status_code(r->status->code);
        r->message = S(r->status->message);
        r->retry_after_ms = r->status->retry_after_ms;
        return r;
    }
    switch (method) {
    case LP_METHOD_HELLO: {
        DECODE(Loupe__V1__Welcome, loupe__v1__welcome__descriptor);
        loupe_session *s = &r->session;
        s->principal = S(m->principal);
        s->scopes = (const char *const *)m->scopes;
        s->scope_count = m->n_scopes;
        s->server_version = S(m->server_version);
        s->protocol_version = m->protocol_version;
        if (m->limits) {
            s->max_frame_size = m->limits->max_frame_size;
            s->max_batch_rows = m->limits->max_batch_rows;
            s->frame_deadline_ms = m->limits->frame_deadline_ms;
            s->max_similar = m->limits->max_similar;
            s->max_in_flight = m->limits->max_in_flight;
            s->rows_per_second = m->limits->rows_per_second;
        }
        return r;
    }
    case LOUPE_METHOD_HEALTH: {
        DECODE(Loupe__V1__HealthResponse, loupe__v1__health_response__descriptor);
        loupe_health_info *h = &r->health;
        h->live = m->live;
        h->ready = m->ready;
        h->model_loaded = m->model_loaded;
        h->store_reachable = m->store_reachable;
        h->model_name = S(m->model_name);
        h->model_version = m->model_version;
        h->server_version = S(m->server_version);
        h->uptime_ms = m->uptime_ms;
        h->message = S(m->message);
        return r;
    }
    case LOUPE_METHOD_PREDICT: {
        DECODE(Loupe__V1__PredictResponse, loupe__v1__predict_response__descriptor);
        r->rows = 1;
        r->one[0] = m->price;
        r->one[1] = m->low;
        r->one[2] = m->high;
        r->prices = &r->one[0];
        r->lows = &r->one[1];
        r->highs = &r->one[2];
        r->level = m->level;
        r->model_name = S(m->model_name);
        r->model_version = m->model_version;
        return r;
    }
    case LOUPE_METHOD_BATCH_PREDICT: {
        DECODE(Loupe__V1__BatchPredictResponse, loupe__v1__batch_predict_response__descriptor);
        if (m->n_lows != m->n_prices || m->n_highs != m->n_prices)
            return protocol_error(r, "a BatchPredict reply with %zu prices, %zu lows, %zu highs",
                                  m->n_prices, m->n_lows, m->n_highs);
        if (expected_rows != SIZE_MAX && m->n_prices != expected_rows)
            return protocol_error(r, "a BatchPredict reply with %zu prices for %zu rows",
                                  m->n_prices, expected_rows);
        /* Every index a caller will use to subscript its own arrays is checked here. */
        if (m->n_row_errors > m->n_prices)
            return protocol_error(r, "a BatchPredict reply with %zu row errors for %zu rows",
                                  m->n_row_errors, m->n_prices);
        for (size_t i = 0; i < m->n_row_errors; i++)
            if (!m->row_errors[i] || m->row_errors[i]->row >= m->n_prices)
                return protocol_error(r, "a BatchPredict reply naming row %u of a %zu-row batch",
                                      m->row_errors[i] ? m->row_errors[i]->row : 0u, m->n_prices);
        r->rows = m->n_prices;
        r->prices = m->prices;
        r->lows = m->lows;
        r->highs = m->highs;
        r->level = m->level;
        r->model_name = S(m->model_name);
        r->model_version = m->model_version;
        return r;
    }
    case LOUPE_METHOD_FIND_SIMILAR: {
        DECODE(Loupe__V1__FindSimilarResponse, loupe__v1__find_similar_response__descriptor);
        if (m->n_diamonds > 0) {
            if (m->n_diamonds > SIZE_MAX / sizeof(loupe_similar)) return nomem(r);
            r->views = calloc(m->n_diamonds, sizeof(loupe_similar));
            if (!r->views) return nomem(r);
            r->similar = r->views;
            r->similar_count = m->n_diamonds;
            for (size_t i = 0; i < m->n_diamonds; i++) {
                const Loupe__V1__SimilarDiamond *s = m->diamonds[i];
                loupe_similar *o = &r->similar[i];
                if (s->diamond) {
                    const Loupe__V1__Diamond *d = s->diamond;
                    o->diamond = (loupe_diamond){d->carat, (int)d->cut, (int)d->color,
                                                 (int)d->clarity, d->depth, d->table,
                                                 d->x, d->y, d->z};
                }
                o->price = s->price;
                o->row = s->row;
            }
        }
        return r;
    }
    case LOUPE_METHOD_LIST_MODELS: {
        DECODE(Loupe__V1__ListModelsResponse, loupe__v1__list_models_response__descriptor);
        size_t params = 0;
        for (size_t i = 0; i < m->n_models; i++) params += count_parameters(m->models[i]);
        loupe_parameter *cursor = NULL;
        if (alloc_model_views(r, m->n_models, params, &cursor) != 0) return nomem(r);
        for (size_t i = 0; i < m->n_models; i++) fill_model(&r->models[i], m->models[i], &cursor);
        r->model_count = m->n_models;
        return r;
    }
    case LOUPE_METHOD_RETRAIN: {
        DECODE(Loupe__V1__RetrainResponse, loupe__v1__retrain_response__descriptor);
        r->job.job_id = S(m->job_id);
        r->job.message = r->job.decision = r->job.error_message = "";
        return r;
    }
    case LOUPE_METHOD_REPORT_OUTCOMES: {
        DECODE(Loupe__V1__ReportOutcomesResponse,
               loupe__v1__report_outcomes_response__descriptor);
        /* Every index a caller will use to subscript its own outcomes is checked here. */
        if (expected_rows != SIZE_MAX && m->n_rejected > expected_rows)
            return protocol_error(r, "a ReportOutcomes reply refusing %zu of %zu outcomes",
                                  m->n_rejected, expected_rows);
        for (size_t i = 0; i < m->n_rejected; i++)
            if (!m->rejected[i] ||
                (expected_rows != SIZE_MAX && m->rejected[i]->row >= expected_rows))
                return protocol_error(r, "a ReportOutcomes reply naming outcome %u of %zu",
                                      m->rejected[i] ? m->rejected[i]->row : 0u, expected_rows);
        r->outcomes = (loupe_outcome_summary){m->accepted, m->matched_by_request,
                                              m->matched_by_diamond, m->unmatched};
        return r;
    }
    case LOUPE_METHOD_GET_JOB: {
        DECODE(Loupe__V1__GetJobResponse, loupe__v1__get_job_response__descriptor);
        loupe_job *j = &r->job;
        j->job_id = j->message = j->decision = j->error_message = "";
        const Loupe__V1__Job *job = m->job;
        if (!job) return r;
        j->job_id = S(job->job_id);
        j->stage = (int)job->stage;
        j->percent = job->percent;
        j->eta_ms = job->eta_ms;
        j->message = S(job->message);
        j->started_unix_ms = job->started_unix_ms;
        j->finished_unix_ms = job->finished_unix_ms;
        j->finished = j->stage == LOUPE_JOB_SUCCEEDED || j->stage == LOUPE_JOB_FAILED ||
                      j->stage == LOUPE_JOB_CANCELLED;
        const Loupe__V1__JobResult *res = job->result;
        if (!res) return r;
        j->promoted = res->promoted;
        j->decision = S(res->decision);
        if (res->error) {
            j->error_code = res->error->code == 0 ? LOUPE_OK : lp_status_code(res->error->code);
            j->error_message = S(res->error->message);
        }
        if (res->model) {
            loupe_parameter *cursor = NULL;
            if (alloc_model_views(r, 1, count_parameters(res->model), &cursor) != 0)
                return nomem(r);
            fill_model(&r->models[0], res->model, &cursor);
            j->model = &r->models[0];
        }
        return r;
    }
    default:
        return protocol_error(r, "a reply for method %d, which this client does not know", method);
    }
}

loupe_result *lp_result_local(int method, uint32_t request_id, int code, const char *message) {
    loupe_result *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->method = method;
    r->request_id = request_id;
    r->code = code;
    r->level = NAN;
    r->message_own = malloc(strlen(message) + 1);
    if (!r->message_own) {
        free(r);
        return NULL;
    }
    strcpy(r->message_own, message);
    r->message = r->message_own;
    return r;
}

/* ---- accessors ------------------------------------------------------------------------ */

void loupe_result_free(loupe_result *r) {
    if (!r) return;
    free_message(r->msg);
    lp_status_free(r->status);
    free(r->views);
    free(r->message_own);
    free(r);
}

int loupe_result_method(const loupe_result *r) { return r ? r->method : 0; }
uint32_t loupe_result_request_id(const loupe_result *r) { return r ? r->request_id : 0; }
int loupe_result_code(const loupe_result *r) { return r ? r->code : LOUPE_ERR_USAGE; }
const char *loupe_result_message(const loupe_result *r) { return r ? r->message : ""; }
unsigned loupe_result_retry_after_ms(const loupe_result *r) { return r ? r->retry_after_ms : 0; }

size_t loupe_result_error_detail_count(const loupe_result *r) {
    return r ? lp_status_detail_count(r->status) : 0;
}

int loupe_result_error_detail(const loupe_result *r, size_t i, long *row, const char **field,
                              const char **reason) {
    return r ? lp_status_detail(r->status, i, row, field, reason) : LOUPE_ERR_USAGE;
}

size_t loupe_result_rows(const loupe_result *r) { return r ? r->rows : 0; }

loupe_price loupe_result_price(const loupe_result *r, size_t row) {
    if (!r || row >= r->rows || !r->prices) return (loupe_price){NAN, NAN, NAN};
    return (loupe_price){r->prices[row], r->lows[row], r->highs[row]};
}

const double *loupe_result_prices(const loupe_result *r) { return r && r->rows ? r->prices : NULL; }
const double *loupe_result_lows(const loupe_result *r) { return r && r->rows ? r->lows : NULL; }
const double *loupe_result_highs(const loupe_result *r) { return r && r->rows ? r->highs : NULL; }
double loupe_result_level(const loupe_result *r) { return r ? r->level : NAN; }
const char *loupe_result_model_name(const loupe_result *r) { return r ? r->model_name : NULL; }
unsigned loupe_result_model_version(const loupe_result *r) { return r ? r->model_version : 0; }

/* The row errors of a BatchPredict result, or the refused outcomes of a ReportOutcomes one. */
static Loupe__V1__RowError *const *row_errors(const loupe_result *r, size_t *n) {
    *n = 0;
    if (!r || r->code != LOUPE_OK || !r->msg) return NULL;
    if (r->method == LOUPE_METHOD_BATCH_PREDICT) {
        const Loupe__V1__BatchPredictResponse *m = (const Loupe__V1__BatchPredictResponse *)r->msg;
        *n = m->n_row_errors;
        return m->row_errors;
    }
    if (r->method == LOUPE_METHOD_REPORT_OUTCOMES) {
        const Loupe__V1__ReportOutcomesResponse *m =
            (const Loupe__V1__ReportOutcomesResponse *)r->msg;
        *n = m->n_rejected;
        return m->rejected;
    }
    return NULL;
}

size_t loupe_result_row_error_count(const loupe_result *r) {
    size_t n;
    row_errors(r, &n);
    return n;
}

int loupe_result_row_error(const loupe_result *r, size_t i, uint32_t *row, const char **field,
                           const char **reason) {
    size_t n;
    Loupe__V1__RowError *const *errors = row_errors(r, &n);
    if (i >= n) return LOUPE_ERR_USAGE;
    const Loupe__V1__RowError *e = errors[i];
    if (row) *row = e->row;
    if (field) *field = S(e->field);
    if (reason) *reason = S(e->reason);
    return LOUPE_OK;
}

const double *loupe_result_reasons(const loupe_result *r, size_t row, double *base_value,
                                   size_t *count) {
    if (count) *count = 0;
    if (base_value) *base_value = NAN;
    if (!r || r->code != LOUPE_OK || !r->msg || row >= r->rows) return NULL;
    if (r->method == LOUPE_METHOD_PREDICT) {
        const Loupe__V1__Explanation *e = ((const Loupe__V1__PredictResponse *)r->msg)->explanation;
        if (!e || e->n_contributions == 0) return NULL;
        if (count) *count = e->n_contributions;
        if (base_value) *base_value = e->base_value;
        return e->contributions;
    }
    if (r->method == LOUPE_METHOD_BATCH_PREDICT) {
        const Loupe__V1__BatchExplanation *e =
            ((const Loupe__V1__BatchPredictResponse *)r->msg)->explanation;
        if (!e || e->feature_count == 0) return NULL;
        size_t fc = e->feature_count;
        if (row >= e->n_contributions / fc) return NULL;
        if (count) *count = fc;
        if (base_value) *base_value = e->base_value;
        return e->contributions + row * fc;
    }
    return NULL;
}

size_t loupe_result_model_count(const loupe_result *r) {
    return r && r->method == LOUPE_METHOD_LIST_MODELS ? r->model_count : 0;
}

const loupe_model_info *loupe_result_model(const loupe_result *r, size_t i) {
    return i < loupe_result_model_count(r) ? &r->models[i] : NULL;
}

size_t loupe_result_similar_count(const loupe_result *r) { return r ? r->similar_count : 0; }
const loupe_similar *loupe_result_similar(const loupe_result *r) { return r ? r->similar : NULL; }

const char *loupe_result_dataset(const loupe_result *r, unsigned *version) {
    if (version) *version = 0;
    if (!r || r->method != LOUPE_METHOD_FIND_SIMILAR || !r->msg) return NULL;
    const Loupe__V1__FindSimilarResponse *m = (const Loupe__V1__FindSimilarResponse *)r->msg;
    if (version) *version = m->dataset_version;
    return S(m->dataset);
}

const char *loupe_result_job_id(const loupe_result *r) {
    if (!r || !r->msg || (r->method != LOUPE_METHOD_RETRAIN && r->method != LOUPE_METHOD_GET_JOB))
        return NULL;
    return r->job.job_id;
}

const loupe_job *loupe_result_job(const loupe_result *r) {
    return r && r->msg && r->method == LOUPE_METHOD_GET_JOB ? &r->job : NULL;
}

const loupe_outcome_summary *loupe_result_outcomes(const loupe_result *r) {
    return r && r->msg && r->method == LOUPE_METHOD_REPORT_OUTCOMES ? &r->outcomes : NULL;
}

const loupe_health_info *loupe_result_health(const loupe_result *r) {
    return r && r->msg && r->method == LOUPE_METHOD_HEALTH ? &r->health : NULL;
}
