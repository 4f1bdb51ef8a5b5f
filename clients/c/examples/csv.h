/*
 * csv.h: reads a diamonds CSV into columns, for the score_csv examples (a header naming
 * carat, cut, color, clarity, depth, table, x, y, z in any order, other columns ignored,
 * fields optionally quoted). Unreadable values are kept as they are (NaN, grade 0) so that
 * the server reports them as row errors: nothing is silently dropped.
 */
#ifndef LOUPE_EXAMPLES_CSV_H
#define LOUPE_EXAMPLES_CSV_H

#include <loupe.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct table {
    size_t rows, cap;
    double *carat, *depth, *table, *x, *y, *z;
    int *cut, *color, *clarity;
} table;

static int grow(table *t) {
    size_t cap = t->cap ? t->cap * 2 : 65536;
    double **d[] = {&t->carat, &t->depth, &t->table, &t->x, &t->y, &t->z};
    int **e[] = {&t->cut, &t->color, &t->clarity};
    for (int i = 0; i < 6; i++) {
        double *p = realloc(*d[i], cap * sizeof(double));
        if (!p) return -1;
        *d[i] = p;
    }
    for (int i = 0; i < 3; i++) {
        int *p = realloc(*e[i], cap * sizeof(int));
        if (!p) return -1;
        *e[i] = p;
    }
    t->cap = cap;
    return 0;
}

static void free_table(table *t) {
    free(t->carat), free(t->depth), free(t->table), free(t->x), free(t->y), free(t->z);
    free(t->cut), free(t->color), free(t->clarity);
}

/* Splits one CSV record in place (quotes, "" escapes); returns the field count and leaves
 * *p at the next record. */
static int split(char **p, char *end, char **fields, int max) {
    int n = 0;
    char *s = *p;
    for (;;) {
        char *out = s, *start = s;
        if (s < end && *s == '"') {
            s++;
            while (s < end) {
                if (*s == '"') {
                    if (s + 1 < end && s[1] == '"') { *out++ = '"'; s += 2; continue; }
                    s++;
                    break;
                }
                *out++ = *s++;
            }
            while (s < end && *s != ',' && *s != '\n' && *s != '\r') s++;
        } else {
            while (s < end && *s != ',' && *s != '\n' && *s != '\r') s++;
            out = s;
        }
        char sep = s < end ? *s : '\n';
        *out = '\0';
        if (n < max) fields[n] = start;
        n++;
        if (s < end) s++;
        if (sep != ',') {
            if (sep == '\r' && s < end && *s == '\n') s++;
            break;
        }
    }
    *p = s;
    return n;
}

static double number(const char *s) {
    char *e;
    double v = strtod(s, &e);
    return e == s || *e ? NAN : v;
}

/* Reads the file into columns. 0, or -1 with a message printed. */
static int load(const char *path, table *t) {
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); return -1; }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)size + 1);
    if (!buf || fread(buf, 1, (size_t)size, f) != (size_t)size) {
        fprintf(stderr, "%s: cannot read\n", path);
        fclose(f);
        free(buf);
        return -1;
    }
    fclose(f);
    char *p = buf, *end = buf + size;
    *end = '\0';
    if (size >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0) p += 3; /* BOM */
    static const char *const names[9] = {"carat", "cut", "color", "clarity", "depth",
                                         "table", "x",   "y",     "z"};
    int at[9];
    for (int i = 0; i < 9; i++) at[i] = -1;
    char *fields[64];
    int n = split(&p, end, fields, 64);
    for (int j = 0; j < n && j < 64; j++)
        for (int i = 0; i < 9; i++)
            if (strcasecmp(fields[j], names[i]) == 0) at[i] = j;
    for (int i = 0; i < 9; i++)
        if (at[i] < 0) {
            fprintf(stderr, "%s: the header has no column \"%s\"\n", path, names[i]);
            free(buf);
            return -1;
        }
    int need = 0;
    for (int i = 0; i < 9; i++) need = at[i] + 1 > need ? at[i] + 1 : need;
    while (p < end) {
        n = split(&p, end, fields, 64);
        if (n == 1 && fields[0][0] == '\0') continue; /* blank line */
        if (t->rows == t->cap && grow(t) != 0) { free(buf); return -1; }
        size_t r = t->rows++;
        if (n < need) { /* too short: every value missing, the server says so */
            t->carat[r] = t->depth[r] = t->table[r] = t->x[r] = t->y[r] = t->z[r] = NAN;
            t->cut[r] = t->color[r] = t->clarity[r] = 0;
            continue;
        }
        t->carat[r] = number(fields[at[0]]);
        t->cut[r] = loupe_parse_cut(fields[at[1]]);
        t->color[r] = loupe_parse_color(fields[at[2]]);
        t->clarity[r] = loupe_parse_clarity(fields[at[3]]);
        t->depth[r] = number(fields[at[4]]);
        t->table[r] = number(fields[at[5]]);
        t->x[r] = number(fields[at[6]]);
        t->y[r] = number(fields[at[7]]);
        t->z[r] = number(fields[at[8]]);
    }
    free(buf);
    return 0;
}

#endif
