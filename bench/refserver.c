// A minimal fan-out server written straight on libwebsockets 4.1, the yardstick
// for statecast-host in scripts/bench (issue #5: "within ~1.1x of raw lws").
//
// Same shape as the reference: one service thread, each broadcast
// encoded once into one buffer shared by every viewer, one frame per writeable
// callback, lws's per-connection validity timers off. It speaks just enough of
// the StateCast protocol for bench/loadgen: a session_update first, then one
// config_update per stdin line `{"config":{…}}`, seq counting up by one. No
// debounce, no diff, no heartbeat, no HTTP, no slow-viewer handling beyond a
// fixed 4096-message log: it is a measuring stick, not a product.
//
// Takes statecast-host's arguments (`serve FILE … --port N …`) and prints the
// same `Serving "bench" on 127.0.0.1:PORT` line, so loadgen drives either.
// Build: cc -O2 -o refserver bench/refserver.c -lwebsockets -lpthread
#define _GNU_SOURCE
#include <libwebsockets.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG_SIZE 4096                  // messages held for viewers that are behind

typedef struct message {
    int64_t seq;
    size_t len;
    unsigned char *buf;                // LWS_PRE headroom + payload
} message;

typedef struct pss {
    int64_t next_seq;
    int needs_initial;
} pss;

static struct lws_context *context;
static const struct lws_protocols *protocol;
static volatile sig_atomic_t stopping;

// Producer (stdin thread) -> service thread, under `inbox_lock`.
static pthread_mutex_t inbox_lock = PTHREAD_MUTEX_INITIALIZER;
static message *inbox;
static size_t inbox_count, inbox_cap;
static int64_t produced_seq = 1;       // the initial state is seq 1

// Service thread only.
static message ring[LOG_SIZE];
static int64_t last_seq = 1;
static unsigned char *initial_buf;
static size_t initial_len;
static size_t initial_prefix;          // bytes before the seq digits in initial_buf

static unsigned char *with_headroom(const char *text, size_t len) {
    unsigned char *buf = malloc(LWS_PRE + len);
    if (!buf) abort();
    memcpy(buf + LWS_PRE, text, len);
    return buf;
}

static void *stdin_reader(void *unused) {
    (void)unused;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, stdin)) > 0) {
        // {"config":{...}}  ->  {"type":"config_update","seq":S,"payload":{...}}
        char *start = strstr(line, "\"config\":");
        char *end = strrchr(line, '}');
        if (!start || !end || end <= start) continue;
        start += 9;
        size_t inner = (size_t)(end - start);           // drops the outer object's closing brace
        char *text = malloc(inner + 64);
        pthread_mutex_lock(&inbox_lock);
        int64_t seq = ++produced_seq;
        int len = snprintf(text, inner + 64, "{\"type\":\"config_update\",\"seq\":%lld,\"payload\":%.*s}",
                           (long long)seq, (int)inner, start);
        if (inbox_count == inbox_cap) {
            inbox_cap = inbox_cap ? inbox_cap * 2 : 64;
            inbox = realloc(inbox, inbox_cap * sizeof *inbox);
        }
        inbox[inbox_count++] = (message){ .seq = seq, .len = (size_t)len, .buf = with_headroom(text, (size_t)len) };
        pthread_mutex_unlock(&inbox_lock);
        free(text);
        lws_cancel_service(context);
    }
    free(line);
    return NULL;
}

static void drain_inbox(void) {
    pthread_mutex_lock(&inbox_lock);
    for (size_t i = 0; i < inbox_count; i++) {
        message *slot = &ring[inbox[i].seq % LOG_SIZE];
        free(slot->buf);
        *slot = inbox[i];
        last_seq = inbox[i].seq;
    }
    size_t drained = inbox_count;
    inbox_count = 0;
    pthread_mutex_unlock(&inbox_lock);
    if (drained) lws_callback_on_writable_all_protocol(context, protocol);
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len) {
    pss *p = (pss *)user;
    switch (reason) {
    case LWS_CALLBACK_ESTABLISHED:
        p->needs_initial = 1;
        lws_callback_on_writable(wsi);
        return 0;
    case LWS_CALLBACK_SERVER_WRITEABLE: {
        if (p->needs_initial) {
            // The initial state, numbered as the newest seq (the bench connects before publishing).
            char digits[24];
            int d = snprintf(digits, sizeof digits, "%lld", (long long)last_seq);
            unsigned char *buf = malloc(LWS_PRE + initial_len + 24);
            memcpy(buf + LWS_PRE, initial_buf + LWS_PRE, initial_prefix);
            memcpy(buf + LWS_PRE + initial_prefix, digits, (size_t)d);
            memcpy(buf + LWS_PRE + initial_prefix + d, initial_buf + LWS_PRE + initial_prefix, initial_len - initial_prefix);
            size_t total = initial_len + (size_t)d;
            int n = lws_write(wsi, buf + LWS_PRE, total, LWS_WRITE_TEXT);
            free(buf);
            if (n < (int)total) return -1;
            p->needs_initial = 0;
            p->next_seq = last_seq + 1;
        } else if (p->next_seq <= last_seq) {
            if (last_seq - p->next_seq >= LOG_SIZE) p->next_seq = last_seq - LOG_SIZE + 1;   // fell behind: skip
            message *m = &ring[p->next_seq % LOG_SIZE];
            if (lws_write(wsi, m->buf + LWS_PRE, m->len, LWS_WRITE_TEXT) < (int)m->len) return -1;
            p->next_seq++;
        }
        if (p->next_seq <= last_seq) lws_callback_on_writable(wsi);
        return 0;
    }
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        drain_inbox();
        return 0;
    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

static void on_signal(int sig) {
    (void)sig;
    stopping = 1;
    if (context) lws_cancel_service(context);
}

int main(int argc, char **argv) {
    const char *file = NULL;
    int port = 9876;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--port") && i + 1 < argc) port = atoi(argv[++i]);
        else if (argv[i][0] == '-' && argv[i][1] == '-') {
            // statecast-host options with a value; flags (--stdin, --no-watch) take none
            if (strcmp(argv[i], "--stdin") && strcmp(argv[i], "--no-watch") && i + 1 < argc) i++;
        } else if (strcmp(argv[i], "serve")) file = argv[i];
    }
    if (!file) { fprintf(stderr, "refserver: usage: refserver serve SESSION.json [--port N]\n"); return 2; }

    // Initial state: {"type":"session_update","seq":<S>,"payload":<file>}
    FILE *f = fopen(file, "r");
    if (!f) { perror(file); return 2; }
    static char body[64 << 20];
    size_t body_len = fread(body, 1, sizeof body - 1, f);
    fclose(f);
    while (body_len && (body[body_len - 1] == '\n' || body[body_len - 1] == ' ')) body_len--;
    static const char head[] = "{\"type\":\"session_update\",\"seq\":";
    static const char mid[] = ",\"payload\":";
    initial_prefix = sizeof head - 1;
    initial_len = initial_prefix + (sizeof mid - 1) + body_len + 1;
    initial_buf = malloc(LWS_PRE + initial_len);
    unsigned char *w = initial_buf + LWS_PRE;
    memcpy(w, head, sizeof head - 1);
    memcpy(w + initial_prefix, mid, sizeof mid - 1);
    memcpy(w + initial_prefix + sizeof mid - 1, body, body_len);
    w[initial_len - 1] = '}';

    static struct lws_protocols protocols[] = {
        { "statecast", callback, sizeof(pss), 512, 0, NULL, 16 << 20 },
        { NULL, NULL, 0, 0, 0, NULL, 0 },
    };
    protocol = &protocols[0];
    static struct lws_protocol_vhost_options pvo_default = { NULL, NULL, "default", "" };
    static struct lws_protocol_vhost_options pvo = { NULL, &pvo_default, "statecast", "" };
    static lws_retry_bo_t no_validity;  // all zero: no per-connection validity timers

    lws_set_log_level(LLL_ERR, NULL);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = port;
    info.iface = "127.0.0.1";
    info.protocols = protocols;
    info.pvo = &pvo;
    info.retry_and_idle_policy = &no_validity;
    info.vhost_name = "statecast";
    info.options = LWS_SERVER_OPTION_DISABLE_IPV6;
    context = lws_create_context(&info);
    if (!context) { fprintf(stderr, "refserver: lws_create_context failed\n"); return 1; }
    struct lws_vhost *vhost = lws_get_vhost_by_name(context, "statecast");
    printf("Serving \"bench\" on 127.0.0.1:%d\n", vhost ? lws_get_vhost_listen_port(vhost) : -1);
    fflush(stdout);

    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    pthread_t reader;
    pthread_create(&reader, NULL, stdin_reader, NULL);
    pthread_detach(reader);
    while (!stopping && lws_service(context, 0) >= 0) {}
    lws_context_destroy(context);
    return 0;
}
