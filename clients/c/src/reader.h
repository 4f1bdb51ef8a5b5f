/*
 * The frame reader: turns the bytes of a connection, in chunks of any size, into frames
 * (docs/PROTOCOL.md, "Bytes on the wire" and "Frame decoding rules"). It validates as early
 * as the bytes allow: the length as soon as its 4 bytes are in (before buffering the rest),
 * the version and the flags as soon as their byte is. It never allocates more than the data
 * received so far calls for (geometric growth), however large a length the peer announces.
 * No I/O: the client reads into lp_reader_space and commits, tests and the fuzzer feed it.
 */
#ifndef LOUPE_READER_H
#define LOUPE_READER_H

#include <stddef.h>
#include <stdint.h>

#define LP_LENGTH_SIZE 4
#define LP_HEADER_SIZE 16
#define LP_PREFIX_SIZE (LP_LENGTH_SIZE + LP_HEADER_SIZE)
#define LP_VERSION 1

enum { LP_FLAG_REQUEST = 0x01, LP_FLAG_RESPONSE = 0x02, LP_FLAG_ERROR = 0x04, LP_FLAG_COMPRESSED = 0x08 };

/** One frame; `payload` points into the reader's buffer, valid until the next reader call. */
typedef struct lp_frame {
    uint32_t length; /* the length field: 16 + payload_len */
    uint8_t version;
    uint8_t flags;
    uint16_t method;
    uint32_t request_id;
    uint32_t row_count;
    uint32_t deadline_ms;
    const uint8_t *payload;
    size_t payload_len;
} lp_frame;

typedef struct lp_reader {
    uint8_t *buf;
    size_t start;       /* first unconsumed byte */
    size_t end;         /* one past the last received byte */
    size_t cap;
    uint32_t max_frame; /* the largest length field accepted */
    int requests;       /* 0: expect replies (0x02, 0x06); 1: expect requests (0x01) */
    int err;            /* 0, or the loupe_code of the first error (sticky) */
    char errstr[160];
} lp_reader;

void lp_reader_init(lp_reader *r, uint32_t max_frame, int requests);
void lp_reader_free(lp_reader *r);
/** Forgets buffered bytes and any error; keeps the buffer. */
void lp_reader_reset(lp_reader *r);
/** Copies n bytes in. 0, or a loupe_code (NOMEM, or the sticky error). */
int lp_reader_feed(lp_reader *r, const uint8_t *data, size_t n);
/** Room to receive into directly: at least 1 byte, *avail of them. NULL if out of memory. */
uint8_t *lp_reader_space(lp_reader *r, size_t *avail);
void lp_reader_commit(lp_reader *r, size_t n);
/** 1: a frame in *out (consumed); 0: more bytes needed; -1: error (r->err, r->errstr). */
int lp_reader_next(lp_reader *r, lp_frame *out);
/** Bytes received but not yet returned as frames (0: clean, between frames). */
size_t lp_reader_buffered(const lp_reader *r);
/** The length field of the frame being received, or 0 if not known yet. */
uint32_t lp_reader_pending_length(const lp_reader *r);

/** Big-endian helpers. */
static inline uint32_t lp_get32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline uint16_t lp_get16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static inline void lp_put32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}
static inline void lp_put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }

/** Writes the 20 bytes in front of a payload. */
void lp_write_prefix(uint8_t *p, size_t payload_len, uint8_t flags, uint16_t method,
                     uint32_t request_id, uint32_t row_count, uint32_t deadline_ms);

#endif
