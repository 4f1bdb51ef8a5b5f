/* The frame reader (reader.h). */
#include "reader.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loupe.h"

/* The least room lp_reader_space offers, and the first allocation. */
#define LP_READ_CHUNK (64u * 1024u)

void lp_reader_init(lp_reader *r, uint32_t max_frame, int requests) {
    memset(r, 0, sizeof *r);
    r->max_frame = max_frame;
    r->requests = requests;
}

void lp_reader_free(lp_reader *r) {
    free(r->buf);
    r->buf = NULL;
    r->cap = r->start = r->end = 0;
}

void lp_reader_reset(lp_reader *r) {
    r->start = r->end = 0;
    r->err = 0;
    r->errstr[0] = '\0';
}

size_t lp_reader_buffered(const lp_reader *r) { return r->end - r->start; }

uint32_t lp_reader_pending_length(const lp_reader *r) {
    return r->end - r->start >= LP_LENGTH_SIZE ? lp_get32(r->buf + r->start) : 0;
}

__attribute__((format(printf, 3, 4))) static int fail(lp_reader *r, int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    r->err = code;
    vsnprintf(r->errstr, sizeof r->errstr, fmt, ap);
    va_end(ap);
    return -1;
}

/* Makes room for `want` more bytes at the end: moves the unconsumed bytes to the front, then
 * grows the buffer geometrically. 0, or -1 when out of memory. */
static int reserve(lp_reader *r, size_t want) {
    size_t used = r->end - r->start;
    if (r->start > 0 && (used == 0 || r->cap - r->end < want)) {
        memmove(r->buf, r->buf + r->start, used);
        r->start = 0;
        r->end = used;
    }
    if (r->cap - r->end >= want) return 0;
    size_t cap = r->cap ? r->cap : LP_READ_CHUNK;
    while (cap - r->end < want) cap *= 2;
    uint8_t *buf = realloc(r->buf, cap);
    if (!buf) return -1;
    r->buf = buf;
    r->cap = cap;
    return 0;
}

int lp_reader_feed(lp_reader *r, const uint8_t *data, size_t n) {
    if (r->err) return r->err;
    if (n == 0) return 0;
    if (reserve(r, n) != 0) return LOUPE_ERR_NOMEM;
    memcpy(r->buf + r->end, data, n);
    r->end += n;
    return 0;
}

uint8_t *lp_reader_space(lp_reader *r, size_t *avail) {
    /* Enough for the rest of the frame being received, but no more than the data so far
     * justifies: a peer announcing a 60 MB frame and sending 10 bytes gets 64 KiB. */
    size_t used = r->end - r->start;
    size_t want = LP_READ_CHUNK;
    uint32_t length = lp_reader_pending_length(r);
    if (length > 0 && length <= r->max_frame) {
        size_t rest = (size_t)length + LP_LENGTH_SIZE - used;
        size_t grown = used > want ? used : want;
        if (rest > want) want = rest < grown ? rest : grown;
    }
    if (reserve(r, want) != 0) return NULL;
    *avail = r->cap - r->end;
    return r->buf + r->end;
}

void lp_reader_commit(lp_reader *r, size_t n) { r->end += n; }

int lp_reader_next(lp_reader *r, lp_frame *out) {
    if (r->err) return -1;
    size_t used = r->end - r->start;
    if (used < LP_LENGTH_SIZE) return 0;
    const uint8_t *p = r->buf + r->start;
    uint32_t length = lp_get32(p);
    if (length < LP_HEADER_SIZE)
        return fail(r, LOUPE_ERR_PROTOCOL, "frame length %lu is below the 16-byte header",
                    (unsigned long)length);
    if (length > r->max_frame)
        return fail(r, LOUPE_ERR_REPLY_TOO_LARGE,
                    "frame length %lu bytes exceeds the maximum reply size of %lu bytes",
                    (unsigned long)length, (unsigned long)r->max_frame);
    if (used >= 5 && p[4] != LP_VERSION)
        return fail(r, LOUPE_ERR_PROTOCOL, "frame version %u: this client speaks version %u",
                    (unsigned)p[4], (unsigned)LP_VERSION);
    if (used >= 6) {
        uint8_t flags = p[5];
        int ok = r->requests ? flags == LP_FLAG_REQUEST
                             : (flags == LP_FLAG_RESPONSE ||
                                flags == (LP_FLAG_RESPONSE | LP_FLAG_ERROR));
        if (!ok)
            return fail(r, LOUPE_ERR_PROTOCOL, "frame flags 0x%02x: expected %s", (unsigned)flags,
                        r->requests ? "0x01 (request)" : "0x02 (reply) or 0x06 (error reply)");
    }
    if (used < (size_t)length + LP_LENGTH_SIZE) return 0;
    out->length = length;
    out->version = p[4];
    out->flags = p[5];
    out->method = lp_get16(p + 6);
    out->request_id = lp_get32(p + 8);
    out->row_count = lp_get32(p + 12);
    out->deadline_ms = lp_get32(p + 16);
    out->payload = p + LP_PREFIX_SIZE;
    out->payload_len = length - LP_HEADER_SIZE;
    r->start += (size_t)length + LP_LENGTH_SIZE;
    if (r->start == r->end) r->start = r->end = 0;
    return 1;
}

void lp_write_prefix(uint8_t *p, size_t payload_len, uint8_t flags, uint16_t method,
                     uint32_t request_id, uint32_t row_count, uint32_t deadline_ms) {
    lp_put32(p, (uint32_t)(payload_len + LP_HEADER_SIZE));
    p[4] = LP_VERSION;
    p[5] = flags;
    lp_put16(p + 6, method);
    lp_put32(p + 8, request_id);
    lp_put32(p + 12, row_count);
    lp_put32(p + 16, deadline_ms);
}
