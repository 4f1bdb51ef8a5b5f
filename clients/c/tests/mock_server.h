/* A scripted Loupe server for the tests: it plays one handler per accepted connection, in a
 * thread, so the tests can produce what a real server will not (wrong scopes, a reply cut
 * in half, an oversize length, silence, garbage). */
#ifndef LOUPE_MOCK_SERVER_H
#define LOUPE_MOCK_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "internal.h"

typedef struct mock_conn mock_conn;
typedef void (*mock_handler)(mock_conn *conn, void *arg);
typedef struct mock_server mock_server;

/** Listens on 127.0.0.1 (a free port) and runs `handler` for each connection, one at a time. */
mock_server *mock_start(mock_handler handler, void *arg);
/** The same with the server's socket buffers fixed at 128 KiB (no autotuning), so that a
 *  peer that does not read fills them quickly. */
mock_server *mock_start_small_buffers(mock_handler handler, void *arg);
int mock_port(const mock_server *s);
/** Stops accepting, waits for the thread. */
void mock_stop(mock_server *s);

/** Reads the next request frame (1), or 0 at EOF / error / after timeout_ms. */
int mock_read(mock_conn *c, lp_frame *f, int timeout_ms);
/** The raw bytes of the last frame read (prefix and payload). */
const uint8_t *mock_last_bytes(const mock_conn *c, size_t *len);
/** Sends raw bytes (blocking). 0 or -1. */
int mock_send(mock_conn *c, const void *data, size_t n);
/** Sends a reply carrying msg (NULL: empty payload) to request `id` of `method`. */
int mock_reply(mock_conn *c, uint16_t method, uint32_t id, uint32_t rows,
               const ProtobufCMessage *msg);
/** Sends an error reply (id 0, method 0: a connection-level error). */
int mock_error(mock_conn *c, uint16_t method, uint32_t id, int code, const char *message,
               unsigned retry_after_ms);
/** Reads a Hello and answers Welcome with these scopes and max frame size (0: 8 MiB). The
 *  Hello's token is copied to token_out (if not NULL). 1 on success. */
int mock_welcome(mock_conn *c, const char *const *scopes, size_t nscopes, uint32_t max_frame,
                 char *token_out, size_t token_size);
/** Waits until the client closes (reading and discarding), at most timeout_ms. */
void mock_drain(mock_conn *c, int timeout_ms);

#endif
