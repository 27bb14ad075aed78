#ifndef CHIREDIS_H
#define CHIREDIS_H

// hiredis (Debian: libhiredis-dev, 0.14), the Redis client behind
// `statecast-host serve --redis` and `statecast-host relay`.
//
// Only HostBroadcaster's Redis folder imports this module; no public Swift
// API exposes a hiredis type. Every context is used by one thread only
// (hiredis contexts are not thread-safe); the blocking API is used with
// socket timeouts, and waiting for pub/sub messages goes through poll(2) so
// that an idle subscriber never trips the read timeout (which would poison
// the context).

#include <hiredis/hiredis.h>
#include <poll.h>
#include <sys/time.h>
#include <errno.h>
#include <stdio.h>

static inline struct timeval statecast_redis_timeval(int milliseconds) {
    struct timeval tv;
    tv.tv_sec = milliseconds / 1000;
    tv.tv_usec = (milliseconds % 1000) * 1000;
    return tv;
}

/// Connects with a timeout and sets the same timeout on reads and writes.
/// Returns NULL only when out of memory; otherwise check statecast_redis_failed.
static inline redisContext *statecast_redis_connect(const char *host, int port, int timeout_ms) {
    redisContext *context = redisConnectWithTimeout(host, port, statecast_redis_timeval(timeout_ms));
    if (context != NULL && context->err == 0) {
        redisSetTimeout(context, statecast_redis_timeval(timeout_ms));
        redisEnableKeepAlive(context);
    }
    return context;
}

/// Non-zero once the context hit an I/O or protocol error (it is then unusable).
static inline int statecast_redis_failed(const redisContext *context) { return context->err; }

/// The context's error text (valid while the context lives).
static inline const char *statecast_redis_error_text(const redisContext *context) { return context->errstr; }

/// Sends one command and waits for its reply (NULL on error; the context is then failed).
static inline redisReply *statecast_redis_command(redisContext *context, int argc, const char **argv, const size_t *lengths) {
    return (redisReply *)redisCommandArgv(context, argc, argv, lengths);
}

/// Queues one command in the output buffer (pipelining). REDIS_OK or REDIS_ERR.
static inline int statecast_redis_append(redisContext *context, int argc, const char **argv, const size_t *lengths) {
    return redisAppendCommandArgv(context, argc, argv, lengths);
}

/// Writes the whole output buffer. REDIS_OK or REDIS_ERR.
static inline int statecast_redis_flush(redisContext *context) {
    int done = 0;
    while (!done) {
        if (redisBufferWrite(context, &done) != REDIS_OK) return REDIS_ERR;
    }
    return REDIS_OK;
}

/// The next reply: flushes queued commands, then blocks (up to the socket timeout). NULL on error.
static inline redisReply *statecast_redis_reply(redisContext *context) {
    void *reply = NULL;
    if (redisGetReply(context, &reply) != REDIS_OK) return NULL;
    return (redisReply *)reply;
}

/// Marks the context failed with `message` (it is then unusable, like after an I/O error).
static inline void statecast_redis_fail(redisContext *context, const char *message) {
    context->err = REDIS_ERR_OTHER;
    snprintf(context->errstr, sizeof(context->errstr), "%s", message);
}

/// Like statecast_redis_reply, but gives up (failing the context with "reply
/// too large") once more than `max_bytes` arrived without completing the reply:
/// what Redis holds is untrusted, and hiredis would otherwise buffer a hostile
/// bulk string or list of any size.
static inline redisReply *statecast_redis_reply_bounded(redisContext *context, size_t max_bytes) {
    void *reply = NULL;
    if (redisGetReplyFromReader(context, &reply) != REDIS_OK) return NULL;
    if (reply) return (redisReply *)reply;
    int done = 0;
    while (!done) {
        if (redisBufferWrite(context, &done) != REDIS_OK) return NULL;
    }
    size_t received = 0;
    while (reply == NULL) {
        size_t before = context->reader->len;
        if (redisBufferRead(context) != REDIS_OK) return NULL;
        received += context->reader->len - before;
        if (received > max_bytes) {
            statecast_redis_fail(context, "reply too large");
            return NULL;
        }
        if (redisGetReplyFromReader(context, &reply) != REDIS_OK) return NULL;
    }
    return (redisReply *)reply;
}

/// Bytes hiredis holds of a reply it has not finished parsing (a pub/sub
/// message still arriving).
static inline size_t statecast_redis_pending_bytes(const redisContext *context) {
    return context->reader->len - context->reader->pos;
}

/// A reply already read into hiredis' buffer, without touching the socket; NULL if none.
static inline redisReply *statecast_redis_buffered_reply(redisContext *context) {
    void *reply = NULL;
    if (redisGetReplyFromReader(context, &reply) != REDIS_OK) return NULL;
    return (redisReply *)reply;
}

/// Waits up to `timeout_ms` for the socket to become readable:
/// 1 readable (or closed by the peer), 0 timed out, -1 error.
static inline int statecast_redis_wait_readable(const redisContext *context, int timeout_ms) {
    struct pollfd descriptor;
    descriptor.fd = context->fd;
    descriptor.events = POLLIN;
    descriptor.revents = 0;
    int result;
    do {
        result = poll(&descriptor, 1, timeout_ms);
    } while (result < 0 && errno == EINTR);
    if (result < 0) return -1;
    return result > 0 ? 1 : 0;
}

/// Reads what the socket has into hiredis' buffer. REDIS_OK or REDIS_ERR (the peer closed, or an error).
static inline int statecast_redis_read(redisContext *context) { return redisBufferRead(context); }

static inline int statecast_reply_type(const redisReply *reply) { return reply->type; }
static inline long long statecast_reply_integer(const redisReply *reply) { return reply->integer; }
static inline const char *statecast_reply_bytes(const redisReply *reply) { return reply->str; }
static inline size_t statecast_reply_length(const redisReply *reply) { return reply->len; }
static inline size_t statecast_reply_count(const redisReply *reply) { return reply->elements; }
static inline const redisReply *statecast_reply_element(const redisReply *reply, size_t index) { return reply->element[index]; }

static inline int statecast_reply_is_string(const redisReply *reply) { return reply->type == REDIS_REPLY_STRING; }
static inline int statecast_reply_is_status(const redisReply *reply) { return reply->type == REDIS_REPLY_STATUS; }
static inline int statecast_reply_is_error(const redisReply *reply) { return reply->type == REDIS_REPLY_ERROR; }
static inline int statecast_reply_is_integer(const redisReply *reply) { return reply->type == REDIS_REPLY_INTEGER; }
static inline int statecast_reply_is_nil(const redisReply *reply) { return reply->type == REDIS_REPLY_NIL; }
static inline int statecast_reply_is_array(const redisReply *reply) { return reply->type == REDIS_REPLY_ARRAY; }

static inline void statecast_reply_free(redisReply *reply) { freeReplyObject(reply); }
static inline void statecast_redis_free(redisContext *context) { redisFree(context); }

#endif
