// Helpers shared by the server and the client side.
#ifndef STATECAST_COMMON_H
#define STATECAST_COMMON_H

#include <libwebsockets.h>
#include <stdio.h>

/// Bytes of headroom lws_write needs in front of every payload.
static inline size_t statecast_lws_pre(void) { return LWS_PRE; }

/// The libwebsockets version string this process runs on ("4.1.6-").
static inline const char *statecast_lws_version(void) { return lws_get_library_version(); }

/// Log levels StateCast forwards from libwebsockets.
static inline int statecast_lws_log_errors(void) { return LLL_ERR; }
static inline int statecast_lws_log_warnings(void) { return LLL_ERR | LLL_WARN; }
static inline int statecast_lws_log_verbose(void) { return LLL_ERR | LLL_WARN | LLL_NOTICE | LLL_INFO; }

/// Text, binary, ping frames for lws_write.
static inline int statecast_write_text(struct lws *wsi, unsigned char *payload, size_t len) {
    return lws_write(wsi, payload, len, LWS_WRITE_TEXT);
}
static inline int statecast_write_ping(struct lws *wsi, unsigned char *payload, size_t len) {
    return lws_write(wsi, payload, len, LWS_WRITE_PING);
}

#endif
