// Server-side helpers (HostBroadcaster): the protocol table, the creation-info
// plumbing and a timer wrapper, so Swift never fills lws structs by hand.
#ifndef STATECAST_SERVER_H
#define STATECAST_SERVER_H

#include <libwebsockets.h>
#include <stdlib.h>
#include <string.h>

/// What HostBroadcaster chooses about its listening socket and protocol.
typedef struct statecast_server_params {
    const char *bind_address;       // NULL: every interface
    int port;                       // 0: the kernel picks one
    int ipv4_only;                  // bind_address is an IPv4 literal (or "0.0.0.0")
    size_t per_session_data_size;   // bytes lws zero-allocates per connection
    size_t rx_buffer_size;          // incoming fragments are at most this big
    size_t tx_packet_size;          // one send() tries at most this many bytes
    unsigned int handshake_timeout_secs;
    lws_callback_function *callback;
    void *user;                     // lws_context_user()
    const char *tls_cert_path;      // PEM certificate (chain); NULL: plain ws:// and http://
    const char *tls_key_path;       // PEM private key
} statecast_server_params;

/// A running server: the context plus the tables and strings lws keeps pointers to.
typedef struct statecast_server {
    struct lws_context *context;
    // Copies of the caller's strings: lws keeps `iface` (vh->iface, used again
    // when it retries a listener) and may read the TLS paths after creation,
    // so they live exactly as long as the context.
    char *bind_address;
    char *tls_cert_path;
    char *tls_key_path;
    struct lws_vhost *vhost;
    struct lws_protocols protocols[2];
    struct lws_protocol_vhost_options pvo_default;
    struct lws_protocol_vhost_options pvo;
    // All zero: secs_since_valid_hangup == 0 switches libwebsockets' own
    // per-connection validity timers off (lib/core-net/wsi-timeout.c returns
    // early). StateCast sweeps heartbeats itself, once for every viewer.
    lws_retry_bo_t idle_policy;
} statecast_server;

static inline void statecast_server_free_strings(statecast_server *s) {
    free(s->bind_address);
    free(s->tls_cert_path);
    free(s->tls_key_path);
}

/// A heap copy of `text` (NULL stays NULL); sets *failed when out of memory.
static inline char *statecast_strdup_or_null(const char *text, int *failed) {
    if (!text) return NULL;
    char *copy = strdup(text);
    if (!copy) *failed = 1;
    return copy;
}

/// Creates the context and its listening vhost. Call on the service thread.
/// NULL when libwebsockets refused (for example the port is taken or the
/// address cannot be bound: the vhost fails at once instead of retrying).
static inline statecast_server *statecast_server_create(const statecast_server_params *p) {
    statecast_server *s = (statecast_server *)calloc(1, sizeof(*s));
    if (!s) return NULL;
    int copy_failed = 0;
    s->bind_address = statecast_strdup_or_null(p->bind_address, &copy_failed);
    s->tls_cert_path = statecast_strdup_or_null(p->tls_cert_path, &copy_failed);
    s->tls_key_path = statecast_strdup_or_null(p->tls_key_path, &copy_failed);
    if (copy_failed) { statecast_server_free_strings(s); free(s); return NULL; }
    s->protocols[0].name = "statecast";
    s->protocols[0].callback = p->callback;
    s->protocols[0].per_session_data_size = p->per_session_data_size;
    s->protocols[0].rx_buffer_size = p->rx_buffer_size;
    s->protocols[0].tx_packet_size = p->tx_packet_size;
    // Clients naming no subprotocol (wscat, websocat, browsers) bind to the default.
    s->pvo_default.name = "default";
    s->pvo_default.value = "";
    s->pvo.name = "statecast";
    s->pvo.value = "";
    s->pvo.options = &s->pvo_default;

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    info.port = p->port;
    info.iface = s->bind_address;
    info.protocols = s->protocols;
    info.pvo = &s->pvo;
    info.user = p->user;
    info.retry_and_idle_policy = &s->idle_policy;
    info.timeout_secs = p->handshake_timeout_secs;
    info.vhost_name = "statecast";
    // Fail at start when the address cannot be bound, instead of deferring the
    // listener and retrying every 30 s while the host claims to be serving.
    info.options = LWS_SERVER_OPTION_VALIDATE_UTF8 | LWS_SERVER_OPTION_FAIL_UPON_UNABLE_TO_BIND;
    if (p->ipv4_only) info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
    if (s->tls_cert_path && s->tls_key_path) {
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        info.ssl_cert_filepath = s->tls_cert_path;
        info.ssl_private_key_filepath = s->tls_key_path;
        // A non-NULL password installs lws's passphrase callback, so OpenSSL
        // never prompts on the terminal for an encrypted key: it just fails.
        info.ssl_private_key_password = "";
    }

    s->context = lws_create_context(&info);
    if (!s->context) { statecast_server_free_strings(s); free(s); return NULL; }
    s->vhost = lws_get_vhost_by_name(s->context, "statecast");
    return s;
}

/// Destroys the context (closing what is left) and frees the tables.
static inline void statecast_server_destroy(statecast_server *s) {
    if (!s) return;
    if (s->context) lws_context_destroy(s->context);
    statecast_server_free_strings(s);
    free(s);
}

static inline int statecast_server_port(const statecast_server *s) {
    return s->vhost ? lws_get_vhost_listen_port(s->vhost) : -1;
}


/// Per-connection state, zero-allocated by lws for every connection
/// (per_session_data_size). Only the service thread reads or writes it.
typedef struct statecast_pss {
    int64_t next_seq;            // next broadcast seq this viewer needs
    int64_t last_heard_us;       // monotonic time the viewer last sent anything
    int64_t last_ping_us;        // when we last pinged it (0: not since it spoke)
    int64_t rx_message_bytes;    // bytes of the incoming message so far
    uint32_t index;              // position in the host's viewer list
    uint8_t is_viewer;           // a WebSocket viewer (not an HTTP request)
    uint8_t needs_full_state;    // send a session_update before anything else
    uint8_t ping_due;            // send a ping on the next writeable
    uint8_t closing;             // close with 1001 on the next writeable
    uint8_t awaiting_write;      // a writeable callback is already requested
    uint8_t is_sse;              // a Server-Sent Events viewer (GET /events)
    uint8_t resume_pending;      // resume from next_seq - 1 on the next writeable
    uint8_t preamble_due;        // SSE: send "retry:" before the first event
    int64_t last_write_us;       // SSE: when we last wrote (keepalive comments)
    int64_t write_wanted_us;     // SSE: since when a pending write has found the socket full (stall detection)
    uint8_t is_echo;             // the opt-in echo endpoint (not a viewer)
    uint8_t too_big;             // sent a message over the limit: close with 1009 on the next writeable
    unsigned char *http_body;    // HTTP response body (malloc), for HTTP_WRITEABLE
    size_t http_body_len;
} statecast_pss;

/// A timer on the service thread; `user` finds the Swift owner again.
typedef struct statecast_timer {
    lws_sorted_usec_list_t sul;     // first member: the callback's pointer is the timer's
    void *user;
} statecast_timer;

typedef void (*statecast_timer_fn)(statecast_timer *timer);

static inline void statecast_timer_schedule(struct lws_context *context, statecast_timer *timer,
                                            statecast_timer_fn fn, int64_t usecs) {
    lws_sul_schedule(context, 0, &timer->sul, (sul_cb_t)fn, (lws_usec_t)usecs);
}

static inline void statecast_timer_cancel(statecast_timer *timer) {
    lws_sul_cancel(&timer->sul);
}

/// Starts a close handshake with `code` and a short reason (call, then return -1).
static inline void statecast_close_reason(struct lws *wsi, int code, const char *reason) {
    lws_close_reason(wsi, (enum lws_close_status)code, (unsigned char *)reason, reason ? strlen(reason) : 0);
}

/// Drops a connection on the next service pass (used for heartbeat timeouts).
static inline void statecast_kill_async(struct lws *wsi) {
    lws_set_timeout(wsi, PENDING_TIMEOUT_AWAITING_PING, LWS_TO_KILL_ASYNC);
}

/// Writes a complete HTTP response head into `buf` (from `start`) and sends it.
/// Returns 0 on success.
static inline int statecast_http_write_headers(struct lws *wsi, unsigned int status, const char *content_type,
                                               size_t content_length, unsigned char *start, unsigned char *end) {
    unsigned char *p = start;
    if (lws_add_http_common_headers(wsi, status, content_type, (lws_filepos_t)content_length, &p, end))
        return 1;
    if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL, (unsigned char *)"no-store", 8, &p, end))
        return 1;
    if (lws_finalize_write_http_header(wsi, start, &p, end))
        return 1;
    return 0;
}

/// Bytes that already are complete WebSocket frames, in one write (lws keeps
/// whatever the kernel refuses and sends it first when the socket drains).
static inline int statecast_write_raw(struct lws *wsi, unsigned char *frames, size_t len) {
    return lws_write(wsi, frames, len, LWS_WRITE_RAW);
}

static inline int statecast_write_http_final(struct lws *wsi, unsigned char *payload, size_t len) {
    return lws_write(wsi, payload, len, LWS_WRITE_HTTP_FINAL);
}

/// Response head of a Server-Sent Events stream: no length, no caching, no
/// proxy buffering, readable from any origin (`allow_origin`).
static inline int statecast_http_write_sse_headers(struct lws *wsi, const char *allow_origin,
                                                   unsigned char *start, unsigned char *end) {
    unsigned char *p = start;
    if (lws_add_http_common_headers(wsi, HTTP_STATUS_OK, "text/event-stream", LWS_ILLEGAL_HTTP_CONTENT_LEN, &p, end))
        return 1;
    if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL, (unsigned char *)"no-cache", 8, &p, end))
        return 1;
    if (lws_add_http_header_by_name(wsi, (unsigned char *)"x-accel-buffering:", (unsigned char *)"no", 2, &p, end))
        return 1;
    if (allow_origin && lws_add_http_header_by_name(wsi, (unsigned char *)"access-control-allow-origin:",
                                                    (unsigned char *)allow_origin, (int)strlen(allow_origin), &p, end))
        return 1;
    if (lws_finalize_write_http_header(wsi, start, &p, end))
        return 1;
    lws_http_mark_sse(wsi);
    return 0;
}

static inline int statecast_write_http(struct lws *wsi, unsigned char *payload, size_t len) {
    return lws_write(wsi, payload, len, LWS_WRITE_HTTP);
}

/// Bytes a buffer needs to hold any one query argument of the request (the
/// whole query, already percent-decoded once by lws, plus the terminator).
static inline int statecast_query_capacity(struct lws *wsi) {
    return lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_URI_ARGS) + 1;
}

/// Copies the value of query argument `name` ("since=") into buf; returns its length or -1.
/// Size buf with statecast_query_capacity: lws stops at the first argument that
/// does not fit, which would hide every argument after it.
static inline int statecast_query_arg(struct lws *wsi, const char *name, char *buf, int len) {
    const char *value = lws_get_urlarg_by_name(wsi, name, buf, len);
    if (!value) return -1;
    size_t n = strlen(value);
    memmove(buf, value, n + 1);
    return (int)n;
}

/// Copies the value of a request header by its lower-case name with colon ("last-event-id:").
static inline int statecast_custom_header(struct lws *wsi, const char *name, char *buf, int len) {
    int n = lws_hdr_custom_length(wsi, name, (int)strlen(name));
    if (n <= 0 || n >= len) return -1;
    return lws_hdr_custom_copy(wsi, buf, len, name, (int)strlen(name));
}

/// Writes raw bytes as the HTTP response head (and body): for refusals before an upgrade.
static inline int statecast_write_http_raw(struct lws *wsi, unsigned char *payload, size_t len) {
    return lws_write(wsi, payload, len, LWS_WRITE_HTTP_HEADERS);
}

static inline int statecast_write_binary(struct lws *wsi, unsigned char *payload, size_t len) {
    return lws_write(wsi, payload, len, LWS_WRITE_BINARY);
}

/// Copies header `token` into buf; returns its length or -1 when absent.
static inline int statecast_header(struct lws *wsi, enum lws_token_indexes token, char *buf, int len) {
    int n = lws_hdr_total_length(wsi, token);
    if (n <= 0 || n >= len) return -1;
    return lws_hdr_copy(wsi, buf, len, token);
}

static inline int statecast_header_authorization(void) { return WSI_TOKEN_HTTP_AUTHORIZATION; }
static inline int statecast_header_origin(void) { return WSI_TOKEN_ORIGIN; }
static inline int statecast_header_ws_key(void) { return WSI_TOKEN_KEY; }
static inline int statecast_header_ws_version(void) { return WSI_TOKEN_VERSION; }
static inline int statecast_header_get_uri(void) { return WSI_TOKEN_GET_URI; }
static inline int statecast_header_ws_protocol(void) { return WSI_TOKEN_PROTOCOL; }

/// Whether `wsi` is a stream of an HTTP/2 connection (its network connection is another wsi).
static inline int statecast_is_h2_stream(struct lws *wsi) {
    return lws_get_network_wsi(wsi) != wsi;
}

/// Response head for a refusal through lws's own header writer (HTTP/2-safe):
/// status, text/plain, content length, `connection: close` on HTTP/1 only,
/// and up to `count` extra `name:` / value pairs. The body follows with
/// statecast_write_http_final. Returns 0 on success.
static inline int statecast_http_write_refusal_headers(struct lws *wsi, unsigned int status, size_t content_length,
                                                       const char *const *names, const char *const *values, int count,
                                                       unsigned char *start, unsigned char *end) {
    unsigned char *p = start;
    if (lws_add_http_common_headers(wsi, status, "text/plain", (lws_filepos_t)content_length, &p, end))
        return 1;
    for (int i = 0; i < count; i++) {
        if (lws_add_http_header_by_name(wsi, (const unsigned char *)names[i], (const unsigned char *)values[i],
                                        (int)strlen(values[i]), &p, end))
            return 1;
    }
    if (lws_finalize_write_http_header(wsi, start, &p, end))
        return 1;
    return 0;
}

/// The request method as lws parsed it ("GET", "POST", … or "OTHER").
static inline const char *statecast_http_method(struct lws *wsi) {
    if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI)) return "GET";
    if (lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI)) return "POST";
    if (lws_hdr_total_length(wsi, WSI_TOKEN_OPTIONS_URI)) return "OPTIONS";
#if defined(LWS_WITH_HTTP_UNCOMMON_HEADERS)
    if (lws_hdr_total_length(wsi, WSI_TOKEN_PUT_URI)) return "PUT";
    if (lws_hdr_total_length(wsi, WSI_TOKEN_PATCH_URI)) return "PATCH";
    if (lws_hdr_total_length(wsi, WSI_TOKEN_DELETE_URI)) return "DELETE";
#endif
    if (lws_hdr_total_length(wsi, WSI_TOKEN_HEAD_URI)) return "HEAD";
    return "OTHER";
}

/// POLLRDHUP (Linux: the peer shut its side down), which Swift's Glibc module
/// does not export; SSE viewers are probed with it.
static inline short statecast_pollrdhup(void) {
#ifdef POLLRDHUP
    return POLLRDHUP;
#else
    return 0x2000;
#endif
}

static inline int statecast_frame_is_binary(struct lws *wsi) { return lws_frame_is_binary(wsi); }

/// The request's path for LWS_CALLBACK_HTTP is the `in` argument; the method:
static inline int statecast_http_is_get(struct lws *wsi) {
    return lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) > 0;
}

#endif
