/*
 * Forces the timings under which an event loop over several connections can wait for ever
 * (issue 24), for a build of examples/score_csv_async.c linked with
 * -Wl,--wrap=loupe_connect_start,--wrap=loupe_connect_poll,--wrap=loupe_consume_input.
 * LOUPE_LOOP_FAULT chooses:
 *
 *   connected-first  every loupe_connect_poll waits until its connection is up, so all of them
 *                    are up before the loop's first poll(): as when, on a busy machine, the
 *                    server's Welcome is in before the client asks. A loop that only hands out
 *                    work after poll() returns then waits with nothing in flight.
 *   reset-last       as connected-first (so every connection gets calls from the start), and
 *                    the last connection's replies are held back while any other connection
 *                    has calls out; then its connection is reset (its calls are lost) while
 *                    the others are idle. A loop that only hands the lost calls to
 *                    connections it has not visited yet in that turn waits for ever.
 *
 * Each prints "loop_faults: <fault> done" on stderr once the fault happened (tests/run checks
 * that it did), and a message of its own when it could not make it happen.
 */
#include <loupe.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define MAX_CLIENTS 64

loupe_client *__real_loupe_connect_start(const loupe_options *o);
loupe_poll_status __real_loupe_connect_poll(loupe_client *c);
int __real_loupe_consume_input(loupe_client *c);
loupe_client *__wrap_loupe_connect_start(const loupe_options *o);
loupe_poll_status __wrap_loupe_connect_poll(loupe_client *c);
int __wrap_loupe_consume_input(loupe_client *c);

static loupe_client *clients[MAX_CLIENTS];
static size_t nclients;
static int reported;

static const char *fault(void) {
    const char *f = getenv("LOUPE_LOOP_FAULT");
    return f ? f : "";
}

static void report(void) {
    if (!reported) fprintf(stderr, "loop_faults: %s done\n", fault());
    reported = 1;
}

static double seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

loupe_client *__wrap_loupe_connect_start(const loupe_options *o) {
    loupe_client *c = __real_loupe_connect_start(o);
    if (c && nclients < MAX_CLIENTS) clients[nclients++] = c;
    return c;
}

loupe_poll_status __wrap_loupe_connect_poll(loupe_client *c) {
    loupe_poll_status st = __real_loupe_connect_poll(c);
    int reset_last = strcmp(fault(), "reset-last") == 0;
    if (strcmp(fault(), "connected-first") != 0 && !reset_last) return st;
    double t0 = seconds();
    while ((st == LOUPE_POLL_READING || st == LOUPE_POLL_WRITING) && seconds() - t0 < 30) {
        struct pollfd p = {loupe_socket(c), st == LOUPE_POLL_READING ? POLLIN : POLLOUT, 0};
        poll(&p, 1, 100);
        st = __real_loupe_connect_poll(c);
    }
    if (st == LOUPE_POLL_OK && !reset_last) report();
    return st;
}

int __wrap_loupe_consume_input(loupe_client *c) {
    if (strcmp(fault(), "reset-last") != 0 || reported || nclients < 2 ||
        c != clients[nclients - 1])
        return __real_loupe_consume_input(c);
    for (size_t i = 0; i + 1 < nclients; i++)
        if (loupe_pending(clients[i]) > 0) return LOUPE_OK; /* held back: poll() says so again */
    if (loupe_pending(c) == 0) {
        fprintf(stderr, "loop_faults: reset-last: the last connection had no call out\n");
        return __real_loupe_consume_input(c);
    }
    /* connect(AF_UNSPEC) disconnects a TCP socket: a reset, its unread bytes dropped. */
    struct sockaddr unspec;
    memset(&unspec, 0, sizeof unspec);
    unspec.sa_family = AF_UNSPEC;
    if (connect(loupe_socket(c), &unspec, sizeof unspec) != 0) {
        perror("loop_faults: reset-last: connect(AF_UNSPEC)");
        return __real_loupe_consume_input(c);
    }
    report();
    return __real_loupe_consume_input(c);
}
