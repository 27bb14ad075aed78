// statecast load generator: N WebSocket viewers, and the publisher writing
// {"config":{"t":<CLOCK_MONOTONIC ns>,"k":<counter>}} lines to a real
// `statecast-host serve --stdin --debounce-ms 0` that it starts itself
// (with --relays K: that host publishes through Redis to K relays it also starts).
//
// One coordinator process starts the host (and relays), publishes and measures
// them; W worker processes (fork, --workers; default one per 12 500 viewers)
// each hold a slice of the viewers on one epoll thread, connecting from their
// own loopback source address (127.0.0.2, 127.0.0.3, …), so that no process
// needs more descriptors than ulimit -n allows and no source address runs out
// of ephemeral ports. Workers and coordinator share one anonymous mapping: the
// publish times and per-broadcast delivery counts, a control block, and each
// worker's counters and latency histograms, which the coordinator merges into
// one row once the workers have exited.
//
// --kill-relay-after S: S seconds into publishing, relay 1 is SIGKILLed. Its
// viewers reconnect by the viewer's own rules (ViewerClient's FailoverSchedule
// and ReconnectBackoff): the next URL of their list after 250 ms ± 20 %, the
// backoff (2 s × 1.5 … 15 s, ± 20 %) once every URL failed in a row, resuming
// with ?since=SEQ&epoch=EPOCH. Each viewer's list starts at its own relay and
// names the others in a rotated order, so a dead relay's viewers spread over
// the survivors.
//
// No third-party code, loopback only. Every phase has a count and a time bound;
// an alarm kills the host, relays and workers and exits if the run overruns.
// Build: cc -O2 -o loadgen bench/loadgen.c   (scripts/bench does this)
//
// Output: one JSON line (--json FILE, appended) and one table row on stdout
// (with --kill-relay-after, one more line with the failover figures).
// Exit: 0 all delivered in order; 1 something lost or out of order (or a viewer
//       never recovered); 2 setup failed (host did not start, viewers could not
//       connect); 3 overran.
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
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define PREFIX_MAX 256          // first bytes of each message kept for parsing (type, seq, epoch, t, k)
#define TAIL_MAX 96             // last bytes of each message: a full state's config comes last
#define EPOCH_MAX 40            // an epoch is 16 hex digits today
#define RECV_BUF (256 * 1024)
#define MAX_VIEWERS 200000
#define WORKER_VIEWERS_DEFAULT 12500  // viewers per worker unless --workers says otherwise
#define MAX_WORKERS 64
#define MAX_BROADCASTS 2000000
#define STAMPEDE_NS (5LL * 1000000000LL)    // the window after a kill whose latency is reported apart (the 5 s goal)

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
    int connect_parallel;       // handshakes in flight per worker while connecting
    double connect_timeout;     // seconds for all viewers to hold the initial state
    double drain_timeout;       // seconds after the last publish for stragglers (0: 10 s + 1 s per 5 000 viewers)
    const char *json_path;
    const char *label;
    int quiet;
    char **host_extra;          // extra host arguments (after --)
    int host_extra_count;
    int relays;                 // relay mode: K relays fed through Redis, viewers on them only
    const char *redis_url;      // relay mode: the Redis server (redis://127.0.0.1:PORT)
    int workers;                // viewer processes (0: one per WORKER_VIEWERS_DEFAULT)
    double kill_after;          // > 0: SIGKILL relay 1 this many seconds into publishing
} opt = {
    .host_bin = ".build/release/statecast-host",
    .viewers = 100,
    .data_bytes = 1024,
    .rate = 20,
    .duration = 10,
    .inflight = 16,
    .connect_parallel = 256,
    .connect_timeout = 0,
    .drain_timeout = 0,
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

#define MAX_HOSTS 17            // the publishing host and up to 16 relays
static pid_t host_pids[MAX_HOSTS] = { [0 ... MAX_HOSTS - 1] = -1 };
static double dead_cpu[MAX_HOSTS];     // CPU seconds of a killed relay, read just before the kill
static int host_count = 1;
static pid_t worker_pids[MAX_WORKERS] = { [0 ... MAX_WORKERS - 1] = -1 };
static int worker_count;
static int is_worker;

static void kill_workers(void) {
    for (int w = 0; w < worker_count; w++) if (worker_pids[w] > 0) kill(worker_pids[w], SIGKILL);
    for (int w = 0; w < worker_count; w++) if (worker_pids[w] > 0) { waitpid(worker_pids[w], NULL, 0); worker_pids[w] = -1; }
}

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

/// Whether any host or relay has exited (it is then reaped and forgotten).
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
    if (is_worker) return;                      // workers own no process and no file
    kill_workers();
    kill_host();
    if (session_path[0]) unlink(session_path);
}

static void on_fatal_signal(int sig) {
    // Async-signal-safe: SIGKILL the workers and hosts, remove the session file, leave.
    if (!is_worker) {
        for (int w = 0; w < MAX_WORKERS; w++) if (worker_pids[w] > 0) kill(worker_pids[w], SIGKILL);
        for (int h = 0; h < MAX_HOSTS; h++) if (host_pids[h] > 0) kill(host_pids[h], SIGKILL);
        if (session_path[0]) unlink(session_path);
        static const char msg[] = "loadgen: interrupted or overran its time limit; host, relays and workers killed\n";
        (void)!write(2, msg, sizeof msg - 1);
    }
    _exit(sig == SIGALRM ? 3 : 128 + sig);
}

static void die(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("loadgen: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    if (is_worker) _exit(code);                 // a worker's failure ends its run; the coordinator reports it
    cleanup();
    exit(code);
}

/// A "Field:   N kB" line of a /proc file, in KiB (0 if absent).
static long proc_status_kib_file(const char *path, const char *field) {
    char line[256];
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    long value = 0;
    size_t n = strlen(field);
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, field, n) == 0 && line[n] == ':') { value = strtol(line + n + 1, NULL, 10); break; }
    }
    fclose(f);
    return value;
}

static long proc_status_kib(pid_t pid, const char *field) {
    if (pid <= 0) return 0;
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    return proc_status_kib_file(path, field);
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

/// CPU seconds of process h so far (a killed relay: what it had used when killed).
static double process_cpu_seconds(int h) {
    return host_pids[h] > 0 ? proc_cpu_seconds(host_pids[h]) : dead_cpu[h];
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

/// CPU seconds of this process, or with RUSAGE_CHILDREN of the reaped workers.
static double rusage_cpu_seconds(int who) {
    struct rusage ru;
    getrusage(who, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/// MemAvailable of the machine (KiB): with every viewer connected, the drop
/// covers the kernel's sockets at both ends, the generator, the host and relays.
static long mem_available_kib(void) {
    return proc_status_kib_file("/proc/meminfo", "MemAvailable");
}

/// A field of /proc/PID/status summed over the live host and relays.
static long hosts_status_kib(const char *field) {
    long sum = 0;
    for (int h = 0; h < host_count; h++) sum += proc_status_kib(host_pids[h], field);
    return sum;
}

static long hosts_rss_kib(void) { return hosts_status_kib("VmRSS"); }

/// CPU seconds of processes first…last-1 (relay mode: 0 = host, 1… = relays).
static double cpu_seconds_of(int first, int last) {
    double sum = 0;
    for (int h = first; h < last; h++) sum += process_cpu_seconds(h);
    return sum;
}

static void set_nonblocking(int fd) {
    int flags = fcntl(fd, F_GETFL, 0);
    fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

/// A uniform factor in [1 - j, 1 + j].
static double jittered(double base, double j) {
    return base * (1.0 - j + 2.0 * j * ((double)random() / (double)RAND_MAX));
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

static void hist_merge(histogram *into, const histogram *from) {
    if (from->total == 0) return;
    for (int i = 0; i < HIST_BUCKETS; i++) into->counts[i] += from->counts[i];
    if (into->total == 0 || from->max > into->max) into->max = from->max;
    if (into->total == 0 || from->min < into->min) into->min = from->min;
    into->total += from->total;
}

// ---------------------------------------------------------------------------
// Shared between the coordinator and the workers (one MAP_SHARED mapping made
// before the fork). Each worker writes only its own worker_stats; the few
// fields the coordinator reads while workers run are accessed atomically, the
// rest (histograms) only after the worker has exited.

typedef struct {
    // Read live by the coordinator (atomic).
    int ready, dead;
    uint64_t delivered;
    int64_t last_ready_ns;      // when this worker's last viewer got its initial state
    // Read after the worker exited.
    uint64_t out_of_order, gap_lost, bad_frames, pings, session_updates_late;
    uint64_t covered;           // (viewer, k) pairs a resume's catch-up stood in for
    uint64_t moved, reconnects, attempts, resumed_current, resumed_update, resumed_full, unrecovered;
    int64_t last_receipt_ns;
    histogram latency;          // every delivered update (catch-ups excluded)
    histogram before_kill;      // --kill-relay-after: deliveries received before the kill
    histogram stampede;         // … received within STAMPEDE_NS after it, from surviving relays
    histogram detect;           // … per moved viewer: the kill → it saw its connection end
    histogram reconnect;        // … per moved viewer: the kill → its next established connection
    histogram recovery;         // … per moved viewer: the kill → holding the current state again
} worker_stats;

typedef struct {
    int64_t published;          // broadcasts written so far (coordinator)
    int64_t kill_ns;            // when a relay was killed, 0: not (coordinator)
    int killed;                 // which process (host index) was killed
    int stop;                   // 1: workers stop and exit (coordinator)
    int64_t first_publish_ns;
} control_block;

static control_block *ctl;
static worker_stats *all_stats;     // worker_count of them
static worker_stats *st;            // in a worker: its own

// Per broadcast k (1-based): publish time (coordinator), viewers it reached
// (or that a catch-up stood in for), time the last viewer got it individually.
static int64_t *bc_sent;
static uint32_t *bc_count;
static int64_t *bc_last;
static int64_t complete_prefix; // coordinator: broadcasts 1...complete_prefix reached every viewer
static int64_t max_k;           // the last k this run may publish

static void *shared_alloc(size_t bytes) {
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) die(2, "mmap %zu bytes: %s", bytes, strerror(errno));
    return p;
}

#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_ACQUIRE)
#define STORE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELEASE)
#define ADD(x, v) __atomic_add_fetch(&(x), (v), __ATOMIC_RELAXED)

// ---------------------------------------------------------------------------
// Viewers (in a worker)

enum { V_IDLE, V_CONNECTING, V_HANDSHAKE, V_OPEN, V_WAIT, V_DEAD };

typedef struct viewer {
    int fd;
    uint8_t state;
    uint8_t ready;              // has held a state (the initial one, at least)
    uint8_t hdr_len;            // frame header bytes gathered
    uint8_t opcode;             // current frame's opcode
    uint8_t fin;
    uint8_t msg_opcode;         // opcode of the message being assembled
    uint8_t crlf;               // handshake: how many of "\r\n\r\n" matched
    uint8_t target;             // the process (host index) of the current connection
    uint8_t url;                // position in its URL list
    uint8_t resuming;           // reconnected; the next message is the catch-up
    uint8_t moved;              // lost a connection at least once
    uint8_t recovered;          // holds the current state again since it was lost
    uint8_t hdr[14];
    uint16_t prefix_len;
    uint16_t tail_len;
    uint32_t failures;          // attempts failed since the last established connection
    uint32_t backoff_failures;  // backoff delays handed out since then
    uint64_t remaining;         // payload bytes left in the current frame
    uint64_t msg_len;           // bytes of the current message so far
    int64_t last_seq;
    int64_t held_k;             // k of the state it holds
    int64_t need_k;             // on reconnecting: the newest k published when it was re-established
    int64_t lost_ns;            // when its connection was lost
    int64_t retry_at_ns;        // V_WAIT: when to try again
    char epoch[EPOCH_MAX];      // of the last envelope that named one
    char prefix[PREFIX_MAX];
    char tail[TAIL_MAX];
} viewer;

static viewer *viewers;
static int my_viewers;          // in this worker
static int first_viewer;        // global index of this worker's first viewer
static struct in_addr source_addr;
static int handshakes_in_flight;
static int waiting;             // viewers in V_WAIT
static int64_t next_retry_ns;   // the earliest retry_at_ns among them
static int epfd;
static int ports[MAX_HOSTS];

/// How many URLs a viewer has: the relays in relay mode, else the hosts.
static int url_count(void) { return opt.relays > 0 ? opt.relays : host_count; }

/// The process (host index) of URL `pos` in viewer `g`'s list. Lists start at
/// the viewer's own relay (g mod n, so viewers spread evenly) and name the
/// others in an order rotated by g / n, so that a dead relay's viewers spread
/// over all the others instead of landing on its neighbour.
static int url_target(int g, int pos) {
    int n = url_count(), base = opt.relays > 0 ? 1 : 0;
    int home = g % n;
    if (pos == 0 || n == 1) return base + home;
    int rot = (g / n) % (n - 1);
    return base + (home + 1 + (rot + pos - 1) % (n - 1)) % n;
}

static int reconnecting(void) { return opt.kill_after > 0; }

/// The base of a moved viewer's reconnect and recovery times: the kill, or its own loss.
static int64_t loss_origin(const viewer *v) {
    int64_t kill_ns = LOAD(ctl->kill_ns);
    return kill_ns ? kill_ns : v->lost_ns;
}

static void viewer_close(viewer *v) {
    epoll_ctl(epfd, EPOLL_CTL_DEL, v->fd, NULL);
    close(v->fd);
    v->fd = -1;
}

/// The connection (or attempt) failed. A viewer that has held a state
/// reconnects in reconnect mode (FailoverSchedule + ReconnectBackoff);
/// otherwise it is dead, which fails the run.
static void viewer_fail(viewer *v, const char *why) {
    if (v->state == V_DEAD || v->state == V_WAIT) return;
    int64_t now = now_ns();
    if (!v->ready) handshakes_in_flight--;
    viewer_close(v);
    if (!reconnecting() || !v->ready) {
        if (!opt.quiet && LOAD(st->dead) < 5) fprintf(stderr, "loadgen: viewer %d: %s\n", first_viewer + (int)(v - viewers), why);
        v->state = V_DEAD;
        ADD(st->dead, 1);
        return;
    }
    if (v->state == V_OPEN && !v->resuming && (!v->moved || v->recovered)) {
        // An established connection was lost: a new outage starts.
        if (!v->moved) st->moved++;
        v->moved = 1;
        v->recovered = 0;
        v->lost_ns = now;
        st->reconnects++;
        hist_add(&st->detect, now - loss_origin(v));
    }
    int n = url_count();
    v->failures++;
    v->url = (uint8_t)((v->url + 1) % n);
    double delay_s;
    if (v->failures % (uint32_t)n != 0) {
        delay_s = jittered(0.25, 0.2);                     // the next URL, after 250 ms ± 20 %
    } else {
        double base = 2.0;                                 // every URL failed: 2 s × 1.5 …, capped 15 s
        for (uint32_t i = 0; i < v->backoff_failures && base < 15.0; i++) base *= 1.5;
        if (base > 15.0) base = 15.0;
        v->backoff_failures++;
        delay_s = jittered(base, 0.2);
    }
    v->retry_at_ns = now + (int64_t)(delay_s * 1e9);
    v->state = V_WAIT;
    if (waiting == 0 || v->retry_at_ns < next_retry_ns) next_retry_ns = v->retry_at_ns;
    waiting++;
}

static void viewer_open(int index) {
    viewer *v = &viewers[index];
    int g = first_viewer + index;
    if (!v->ready) {
        memset(v, 0, sizeof *v);
        handshakes_in_flight++;
    }
    st->attempts++;
    v->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (v->fd < 0) die(2, "socket: %s (raise ulimit -n, or use more --workers)", strerror(errno));
    int one = 1;
    setsockopt(v->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    // This worker's own source address; the port is chosen at connect(), per destination.
    setsockopt(v->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    struct sockaddr_in src = { .sin_family = AF_INET, .sin_addr = source_addr };
    if (bind(v->fd, (struct sockaddr *)&src, sizeof src) < 0)
        die(2, "bind to %s: %s", inet_ntoa(source_addr), strerror(errno));
    v->target = (uint8_t)url_target(g, v->url);
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons((uint16_t)ports[v->target]) };
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    v->state = V_CONNECTING;
    struct epoll_event ev = { .events = EPOLLOUT, .data.u32 = (uint32_t)index };
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, v->fd, &ev) < 0) die(2, "epoll_ctl: %s", strerror(errno));
    if (connect(v->fd, (struct sockaddr *)&addr, sizeof addr) < 0 && errno != EINPROGRESS) {
        if (errno == EADDRNOTAVAIL) die(2, "connect from %s: no ephemeral port left (use more --workers)", inet_ntoa(source_addr));
        viewer_fail(v, strerror(errno));
    }
}

/// Appends `s` to `out` with everything but unreserved URL characters percent-encoded.
static size_t url_encode(char *out, size_t room, const char *s) {
    size_t n = 0;
    for (; *s && n + 4 < room; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' || c == '.' || c == '_' || c == '~')
            out[n++] = (char)c;
        else n += (size_t)snprintf(out + n, room - n, "%%%02X", c);
    }
    out[n] = 0;
    return n;
}

static void viewer_send_request(viewer *v, int index) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(v->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) { viewer_fail(v, strerror(err)); return; }
    char path[160] = "/";
    if (v->ready) {     // a reconnect resumes from the held position, always with both since and epoch
        char epoch[3 * EPOCH_MAX + 1];
        url_encode(epoch, sizeof epoch, v->epoch);
        snprintf(path, sizeof path, "/?since=%" PRId64 "&epoch=%s", v->last_seq, epoch);
    }
    char req[512];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                     path, ports[v->target]);
    if (send(v->fd, req, (size_t)n, MSG_NOSIGNAL) != n) { viewer_fail(v, "could not send the handshake"); return; }
    v->state = V_HANDSHAKE;
    v->crlf = 0;
    v->prefix_len = 0;
    v->hdr_len = 0;
    v->remaining = 0;
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

/// Copies the string after "epoch":" in s[0..len) into `out`; 0 if absent.
static int find_epoch(const char *s, size_t len, char out[EPOCH_MAX]) {
    static const char key[] = "\"epoch\":\"";
    const char *p = memmem(s, len, key, sizeof key - 1);
    if (!p) return 0;
    p += sizeof key - 1;
    const char *end = memchr(p, '"', (size_t)(s + len - p));
    if (!end || end - p >= EPOCH_MAX) return 0;
    memcpy(out, p, (size_t)(end - p));
    out[end - p] = 0;
    return 1;
}

/// k of a message's payload: in its first bytes, or (a full state, whose
/// config comes after the data) in its last bytes.
static int message_k(const viewer *v, int64_t *k) {
    const char *payload = memmem(v->prefix, v->prefix_len, "\"payload\":", 10);
    if (payload && find_int(payload, v->prefix_len - (size_t)(payload - v->prefix), "\"k\":", k)) return 1;
    return v->msg_len > v->prefix_len && find_int(v->tail, v->tail_len, "\"k\":", k);
}

/// k reached one more viewer (`individually`: as its own update, at `now`).
static void broadcast_reached(int64_t k, int64_t now, int individually) {
    if (k < 1 || k > max_k) { st->bad_frames++; return; }
    ADD(bc_count[k], 1);
    if (!individually) return;
    int64_t seen = LOAD(bc_last[k]);
    while (now > seen && !__atomic_compare_exchange_n(&bc_last[k], &seen, now, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {}
}

/// A moved viewer holds the current state again once it holds need_k.
static void check_recovered(viewer *v, int64_t now) {
    if (v->moved && !v->recovered && !v->resuming && v->held_k >= v->need_k) {
        v->recovered = 1;
        hist_add(&st->recovery, now - loss_origin(v));
    }
}

/// The handshake of a reconnect completed: the position was sent, the relay resumes.
static void viewer_reestablished(viewer *v, int64_t now) {
    v->failures = 0;
    v->backoff_failures = 0;
    if (v->recovered || !v->moved) return;
    hist_add(&st->reconnect, now - loss_origin(v));
    v->need_k = LOAD(ctl->published);
    if (v->held_k >= v->need_k) {
        st->resumed_current++;          // missed nothing: the relay sends nothing
        v->resuming = 0;
        check_recovered(v, now);
    } else {
        v->resuming = 1;                // the next message is the catch-up
    }
}

static void viewer_message(viewer *v, int64_t now) {
    const char *m = v->prefix;
    size_t len = v->prefix_len;
    static const char su[] = "{\"type\":\"session_update\"";
    static const char cu[] = "{\"type\":\"config_update\"";
    int is_su = len >= sizeof su - 1 && memcmp(m, su, sizeof su - 1) == 0;
    int is_cu = len >= sizeof cu - 1 && memcmp(m, cu, sizeof cu - 1) == 0;
    int64_t seq = 0, k = 0;
    if (!find_int(m, len, "\"seq\":", &seq)) { st->bad_frames++; return; }
    find_epoch(m, len, v->epoch);               // from every envelope that names one
    if (!v->ready) {
        if (!is_su || !message_k(v, &k)) {
            viewer_fail(v, "first message is not a session_update with config.k");
            return;
        }
        v->ready = 1;
        v->last_seq = seq;
        v->held_k = k;
        handshakes_in_flight--;
        STORE(st->last_ready_ns, now);
        ADD(st->ready, 1);
        return;
    }
    if (!is_su && !is_cu) return;               // unknown types are ignored, as viewers do
    if (!message_k(v, &k)) { st->bad_frames++; return; }
    if (v->resuming) {
        // The catch-up: one config_update merging what it missed, or the full state.
        v->resuming = 0;
        if (is_su) st->resumed_full++; else st->resumed_update++;
        if (k < v->held_k) st->out_of_order++;  // an older state than it held: a step back
        for (int64_t c = v->held_k + 1; c <= k; c++) broadcast_reached(c, now, 0);
        if (k > v->held_k) st->covered += (uint64_t)(k - v->held_k);
        v->last_seq = seq;
        v->held_k = k;
        check_recovered(v, now);
        return;
    }
    if (seq <= v->last_seq) { st->out_of_order++; return; }
    if (seq > v->last_seq + 1) st->gap_lost += (uint64_t)(seq - v->last_seq - 1);
    v->last_seq = seq;
    v->held_k = k;
    if (is_su) {
        st->session_updates_late++;             // a resync: the updates it replaced are lost
        check_recovered(v, now);
        return;
    }
    int64_t t = 0;
    const char *payload = memmem(m, len, "\"payload\":", 10);
    if (!payload || !find_int(payload, len - (size_t)(payload - m), "\"t\":", &t)) { st->bad_frames++; return; }
    ADD(st->delivered, 1);
    hist_add(&st->latency, now - t);
    int64_t kill_ns = LOAD(ctl->kill_ns);
    if (reconnecting()) {
        if (!kill_ns || now < kill_ns) hist_add(&st->before_kill, now - t);
        else if (now < kill_ns + STAMPEDE_NS && v->target != LOAD(ctl->killed)) hist_add(&st->stampede, now - t);
    }
    st->last_receipt_ns = now;
    broadcast_reached(k, now, 1);
    check_recovered(v, now);
}

static void viewer_frame_done(viewer *v, int64_t now) {
    uint8_t op = v->opcode;
    if (op >= 8) {                          // control frames: whole payload is in prefix
        if (op == 9) { st->pings++; viewer_send_control(v, 0xA, v->prefix, v->prefix_len); }
        else if (op == 8) viewer_fail(v, "host closed the connection");
        v->prefix_len = 0;
        return;
    }
    if (v->fin) {
        if (v->msg_opcode == 1) viewer_message(v, now);
        else st->bad_frames++;
        v->prefix_len = 0;
        v->tail_len = 0;
        v->msg_len = 0;
    }
}

/// Keeps the last TAIL_MAX bytes of the message in v->tail.
static void viewer_keep_tail(viewer *v, const uint8_t *p, size_t n) {
    if (n >= TAIL_MAX) {
        memcpy(v->tail, p + n - TAIL_MAX, TAIL_MAX);
        v->tail_len = TAIL_MAX;
        return;
    }
    size_t keep = v->tail_len + n > TAIL_MAX ? TAIL_MAX - n : v->tail_len;
    memmove(v->tail, v->tail + v->tail_len - keep, keep);
    memcpy(v->tail + keep, p, n);
    v->tail_len = (uint16_t)(keep + n);
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
            v->crlf = (p[i] == (uint8_t)end_marker[v->crlf]) ? v->crlf + 1 : (p[i] == '\r' ? 1 : 0);
            if (v->crlf == 4) {
                v->state = V_OPEN;
                v->prefix_len = 0;
                v->tail_len = 0;
                v->msg_len = 0;
                if (v->ready) viewer_reestablished(v, now);
            }
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
            if (v->opcode == 1 || v->opcode == 2) { v->msg_opcode = v->opcode; v->prefix_len = 0; v->tail_len = 0; v->msg_len = 0; }
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
        if (v->opcode < 8) viewer_keep_tail(v, p + i, take);
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

/// Reopens the viewers whose reconnect delay is over (one scan when the earliest is due).
static void retry_due(void) {
    if (waiting == 0) return;
    int64_t now = now_ns();
    if (now < next_retry_ns) return;
    int64_t next = INT64_MAX;
    int due[1024], count = 0;
    for (int i = 0; i < my_viewers; i++) {
        viewer *v = &viewers[i];
        if (v->state != V_WAIT) continue;
        if (now >= v->retry_at_ns && count < 1024) due[count++] = i;
        else if (v->retry_at_ns < next) next = v->retry_at_ns;
    }
    next_retry_ns = count == 1024 ? now : next;
    // Opened after the scan: an attempt that fails at once schedules itself again.
    for (int d = 0; d < count; d++) {
        waiting--;
        viewer_open(due[d]);
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
    for (int h = 0; h < host_count; h++) while (host_stdout[h] >= 0 && read(host_stdout[h], buf, sizeof buf) > 0) {}
}

static char line_buf[1 << 17];
static int64_t published;       // coordinator: broadcasts written so far

/// Writes broadcasts published+1 ... published+count (fewer if the buffer fills) in one write.
static void publish(int count) {
    if (count <= 0) return;
    if (published + count > max_k) count = (int)(max_k - published);
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
    if (ctl->first_publish_ns == 0) ctl->first_publish_ns = bc_sent[published + 1];
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
    STORE(ctl->published, published);
}

// ---------------------------------------------------------------------------

static void usage(int code) {
    fprintf(code == 0 ? stdout : stderr,
            "usage: loadgen [--host BIN] [--viewers N] [--data-bytes B] [--rate HZ | --throughput]\n"
            "               [--duration S] [--inflight W] [--update-bytes B] [--hosts H] [--connect-parallel P]\n"
            "               [--connect-timeout S] [--drain-timeout S] [--json FILE] [--label TEXT] [--quiet]\n"
            "               [--workers W] [--relays K --redis URL [--kill-relay-after S]] [-- HOST-ARGS…]\n"
            "  --hosts H: H separate host processes, viewers spread over them, every update to each\n"
            "             (an upper bound for what H service threads could gain)\n"
            "  --relays K --redis URL: one publishing host (serve --redis URL) and K relays, viewers\n"
            "             spread over the relays only; latency is host → Redis → relay → viewer\n"
            "  --workers W: viewer processes, each from its own source address 127.0.0.(2+w)\n"
            "             (default: one per %d viewers); figures are merged into one row\n"
            "  --kill-relay-after S: SIGKILL relay 1 S seconds into publishing; its viewers fail over\n"
            "             and resume; prints the failover figures (needs --relays 2 or more)\n"
            "  --connect-parallel P: handshakes in flight per worker while connecting (default 256)\n"
            "       loadgen --header     (prints the table header that rows line up with)\n",
            WORKER_VIEWERS_DEFAULT);
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
        else if (!strcmp(a, "--workers")) { NEXT(); opt.workers = atoi(v); }
        else if (!strcmp(a, "--kill-relay-after")) { NEXT(); opt.kill_after = atof(v); }
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
    if (opt.kill_after < 0 || (opt.kill_after > 0 && opt.kill_after >= opt.duration))
        die(2, "--kill-relay-after must be between 0 and --duration (%g s): updates must keep flowing after the kill", opt.duration);
    if (opt.kill_after > 0 && opt.relays < 2)
        die(2, "--kill-relay-after needs --relays 2 or more: the killed relay's viewers need another relay to move to");
    if (opt.kill_after > 0 && opt.rate <= 0) die(2, "--kill-relay-after needs --rate (not throughput mode)");
    if (opt.workers < 0 || opt.workers > MAX_WORKERS) die(2, "--workers must be 1…%d", MAX_WORKERS);
    worker_count = opt.workers > 0 ? opt.workers : (opt.viewers + WORKER_VIEWERS_DEFAULT - 1) / WORKER_VIEWERS_DEFAULT;
    if (worker_count > opt.viewers) worker_count = opt.viewers;
    if (opt.connect_parallel < 1) opt.connect_parallel = 1;
    // A minute, plus a second per 2 000 viewers beyond (100 000: 110 s), unless given.
    if (opt.connect_timeout <= 0) opt.connect_timeout = 60 + opt.viewers / 2000.0;
    if (opt.drain_timeout <= 0) opt.drain_timeout = 10 + opt.viewers / 5000.0;
}

/// One pass of epoll: reads viewers, finishes handshakes; in the coordinator,
/// drains the hosts' stdout and counts timer ticks. Returns events seen.
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

// ---------------------------------------------------------------------------
// Worker: viewers first…first+count-1, until the coordinator says stop.

static void worker_main(int w, int first, int count) {
    is_worker = 1;
    prctl(PR_SET_PDEATHSIG, SIGKILL);           // never outlive the coordinator
    for (int h = 0; h < MAX_HOSTS; h++) host_pids[h] = -1;
    for (int h = 0; h < host_count; h++) { close(host_stdin[h]); close(host_stdout[h]); }
    close(epfd);
    srandom((unsigned)(getpid() ^ now_ns()));
    st = &all_stats[w];
    first_viewer = first;
    my_viewers = count;
    source_addr.s_addr = htonl(0x7F000002u + (uint32_t)w);      // 127.0.0.2, 127.0.0.3, …
    viewers = calloc((size_t)count, sizeof *viewers);
    if (!viewers) die(2, "worker %d: out of memory", w);
    epfd = epoll_create1(EPOLL_CLOEXEC);
    int next_open = 0, dummy = 0;
    while (!LOAD(ctl->stop)) {
        while (next_open < count && handshakes_in_flight < opt.connect_parallel) viewer_open(next_open++);
        service(20, -1, &dummy);
        retry_due();
    }
    for (int i = 0; i < count; i++) {
        viewer *v = &viewers[i];
        if (v->moved && !v->recovered) st->unrecovered++;
        if (v->fd > 0 && v->state != V_DEAD && v->state != V_WAIT) close(v->fd);
    }
    _exit(0);
}

// ---------------------------------------------------------------------------
// Coordinator

static int sum_ready(void) { int s = 0; for (int w = 0; w < worker_count; w++) s += LOAD(all_stats[w].ready); return s; }
static int sum_dead(void) { int s = 0; for (int w = 0; w < worker_count; w++) s += LOAD(all_stats[w].dead); return s; }

/// Advances complete_prefix over the broadcasts every viewer has (or had stood in for).
static void update_complete_prefix(void) {
    while (complete_prefix < published && LOAD(bc_count[complete_prefix + 1]) >= (uint32_t)opt.viewers) complete_prefix++;
}

static void start_workers(void) {
    int first = 0;
    for (int w = 0; w < worker_count; w++) {
        int count = opt.viewers / worker_count + (w < opt.viewers % worker_count ? 1 : 0);
        pid_t pid = fork();
        if (pid < 0) die(2, "fork: %s", strerror(errno));
        if (pid == 0) worker_main(w, first, count);
        worker_pids[w] = pid;
        first += count;
    }
}

/// Tells the workers to stop and reaps them (SIGKILL after 10 s).
static void stop_workers(void) {
    STORE(ctl->stop, 1);
    int64_t deadline = now_ns() + 10LL * 1000000000LL;
    for (int w = 0; w < worker_count; w++) {
        int status = 0;
        while (waitpid(worker_pids[w], &status, WNOHANG) == 0) {
            if (now_ns() > deadline) { kill(worker_pids[w], SIGKILL); waitpid(worker_pids[w], &status, 0); break; }
            usleep(5000);
        }
        worker_pids[w] = -1;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) die(2, "worker %d failed (status %d)", w, status);
    }
}

/// SIGKILLs relay 1 while publishing goes on; its CPU so far is kept.
static void kill_relay(void) {
    int h = 1;
    dead_cpu[h] = proc_cpu_seconds(host_pids[h]);
    STORE(ctl->killed, h);
    STORE(ctl->kill_ns, now_ns());
    kill(host_pids[h], SIGKILL);
    waitpid(host_pids[h], NULL, 0);
    host_pids[h] = -1;
    // Its stdout is at EOF now: out of the epoll set, or every epoll_wait would return at once.
    epoll_ctl(epfd, EPOLL_CTL_DEL, host_stdout[h], NULL);
    close(host_stdout[h]);
    close(host_stdin[h]);
    host_stdout[h] = host_stdin[h] = -1;
}

int main(int argc, char **argv) {
    parse_args(argc, argv);
    struct rlimit rl;
    int per_worker = (opt.viewers + worker_count - 1) / worker_count;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        if (rl.rlim_cur < (rlim_t)per_worker + 64)
            die(2, "ulimit -n is %lu; %d viewers per worker process need more: use --workers %d or more, or raise ulimit -n",
                (unsigned long)rl.rlim_cur, per_worker, (int)((opt.viewers + (long)rl.rlim_cur - 65) / ((long)rl.rlim_cur - 64)));
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_fatal_signal);
    signal(SIGTERM, on_fatal_signal);
    signal(SIGHUP, on_fatal_signal);
    signal(SIGALRM, on_fatal_signal);
    double budget = opt.connect_timeout + opt.duration + opt.drain_timeout + 45;
    alarm((unsigned)budget);

    max_k = opt.rate > 0 ? (int64_t)(opt.rate * opt.duration + 0.5) : MAX_BROADCASTS - 1;
    if (max_k < 1) max_k = 1;
    if (max_k > MAX_BROADCASTS - 1) max_k = MAX_BROADCASTS - 1;
    ctl = shared_alloc(sizeof *ctl);
    all_stats = shared_alloc(sizeof *all_stats * (size_t)worker_count);
    bc_sent = shared_alloc(sizeof *bc_sent * ((size_t)max_k + 2));
    bc_count = shared_alloc(sizeof *bc_count * ((size_t)max_k + 2));
    bc_last = shared_alloc(sizeof *bc_last * ((size_t)max_k + 2));

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
    long avail_before = mem_available_kib();

    // --- Connect: the workers open their viewers, connect_parallel handshakes in flight each.
    int64_t t_connect = now_ns();
    int64_t connect_deadline = t_connect + (int64_t)(opt.connect_timeout * 1e9);
    int dummy = 0;
    fflush(stdout);
    fflush(stderr);
    start_workers();
    while (sum_ready() + sum_dead() < opt.viewers) {
        service(50, -1, &dummy);
        if (now_ns() > connect_deadline) break;
        if (host_exited()) die(2, "the host (or a relay) exited while viewers connected");
    }
    int64_t last_ready = t_connect;
    for (int w = 0; w < worker_count; w++) if (LOAD(all_stats[w].last_ready_ns) > last_ready) last_ready = LOAD(all_stats[w].last_ready_ns);
    double connect_s = (double)(last_ready - t_connect) / 1e9;
    int ready = sum_ready();
    if (ready < opt.viewers)
        die(2, "only %d of %d viewers hold the initial state after %.1f s (%d failed)", ready, opt.viewers,
            (double)(now_ns() - t_connect) / 1e9, sum_dead());

    // --- Idle: settle, then RSS with every viewer connected.
    int64_t settle_until = now_ns() + 500000000LL + (int64_t)opt.viewers * 10000LL;   // + 1 s per 100 000
    while (now_ns() < settle_until) service(50, -1, &dummy);
    long rss_idle = hosts_rss_kib();
    long avail_idle = mem_available_kib();

    // --- Publish.
    double load = load_average();
    double cpu0 = cpu_seconds_of(0, host_count);
    double relay_cpu0 = opt.relays > 0 ? cpu_seconds_of(1, host_count) : 0;
    double gen0 = rusage_cpu_seconds(RUSAGE_SELF);
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
    int64_t kill_at = opt.kill_after > 0 ? t_pub + (int64_t)(opt.kill_after * 1e9) : 0;
    int64_t drain_deadline = 0;
    for (;;) {
        int64_t now = now_ns();
        int fired = 0;
        if (kill_at && now >= kill_at && !LOAD(ctl->kill_ns)) kill_relay();
        if (opt.rate > 0) {
            service(20, timer_fd, &fired);
            if (fired && published < max_k) publish((int)(fired < max_k - published ? fired : max_k - published));
            if (published >= max_k && drain_deadline == 0) drain_deadline = now_ns() + (int64_t)(opt.drain_timeout * 1e9);
        } else {
            update_complete_prefix();
            if (now < pub_end) {
                int64_t room = opt.inflight - (published - complete_prefix);
                if (room > 0) publish((int)room);
            } else if (drain_deadline == 0) {
                drain_deadline = now + (int64_t)(opt.drain_timeout * 1e9);
            }
            service(1, -1, &fired);
        }
        update_complete_prefix();
        if (drain_deadline && complete_prefix >= published) break;
        if (drain_deadline && now_ns() > drain_deadline) break;
        if (sum_dead() > 0) break;
        if (host_exited()) die(2, "the host (or a relay) exited while publishing");
    }
    double cpu1 = cpu_seconds_of(0, host_count);
    double relay_cpu = opt.relays > 0 ? cpu_seconds_of(1, host_count) - relay_cpu0 : 0;
    long rss_peak = hosts_status_kib("VmHWM");      // high-water mark, connect phase included (live processes)
    double gen1 = rusage_cpu_seconds(RUSAGE_SELF);
    stop_workers();
    // The workers' CPU: every reaped child but a killed relay (the others are still running).
    double workers_cpu = rusage_cpu_seconds(RUSAGE_CHILDREN);
    for (int h = 0; h < host_count; h++) workers_cpu -= host_pids[h] > 0 ? 0 : dead_cpu[h];

    // --- Merge the workers' figures.
    worker_stats *all = calloc(1, sizeof *all);
    if (!all) die(2, "out of memory");
    for (int w = 0; w < worker_count; w++) {
        worker_stats *s = &all_stats[w];
#define SUM(f) all->f += s->f
        SUM(ready); SUM(dead); SUM(delivered); SUM(out_of_order); SUM(gap_lost); SUM(bad_frames); SUM(pings);
        SUM(session_updates_late); SUM(covered); SUM(moved); SUM(reconnects); SUM(attempts);
        SUM(resumed_current); SUM(resumed_update); SUM(resumed_full); SUM(unrecovered);
#undef SUM
        if (s->last_receipt_ns > all->last_receipt_ns) all->last_receipt_ns = s->last_receipt_ns;
        hist_merge(&all->latency, &s->latency);
        hist_merge(&all->before_kill, &s->before_kill);
        hist_merge(&all->stampede, &s->stampede);
        hist_merge(&all->detect, &s->detect);
        hist_merge(&all->reconnect, &s->reconnect);
        hist_merge(&all->recovery, &s->recovery);
    }
    int64_t t_end = all->last_receipt_ns ? all->last_receipt_ns : now_ns();

    // --- Results.
    int64_t expected = published * (int64_t)opt.viewers;
    int64_t lost = expected - (int64_t)all->delivered - (int64_t)all->covered;
    if (lost < 0) lost = 0;
    histogram *last = calloc(1, sizeof *last);
    if (!last) die(2, "out of memory");
    for (int64_t k = 1; k <= published; k++) if (bc_last[k] > 0) hist_add(last, bc_last[k] - bc_sent[k]);
    double host_cpu = cpu1 - cpu0;
    double span = (double)(t_end - ctl->first_publish_ns) / 1e9;
    double per_delivery_us = all->delivered ? host_cpu * 1e6 / (double)all->delivered : 0;
    double rate_out = span > 0 ? (double)all->delivered / span : 0;
    double kib_per_viewer = (double)(rss_idle - rss_before) / opt.viewers;
    int killed = opt.kill_after > 0;
#define MS(x) ((double)(x) / 1e6)
#define PCT(h, p) MS(hist_percentile(&(h), p))
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
                    "\"loadgen_cpu_s\":%.2f,\"workers_cpu_s\":%.2f,\"workers\":%d,\"loadavg\":%.2f,\"update_bytes\":%d,\"inflight\":%d,\"hosts\":%d,"
                    "\"rss_peak_kib\":%ld,\"relays\":%d,\"relay_cpu_s\":%.2f,\"relay_cpu_us_per_delivery\":%.2f,\"publisher_cpu_s\":%.2f,\"machine_kib_per_viewer\":%.2f",
                    opt.label, server, mode, opt.viewers, opt.data_bytes, opt.rate, opt.duration, connect_s, rss_before,
                    rss_idle, kib_per_viewer, published, expected, all->delivered, lost, all->out_of_order,
                    all->session_updates_late, all->bad_frames, PCT(all->latency, 50), PCT(all->latency, 99),
                    PCT(all->latency, 99.9), MS(all->latency.max), PCT(*last, 50), PCT(*last, 99), MS(last->max),
                    host_cpu, per_delivery_us, rate_out, span, gen1 - gen0, workers_cpu, worker_count, load,
                    opt.update_bytes, opt.inflight, host_count, rss_peak, opt.relays, relay_cpu,
                    all->delivered ? relay_cpu * 1e6 / (double)all->delivered : 0, host_cpu - relay_cpu,
                    (double)(avail_before - avail_idle) / opt.viewers);
            if (killed)
                fprintf(j,
                        ",\"failover\":{\"kill_after_s\":%g,\"moved\":%" PRIu64 ",\"reconnects\":%" PRIu64 ",\"attempts\":%" PRIu64
                        ",\"unrecovered\":%" PRIu64 ",\"resumed_current\":%" PRIu64 ",\"resumed_update\":%" PRIu64
                        ",\"resumed_full\":%" PRIu64 ",\"covered\":%" PRIu64 ","
                        "\"detect_ms\":{\"p50\":%.1f,\"max\":%.1f},\"reconnect_ms\":{\"min\":%.1f,\"p50\":%.1f,\"p99\":%.1f,\"max\":%.1f},"
                        "\"recovery_ms\":{\"min\":%.1f,\"p50\":%.1f,\"p99\":%.1f,\"max\":%.1f},"
                        "\"before_kill_ms\":{\"p50\":%.3f,\"p99\":%.3f,\"max\":%.3f},"
                        "\"stampede_ms\":{\"p50\":%.3f,\"p99\":%.3f,\"max\":%.3f,\"deliveries\":%" PRIu64 "}}",
                        opt.kill_after, all->moved, all->reconnects, all->attempts, all->unrecovered, all->resumed_current,
                        all->resumed_update, all->resumed_full, all->covered, PCT(all->detect, 50), MS(all->detect.max), MS(all->reconnect.min),
                        PCT(all->reconnect, 50), PCT(all->reconnect, 99), MS(all->reconnect.max), MS(all->recovery.min),
                        PCT(all->recovery, 50), PCT(all->recovery, 99), MS(all->recovery.max),
                        PCT(all->before_kill, 50), PCT(all->before_kill, 99), MS(all->before_kill.max),
                        PCT(all->stampede, 50), PCT(all->stampede, 99), MS(all->stampede.max), all->stampede.total);
            fputs("}\n", j);
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
           PCT(all->latency, 50), PCT(all->latency, 99), PCT(all->latency, 99.9), MS(all->latency.max),
           PCT(*last, 50), MS(last->max), lost, all->out_of_order, host_cpu, per_delivery_us, rate_out, load);
    if (killed)
        printf("failover: relay 1 killed after %g s; %" PRIu64 " viewers moved (%" PRIu64 " connection attempts); "
               "saw the loss after %.0f / %.0f ms (p50 / max); "
               "reconnected after %.0f / %.0f / %.0f / %.0f ms (min / p50 / p99 / max); current state again after "
               "%.0f / %.0f / %.0f / %.0f ms; resumed: %" PRIu64 " with nothing missed, %" PRIu64 " with one config_update, %" PRIu64
               " with the full state; %" PRIu64 " never recovered; p99 %.1f ms before the kill, %.1f ms in the %lld s after it "
               "(surviving relays, %" PRIu64 " deliveries)\n",
               opt.kill_after, all->moved, all->attempts - (uint64_t)opt.viewers, PCT(all->detect, 50), MS(all->detect.max), MS(all->reconnect.min),
               PCT(all->reconnect, 50), PCT(all->reconnect, 99), MS(all->reconnect.max), MS(all->recovery.min),
               PCT(all->recovery, 50), PCT(all->recovery, 99), MS(all->recovery.max), all->resumed_current,
               all->resumed_update, all->resumed_full, all->unrecovered, PCT(all->before_kill, 99),
               PCT(all->stampede, 99), STAMPEDE_NS / 1000000000LL, all->stampede.total);
    fflush(stdout);
    if (all->bad_frames && !opt.quiet) fprintf(stderr, "loadgen: %" PRIu64 " frames could not be parsed\n", all->bad_frames);
    if (all->dead && !opt.quiet) fprintf(stderr, "loadgen: %d viewers dropped while publishing\n", all->dead);

    for (int h = 0; h < host_count; h++) if (host_pids[h] > 0) close(host_stdin[h]);
    cleanup();
    int failed = lost > 0 || all->out_of_order > 0 || all->dead > 0 || all->bad_frames > 0 || all->unrecovered > 0;
    return failed ? 1 : 0;
}
