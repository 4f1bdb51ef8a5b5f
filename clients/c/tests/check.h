/* A tiny test harness: CHECK(...) records a failure and goes on; TEST(name) prints progress. */
#ifndef LOUPE_CHECK_H
#define LOUPE_CHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int check_failures = 0;
static int check_count = 0;
static const char *check_test = "";

static double check_start = 0;

static double check_clock(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Starts a test; with LOUPE_TEST_VERBOSE set, prints its name and the time so far. */
#define TEST(name)                                                                           \
    do {                                                                                     \
        if (check_start == 0) check_start = check_clock();                                   \
        check_test = (name);                                                                 \
        if (getenv("LOUPE_TEST_VERBOSE"))                                                    \
            fprintf(stderr, "  %7.3fs %s\n", check_clock() - check_start, check_test);       \
    } while (0)

#define CHECK(cond)                                                                          \
    do {                                                                                     \
        check_count++;                                                                       \
        if (!(cond)) {                                                                       \
            check_failures++;                                                                \
            fprintf(stderr, "FAIL %s: %s:%d: %s\n", check_test, __FILE__, __LINE__, #cond);  \
        }                                                                                    \
    } while (0)

#define CHECK_INT(a, b)                                                                      \
    do {                                                                                     \
        long long check_a = (long long)(a), check_b = (long long)(b);                        \
        check_count++;                                                                       \
        if (check_a != check_b) {                                                            \
            check_failures++;                                                                \
            fprintf(stderr, "FAIL %s: %s:%d: %s == %s: %lld != %lld\n", check_test,          \
                    __FILE__, __LINE__, #a, #b, check_a, check_b);                           \
        }                                                                                    \
    } while (0)

#define CHECK_STR(a, b)                                                                      \
    do {                                                                                     \
        const char *check_a = (a), *check_b = (b);                                           \
        check_count++;                                                                       \
        if (!check_a || !check_b || strcmp(check_a, check_b) != 0) {                         \
            check_failures++;                                                                \
            fprintf(stderr, "FAIL %s: %s:%d: %s == %s: \"%s\" != \"%s\"\n", check_test,      \
                    __FILE__, __LINE__, #a, #b, check_a ? check_a : "(null)",                \
                    check_b ? check_b : "(null)");                                           \
        }                                                                                    \
    } while (0)

/* a contains b */
#define CHECK_HAS(a, b)                                                                      \
    do {                                                                                     \
        const char *check_a = (a), *check_b = (b);                                           \
        check_count++;                                                                       \
        if (!check_a || !strstr(check_a, check_b)) {                                         \
            check_failures++;                                                                \
            fprintf(stderr, "FAIL %s: %s:%d: \"%s\" does not contain \"%s\"\n", check_test,  \
                    __FILE__, __LINE__, check_a ? check_a : "(null)", check_b);              \
        }                                                                                    \
    } while (0)

#define CHECK_CODE(client, code)                                                             \
    do {                                                                                     \
        int check_got = loupe_errcode(client);                                               \
        check_count++;                                                                       \
        if (check_got != (code)) {                                                           \
            check_failures++;                                                                \
            fprintf(stderr, "FAIL %s: %s:%d: expected %s, got %s: %s\n", check_test,         \
                    __FILE__, __LINE__, loupe_code_name(code), loupe_code_name(check_got),   \
                    loupe_errmsg(client));                                                   \
        }                                                                                    \
    } while (0)

static int check_done(const char *suite) {
    if (check_failures) {
        fprintf(stderr, "%s: %d of %d checks FAILED\n", suite, check_failures, check_count);
        return 1;
    }
    fprintf(stderr, "%s: %d checks passed\n", suite, check_count);
    return 0;
}

#endif
