/* Options, code names and grade names. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static char *copy(const char *s) {
    if (!s) return NULL;
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* Replaces *slot with a copy of s (NULL clears it). */
static int set_string(char **slot, const char *s) {
    char *d = NULL;
    if (s && !(d = copy(s))) return LOUPE_ERR_NOMEM;
    free(*slot);
    *slot = d;
    return LOUPE_OK;
}

loupe_options *loupe_options_new(void) {
    loupe_options *o = calloc(1, sizeof *o);
    if (!o) return NULL;
    o->port = 7070;
    o->connect_timeout_ms = 5000;
    o->call_timeout_ms = 60000;
    o->max_reply = LP_DEFAULT_MAX_REPLY;
    o->max_queued = LP_DEFAULT_MAX_QUEUED;
    if (set_string(&o->host, "127.0.0.1") != LOUPE_OK ||
        set_string(&o->client_name, "libloupe/" LOUPE_VERSION) != LOUPE_OK) {
        loupe_options_free(o);
        return NULL;
    }
    return o;
}

void loupe_options_free(loupe_options *o) {
    if (!o) return;
    free(o->host);
    free(o->token);
    free(o->client_name);
    free(o->ca_file);
    free(o->server_name);
    free(o);
}

int loupe_options_set_host(loupe_options *o, const char *host) {
    if (!o || !host || !*host) return LOUPE_ERR_USAGE;
    return set_string(&o->host, host);
}

int loupe_options_set_port(loupe_options *o, int port) {
    if (!o || port < 1 || port > 65535) return LOUPE_ERR_USAGE;
    o->port = port;
    return LOUPE_OK;
}

int loupe_options_set_token(loupe_options *o, const char *token) {
    if (!o) return LOUPE_ERR_USAGE;
    return set_string(&o->token, token && *token ? token : NULL);
}

int loupe_options_set_client_name(loupe_options *o, const char *name) {
    if (!o || !name) return LOUPE_ERR_USAGE;
    return set_string(&o->client_name, name);
}

int loupe_options_set_connect_timeout_ms(loupe_options *o, unsigned ms) {
    if (!o || ms == 0) return LOUPE_ERR_USAGE;
    o->connect_timeout_ms = ms;
    return LOUPE_OK;
}

int loupe_options_set_call_timeout_ms(loupe_options *o, unsigned ms) {
    if (!o) return LOUPE_ERR_USAGE;
    o->call_timeout_ms = ms;
    return LOUPE_OK;
}

int loupe_options_set_max_reply_size(loupe_options *o, size_t bytes) {
    if (!o || bytes < 1024 || bytes > UINT32_MAX) return LOUPE_ERR_USAGE;
    o->max_reply = bytes;
    return LOUPE_OK;
}

int loupe_options_set_max_queued_bytes(loupe_options *o, size_t bytes) {
    if (!o || bytes < 1024) return LOUPE_ERR_USAGE;
    o->max_queued = bytes;
    return LOUPE_OK;
}

int loupe_options_set_tls(loupe_options *o, int enable, const char *ca_file,
                          const char *server_name) {
    if (!o) return LOUPE_ERR_USAGE;
    o->tls = enable != 0; /* even without TLS built in: connect then fails, never goes plain */
    int rc = set_string(&o->ca_file, enable ? ca_file : NULL);
    if (rc == LOUPE_OK) rc = set_string(&o->server_name, enable ? server_name : NULL);
    if (rc == LOUPE_OK && enable && !lp_io_tls_available()) rc = LOUPE_ERR_TLS;
    return rc;
}

int loupe_tls_available(void) { return lp_io_tls_available(); }

const char *loupe_code_name(int code) {
    static const char *const status[] = {
        "OK",          "CANCELLED",         "UNKNOWN",           "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED", "NOT_FOUND",   "ALREADY_EXISTS",    "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",   "OUT_OF_RANGE",
        "UNIMPLEMENTED", "INTERNAL",        "UNAVAILABLE",       "DATA_LOSS",
        "UNAUTHENTICATED"};
    static const char *const client[] = {"ERR_IO",        "ERR_EOF",   "ERR_TIMEOUT",
                                         "ERR_PROTOCOL",  "ERR_REPLY_TOO_LARGE", "ERR_TLS",
                                         "ERR_NOMEM",     "ERR_USAGE", "ERR_CLOSED"};
    if (code >= 0 && code <= 16) return status[code];
    if (code >= LOUPE_ERR_IO && code <= LOUPE_ERR_CLOSED) return client[code - LOUPE_ERR_IO];
    return "UNKNOWN_CODE";
}

/* Compares grade names ignoring case, spaces, '_' and '-': "Very Good" == "VERY_GOOD". */
static int grade_is(const char *given, const char *name) {
    for (;;) {
        while (*given == ' ' || *given == '_' || *given == '-') given++;
        while (*name == ' ') name++;
        if (!*given || !*name) return !*given && !*name;
        if (toupper((unsigned char)*given) != toupper((unsigned char)*name)) return 0;
        given++;
        name++;
    }
}

static int parse_grade(const char *given, const char *const *names, int count) {
    if (!given) return 0;
    for (int i = 0; i < count; i++)
        if (grade_is(given, names[i])) return i + 1;
    return 0;
}

int loupe_parse_cut(const char *name) {
    static const char *const names[] = {"Fair", "Good", "Very Good", "Premium", "Ideal"};
    return parse_grade(name, names, 5);
}

int loupe_parse_color(const char *name) {
    static const char *const names[] = {"J", "I", "H", "G", "F", "E", "D"};
    return parse_grade(name, names, 7);
}

int loupe_parse_clarity(const char *name) {
    static const char *const names[] = {"I1", "SI2", "SI1", "VS2", "VS1", "VVS2", "VVS1", "IF"};
    return parse_grade(name, names, 8);
}
