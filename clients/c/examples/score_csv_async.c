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
 * The loop, per connection: while connecting, wait for what loupe_connect_poll asks; then
 * always POLLIN (loupe_consume_input when readable) and POLLOUT while loupe_flush said 1;
 * after each wake-up take every finished result (loupe_get_reply until NULL) and top the
 * connection up to DEPTH calls. poll() never waits past loupe_next_timeout_ms, so connect
 * timeouts and deadlines fire on time. A connection that fails hands its calls to the others.
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

/* The connection failed: its calls go back to the queue, the connection out of the loop. */
static void give_up(conn *k, work *w, double *prices, size_t rows, size_t batch_rows) {
    fprintf(stderr, "score_csv_async: a connection failed: %s: %s\n",
            loupe_code_name(loupe_errcode(k->c)), loupe_errmsg(k->c));
    for (size_t j = 0; j < k->in_flight; j++) {
        size_t b = k->batch[j];
        if (!again(w, b)) {
            for (size_t i = b * batch_rows; i < rows && i < (b + 1) * batch_rows; i++)
                prices[i] = NAN;
            w->failed_calls++;
            w->done++;
        }
    }
    k->in_flight = 0;
    k->dead = 1;
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

    work w;
    memset(&w, 0, sizeof w);
    w.calls = (t.rows + batch - 1) / batch;
    w.retry = malloc(w.calls * sizeof(size_t) + 1);
    w.tries = calloc(w.calls + 1, sizeof(int));
    size_t batch_limit = 0; /* the server's max_batch_rows, once a connection says it */
    double *prices = malloc(t.rows * sizeof(double) + 1), *lows = malloc(t.rows * sizeof(double) + 1),
           *highs = malloc(t.rows * sizeof(double) + 1);
    int rc = 0;

    while (w.done < w.calls) {
        struct pollfd p[MAX_CONNS];
        int timeout = -1, live = 0;
        for (size_t k = 0; k < nconns; k++) {
            conn *x = &conns[k];
            p[k] = (struct pollfd){-1, 0, 0}; /* poll ignores a negative fd */
            if (x->dead) continue;
            if (x->status == LOUPE_POLL_FAILED) {
                fprintf(stderr, "score_csv_async: cannot connect: %s: %s\n",
                        loupe_code_name(loupe_errcode(x->c)), loupe_errmsg(x->c));
                x->dead = 1;
                continue;
            }
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
        for (size_t k = 0; k < nconns; k++) {
            conn *x = &conns[k];
            if (x->dead) continue;
            if (x->status != LOUPE_POLL_OK) {
                /* Connecting: poll again when the socket is ready or a timeout passed. */
                x->status = loupe_connect_poll(x->c);
                if (x->status != LOUPE_POLL_OK) continue;
                const loupe_session *s = loupe_client_session(x->c);
                if (s && s->max_batch_rows && (!batch_limit || s->max_batch_rows < batch_limit))
                    batch_limit = s->max_batch_rows;
                if (batch_limit && batch > batch_limit) {
                    fprintf(stderr, "score_csv_async: -b %zu is over the server's %zu rows per call\n",
                            batch, batch_limit);
                    rc = 1;
                    goto done;
                }
            }
            if ((p[k].revents & (POLLIN | POLLHUP | POLLERR)) &&
                loupe_consume_input(x->c) != LOUPE_OK) {
                /* The connection failed; results that finished before it still come below. */
            }
            loupe_result *r;
            while ((r = loupe_get_reply(x->c)) != NULL) {
                size_t j = 0;
                while (j < x->in_flight && x->ids[j] != loupe_result_request_id(r)) j++;
                if (j == x->in_flight) { /* not a call of ours: cannot happen */
                    loupe_result_free(r);
                    continue;
                }
                size_t b = x->batch[j], first = b * batch;
                size_t n = t.rows - first < batch ? t.rows - first : batch;
                x->ids[j] = x->ids[x->in_flight - 1];
                x->batch[j] = x->batch[--x->in_flight];
                int code = loupe_result_code(r);
                if (code == LOUPE_OK) {
                    memcpy(prices + first, loupe_result_prices(r), n * sizeof(double));
                    memcpy(lows + first, loupe_result_lows(r), n * sizeof(double));
                    memcpy(highs + first, loupe_result_highs(r), n * sizeof(double));
                    w.refused_rows += loupe_result_row_error_count(r);
                    w.done++;
                } else if ((code == LOUPE_DEADLINE_EXCEEDED || code == LOUPE_UNAVAILABLE) &&
                           again(&w, b)) {
                    /* sent again below */
                } else {
                    fprintf(stderr, "score_csv_async: rows %zu-%zu: %s: %s\n", first,
                            first + n - 1, loupe_code_name(code), loupe_result_message(r));
                    for (size_t i = first; i < first + n; i++) prices[i] = lows[i] = highs[i] = NAN;
                    w.failed_calls++;
                    w.done++;
                }
                loupe_result_free(r);
            }
            if (!loupe_connected(x->c)) {
                give_up(x, &w, prices, t.rows, batch);
                continue;
            }
            size_t b;
            while (x->in_flight < depth && take_batch(&w, &b)) {
                size_t first = b * batch, n = t.rows - first < batch ? t.rows - first : batch;
                loupe_columns cols = {n, t.carat + first, t.cut + first, t.color + first,
                                      t.clarity + first, t.depth + first, t.table + first,
                                      t.x + first, t.y + first, t.z + first};
                if (loupe_append_batch_predict(x->c, &cols, NULL, &x->ids[x->in_flight]) != LOUPE_OK) {
                    fprintf(stderr, "score_csv_async: %s\n", loupe_errmsg(x->c));
                    rc = 1;
                    goto done;
                }
                x->batch[x->in_flight++] = b;
            }
            x->more = loupe_flush(x->c);
            if (x->more < 0) give_up(x, &w, prices, t.rows, batch);
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
                fprintf(out, "%zu,%.2f,%.2f,%.2f\n", i, prices[i], lows[i], highs[i]);
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
                   t.rows, batch, nconns, depth, w.calls, w.failed_calls, w.retried,
                   w.refused_rows, loaded, scored, rate);
        else
            printf("%s: %zu rows read in %.2f s; scored in %.2f s over %zu connections from one "
                   "poll loop (%zu calls of %zu rows, %zu in flight on each): %.0f rows/s; "
                   "%zu rows refused, %zu calls failed, %zu sent again\n",
                   path, t.rows, loaded, scored, nconns, w.calls, batch, depth, rate,
                   w.refused_rows, w.failed_calls, w.retried);
    }
    for (size_t k = 0; k < nconns; k++) loupe_free(conns[k].c);
    free(prices), free(lows), free(highs), free(w.retry), free(w.tries);
    free_table(&t);
    return rc;
}
