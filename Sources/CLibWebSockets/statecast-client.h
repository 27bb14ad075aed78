// Client-side helpers (ViewerClient).
//
// The viewer runs one libwebsockets context per ViewerClient, with a single
// client connection at a time. These helpers hide the creation-info and
// connect-info plumbing; every function here except
// statecast_client_wake() must be called on the context's service thread
// (or before that thread starts).
#ifndef STATECAST_CLIENT_H
#define STATECAST_CLIENT_H

#include <libwebsockets.h>
#include <string.h>

/// Everything libwebsockets keeps pointers to for the lifetime of a viewer
/// context: the protocol table and the idle (ping) policy. Allocate it once,
/// fill it with statecast_client_setup_init, free it after the context is
/// destroyed.
struct statecast_client_setup {
    struct lws_protocols protocols[2];
    lws_retry_bo_t idle_policy;
    uint32_t unused_retry_table[1];
};

/// Fills `setup`: one protocol named "statecast-viewer" whose callback is
/// `callback`, and an idle policy that pings after `ping_secs` without a
/// sign of life and hangs up after `hangup_secs` (must be > ping_secs).
/// Reconnects are scheduled by the viewer itself, never by lws; the one-entry
/// retry table only guards against lws dereferencing a NULL table.
static inline void statecast_client_setup_init(struct statecast_client_setup *setup,
                                               lws_callback_function *callback,
                                               size_t rx_buffer_size,
                                               uint16_t ping_secs, uint16_t hangup_secs) {
    memset(setup, 0, sizeof(*setup));
    setup->protocols[0].name = "statecast-viewer";
    setup->protocols[0].callback = callback;
    setup->protocols[0].rx_buffer_size = rx_buffer_size;
    setup->unused_retry_table[0] = 2000;
    setup->idle_policy.retry_ms_table = setup->unused_retry_table;
    setup->idle_policy.retry_ms_table_count = 1;
    setup->idle_policy.conceal_count = 1;
    setup->idle_policy.secs_since_valid_ping = ping_secs;
    setup->idle_policy.secs_since_valid_hangup = hangup_secs;
    setup->idle_policy.jitter_percent = 0;
}

/// Creates a client-only context (no listener). `user` comes back from
/// lws_context_user(). `timeout_secs` bounds the connect and the handshake.
/// No LWS_SERVER_OPTION_VALIDATE_UTF8: lws 4.1.6's client parser would honour
/// it (from the context options), but it fails a bad frame by returning in the
/// middle of the frame without resetting its receive buffer, and the rest of
/// the frame is then written past the buffer's end. The viewer checks UTF-8
/// itself (UTF8Validator) and closes from CLIENT_WRITEABLE.
static inline struct lws_context *statecast_client_context_create(struct statecast_client_setup *setup,
                                                                  void *user, unsigned int timeout_secs,
                                                                  const char *ca_file) {
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = setup->protocols;
    info.user = user;
    info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.timeout_secs = timeout_secs;
    info.connect_timeout_secs = timeout_secs;
    info.fd_limit_per_thread = 8;
    info.client_ssl_ca_filepath = ca_file; /* NULL: the system's trusted CAs */
    return lws_create_context(&info);
}

/// Starts a WebSocket connection. Returns NULL if it could not even start;
/// otherwise the outcome arrives as CLIENT_ESTABLISHED or
/// CLIENT_CONNECTION_ERROR. No subprotocol is requested, so the host binds
/// the viewer to its default protocol. lws copies the strings.
/// Redirects are never followed (LCCSCF_HTTP_NO_FOLLOW_REDIRECT): a 3xx
/// answer fails the handshake, so the Authorization header never goes to a
/// host the user did not name.
static inline struct lws *statecast_client_connect(struct lws_context *context,
                                                   struct statecast_client_setup *setup,
                                                   const char *address, int port, const char *path,
                                                   const char *host_header, int secure,
                                                   int insecure, struct lws **pwsi) {
    struct lws_client_connect_info info;
    memset(&info, 0, sizeof(info));
    info.context = context;
    info.address = address;
    info.port = port;
    info.path = path;
    info.host = host_header;
    info.origin = NULL; /* a native viewer is not a web page: no Origin header, so
                           hosts that restrict browser origins still admit it */
    info.ssl_connection = LCCSCF_HTTP_NO_FOLLOW_REDIRECT | (secure ? LCCSCF_USE_SSL : 0);
    if (secure && insecure)
        info.ssl_connection |= LCCSCF_ALLOW_SELFSIGNED | LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK |
                               LCCSCF_ALLOW_EXPIRED | LCCSCF_ALLOW_INSECURE;
    info.local_protocol_name = setup->protocols[0].name;
    info.retry_and_idle_policy = &setup->idle_policy;
    info.pwsi = pwsi;
    return lws_client_connect_via_info(&info);
}

/// In LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER: adds `Authorization: <value>`.
/// `in` and `len` are the callback's arguments (a char ** cursor and the room left).
static inline int statecast_client_append_authorization(struct lws *wsi, void *in, size_t len, const char *value) {
    unsigned char **p = (unsigned char **)in;
    unsigned char *end = (*p) + len;
    return lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_AUTHORIZATION, (const unsigned char *)value,
                                        (int)strlen(value), p, end);
}

/// Sets close code 1000 ("normal closure") for the close that follows when
/// the callback returns -1.
static inline void statecast_client_set_close_normal(struct lws *wsi) {
    static const char reason[] = "viewer disconnected";
    lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, (unsigned char *)reason, sizeof(reason) - 1);
}

/// Sets `code` (1009 "message too big", …) for the close that follows when the
/// callback returns -1.
static inline void statecast_client_set_close_code(struct lws *wsi, uint16_t code) {
    lws_close_reason(wsi, (enum lws_close_status)code, NULL, 0);
}

/// In LWS_CALLBACK_ESTABLISHED_CLIENT_HTTP: copies the response's Location
/// header into `buffer` (NUL-terminated); returns its length, or -1 if there is
/// none or it does not fit.
static inline int statecast_client_location(struct lws *wsi, char *buffer, int size) {
    if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_LOCATION) <= 0) return -1;
    return lws_hdr_copy(wsi, buffer, size, WSI_TOKEN_HTTP_LOCATION);
}

/// Abandons a connection that is not yet established (from the service thread).
static inline void statecast_client_abandon(struct lws *wsi) {
    lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

/// The close code in a peer's close payload, or 0 if it sent none.
static inline unsigned int statecast_close_code(const void *payload, size_t len) {
    const unsigned char *p = (const unsigned char *)payload;
    if (!p || len < 2) return 0;
    return ((unsigned int)p[0] << 8) | p[1];
}

/// In LWS_CALLBACK_WS_PEER_INITIATED_CLOSE: lws 4.1.6's client echoes the
/// peer's close code back after turning the codes RFC 6455 reserves below 3000
/// into 1002, but passes codes >= 5000 (undefined) through. This turns those
/// into 1002 too, in the payload lws is about to echo (`payload` is lws's own
/// buffer, handed to the callback for that purpose). Returns the code as it came.
static inline unsigned int statecast_client_check_close_code(void *payload, size_t len) {
    unsigned char *p = (unsigned char *)payload;
    unsigned int code = statecast_close_code(payload, len);
    if (code >= 5000) {
        p[0] = (LWS_CLOSE_STATUS_PROTOCOL_ERR >> 8) & 0xff;
        p[1] = LWS_CLOSE_STATUS_PROTOCOL_ERR & 0xff;
    }
    return code;
}

/// In LWS_CALLBACK_WS_PEER_INITIATED_CLOSE: makes lws answer the peer's Close
/// with `code`, the reason bytes shown as '?' (used when the reason is not
/// UTF-8: the answer must not carry it back). `payload` is lws's own buffer.
static inline void statecast_client_replace_close(void *payload, size_t len, uint16_t code) {
    unsigned char *p = (unsigned char *)payload;
    if (!p || len < 2) return;
    p[0] = (unsigned char)(code >> 8);
    p[1] = (unsigned char)(code & 0xff);
    memset(p + 2, '?', len - 2);
}

/// Wakes the service thread (the one call allowed from any thread); the
/// protocol then gets LWS_CALLBACK_EVENT_WAIT_CANCELLED on the service thread.
static inline void statecast_client_wake(struct lws_context *context) {
    lws_cancel_service(context);
}

#endif
