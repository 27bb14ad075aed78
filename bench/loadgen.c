// statecast load generator: N WebSocket viewers on one epoll thread, and the
// publisher writing {"config":{"t":<CLOCK_MONOTONIC ns>,"k":<counter>}} lines to
// a real `statecast-host serve --stdin --debounce-ms 0` that it starts itself.
//
// Single-threaded, no third-party code, loopback only. Every phase has a count
// and a time bound; an alarm kills the host and exits if the whole run overruns.
// Build: cc -O2 -o loadgen bench/loadgen.c   (scripts/bench does this)
//
// Output: one JSON line (--json FILE, appended) and one table row on stdout.
// Exit: 0 all delivered in order; 1 something lost or out of order;
//       2 setup failed (host did not start, viewers could not connect); 3 overran.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PREFIX_MAX 256          // bytes of each message kept for parsing (type, seq, t, k)
#define RECV_BUF (256 * 1024)
#define MAX_VIEWERS 19000       // stays below ulimit -n 20000 with the host's fds elsewhere
#define MAX_BROADCASTS 2000000

// ---------------------------------------------------------------------------
// Options

static struct {
    const char *host_bin;
    int viewers;
    int data_bytes;
    double rate;                // broadcasts per second; 0: throughput mode
    double duration;            // seconds of publishing
    int inflight;               // throughput mode: broadcasts not yet everywhere
    int update_bytes;           // padding in every update ("p"), 0: just t and k
    int connect_parallel;       // handshakes in flight while connecting
    double connect_timeout;     // seconds for all viewers to hold the initial state
    double drain_timeout;       // seconds after the last publish for stragglers
    const char *json_path;
    const char *label;
    int quiet;
    char **host_extra;          // extra host arguments (after --)
    int host_extra_count;
    int relays;                 // relay mode: K relays fed through Redis, viewers on them only
    const char *redis_url;      // relay mode: the Redis server (redis://127.0.0.1:PORT)
} opt = {
    .host_bin = ".build/release/statecast-host",
    .viewers = 100,
    .data_bytes = 1024,
    .rate = 20,
    .duration = 10,
    .inflight = 16,
    .connect_parallel = 256,
    .connect_timeout = 60,
    .drain_timeout = 10,
    .json_path = NULL,
    .label = "",
};

// ---------------------------------------------------------------------------
// Time, process and small helpers

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

#define MAX_HOSTS 8
static pid_t host_pids[MAX_HOSTS] = { -1, -1, -1, -1, -1, -1, -1, -1 };
static int host_count = 1;

static void kill_host(void) {
    for (int h = 0; h < host_count; h++) if (host_pids[h] > 0) kill(host_pids[h], SIGTERM);
    for (int h = 0; h < host_count; h++) {
        pid_t pid = host_pids[h];
        if (pid <= 0) continue;
        int i = 0;
        for (; i < 300; i++) {                  // at most 3 s, then SIGKILL
            if (waitpid(pid, NULL, WNOHANG) == pid) break;
            usleep(10000);
        }
        if (i == 300) { kill(pid, SIGKILL); waitpid(pid, NULL, 0); }
        host_pids[h] = -1;
    }
}

/// Whether any host has exited (it is then reaped and forgotten).
static int host_exited(void) {
    for (int h = 0; h < host_count; h++) {
        if (host_pids[h] > 0 && waitpid(host_pids[h], NULL, WNOHANG) == host_pids[h]) {
            host_pids[h] = -1;
            return 1;
        }
    }
    return 0;
}

static char session_path[64];

static void cleanup(void) {
    kill_host();
    if (session_path[0]) unlink(session_path);
}

static void on_fatal_signal(int sig) {
    // Async-signal-safe: SIGKILL the host, remove the session file, leave.
    for (int h = 0; h < MAX_HOSTS; h++) if (host_pids[h] > 0) kill(host_pids[h], SIGKILL);
    if (session_path[0]) unlink(session_path);
    static const char msg[] = "loadgen: interrupted or overran its time limit; host killed\n";
    (void)!write(2, msg, sizeof msg - 1);
    _exit(sig == SIGALRM ? 3 : 128 + sig);
}

static void die(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("loadgen: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    cleanup();
    exit(code);
}

static long proc_status_kib(pid_t pid, const char *field) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    long value = -1;
    size_t n = strlen(field);
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, field, n) == 0 && line[n] == ':') { value = strtol(line + n + 1, NULL, 10); break; }
    }
    fclose(f);
    return value;
}

/// utime + stime of every thread of `pid`, in seconds (from /proc/PID/stat).
static double proc_cpu_seconds(pid_t pid) {
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return -1;
    buf[n] = 0;
    char *p = strrchr(buf, ')');                // comm may hold spaces
    if (!p) return -1;
    p += 2;                                     // field 3 (state)
    unsigned long utime = 0, stime = 0;
    // fields 3..13 skipped, 14 utime, 15 stime
    if (sscanf(p, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2) return -1;
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

/// The 1-minute load average: how busy the shared machine was.
static double load_average(void) {
    double load = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &load) != 1) load = -1;
        fclose(f);
    }
    return load;
}

static double self_cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static long hosts_status_kib(const char *field) {
    long sum = 0;
    for (int h = 0; h < host_count; h++) sum += proc_status_kib(host_pids[h], field);
    return sum;
}

static long hosts_rss_kib(void) { return hosts_status_kib("VmRSS"); }

static double hosts_cpu_seconds(void) {
    double sum = 0;
    for (int h = 0; h < host_count; h++) sum += proc_cpu_seconds(host_pids[h]);
    return sum;
}

static void set_nonblocking(int fd) {
    int flags = fcntl(fd, F_GETFL, 0);
    fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

// ---------------------------------------------------------------------------
// Latency histogram: log-linear, 1/128 relative precision, bounded memory.

#define HIST_SUB 128
#define HIST_BUCKETS (64 * HIST_SUB)

typedef struct {
    uint64_t counts[HIST_BUCKETS];
    uint64_t total;
    int64_t max;
    int64_t min;
} histogram;

static int hist_index(int64_t v) {
    if (v < HIST_SUB) return v < 0 ? 0 : (int)v;
    int msb = 63 - __builtin_clzll((uint64_t)v);            // >= 7
    int shift = msb - 7;
    int sub = (int)((uint64_t)v >> shift) - HIST_SUB;        // 0..127
    return (shift + 1) * HIST_SUB + sub;
}

static int64_t hist_value(int index) {           // upper-ish representative of a bucket
    if (index < HIST_SUB) return index;
    int shift = index / HIST_SUB - 1;
    int sub = index % HIST_SUB;
    return ((int64_t)(HIST_SUB + sub) << shift) + (((int64_t)1 << shift) - 1);
}

static void hist_add(histogram *h, int64_t v) {
    if (v < 0) v = 0;
    h->counts[hist_index(v)]++;
    if (h->total == 0 || v > h->max) h->max = v;
    if (h->total == 0 || v < h->min) h->min = v;
    h->total++;
}

static int64_t hist_percentile(const histogram *h, double p) {
    if (h->total == 0) return 0;
    uint64_t rank = (uint64_t)(p / 100.0 * (double)h->total + 0.5);
    if (rank < 1) rank = 1;
    if (rank > h->total) rank = h->total;
    uint64_t seen = 0;
    for (int i = 0; i < HIST_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            int64_t v = hist_value(i);
            return v > h->max ? h->max : v;
        }
    }
    return h->max;
}

// ---------------------------------------------------------------------------
// Viewers

enum { V_IDLE, V_CONNECTING, V_HANDSHAKE, V_OPEN, V_DEAD };

typedef struct viewer {
    int fd;
    uint8_t state;
    uint8_t ready;              // holds the initial state
    uint8_t hdr_len;            // frame header bytes gathered
    uint8_t opcode;             // current frame's opcode
    uint8_t fin;
    uint8_t msg_opcode;         // opcode of the message being assembled
    uint8_t tail;               // handshake: how many of "\r\n\r\n" matched
    uint8_t hdr[14];
    uint16_t prefix_len;
    uint64_t remaining;         // payload bytes left in the current frame
    uint64_t msg_len;           // bytes of the current message so far
    int64_t last_seq;
    char prefix[PREFIX_MAX];
} viewer;

static viewer *viewers;
static int epfd;
static int ports[MAX_HOSTS];

/// The port viewer `index` connects to: spread over the hosts, or in relay
/// mode over the relays (processes 1…K; process 0 is the publishing host).
static int viewer_port(int index) {
    return opt.relays > 0 ? ports[1 + index % opt.relays] : ports[index % host_count];
}

/// CPU seconds of processes first…last-1 (relay mode: 0 = host, 1… = relays).
static double cpu_seconds_of(int first, int last) {
    double sum = 0;
    for (int h = first; h < last; h++) sum += proc_cpu_seconds(host_pids[h]);
    return sum;
}

static struct {
    int opened, ready, dead, handshakes_in_flight;
    uint64_t delivered, out_of_order, gap_lost, bad_frames, pings, session_updates_late;
    histogram latency;
    int64_t first_publish_ns, last_receipt_ns;
} st;

// Per broadcast k (1-based): publish time, deliveries so far, time the last viewer got it.
static int64_t *bc_sent;
static uint32_t *bc_count;
static int64_t *bc_last;
static int64_t published;       // broadcasts written so far
static int64_t complete_prefix; // broadcasts 1...complete_prefix reached every viewer

static void viewer_fail(viewer *v, const char *why) {
    if (v->state == V_DEAD) return;
    if (!opt.quiet && st.dead < 5) fprintf(stderr, "loadgen: viewer fd %d: %s\n", v->fd, why);
    if (!v->ready) st.handshakes_in_flight--;
    v->state = V_DEAD;
    st.dead++;
    epoll_ctl(epfd, EPOLL_CTL_DEL, v->fd, NULL);
    close(v->fd);
}

static void viewer_open(int index) {
    viewer *v = &viewers[index];
    memset(v, 0, sizeof *v);
    v->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (v->fd < 0) die(2, "socket: %s (raise ulimit -n)", strerror(errno));
    int one = 1;
    setsockopt(v->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int port = viewer_port(index);             // viewers spread evenly over the hosts (or relays)
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    v->state = V_CONNECTING;
    st.opened++;
    st.handshakes_in_flight++;
    struct epoll_event ev = { .events = EPOLLOUT, .data.u32 = (uint32_t)index };
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, v->fd, &ev) < 0) die(2, "epoll_ctl: %s", strerror(errno));
    if (connect(v->fd, (struct sockaddr *)&addr, sizeof addr) < 0 && errno != EINPROGRESS)
        viewer_fail(v, strerror(errno));
}

static void viewer_send_request(viewer *v, int index) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(v->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) { viewer_fail(v, strerror(err)); return; }
    char req[256];
    int n = snprintf(req, sizeof req,
                     "GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                     viewer_port(index));
    if (send(v->fd, req, (size_t)n, MSG_NOSIGNAL) != n) { viewer_fail(v, "could not send the handshake"); return; }
    v->state = V_HANDSHAKE;
    struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)index };
    epoll_ctl(epfd, EPOLL_CTL_MOD, v->fd, &ev);
}

/// Masked control frame from the client (pong); small enough to send at once.
static void viewer_send_control(viewer *v, uint8_t opcode, const char *payload, size_t len) {
    uint8_t frame[2 + 4 + 125];
    if (len > 125) len = 125;
    frame[0] = 0x80 | opcode;
    frame[1] = 0x80 | (uint8_t)len;
    memcpy(frame + 2, "\x11\x22\x33\x44", 4);
    for (size_t i = 0; i < len; i++) frame[6 + i] = (uint8_t)payload[i] ^ frame[2 + (i & 3)];
    (void)send(v->fd, frame, 6 + len, MSG_NOSIGNAL);
}

/// Reads a JSON integer after `key` (e.g. "\"seq\":") in s[0..len).
static int find_int(const char *s, size_t len, const char *key, int64_t *out) {
    const char *p = memmem(s, len, key, strlen(key));
    if (!p) return 0;
    p += strlen(key);
    const char *end = s + len;
    int neg = 0;
    if (p < end && *p == '-') { neg = 1; p++; }
    if (p >= end || *p < '0' || *p > '9') return 0;
    int64_t v = 0;
    while (p < end && *p >= '0' && *p <= '9') v = v * 10 + (*p++ - '0');
    *out = neg ? -v : v;
    return 1;
}

static void broadcast_reached(int64_t k, int64_t now) {
    if (k < 1 || k > published) { st.bad_frames++; return; }
    bc_count[k]++;
    if (now > bc_last[k]) bc_last[k] = now;
    while (complete_prefix < published && bc_count[complete_prefix + 1] >= (uint32_t)opt.viewers) complete_prefix++;
}

static void viewer_message(viewer *v, int64_t now) {
    const char *m = v->prefix;
    size_t len = v->prefix_len;
    static const char su[] = "{\"type\":\"session_update\"";
    static const char cu[] = "{\"type\":\"config_update\"";
    int64_t seq = 0;
    if (!find_int(m, len, "\"seq\":", &seq)) { st.bad_frames++; return; }
    if (!v->ready) {
        if (len < sizeof su - 1 || memcmp(m, su, sizeof su - 1) != 0) {
            viewer_fail(v, "first message is not a session_update");
            return;
        }
        v->ready = 1;
        v->last_seq = seq;
        st.ready++;
        st.handshakes_in_flight--;
        return;
    }
    if (seq <= v->last_seq) { st.out_of_order++; return; }
    if (seq > v->last_seq + 1) st.gap_lost += (uint64_t)(seq - v->last_seq - 1);
    v->last_seq = seq;
    if (len >= sizeof cu - 1 && memcmp(m, cu, sizeof cu - 1) == 0) {
        const char *payload = memmem(m, len, "\"payload\":", 10);
        int64_t t = 0, k = 0;
        if (!payload || !find_int(payload, len - (size_t)(payload - m), "\"t\":", &t) ||
            !find_int(payload, len - (size_t)(payload - m), "\"k\":", &k)) {
            st.bad_frames++;
            return;
        }
        st.delivered++;
        hist_add(&st.latency, now - t);
        st.last_receipt_ns = now;
        broadcast_reached(k, now);
    } else if (len >= sizeof su - 1 && memcmp(m, su, sizeof su - 1) == 0) {
        st.session_updates_late++;          // a resync: the updates it replaced are lost
    }
}

static void viewer_frame_done(viewer *v, int64_t now) {
    uint8_t op = v->opcode;
    if (op >= 8) {                          // control frames: whole payload is in prefix
        if (op == 9) { st.pings++; viewer_send_control(v, 0xA, v->prefix, v->prefix_len); }
        else if (op == 8) viewer_fail(v, "host closed the connection");
        v->prefix_len = 0;
        return;
    }
    if (v->fin) {
        if (v->msg_opcode == 1) viewer_message(v, now);
        else st.bad_frames++;
        v->prefix_len = 0;
        v->msg_len = 0;
    }
}

/// Feeds received bytes through the handshake and frame parser.
static void viewer_feed(viewer *v, const uint8_t *p, size_t n, int64_t now) {
    size_t i = 0;
    if (v->state == V_HANDSHAKE) {
        // Look for "HTTP/1.1 101" at the start and the blank line at the end.
        static const char end_marker[] = "\r\n\r\n";
        for (; i < n && v->state == V_HANDSHAKE; i++) {
            if (v->prefix_len < 12) {
                v->prefix[v->prefix_len++] = (char)p[i];
                if (v->prefix_len == 12 && memcmp(v->prefix, "HTTP/1.1 101", 12) != 0) {
                    viewer_fail(v, "handshake refused");
                    return;
                }
            }
            v->tail = (p[i] == (uint8_t)end_marker[v->tail]) ? v->tail + 1 : (p[i] == '\r' ? 1 : 0);
            if (v->tail == 4) { v->state = V_OPEN; v->prefix_len = 0; }
        }
    }
    while (i < n && v->state == V_OPEN) {
        if (v->remaining == 0 && v->hdr_len < 2) {
            v->hdr[v->hdr_len++] = p[i++];
            if (v->hdr_len < 2) continue;
        }
        if (v->hdr_len >= 2 && v->remaining == 0) {
            uint8_t l7 = v->hdr[1] & 0x7F;
            size_t need = 2 + (l7 == 126 ? 2 : l7 == 127 ? 8 : 0) + ((v->hdr[1] & 0x80) ? 4 : 0);
            while (v->hdr_len < need && i < n) v->hdr[v->hdr_len++] = p[i++];
            if (v->hdr_len < need) return;
            uint64_t plen = l7;
            if (l7 == 126) plen = ((uint64_t)v->hdr[2] << 8) | v->hdr[3];
            else if (l7 == 127) { plen = 0; for (int b = 0; b < 8; b++) plen = (plen << 8) | v->hdr[2 + b]; }
            if (v->hdr[1] & 0x80) { viewer_fail(v, "masked frame from the host"); return; }
            v->fin = v->hdr[0] & 0x80;
            v->opcode = v->hdr[0] & 0x0F;
            if (v->opcode == 1 || v->opcode == 2) { v->msg_opcode = v->opcode; v->prefix_len = 0; v->msg_len = 0; }
            v->hdr_len = 0;
            if (plen == 0) { viewer_frame_done(v, now); continue; }
            v->remaining = plen;
        }
        size_t take = n - i;
        if (take > v->remaining) take = (size_t)v->remaining;
        if (v->prefix_len < PREFIX_MAX) {
            size_t keep = PREFIX_MAX - v->prefix_len;
            if (keep > take) keep = take;
            memcpy(v->prefix + v->prefix_len, p + i, keep);
            v->prefix_len += (uint16_t)keep;
        }
        v->msg_len += take;
        v->remaining -= take;
        i += take;
        if (v->remaining == 0) viewer_frame_done(v, now);
    }
}

static uint8_t recv_buf[RECV_BUF];

static void viewer_readable(viewer *v, int64_t *now) {
    ssize_t n = recv(v->fd, recv_buf, sizeof recv_buf, 0);
    if (n > 0) {
        *now = now_ns();                    // receipt time of every frame in this read
        viewer_feed(v, recv_buf, (size_t)n, *now);
    } else if (n == 0) {
        viewer_fail(v, "host closed the socket");
    } else if (errno != EAGAIN && errno != EINTR) {
        viewer_fail(v, strerror(errno));
    }
}

// ---------------------------------------------------------------------------
// Host process

static int host_stdin[MAX_HOSTS];
static int host_stdout[MAX_HOSTS];

static void write_session_file(void) {
    strcpy(session_path, "/tmp/statecast-bench-XXXXXX");
    int fd = mkstemp(session_path);
    if (fd < 0) { session_path[0] = 0; die(2, "mkstemp: %s", strerror(errno)); }
    FILE *f = fdopen(fd, "w");
    fputs("{\"name\":\"bench\",\"data\":{\"blob\":\"", f);
    for (int i = 0; i < opt.data_bytes; i++) fputc('a' + i % 26, f);
    fputs("\"},\"config\":{\"t\":0,\"k\":0},\"metadata\":{}}\n", f);
    fclose(f);
}

static void start_host(int h) {
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0) die(2, "pipe: %s", strerror(errno));
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) die(2, "fork: %s", strerror(errno));
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);   // never outlive the generator
        if (getppid() != parent) _exit(127);
        dup2(in[0], 0);
        dup2(out[1], 1);
        char *args[64];
        int a = 0;
        static char channel[32];
        snprintf(channel, sizeof channel, "bench-%d", (int)parent);
        args[a++] = (char *)opt.host_bin;
        if (opt.relays > 0 && h > 0) {
            args[a++] = "relay";
        } else {
            args[a++] = "serve";
            args[a++] = session_path;
            args[a++] = "--no-watch";
            args[a++] = "--stdin";
            args[a++] = "--debounce-ms";
            args[a++] = "0";
        }
        if (opt.relays > 0) {
            args[a++] = "--redis";
            args[a++] = (char *)opt.redis_url;
            args[a++] = "--channel";
            args[a++] = channel;
        }
        args[a++] = "--bind";
        args[a++] = "127.0.0.1";
        args[a++] = "--port";
        args[a++] = "0";
        for (int i = 0; i < opt.host_extra_count && a < 62; i++) args[a++] = opt.host_extra[i];
        args[a] = NULL;
        execv(opt.host_bin, args);
        fprintf(stderr, "loadgen: cannot run %s: %s\n", opt.host_bin, strerror(errno));
        _exit(127);
    }
    host_pids[h] = pid;
    close(in[0]);
    close(out[1]);
    host_stdin[h] = in[1];
    host_stdout[h] = out[0];
    int port = 0;

    // First stdout line: Serving "…" on 127.0.0.1:PORT
    char line[1024];
    size_t used = 0;
    int64_t deadline = now_ns() + 30LL * 1000000000LL;
    set_nonblocking(host_stdout[h]);
    while (port == 0) {
        if (now_ns() > deadline) die(2, "the host printed no \"Serving … on …:PORT\" line within 30 s");
        ssize_t n = read(host_stdout[h], line + used, sizeof line - 1 - used);
        if (n == 0) die(2, "the host exited before it was serving (see its stderr above)");
        if (n < 0) {
            if (errno != EAGAIN && errno != EINTR) die(2, "reading the host's stdout: %s", strerror(errno));
            usleep(5000);
            continue;
        }
        used += (size_t)n;
        line[used] = 0;
        char *nl = strchr(line, '\n');
        if (!nl) { if (used >= sizeof line - 1) used = 0; continue; }
        if (strncmp(line, "Relaying ", 9) == 0) {   // a relay names its upstream first
            size_t rest = used - (size_t)(nl + 1 - line);
            memmove(line, nl + 1, rest);
            used = rest;
            line[used] = 0;
            nl = strchr(line, '\n');
            if (!nl) continue;
        }
        *nl = 0;
        char *colon = strrchr(line, ':');
        if (strncmp(line, "Serving ", 8) == 0 && colon) port = atoi(colon + 1);
        else die(2, "unexpected first line from the host: %s", line);
    }
    ports[h] = port;
}

static void drain_host_stdout(void) {
    char buf[4096];
    for (int h = 0; h < host_count; h++) while (read(host_stdout[h], buf, sizeof buf) > 0) {}
}

static char line_buf[1 << 17];

/// Writes broadcasts published+1 ... published+count (fewer if the buffer fills) in one write.
static void publish(int count) {
    if (count <= 0) return;
    if (published + count > MAX_BROADCASTS - 1) count = (int)(MAX_BROADCASTS - 1 - published);
    if (count <= 0) return;
    if (count > 512) count = 512;
    static int64_t previous_t;
    size_t used = 0;
    int lines = 0;
    size_t line_max = 96 + (size_t)opt.update_bytes;
    for (; lines < count && used + line_max < sizeof line_buf; lines++) {
        int64_t k = published + 1 + lines;
        // A distinct t per line: the host sends only config keys that changed.
        int64_t t = now_ns();
        if (t <= previous_t) t = previous_t + 1;
        previous_t = t;
        used += (size_t)snprintf(line_buf + used, sizeof line_buf - used,
                                 "{\"config\":{\"t\":%" PRId64 ",\"k\":%" PRId64, t, k);
        if (opt.update_bytes > 0) {
            // "p" differs every time (it starts with k), so it is part of every config_update.
            used += (size_t)snprintf(line_buf + used, sizeof line_buf - used, ",\"p\":\"%" PRId64 "-", k);
            memset(line_buf + used, 'p', (size_t)opt.update_bytes);
            used += (size_t)opt.update_bytes;
            line_buf[used++] = '"';
        }
        used += (size_t)snprintf(line_buf + used, sizeof line_buf - used, "}}\n");
        bc_sent[k] = t;
    }
    if (st.first_publish_ns == 0) st.first_publish_ns = bc_sent[published + 1];
    int targets = opt.relays > 0 ? 1 : host_count;   // relays take their updates from Redis
    for (int h = 0; h < targets; h++) {
        size_t off = 0;
        while (off < used) {
            ssize_t w = write(host_stdin[h], line_buf + off, used - off);
            if (w < 0) {
                if (errno == EINTR) continue;
                die(2, "writing to the host's stdin: %s", strerror(errno));
            }
            off += (size_t)w;
        }
    }
    published += lines;
}

// ---------------------------------------------------------------------------

static void usage(int code) {
    fprintf(code == 0 ? stdout : stderr,
            "usage: loadgen [--host BIN] [--viewers N] [--data-bytes B] [--rate HZ | --throughput]\n"
            "               [--duration S] [--inflight W] [--update-bytes B] [--hosts H] [--connect-parallel P]\n"
            "               [--connect-timeout S] [--drain-timeout S] [--json FILE] [--label TEXT] [--quiet]\n"
            "               [-- HOST-ARGS…]\n"
            "  --hosts H: H separate host processes, viewers spread over them, every update to each\n"
            "             (an upper bound for what H service threads could gain)\n"
            "  --relays K --redis URL: one publishing host (serve --redis URL) and K relays, viewers\n"
            "             spread over the relays only; latency is host → Redis → relay → viewer\n"
            "       loadgen --header     (prints the table header that rows line up with)\n");
    exit(code);
}

static void print_header(void) {
    printf("| server | viewers |   data | rate     | connect s | RSS before MiB | RSS idle MiB | KiB/viewer | p50 ms | p99 ms | p99.9 ms "
           "| max ms | last p50 ms | last max ms | lost | ooo | host CPU s | CPU us/delivery | deliveries/s | load |\n");
    printf("|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
}

static void parse_args(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEXT() do { if (!v) usage(2); i++; } while (0)
        if (!strcmp(a, "--")) { opt.host_extra = argv + i + 1; opt.host_extra_count = argc - i - 1; break; }
        else if (!strcmp(a, "--host")) { NEXT(); opt.host_bin = v; }
        else if (!strcmp(a, "--viewers")) { NEXT(); opt.viewers = atoi(v); }
        else if (!strcmp(a, "--data-bytes")) { NEXT(); opt.data_bytes = atoi(v); }
        else if (!strcmp(a, "--rate")) { NEXT(); opt.rate = atof(v); }
        else if (!strcmp(a, "--throughput")) { opt.rate = 0; }
        else if (!strcmp(a, "--duration")) { NEXT(); opt.duration = atof(v); }
        else if (!strcmp(a, "--inflight")) { NEXT(); opt.inflight = atoi(v); }
        else if (!strcmp(a, "--update-bytes")) { NEXT(); opt.update_bytes = atoi(v); }
        else if (!strcmp(a, "--hosts")) { NEXT(); host_count = atoi(v); }
        else if (!strcmp(a, "--relays")) { NEXT(); opt.relays = atoi(v); }
        else if (!strcmp(a, "--redis")) { NEXT(); opt.redis_url = v; }
        else if (!strcmp(a, "--connect-parallel")) { NEXT(); opt.connect_parallel = atoi(v); }
        else if (!strcmp(a, "--connect-timeout")) { NEXT(); opt.connect_timeout = atof(v); }
        else if (!strcmp(a, "--drain-timeout")) { NEXT(); opt.drain_timeout = atof(v); }
        else if (!strcmp(a, "--json")) { NEXT(); opt.json_path = v; }
        else if (!strcmp(a, "--label")) { NEXT(); opt.label = v; }
        else if (!strcmp(a, "--quiet")) { opt.quiet = 1; }
        else if (!strcmp(a, "--header")) { print_header(); exit(0); }
        else if (!strcmp(a, "--help") || !strcmp(a, "-h")) usage(0);
        else usage(2);
#undef NEXT
    }
    if (opt.viewers < 1 || opt.viewers > MAX_VIEWERS) die(2, "--viewers must be 1…%d", MAX_VIEWERS);
    if (opt.data_bytes < 0 || opt.data_bytes > (64 << 20)) die(2, "--data-bytes must be 0…64 MiB");
    if (opt.rate < 0 || opt.rate > 100000) die(2, "--rate must be 0…100000 (0: throughput mode)");
    if (opt.duration <= 0 || opt.duration > 600) die(2, "--duration must be 0…600 s");
    if (opt.inflight < 1 || opt.inflight > 1024) die(2, "--inflight must be 1…1024");
    if (opt.update_bytes < 0 || opt.update_bytes > 60000) die(2, "--update-bytes must be 0…60000");
    if (host_count < 1 || host_count > MAX_HOSTS) die(2, "--hosts must be 1…%d", MAX_HOSTS);
    if (opt.relays < 0 || opt.relays > MAX_HOSTS - 1) die(2, "--relays must be 0…%d", MAX_HOSTS - 1);
    if (opt.relays > 0) {
        if (!opt.redis_url) die(2, "--relays needs --redis redis://127.0.0.1:PORT");
        if (host_count != 1) die(2, "--relays and --hosts do not combine");
        host_count = 1 + opt.relays;
    }
    if (opt.connect_parallel < 1) opt.connect_parallel = 1;
}

/// One pass of epoll: reads viewers, finishes handshakes. Returns events seen.
static int service(int timeout_ms, int timer_fd, int *timer_fired) {
    static struct epoll_event events[1024];
    int n = epoll_wait(epfd, events, 1024, timeout_ms);
    if (n < 0) {
        if (errno == EINTR) return 0;
        die(2, "epoll_wait: %s", strerror(errno));
    }
    int64_t now = 0;
    for (int e = 0; e < n; e++) {
        uint32_t id = events[e].data.u32;
        if (id == UINT32_MAX) { drain_host_stdout(); continue; }
        if (id == UINT32_MAX - 1) {
            uint64_t expirations = 0;
            if (read(timer_fd, &expirations, sizeof expirations) == sizeof expirations) *timer_fired += (int)expirations;
            continue;
        }
        viewer *v = &viewers[id];
        if (v->state == V_CONNECTING) {
            if (events[e].events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) viewer_send_request(v, (int)id);
        } else if (v->state == V_HANDSHAKE || v->state == V_OPEN) {
            if (events[e].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) viewer_readable(v, &now);
        }
    }
    return n;
}

int main(int argc, char **argv) {
    parse_args(argc, argv);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        if (rl.rlim_cur < (rlim_t)opt.viewers + 64)
            die(2, "ulimit -n is %lu; %d viewers need more (scripts/bench raises it to 20000)",
                (unsigned long)rl.rlim_cur, opt.viewers);
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_fatal_signal);
    signal(SIGTERM, on_fatal_signal);
    signal(SIGHUP, on_fatal_signal);
    signal(SIGALRM, on_fatal_signal);
    double budget = opt.connect_timeout + opt.duration + opt.drain_timeout + 45;
    alarm((unsigned)budget);

    int64_t max_k = opt.rate > 0 ? (int64_t)(opt.rate * opt.duration + 0.5) : MAX_BROADCASTS - 1;
    if (max_k < 1) max_k = 1;
    if (max_k > MAX_BROADCASTS - 1) max_k = MAX_BROADCASTS - 1;
    viewers = calloc((size_t)opt.viewers, sizeof *viewers);
    bc_sent = calloc((size_t)max_k + 2, sizeof *bc_sent);
    bc_count = calloc((size_t)max_k + 2, sizeof *bc_count);
    bc_last = calloc((size_t)max_k + 2, sizeof *bc_last);
    if (!viewers || !bc_sent || !bc_count || !bc_last) die(2, "out of memory");

    write_session_file();
    for (int h = 0; h < host_count; h++) start_host(h);
    epfd = epoll_create1(EPOLL_CLOEXEC);
    for (int h = 0; h < host_count; h++) {
        struct epoll_event hev = { .events = EPOLLIN, .data.u32 = UINT32_MAX };
        epoll_ctl(epfd, EPOLL_CTL_ADD, host_stdout[h], &hev);
    }

    // Idle RSS before any viewer (let the host settle first).
    usleep(300000);
    drain_host_stdout();
    long rss_before = hosts_rss_kib();

    // --- Connect: at most connect_parallel handshakes in flight.
    int64_t t_connect = now_ns();
    int64_t connect_deadline = t_connect + (int64_t)(opt.connect_timeout * 1e9);
    int next_open = 0;
    int dummy = 0;
    while (st.ready + st.dead < opt.viewers) {
        while (next_open < opt.viewers && st.handshakes_in_flight < opt.connect_parallel) viewer_open(next_open++);
        service(50, -1, &dummy);
        if (now_ns() > connect_deadline) break;
        if (host_exited()) die(2, "the host exited while viewers connected");
    }
    double connect_s = (double)(now_ns() - t_connect) / 1e9;
    if (st.ready < opt.viewers)
        die(2, "only %d of %d viewers hold the initial state after %.1f s (%d failed)", st.ready, opt.viewers, connect_s, st.dead);

    // --- Idle: settle, then RSS with every viewer connected.
    int64_t settle_until = now_ns() + 500000000LL;
    while (now_ns() < settle_until) service(50, -1, &dummy);
    long rss_idle = hosts_rss_kib();

    // --- Publish.
    double load = load_average();
    double cpu0 = hosts_cpu_seconds();
    double relay_cpu0 = opt.relays > 0 ? cpu_seconds_of(1, host_count) : 0;
    double gen0 = self_cpu_seconds();
    int timer_fd = -1;
    if (opt.rate > 0) {
        timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        int64_t period = (int64_t)(1e9 / opt.rate);
        struct itimerspec its = {
            .it_interval = { .tv_sec = period / 1000000000LL, .tv_nsec = period % 1000000000LL },
            .it_value = { .tv_sec = 0, .tv_nsec = 1000000 },
        };
        timerfd_settime(timer_fd, 0, &its, NULL);
        struct epoll_event tev = { .events = EPOLLIN, .data.u32 = UINT32_MAX - 1 };
        epoll_ctl(epfd, EPOLL_CTL_ADD, timer_fd, &tev);
    }
    int64_t t_pub = now_ns();
    int64_t pub_end = t_pub + (int64_t)(opt.duration * 1e9);
    int64_t drain_deadline = 0;
    int64_t target_total = 0;
    for (;;) {
        int64_t now = now_ns();
        int fired = 0;
        if (opt.rate > 0) {
            service(100, timer_fd, &fired);
            if (fired && published < max_k) publish((int)(fired < max_k - published ? fired : max_k - published));
            if (published >= max_k && drain_deadline == 0) drain_deadline = now_ns() + (int64_t)(opt.drain_timeout * 1e9);
        } else {
            if (now < pub_end) {
                int64_t room = opt.inflight - (published - complete_prefix);
                if (room > 0) publish((int)room);
            } else if (drain_deadline == 0) {
                drain_deadline = now + (int64_t)(opt.drain_timeout * 1e9);
            }
            service(10, -1, &fired);
        }
        target_total = published * (int64_t)opt.viewers;
        if (drain_deadline && (int64_t)st.delivered + (int64_t)st.out_of_order >= target_total) break;
        if (drain_deadline && now_ns() > drain_deadline) break;
        if (st.dead > 0) break;
        if (host_exited()) die(2, "the host exited while publishing");
    }
    double cpu1 = hosts_cpu_seconds();
    double relay_cpu = opt.relays > 0 ? cpu_seconds_of(1, host_count) - relay_cpu0 : 0;
    long rss_peak = hosts_status_kib("VmHWM");      // high-water mark, connect phase included
    double gen1 = self_cpu_seconds();
    int64_t t_end = st.last_receipt_ns ? st.last_receipt_ns : now_ns();

    // --- Results.
    int64_t expected = published * (int64_t)opt.viewers;
    int64_t lost = expected - (int64_t)st.delivered;
    if (lost < 0) lost = 0;
    histogram *last = calloc(1, sizeof *last);
    for (int64_t k = 1; k <= published; k++) if (bc_count[k] > 0) hist_add(last, bc_last[k] - bc_sent[k]);
    double host_cpu = cpu1 - cpu0;
    double span = (double)(t_end - st.first_publish_ns) / 1e9;
    double per_delivery_us = st.delivered ? host_cpu * 1e6 / (double)st.delivered : 0;
    double rate_out = span > 0 ? (double)st.delivered / span : 0;
    double kib_per_viewer = (double)(rss_idle - rss_before) / opt.viewers;
#define MS(x) ((double)(x) / 1e6)
    const char *mode = opt.rate > 0 ? "rate" : "throughput";
    const char *server = strrchr(opt.host_bin, '/') ? strrchr(opt.host_bin, '/') + 1 : opt.host_bin;
    static char relay_name[64];
    if (opt.relays > 0) {
        snprintf(relay_name, sizeof relay_name, "%s+%d relays", server, opt.relays);
        server = relay_name;
    }
    if (opt.json_path) {
        FILE *j = fopen(opt.json_path, "a");
        if (j) {
            fprintf(j,
                    "{\"label\":\"%s\",\"server\":\"%s\",\"mode\":\"%s\",\"viewers\":%d,\"data_bytes\":%d,\"rate_hz\":%g,\"duration_s\":%g,"
                    "\"connect_s\":%.3f,\"rss_before_kib\":%ld,\"rss_idle_kib\":%ld,\"kib_per_viewer\":%.2f,"
                    "\"published\":%" PRId64 ",\"expected\":%" PRId64 ",\"delivered\":%" PRIu64 ",\"lost\":%" PRId64
                    ",\"out_of_order\":%" PRIu64 ",\"resyncs\":%" PRIu64 ",\"bad_frames\":%" PRIu64 ","
                    "\"latency_ms\":{\"p50\":%.3f,\"p99\":%.3f,\"p999\":%.3f,\"max\":%.3f},"
                    "\"last_viewer_ms\":{\"p50\":%.3f,\"p99\":%.3f,\"max\":%.3f},"
                    "\"host_cpu_s\":%.2f,\"cpu_us_per_delivery\":%.2f,\"deliveries_per_s\":%.0f,\"span_s\":%.3f,"
                    "\"loadgen_cpu_s\":%.2f,\"loadavg\":%.2f,\"update_bytes\":%d,\"inflight\":%d,\"hosts\":%d,"
                    "\"rss_peak_kib\":%ld,\"relays\":%d,\"relay_cpu_s\":%.2f,\"relay_cpu_us_per_delivery\":%.2f}\n",
                    opt.label, server, mode, opt.viewers, opt.data_bytes, opt.rate, opt.duration, connect_s, rss_before,
                    rss_idle, kib_per_viewer, published, expected, st.delivered, lost, st.out_of_order,
                    st.session_updates_late, st.bad_frames, MS(hist_percentile(&st.latency, 50)),
                    MS(hist_percentile(&st.latency, 99)), MS(hist_percentile(&st.latency, 99.9)),
                    MS(st.latency.max), MS(hist_percentile(last, 50)), MS(hist_percentile(last, 99)), MS(last->max),
                    host_cpu, per_delivery_us, rate_out, span, gen1 - gen0, load, opt.update_bytes, opt.inflight,
                    host_count, rss_peak, opt.relays, relay_cpu,
                    st.delivered ? relay_cpu * 1e6 / (double)st.delivered : 0);
            fclose(j);
        }
    }
    char rate_text[32];
    if (opt.rate > 0) snprintf(rate_text, sizeof rate_text, "%g Hz", opt.rate);
    else snprintf(rate_text, sizeof rate_text, "max/%d", opt.inflight);
    char data_text[16];
    if (opt.data_bytes >= 1024) snprintf(data_text, sizeof data_text, "%d KB", opt.data_bytes / 1024);
    else snprintf(data_text, sizeof data_text, "%d B", opt.data_bytes);
    printf("| %s | %6d | %6s | %-8s | %6.2f | %6.1f | %6.1f | %5.2f | %6.2f | %6.2f | %6.2f | %6.2f | %6.2f | %6.2f | %4" PRId64
           " | %3" PRIu64 " | %6.2f | %5.2f | %7.0f | %4.1f |\n",
           server, opt.viewers, data_text, rate_text, connect_s, rss_before / 1024.0, rss_idle / 1024.0, kib_per_viewer,
           MS(hist_percentile(&st.latency, 50)), MS(hist_percentile(&st.latency, 99)),
           MS(hist_percentile(&st.latency, 99.9)), MS(st.latency.max), MS(hist_percentile(last, 50)), MS(last->max),
           lost, st.out_of_order, host_cpu, per_delivery_us, rate_out, load);
    fflush(stdout);
    if (st.bad_frames && !opt.quiet) fprintf(stderr, "loadgen: %" PRIu64 " frames could not be parsed\n", st.bad_frames);
    if (st.dead && !opt.quiet) fprintf(stderr, "loadgen: %d viewers dropped while publishing\n", st.dead);

    for (int i = 0; i < opt.viewers; i++) if (viewers[i].state != V_DEAD && viewers[i].fd > 0) close(viewers[i].fd);
    for (int h = 0; h < host_count; h++) close(host_stdin[h]);
    cleanup();
    return (lost > 0 || st.out_of_order > 0 || st.dead > 0 || st.bad_frames > 0) ? 1 : 0;
}
