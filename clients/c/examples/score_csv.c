/*
 * score_csv: prices every diamond of a CSV file through one connection, pipelined, and
 * prints the throughput.
 *
 *   LOUPE_TOKEN=... score_csv [-a HOST:PORT] [-b ROWS] [-d DEPTH] [-o OUT.csv] [--json] FILE.csv
 *
 *   -a  the server or gateway (default 127.0.0.1:7070)
 *   -b  rows per BatchPredict call (default 10000; at most the server's max_batch_rows)
 *   -d  calls in flight on the connection (default 8)
 *   -o  write row,price,low,high per input row (NaN for rows the server refused)
 *   --json  print the numbers as one JSON object
 *
 * The CSV needs a header naming carat, cut, color, clarity, depth, table, x, y, z (any
 * order, other columns ignored, fields optionally quoted). Unreadable values are sent as
 * they are (NaN, grade 0) so that the server reports them as row errors: nothing is
 * silently dropped. The columns are read into memory first; each call sends a slice of
 * them straight from those arrays (no copy, no per-row allocation).
 */
#include <loupe.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"

static int usage(void) {
    fprintf(stderr, "usage: score_csv [-a HOST:PORT] [-b ROWS] [-d DEPTH] [-o OUT.csv] [--json] "
                    "FILE.csv\n(the token comes from $LOUPE_TOKEN)\n");
    return 2;
}

int main(int argc, char **argv) {
    const char *address = "127.0.0.1:7070", *out_path = NULL, *path = NULL;
    size_t batch = 10000, depth = 8;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-a") == 0 && i + 1 < argc) address = argv[++i];
        else if (strcmp(argv[i], "-b") == 0 && i + 1 < argc) batch = strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "-d") == 0 && i + 1 < argc) depth = strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "-o") == 0 && i + 1 < argc) out_path = argv[++i];
        else if (strcmp(argv[i], "--json") == 0) json = 1;
        else if (argv[i][0] != '-' && !path) path = argv[i];
        else return usage();
    }
    if (!path || batch == 0 || depth == 0) return usage();
    char host[256];
    const char *colon = strrchr(address, ':');
    if (!colon || colon == address || (size_t)(colon - address) >= sizeof host) return usage();
    memcpy(host, address, (size_t)(colon - address));
    host[colon - address] = '\0';

    table t;
    memset(&t, 0, sizeof t);
    double t0 = now();
    if (load(path, &t) != 0) { free_table(&t); return 1; }
    double loaded = now() - t0;

    loupe_options *o = loupe_options_new();
    loupe_options_set_host(o, host);
    loupe_options_set_port(o, atoi(colon + 1));
    loupe_options_set_token(o, getenv("LOUPE_TOKEN"));
    loupe_options_set_client_name(o, "score_csv libloupe/" LOUPE_VERSION);
    loupe_client *c = loupe_connect(o);
    loupe_options_free(o);
    if (!c || loupe_errcode(c) != LOUPE_OK) {
        fprintf(stderr, "score_csv: %s\n", c ? loupe_errmsg(c) : "out of memory");
        loupe_free(c);
        free_table(&t);
        return 1;
    }
    const loupe_session *s = loupe_client_session(c);
    if (s && s->max_batch_rows && batch > s->max_batch_rows) batch = s->max_batch_rows;

    size_t calls = (t.rows + batch - 1) / batch;
    double *prices = malloc(t.rows * sizeof(double) + 1), *lows = malloc(t.rows * sizeof(double) + 1),
           *highs = malloc(t.rows * sizeof(double) + 1);
    uint32_t *ids = malloc(calls * sizeof(uint32_t) + 1);
    size_t sent = 0, received = 0, refused_rows = 0, failed_calls = 0;
    int rc = 0;
    double t1 = now();
    while (received < calls) {
        while (sent < calls && sent - received < depth) {
            size_t first = sent * batch, n = t.rows - first < batch ? t.rows - first : batch;
            loupe_columns cols = {n, t.carat + first, t.cut + first, t.color + first,
                                  t.clarity + first, t.depth + first, t.table + first,
                                  t.x + first, t.y + first, t.z + first};
            if (loupe_append_batch_predict(c, &cols, NULL, &ids[sent]) != LOUPE_OK) {
                fprintf(stderr, "score_csv: %s\n", loupe_errmsg(c));
                rc = 1;
                goto done;
            }
            sent++;
        }
        loupe_result *r = loupe_get_reply(c);
        if (!r) {
            fprintf(stderr, "score_csv: %s: %s\n", loupe_code_name(loupe_errcode(c)),
                    loupe_errmsg(c));
            rc = 1;
            goto done;
        }
        /* Ids are handed out in order, so the call's index is its distance from the first. */
        size_t k = loupe_result_request_id(r) - ids[0];
        size_t first = k * batch, n = t.rows - first < batch ? t.rows - first : batch;
        if (k >= sent || ids[k] != loupe_result_request_id(r)) {
            fprintf(stderr, "score_csv: a reply to an unknown call\n");
            loupe_result_free(r);
            rc = 1;
            goto done;
        }
        if (loupe_result_code(r) == LOUPE_OK) {
            memcpy(prices + first, loupe_result_prices(r), n * sizeof(double));
            memcpy(lows + first, loupe_result_lows(r), n * sizeof(double));
            memcpy(highs + first, loupe_result_highs(r), n * sizeof(double));
            refused_rows += loupe_result_row_error_count(r);
        } else {
            fprintf(stderr, "score_csv: rows %zu-%zu: %s: %s\n", first, first + n - 1,
                    loupe_code_name(loupe_result_code(r)), loupe_result_message(r));
            for (size_t i = first; i < first + n; i++) prices[i] = lows[i] = highs[i] = NAN;
            failed_calls++;
        }
        loupe_result_free(r);
        received++;
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
            printf("{\"rows\": %zu, \"batch\": %zu, \"depth\": %zu, \"calls\": %zu, "
                   "\"failed_calls\": %zu, \"refused_rows\": %zu, \"load_seconds\": %.3f, "
                   "\"seconds\": %.3f, \"rows_per_second\": %.0f}\n",
                   t.rows, batch, depth, calls, failed_calls, refused_rows, loaded, scored, rate);
        else
            printf("%s: %zu rows read in %.2f s; scored in %.2f s over one connection "
                   "(%zu calls of %zu rows, %zu in flight): %.0f rows/s; %zu rows refused, "
                   "%zu calls failed\n",
                   path, t.rows, loaded, scored, calls, batch, depth, rate, refused_rows,
                   failed_calls);
    }
    free(prices), free(lows), free(highs), free(ids);
    loupe_free(c);
    free_table(&t);
    return rc;
}
