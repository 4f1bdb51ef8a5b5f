/*
 * score_csv_async: prices every diamond of a CSV file over several connections driven from
 * one poll() loop (libloupe's non-blocking mode), and prints the throughput.
 *
 *   LOUPE_TOKEN=... score_csv_async [-a HOST:PORT] [-c CONNS] [-b ROWS] [-d DEPTH]
 *                                   [-t DEADLINE_MS] [-o OUT.csv] [--json] FILE.csv
 *
 *   -a  the server or gateway (default 127.0.0.1:7070; an IP address: resolving a name is
 *       the one step of connecting that blocks)
 *   -c  connections (default 8)
 *   -b  rows per BatchPredict call (default 10000; at most the server's max_batch_rows)
 *   -d  calls in flight on each connection (default 2)
 *   -t  each call's deadline in ms (default 0: none); a call past it, or refused with
 *       UNAVAILABLE, is sent again (on whichever connection has room), at most 3 times
 *   -o  write row,price,low,high per input row (NaN for rows the server refused)
 *   --json  print the numbers as one JSON object
 *
 * The loop takes three steps each turn. (1) Every connection advances: while connecting, as
 * loupe_connect_poll asks; once connected, loupe_consume_input when readable, then every
 * finished result is taken (loupe_get_reply until NULL); a connection that fails hands its
 * calls back. (2) Every connected connection is topped up to DEPTH calls and flushed, again
 * while one fails and hands calls back. (3) poll(): POLLIN on each connection, POLLOUT while
 * loupe_flush said 1, never past loupe_next_timeout_ms (connect timeouts and deadlines fire on
 * time). Step 2 comes before the wait, never only after a wake-up: a connection can come up
 * without its socket ever waking the loop (the Welcome was in before loupe_connect_poll was
 * first called), and calls handed back by a failed connection may have only idle connections
 * left to take them. Either would otherwise wait with nothing in flight (issue 24).
 */
#include <loupe.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"

#define MAX_CONNS 64
#define MAX_DEPTH 64
#define MAX_TRIES 3

typedef struct conn {
    loupe_client *c;
    int status;       /* loupe_poll_status while connecting; LOUPE_POLL_OK once connected */
    int dead;         /* failed: its calls went back to the queue */
    int more;         /* loupe_flush said 1: wait for POLLOUT */
    char failure[512]; /* why it failed, kept before loupe_get_reply reports ERR_CLOSED */
    size_t in_flight;
    uint32_t ids[MAX_DEPTH];
    size_t batch[MAX_DEPTH]; /* the batch each in-flight call prices */
} conn;

typedef struct work {
    size_t calls, next;  /* batches, and the next never sent */
    size_t *retry;       /* batches to send again (a stack) */
    size_t nretry;
    int *tries;
    size_t done, failed_calls, retried, refused_rows;
} work;

/* What the loop scores and where the prices go. */
typedef struct job {
    const table *t;
    size_t batch, depth;
    size_t batch_limit; /* the server's max_batch_rows, once a connection says it */
    double *prices, *lows, *highs;
    work w;
} job;

static int usage(void) {
    fprintf(stderr, "usage: score_csv_async [-a HOST:PORT] [-c CONNS] [-b ROWS] [-d DEPTH] "
                    "[-t DEADLINE_MS] [-o OUT.csv] [--json] FILE.csv\n"
                    "(the token comes from $LOUPE_TOKEN)\n");
    return 2;
}

/* The next batch to send, or 0 when none is waiting (*b set on 1). */
static int take_batch(work *w, size_t *b) {
    if (w->nretry > 0) *b = w->retry[--w->nretry];
    else if (w->next < w->calls) *b = w->next++;
    else return 0;
    return 1;
}

/* A call that did not get its prices: sent again while it has tries left. 1 if queued. */
static int again(work *w, size_t b) {
    if (++w->tries[b] >= MAX_TRIES) return 0;
    w->retry[w->nretry++] = b;
    w->retried++;
    return 1;
}

static size_t batch_rows(const job *j, size_t b) {
    size_t first = b * j->batch;
    return j->t->rows - first < j->batch ? j->t->rows - first : j->batch;
}

/* A call that failed for good: its rows are NaN. */
static void fail_batch(job *j, size_t b) {
    for (size_t i = b * j->batch, end = i + batch_rows(j, b); i < end; i++)
        j->prices[i] = j->lows[i] = j->highs[i] = NAN;
    j->w.failed_calls++;
    j->w.done++;
}

/* Remembers why the connection failed (the first reason: loupe_get_reply then says CLOSED). */
static void note_failure(conn *k) {
    if (!k->failure[0])
        snprintf(k->failure, sizeof k->failure, "%s: %s", loupe_code_name(loupe_errcode(k->c)),
                 loupe_errmsg(k->c));
}

/* The connection failed: its calls go back to the queue, the connection out of the loop. */
static void give_up(conn *k, job *j) {
    note_failure(k);
    fprintf(stderr, "score_csv_async: a connection failed: %s\n", k->failure);
    for (size_t i = 0; i < k->in_flight; i++)
        if (!again(&j->w, k->batch[i])) fail_batch(j, k->batch[i]);
    k->in_flight = 0;
    k->dead = 1;
}

/* One finished result of connection k: its prices kept, or the call sent again or failed. */
static void take_result(conn *k, job *j, const loupe_result *r) {
    size_t i = 0;
    while (i < k->in_flight && k->ids[i] != loupe_result_request_id(r)) i++;
    if (i == k->in_flight) return; /* not a call of ours: cannot happen */
    size_t b = k->batch[i], first = b * j->batch, n = batch_rows(j, b);
    k->ids[i] = k->ids[k->in_flight - 1];
    k->batch[i] = k->batch[--k->in_flight];
    int code = loupe_result_code(r);
    if (code == LOUPE_OK) {
        memcpy(j->prices + first, loupe_result_prices(r), n * sizeof(double));
        memcpy(j->lows + first, loupe_result_lows(r), n * sizeof(double));
        memcpy(j->highs + first, loupe_result_highs(r), n * sizeof(double));
        j->w.refused_rows += loupe_result_row_error_count(r);
        j->w.done++;
    } else if ((code == LOUPE_DEADLINE_EXCEEDED || code == LOUPE_UNAVAILABLE) && again(&j->w, b)) {
        /* sent again by the next top-up */
    } else {
        fprintf(stderr, "score_csv_async: rows %zu-%zu: %s: %s\n", first, first + n - 1,
                loupe_code_name(code), loupe_result_message(r));
        fail_batch(j, b);
    }
}

/* Step 1 for one connection: connecting goes on; input is read when poll() said so
 * (revents); finished results are taken; a failed connection hands its calls back. 0, or -1
 * when the run cannot go on. */
static int advance(conn *k, job *j, short revents) {
    if (k->dead) return 0;
    if (k->status != LOUPE_POLL_OK) {
        k->status = loupe_connect_poll(k->c);
        if (k->status == LOUPE_POLL_FAILED) {
            fprintf(stderr, "score_csv_async: cannot connect: %s: %s\n",
                    loupe_code_name(loupe_errcode(k->c)), loupe_errmsg(k->c));
            k->dead = 1;
            return 0;
        }
        if (k->status != LOUPE_POLL_OK) return 0;
        const loupe_session *s = loupe_client_session(k->c);
        if (s && s->max_batch_rows && (!j->batch_limit || s->max_batch_rows < j->batch_limit))
            j->batch_limit = s->max_batch_rows;
        if (j->batch_limit && j->batch > j->batch_limit) {
            fprintf(stderr, "score_csv_async: -b %zu is over the server's %zu rows per call\n",
                    j->batch, j->batch_limit);
            return -1;
        }
    }
    /* A failure here closes the connection; results finished before it still come below. */
    if ((revents & (POLLIN | POLLHUP | POLLERR)) && loupe_consume_input(k->c) != LOUPE_OK)
        note_failure(k);
    loupe_result *r;
    while ((r = loupe_get_reply(k->c)) != NULL) {
        take_result(k, j, r);
        loupe_result_free(r);
    }
    if (!loupe_connected(k->c)) give_up(k, j);
    return 0;
}

/* Step 2 for one connection: up to DEPTH calls, then flushed. 1 when it failed (its calls
 * handed back), 0, or -1 when the run cannot go on. */
static int top_up(conn *k, job *j) {
    if (k->dead || k->status != LOUPE_POLL_OK) return 0;
    const table *t = j->t;
    size_t b;
    while (k->in_flight < j->depth && take_batch(&j->w, &b)) {
        size_t first = b * j->batch;
        loupe_columns cols = {batch_rows(j, b), t->carat + first, t->cut + first,
                              t->color + first, t->clarity + first, t->depth + first,
                              t->table + first, t->x + first, t->y + first, t->z + first};
        if (loupe_append_batch_predict(k->c, &cols, NULL, &k->ids[k->in_flight]) != LOUPE_OK) {
            fprintf(stderr, "score_csv_async: %s\n", loupe_errmsg(k->c));
            return -1;
        }
        k->batch[k->in_flight++] = b;
    }
    k->more = loupe_flush(k->c);
    if (k->more >= 0) return 0;
    give_up(k, j);
    return 1;
}

int main(int argc, char **argv) {
    const char *address = "127.0.0.1:7070", *out_path = NULL, *path = NULL;
    size_t batch = 10000, depth = 2, nconns = 8;
    unsigned deadline_ms = 0;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-a") == 0 && i + 1 < argc) address = argv[++i];
        else if (strcmp(argv[i], "-b") == 0 && i + 1 < argc) batch = strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) nconns = strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "-d") == 0 && i + 1 < argc) depth = strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "-t") == 0 && i + 1 < argc) deadline_ms = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "-o") == 0 && i + 1 < argc) out_path = argv[++i];
        else if (strcmp(argv[i], "--json") == 0) json = 1;
        else if (argv[i][0] != '-' && !path) path = argv[i];
        else return usage();
    }
    if (!path || batch == 0 || depth == 0 || depth > MAX_DEPTH || nconns == 0 || nconns > MAX_CONNS)
        return usage();
    char host[256];
    const char *colon = strrchr(address, ':');
    if (!colon || colon == address || (size_t)(colon - address) >= sizeof host) return usage();
    memcpy(host, address, (size_t)(colon - address));
    host[colon - address] = '\0';

    table t;
    memset(&t, 0, sizeof t);
    double t0 = now();
    if (load(path, &t) != 0) {
        free_table(&t);
        return 1;
    }
    double loaded = now() - t0;

    loupe_options *o = loupe_options_new();
    loupe_options_set_host(o, host);
    loupe_options_set_port(o, atoi(colon + 1));
    loupe_options_set_token(o, getenv("LOUPE_TOKEN"));
    loupe_options_set_client_name(o, "score_csv_async libloupe/" LOUPE_VERSION);
    conn conns[MAX_CONNS];
    memset(conns, 0, sizeof conns);
    double t1 = now();
    for (size_t k = 0; k < nconns; k++) {
        conns[k].c = loupe_connect_start(o); /* in non-blocking mode */
        if (!conns[k].c) {
            fprintf(stderr, "score_csv_async: out of memory\n");
            return 1;
        }
        loupe_set_deadline_ms(conns[k].c, deadline_ms);
        conns[k].status = loupe_connect_poll(conns[k].c);
    }
    loupe_options_free(o);

    job j = {&t, batch, depth, 0, NULL, NULL, NULL, {0}};
    work *w = &j.w;
    w->calls = (t.rows + batch - 1) / batch;
    w->retry = malloc(w->calls * sizeof(size_t) + 1);
    w->tries = calloc(w->calls + 1, sizeof(int));
    j.prices = malloc(t.rows * sizeof(double) + 1);
    j.lows = malloc(t.rows * sizeof(double) + 1);
    j.highs = malloc(t.rows * sizeof(double) + 1);
    int rc = 0;

    struct pollfd p[MAX_CONNS];
    for (size_t k = 0; k < nconns; k++) p[k] = (struct pollfd){-1, 0, 0}; /* nothing polled yet */
    while (w->done < w->calls) {
        for (size_t k = 0; k < nconns; k++) /* 1: advance */
            if (advance(&conns[k], &j, p[k].revents) < 0) {
                rc = 1;
                goto done;
            }
        for (int handed_back = 1; handed_back;) { /* 2: top up, before any wait */
            handed_back = 0;
            for (size_t k = 0; k < nconns; k++) {
                int r = top_up(&conns[k], &j);
                if (r < 0) {
                    rc = 1;
                    goto done;
                }
                handed_back |= r;
            }
        }
        if (w->done == w->calls) break;
        int timeout = -1, live = 0; /* 3: wait */
        for (size_t k = 0; k < nconns; k++) {
            conn *x = &conns[k];
            p[k] = (struct pollfd){-1, 0, 0}; /* poll ignores a negative fd */
            if (x->dead) continue;
            live++;
            short events = x->status == LOUPE_POLL_READING   ? POLLIN
                           : x->status == LOUPE_POLL_WRITING ? POLLOUT
                                                             : (short)(POLLIN | (x->more ? POLLOUT : 0));
            p[k] = (struct pollfd){loupe_socket(x->c), events, 0};
            int next = loupe_next_timeout_ms(x->c);
            if (next >= 0 && (timeout < 0 || next < timeout)) timeout = next;
        }
        if (live == 0) {
            fprintf(stderr, "score_csv_async: no connection left\n");
            rc = 1;
            break;
        }
        if (poll(p, (nfds_t)nconns, timeout) < 0) {
            perror("poll");
            rc = 1;
            break;
        }
    }
done:;
    double scored = now() - t1;
    if (rc == 0 && out_path) {
        FILE *out = fopen(out_path, "w");
        if (!out) {
            perror(out_path);
            rc = 1;
        } else {
            fprintf(out, "row,price,low,high\n");
            for (size_t i = 0; i < t.rows; i++)
                fprintf(out, "%zu,%.2f,%.2f,%.2f\n", i, j.prices[i], j.lows[i], j.highs[i]);
            fclose(out);
        }
    }
    if (rc == 0) {
        double rate = (double)t.rows / scored;
        if (json)
            printf("{\"rows\": %zu, \"batch\": %zu, \"connections\": %zu, \"depth\": %zu, "
                   "\"calls\": %zu, \"failed_calls\": %zu, \"retried_calls\": %zu, "
                   "\"refused_rows\": %zu, \"load_seconds\": %.3f, \"seconds\": %.3f, "
                   "\"rows_per_second\": %.0f}\n",
                   t.rows, batch, nconns, depth, w->calls, w->failed_calls, w->retried,
                   w->refused_rows, loaded, scored, rate);
        else
            printf("%s: %zu rows read in %.2f s; scored in %.2f s over %zu connections from one "
                   "poll loop (%zu calls of %zu rows, %zu in flight on each): %.0f rows/s; "
                   "%zu rows refused, %zu calls failed, %zu sent again\n",
                   path, t.rows, loaded, scored, nconns, w->calls, batch, depth, rate,
                   w->refused_rows, w->failed_calls, w->retried);
    }
    for (size_t k = 0; k < nconns; k++) loupe_free(conns[k].c);
    free(j.prices), free(j.lows), free(j.highs), free(w->retry), free(w->tries);
    free_table(&t);
    return rc;
}
