/*
 * The frame reader, fed in chunks of every size: the frames that come out are the frames
 * that went in, whatever the chunking, and the reader ends clean (nothing buffered).
 * Errors are caught as early as the bytes allow, and a huge announced length allocates
 * nothing until its bytes arrive.
 */
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "loupe.h"
#include "reader.h"

typedef struct frame_spec {
    uint8_t flags;
    uint16_t method;
    uint32_t id, rows;
    size_t payload_len;
} frame_spec;

/* Writes the frames into buf (payload byte j of frame i is (i * 31 + j) & 0xff). */
static size_t build(uint8_t *buf, const frame_spec *specs, size_t n) {
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        lp_write_prefix(buf + at, specs[i].payload_len, specs[i].flags, specs[i].method,
                        specs[i].id, specs[i].rows, 0);
        at += LP_PREFIX_SIZE;
        for (size_t j = 0; j < specs[i].payload_len; j++) buf[at + j] = (uint8_t)(i * 31 + j);
        at += specs[i].payload_len;
    }
    return at;
}

static int same(const lp_frame *f, const frame_spec *s, size_t i) {
    if (f->flags != s->flags || f->method != s->method || f->request_id != s->id ||
        f->row_count != s->rows || f->payload_len != s->payload_len ||
        f->length != s->payload_len + LP_HEADER_SIZE || f->version != 1)
        return 0;
    for (size_t j = 0; j < s->payload_len; j++)
        if (f->payload[j] != (uint8_t)(i * 31 + j)) return 0;
    return 1;
}

/* Feeds `stream` in chunks of `chunk` bytes (0: random sizes), through feed or through
 * space/commit; checks every frame and that the reader ends clean. 1 if all is well. */
static int run(const uint8_t *stream, size_t len, const frame_spec *specs, size_t n,
               size_t chunk, int direct, unsigned *seed) {
    lp_reader r;
    lp_reader_init(&r, 1u << 24, 0);
    size_t got = 0, at = 0;
    int ok = 1;
    while (at < len && ok) {
        size_t k = chunk ? chunk : 1 + (size_t)(rand_r(seed) % 9000);
        if (k > len - at) k = len - at;
        if (direct) {
            size_t done = 0;
            while (done < k) {
                size_t avail = 0;
                uint8_t *space = lp_reader_space(&r, &avail);
                if (!space || avail == 0) { ok = 0; break; }
                size_t m = avail < k - done ? avail : k - done;
                memcpy(space, stream + at + done, m);
                lp_reader_commit(&r, m);
                done += m;
            }
        } else if (lp_reader_feed(&r, stream + at, k) != 0) {
            ok = 0;
        }
        at += k;
        lp_frame f;
        int rc;
        while ((rc = lp_reader_next(&r, &f)) == 1) {
            if (got >= n || !same(&f, &specs[got], got)) ok = 0;
            got++;
        }
        if (rc < 0) ok = 0;
    }
    if (got != n || lp_reader_buffered(&r) != 0) ok = 0;
    lp_reader_free(&r);
    return ok;
}

static void test_every_chunk_size(void) {
    TEST("small frames, every chunk size, both ways of feeding");
    frame_spec specs[] = {
        {LP_FLAG_RESPONSE, 2, 1, 0, 0},                    /* empty payload: 20 bytes */
        {LP_FLAG_RESPONSE, 3, 2, 0, 48},                   /* a Predict reply's size */
        {LP_FLAG_RESPONSE | LP_FLAG_ERROR, 3, 3, 0, 39},   /* an error reply */
        {LP_FLAG_RESPONSE, 4, 0xfffffffe, 7, 1},
        {LP_FLAG_RESPONSE | LP_FLAG_ERROR, 0, 0, 0, 5},    /* connection-level error */
        {LP_FLAG_RESPONSE, 0xffff, 9, 0xffffffff, 130},
    };
    size_t n = sizeof specs / sizeof specs[0];
    uint8_t buf[1024];
    size_t len = build(buf, specs, n);
    int all = 1;
    for (size_t chunk = 1; chunk <= len; chunk++) {
        all &= run(buf, len, specs, n, chunk, 0, NULL);
        all &= run(buf, len, specs, n, chunk, 1, NULL);
    }
    CHECK(all);
}

static void test_large_frames(void) {
    TEST("frames larger than the read chunk, chunked and random");
    frame_spec specs[] = {
        {LP_FLAG_RESPONSE, 4, 1, 8000, 200000}, /* an 8k-row BatchPredict reply */
        {LP_FLAG_RESPONSE, 3, 2, 0, 48},
        {LP_FLAG_RESPONSE, 4, 3, 3000, 65536 - 20},
        {LP_FLAG_RESPONSE, 4, 4, 3000, 65536},
        {LP_FLAG_RESPONSE, 4, 5, 3000, 65537},
    };
    size_t n = sizeof specs / sizeof specs[0];
    size_t total = 0;
    for (size_t i = 0; i < n; i++) total += LP_PREFIX_SIZE + specs[i].payload_len;
    uint8_t *buf = malloc(total);
    size_t len = build(buf, specs, n);
    CHECK_INT(len, total);
    size_t chunks[] = {1, 2, 3, 19, 20, 21, 4095, 4096, 65535, 65536, 65537, 1000003, 0};
    unsigned seed = 42;
    int all = 1;
    for (size_t i = 0; i < sizeof chunks / sizeof chunks[0]; i++) {
        all &= run(buf, len, specs, n, chunks[i] ? chunks[i] : len, 0, &seed);
        all &= run(buf, len, specs, n, chunks[i] ? chunks[i] : len, 1, &seed);
    }
    for (int i = 0; i < 8; i++) {
        all &= run(buf, len, specs, n, 0, i & 1, &seed);
    }
    CHECK(all);
    free(buf);
}

/* Feeds bytes one at a time; returns how many went in before the reader reported an error
 * (0 if it never did), with the error code in *code. */
static size_t error_after(const uint8_t *bytes, size_t len, uint32_t max, int requests, int *code) {
    lp_reader r;
    lp_reader_init(&r, max, requests);
    size_t at = 0;
    *code = 0;
    for (; at < len; at++) {
        lp_reader_feed(&r, bytes + at, 1);
        lp_frame f;
        if (lp_reader_next(&r, &f) < 0) {
            *code = r.err;
            break;
        }
    }
    lp_reader_free(&r);
    return *code ? at + 1 : 0;
}

static void test_errors(void) {
    uint8_t b[64];
    int code;

    TEST("length below 16: refused once the 4 length bytes are in");
    memset(b, 0, sizeof b);
    lp_write_prefix(b, 0, LP_FLAG_RESPONSE, 2, 1, 0, 0);
    lp_put32(b, 15);
    CHECK_INT(error_after(b, sizeof b, 1024, 0, &code), 4);
    CHECK_INT(code, LOUPE_ERR_PROTOCOL);

    TEST("length above the maximum: refused before buffering any of it");
    lp_write_prefix(b, 0, LP_FLAG_RESPONSE, 2, 1, 0, 0);
    lp_put32(b, 1025);
    CHECK_INT(error_after(b, sizeof b, 1024, 0, &code), 4);
    CHECK_INT(code, LOUPE_ERR_REPLY_TOO_LARGE);
    lp_put32(b, 1024 + LP_HEADER_SIZE); /* at the maximum: fine */
    CHECK_INT(error_after(b, sizeof b, 1024 + LP_HEADER_SIZE, 0, &code), 0);

    TEST("version other than 1: refused as soon as its byte arrives");
    lp_write_prefix(b, 10, LP_FLAG_RESPONSE, 2, 1, 0, 0);
    b[4] = 2;
    CHECK_INT(error_after(b, sizeof b, 1024, 0, &code), 5);
    CHECK_INT(code, LOUPE_ERR_PROTOCOL);
    b[4] = 0;
    CHECK_INT(error_after(b, sizeof b, 1024, 0, &code), 5);

    TEST("flags: replies are 0x02 or 0x06; anything else is refused at its byte");
    uint8_t bad[] = {0x00, 0x01, 0x03, 0x04, 0x0a, 0x0e, 0x12, 0x42, 0x82, 0xff};
    for (size_t i = 0; i < sizeof bad; i++) {
        lp_write_prefix(b, 10, bad[i], 2, 1, 0, 0);
        CHECK_INT(error_after(b, sizeof b, 1024, 0, &code), 6);
        CHECK_INT(code, LOUPE_ERR_PROTOCOL);
    }
    lp_write_prefix(b, 10, 0x06, 2, 1, 0, 0);
    CHECK_INT(error_after(b, 30, 1024, 0, &code), 0);
    lp_write_prefix(b, 10, 0x02, 2, 1, 0, 0);
    CHECK_INT(error_after(b, 30, 1024, 1, &code), 6); /* a reply where requests are expected */
    lp_write_prefix(b, 10, 0x01, 2, 1, 0, 0);
    CHECK_INT(error_after(b, 30, 1024, 1, &code), 0);

    TEST("errors are sticky");
    lp_reader r;
    lp_reader_init(&r, 1024, 0);
    lp_write_prefix(b, 0, 0x09, 2, 1, 0, 0);
    lp_reader_feed(&r, b, 20);
    lp_frame f;
    CHECK_INT(lp_reader_next(&r, &f), -1);
    CHECK_HAS(r.errstr, "0x09");
    CHECK(lp_reader_feed(&r, b, 20) != 0);
    CHECK_INT(lp_reader_next(&r, &f), -1);
    lp_reader_reset(&r);
    lp_write_prefix(b, 0, 0x02, 2, 1, 0, 0);
    lp_reader_feed(&r, b, 20);
    CHECK_INT(lp_reader_next(&r, &f), 1);
    lp_reader_free(&r);
}

static void test_partial_and_memory(void) {
    TEST("a partial frame stays buffered; the reader is not clean");
    uint8_t b[40];
    lp_write_prefix(b, 20, LP_FLAG_RESPONSE, 3, 5, 0, 0);
    memset(b + 20, 7, 20);
    lp_reader r;
    lp_reader_init(&r, 1 << 20, 0);
    lp_reader_feed(&r, b, 39);
    lp_frame f;
    CHECK_INT(lp_reader_next(&r, &f), 0);
    CHECK_INT(lp_reader_buffered(&r), 39);
    CHECK_INT(lp_reader_pending_length(&r), 36);
    lp_reader_feed(&r, b + 39, 1);
    CHECK_INT(lp_reader_next(&r, &f), 1);
    CHECK_INT(f.payload_len, 20);
    CHECK_INT(lp_reader_buffered(&r), 0);
    lp_reader_free(&r);

    TEST("an announced 15 MB frame allocates only as its bytes arrive");
    lp_reader_init(&r, 16u << 20, 0);
    lp_write_prefix(b, 15u << 20, LP_FLAG_RESPONSE, 4, 1, 0, 0);
    lp_reader_feed(&r, b, 20);
    size_t avail = 0;
    CHECK(lp_reader_space(&r, &avail) != NULL);
    CHECK(r.cap <= 128u * 1024u);
    /* As data comes, the room offered grows geometrically, never past the frame. */
    size_t received = 20, rounds = 0;
    while (received < (15u << 20) + 20) {
        uint8_t *space = lp_reader_space(&r, &avail);
        size_t need = (15u << 20) + 20 - received;
        size_t m = avail < need ? avail : need;
        memset(space, 1, m);
        lp_reader_commit(&r, m);
        received += m;
        rounds++;
        CHECK(r.cap <= 2 * received + 128u * 1024u);
    }
    CHECK(rounds < 20);
    CHECK_INT(lp_reader_next(&r, &f), 1);
    CHECK_INT(f.payload_len, 15u << 20);
    lp_reader_free(&r);
}

int main(void) {
    test_every_chunk_size();
    test_large_frames();
    test_errors();
    test_partial_and_memory();
    return check_done("test_reader");
}
