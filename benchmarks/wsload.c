/*
 * wsload: the WebSocket load client of benchmarks/websocket.py.
 *
 *   wsload echo|broadcast --port PORT [--host 127.0.0.1] [--path /echo]
 *          [--connections 100] [--seconds 5] [--size 64] [--publishers 4]
 *          [--settle 0.5]
 *
 * One thread, one epoll loop, so that the client costs far less CPU per
 * message than the servers it measures (the Python client cost as much as
 * they did).  It opens --connections WebSockets (RFC 6455 handshake: the 101
 * and Sec-WebSocket-Accept are checked; no extension is offered, so nobody
 * compresses), then for --seconds:
 *
 *   echo       every connection keeps exactly one message in flight: a masked
 *              text frame of --size bytes naming the connection and a sequence
 *              number, sent again when its echo came back byte for byte.
 *              Reports round trips, their rate and latency (p50, p99).
 *   broadcast  the members wait --settle seconds (every one has joined its
 *              worker's room), then the first --publishers connections send
 *              "p<i>:" + --size bytes of 'x', each its next message once its
 *              previous one came back; every data frame any member receives
 *              within the window is a delivery, and must be one of the
 *              publishers' messages.
 *
 * Server pings are answered with pongs.  A connection that fails, closes or
 * sends anything unexpected (a wrong echo, a masked or reserved-bit frame) is
 * an error: it is reported on stderr and counted, and the exit status is 1.
 *
 * Output on stdout, one key=value a line: scenario, connections, seconds
 * (the measured window), messages (round trips or deliveries), rate, p50_ms,
 * p99_ms (echo only, else 0), client_cpu_s (this process's user + system CPU
 * over the window), errors.  Exit status: 0 fine, 1 errors, 2 bad usage.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_PAYLOAD (16u << 20) /* a larger frame from the server is an error */
#define MAX_HANDSHAKE 8192
#define CONNECT_BATCH 100 /* handshakes in flight: below any accept backlog */
#define HANDSHAKE_SECONDS 60.0
#define READ_CHUNK 65536
#define MAX_REPORTED_ERRORS 10

enum scenario { ECHO, BROADCAST };
enum state { IDLE, CONNECTING, HANDSHAKING, OPEN, CLOSED };

struct buf {
    unsigned char *data;
    size_t len, cap;
};

struct conn {
    int fd, index;
    enum state state;
    struct buf in, out, fragments;
    int fragments_opcode; /* 0: no fragmented message in progress */
    int want_write;       /* EPOLLOUT is armed */
    char key[25], accept[29];
    unsigned char mask[4];
    unsigned char *frame; /* the masked frame of the message in flight */
    size_t frame_len;
    unsigned char *payload; /* the same message unmasked: what must come back */
    size_t payload_len;
    int in_flight, publisher;
    uint64_t sequence, sent_ns;
};

static struct {
    enum scenario scenario;
    struct sockaddr_in addr;
    const char *path;
    int connections, size, publishers;
    double seconds, settle;
    int running; /* inside the measured window */
    uint64_t messages;
    int errors;
    uint64_t *latencies;
    size_t latencies_len, latencies_cap;
    int epoll;
} g;

static void die(const char *what) {
    perror(what);
    exit(1);
}

static void *grow(void *data, size_t size) {
    void *bigger = realloc(data, size);
    if (!bigger) die("realloc");
    return bigger;
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void buf_append(struct buf *b, const void *data, size_t len) {
    if (b->len + len > b->cap) {
        b->cap = (b->len + len) * 2;
        b->data = grow(b->data, b->cap);
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
}

static void buf_consume(struct buf *b, size_t len) {
    memmove(b->data, b->data + len, b->len - len);
    b->len -= len;
}

/* -- SHA-1 and base64, for the handshake's Sec-WebSocket-Accept ------------ */

static uint32_t rol(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

static void sha1(const unsigned char *msg, size_t len, unsigned char out[20]) {
    uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    size_t padded = ((len + 8) / 64 + 1) * 64;
    unsigned char *m = calloc(padded, 1);
    if (!m) die("calloc");
    memcpy(m, msg, len);
    m[len] = 0x80;
    uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++) m[padded - 1 - i] = (unsigned char)(bits >> (8 * i));
    for (size_t block = 0; block < padded; block += 64) {
        uint32_t w[80];
        for (int i = 0; i < 16; i++) {
            const unsigned char *p = m + block + 4 * i;
            w[i] = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
        }
        for (int i = 16; i < 80; i++) w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
        uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
        for (int i = 0; i < 80; i++) {
            uint32_t f, k;
            if (i < 20) f = (b & c) | (~b & d), k = 0x5A827999;
            else if (i < 40) f = b ^ c ^ d, k = 0x6ED9EBA1;
            else if (i < 60) f = (b & c) | (b & d) | (c & d), k = 0x8F1BBCDC;
            else f = b ^ c ^ d, k = 0xCA62C1D6;
            uint32_t t = rol(a, 5) + f + e + k + w[i];
            e = d, d = c, c = rol(b, 30), b = a, a = t;
        }
        h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e;
    }
    free(m);
    for (int i = 0; i < 20; i++) out[i] = (unsigned char)(h[i / 4] >> (24 - 8 * (i % 4)));
}

static void base64(const unsigned char *in, size_t len, char *out) {
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len) v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < len) v |= in[i + 2];
        out[o++] = alphabet[(v >> 18) & 63];
        out[o++] = alphabet[(v >> 12) & 63];
        out[o++] = i + 1 < len ? alphabet[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < len ? alphabet[v & 63] : '=';
    }
    out[o] = '\0';
}

static void random_bytes(void *out, size_t len) {
    if (getrandom(out, len, 0) != (ssize_t)len) die("getrandom");
}

/* -- connections -------------------------------------------------------------- */

static void fail(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void close_conn(struct conn *c) {
    if (c->fd >= 0) {
        epoll_ctl(g.epoll, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
    }
    c->state = CLOSED;
}

static void fail(struct conn *c, const char *fmt, ...) {
    if (c->state == CLOSED) return;
    if (g.errors++ < MAX_REPORTED_ERRORS) {
        va_list args;
        va_start(args, fmt);
        fprintf(stderr, "wsload: connection %d: ", c->index);
        vfprintf(stderr, fmt, args);
        fputc('\n', stderr);
        va_end(args);
    }
    close_conn(c);
}

static void arm(struct conn *c, int want_write) {
    if (c->want_write == want_write) return;
    struct epoll_event ev = {.events = EPOLLIN | (want_write ? EPOLLOUT : 0), .data.ptr = c};
    if (epoll_ctl(g.epoll, EPOLL_CTL_MOD, c->fd, &ev) < 0) die("epoll_ctl");
    c->want_write = want_write;
}

static void flush(struct conn *c) {
    while (c->out.len) {
        ssize_t n = send(c->fd, c->out.data, c->out.len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN) break;
            fail(c, "send: %s", strerror(errno));
            return;
        }
        buf_consume(&c->out, (size_t)n);
    }
    arm(c, c->out.len > 0);
}

/* Writes at once when nothing is queued (the usual case: one system call). */
static void send_bytes(struct conn *c, const unsigned char *data, size_t len) {
    if (c->out.len == 0) {
        ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);
        if (n < 0 && errno != EAGAIN) {
            fail(c, "send: %s", strerror(errno));
            return;
        }
        if (n > 0) data += n, len -= (size_t)n;
        if (len == 0) return;
    }
    buf_append(&c->out, data, len);
    arm(c, 1);
}

static size_t frame_header(unsigned char *out, int opcode, size_t len) {
    out[0] = (unsigned char)(0x80 | opcode);
    if (len < 126) {
        out[1] = (unsigned char)(0x80 | len);
        return 2;
    }
    out[1] = 0x80 | 126;
    out[2] = (unsigned char)(len >> 8);
    out[3] = (unsigned char)len;
    return 4;
}

/* A final, masked client frame of `payload` into `out` (room for len + 8). */
static size_t mask_frame(unsigned char *out, int opcode, const unsigned char *payload, size_t len,
                         const unsigned char mask[4]) {
    size_t head = frame_header(out, opcode, len);
    memcpy(out + head, mask, 4);
    for (size_t i = 0; i < len; i++) out[head + 4 + i] = payload[i] ^ mask[i & 3];
    return head + 4 + len;
}

static void send_frame(struct conn *c, int opcode, const unsigned char *payload, size_t len) {
    unsigned char frame[125 + 8];
    send_bytes(c, frame, mask_frame(frame, opcode, payload, len, c->mask));
}

/* The next echo message: the connection's index and sequence number in hex. */
static void next_message(struct conn *c) {
    static const char hex[] = "0123456789abcdef";
    unsigned char *p = c->payload;
    memset(p, 'x', (size_t)g.size);
    p[0] = 'c';
    for (int i = 0; i < 8; i++) p[1 + i] = (unsigned char)hex[(c->index >> (28 - 4 * i)) & 15];
    p[9] = ':';
    for (int i = 0; i < 16; i++) p[10 + i] = (unsigned char)hex[(c->sequence >> (60 - 4 * i)) & 15];
    c->sequence++;
    c->payload_len = (size_t)g.size;
    c->frame_len = mask_frame(c->frame, 0x1, p, c->payload_len, c->mask);
}

static void publish(struct conn *c) {
    send_bytes(c, c->frame, c->frame_len);
    c->sent_ns = now_ns();
    c->in_flight = 1;
}

static void record_latency(uint64_t ns) {
    if (g.latencies_len == g.latencies_cap) {
        g.latencies_cap = g.latencies_cap ? g.latencies_cap * 2 : 1 << 16;
        g.latencies = grow(g.latencies, g.latencies_cap * sizeof *g.latencies);
    }
    g.latencies[g.latencies_len++] = ns;
}

static void on_echo(struct conn *c, int opcode, const unsigned char *data, size_t len) {
    if (!c->in_flight) {
        fail(c, "a message nobody asked for (%zu bytes)", len);
        return;
    }
    if (opcode != 0x1 || len != c->payload_len || memcmp(data, c->payload, len) != 0) {
        fail(c, "wrong echo: sent %d bytes \"%.26s...\", got opcode %d, %zu bytes \"%.*s\"",
             g.size, (const char *)c->payload, opcode, len, (int)(len < 40 ? len : 40),
             (const char *)data);
        return;
    }
    c->in_flight = 0;
    if (!g.running) return;
    uint64_t now = now_ns();
    record_latency(now - c->sent_ns);
    g.messages++;
    next_message(c);
    send_bytes(c, c->frame, c->frame_len);
    c->sent_ns = now;
    c->in_flight = 1;
}

static struct conn *g_conns;

/* Which publisher sent `data` ("p<i>:" + size bytes of 'x'), or -1 if none did. */
static int publisher_of(const unsigned char *data, size_t len) {
    int index = 0;
    size_t digits = 0;
    if (len < 2 || data[0] != 'p') return -1;
    while (1 + digits < len && digits < 3 && data[1 + digits] >= '0' && data[1 + digits] <= '9')
        index = index * 10 + (data[1 + digits++] - '0');
    if (digits == 0 || index >= g.publishers) return -1;
    const struct conn *p = &g_conns[index];
    return len == p->payload_len && memcmp(data, p->payload, len) == 0 ? index : -1;
}


static void on_delivery(struct conn *c, int opcode, const unsigned char *data, size_t len) {
    int from = opcode == 0x1 ? publisher_of(data, len) : -1;
    if (from < 0) {
        fail(c, "not a publisher's message: opcode %d, %zu bytes \"%.*s\"", opcode, len,
             (int)(len < 40 ? len : 40), (const char *)data);
        return;
    }
    if (!g.running) return;
    g.messages++;
    if (from == c->publisher) publish(c);
}

static void on_message(struct conn *c, int opcode, const unsigned char *data, size_t len) {
    if (g.scenario == ECHO) on_echo(c, opcode, data, len);
    else on_delivery(c, opcode, data, len);
}

/* Handles every complete frame in c->in; returns when it needs more bytes. */
static void read_frames(struct conn *c) {
    size_t at = 0;
    while (c->state == OPEN) {
        unsigned char *p = c->in.data + at;
        size_t avail = c->in.len - at;
        if (avail < 2) break;
        int fin = p[0] & 0x80, opcode = p[0] & 0x0F;
        size_t head = 2, len = p[1] & 0x7F;
        if (p[0] & 0x70) return fail(c, "reserved bits set (no extension was negotiated)");
        if (p[1] & 0x80) return fail(c, "a masked frame from the server");
        if (len == 126) {
            if (avail < 4) break;
            len = (size_t)p[2] << 8 | p[3];
            head = 4;
        } else if (len == 127) {
            if (avail < 10) break;
            len = 0;
            for (int i = 0; i < 8; i++) len = len << 8 | p[2 + i];
            head = 10;
        }
        if (len > MAX_PAYLOAD) return fail(c, "a %zu-byte frame", len);
        if (avail < head + len) break;
        const unsigned char *payload = p + head;
        at += head + len;
        if (opcode >= 0x8) {
            if (!fin || len > 125) return fail(c, "a fragmented or long control frame");
            if (opcode == 0x9) send_frame(c, 0xA, payload, len);
            else if (opcode == 0x8) {
                int code = len >= 2 ? payload[0] << 8 | payload[1] : 1005;
                return fail(c, "the server closed the connection (code %d)", code);
            } else if (opcode != 0xA) return fail(c, "unknown control opcode %d", opcode);
        } else if (opcode == 0x0) {
            if (!c->fragments_opcode) return fail(c, "a continuation of nothing");
            buf_append(&c->fragments, payload, len);
            if (fin) {
                on_message(c, c->fragments_opcode, c->fragments.data, c->fragments.len);
                c->fragments.len = 0;
                c->fragments_opcode = 0;
            }
        } else if (opcode == 0x1 || opcode == 0x2) {
            if (c->fragments_opcode) return fail(c, "a new message inside a fragmented one");
            if (fin) on_message(c, opcode, payload, len);
            else {
                c->fragments_opcode = opcode;
                buf_append(&c->fragments, payload, len);
            }
        } else return fail(c, "unknown opcode %d", opcode);
    }
    if (c->state != CLOSED) buf_consume(&c->in, at);
}

static void read_handshake(struct conn *c) {
    unsigned char *end = memmem(c->in.data, c->in.len, "\r\n\r\n", 4);
    if (!end) {
        if (c->in.len > MAX_HANDSHAKE) fail(c, "handshake response over %d bytes", MAX_HANDSHAKE);
        return;
    }
    size_t head = (size_t)(end - c->in.data) + 4;
    char *text = (char *)c->in.data;
    end[2] = '\0'; /* the headers as one string, each line ending in \r\n */
    if (strncmp(text, "HTTP/1.1 101", 12) != 0 || (text[12] != ' ' && text[12] != '\r')) {
        char *eol = strstr(text, "\r\n");
        return fail(c, "handshake refused: %.*s", (int)(eol - text), text);
    }
    const char *accept = NULL;
    for (char *line = strstr(text, "\r\n") + 2; *line; line = strstr(line, "\r\n") + 2) {
        if (strncasecmp(line, "sec-websocket-accept:", 21) == 0) {
            accept = line + 21;
            while (*accept == ' ' || *accept == '\t') accept++;
        }
    }
    if (!accept || strncmp(accept, c->accept, 28) != 0 || (accept[28] != '\r' && accept[28] != ' '))
        return fail(c, "wrong or missing Sec-WebSocket-Accept");
    buf_consume(&c->in, head);
    c->state = OPEN;
    read_frames(c);
}

static void on_readable(struct conn *c) {
    if (c->in.cap - c->in.len < READ_CHUNK) {
        c->in.cap = c->in.len + READ_CHUNK;
        c->in.data = grow(c->in.data, c->in.cap);
    }
    ssize_t n = recv(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len, 0);
    if (n < 0) {
        if (errno != EAGAIN) fail(c, "recv: %s", strerror(errno));
        return;
    }
    if (n == 0) return fail(c, "the server closed the TCP connection");
    c->in.len += (size_t)n;
    if (c->state == HANDSHAKING) read_handshake(c);
    else read_frames(c);
}

static void start_connect(struct conn *c) {
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) die("socket");
    c->state = CONNECTING;
    int one = 1; /* as asyncio and the servers do: a frame goes out when written */
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c->fd, (struct sockaddr *)&g.addr, sizeof g.addr) < 0 && errno != EINPROGRESS)
        return fail(c, "connect: %s", strerror(errno));
    struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
    if (epoll_ctl(g.epoll, EPOLL_CTL_ADD, c->fd, &ev) < 0) die("epoll_ctl");
    c->want_write = 1;
}

static void on_connected(struct conn *c) {
    int error = 0;
    socklen_t size = sizeof error;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &error, &size);
    if (error) return fail(c, "connect: %s", strerror(error));
    unsigned char nonce[16], digest[20];
    random_bytes(nonce, sizeof nonce);
    base64(nonce, sizeof nonce, c->key);
    char joined[64];
    snprintf(joined, sizeof joined, "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", c->key);
    sha1((const unsigned char *)joined, strlen(joined), digest);
    base64(digest, sizeof digest, c->accept);
    char request[1024];
    int n = snprintf(request, sizeof request,
                     "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n",
                     g.path, inet_ntoa(g.addr.sin_addr), ntohs(g.addr.sin_port), c->key);
    c->state = HANDSHAKING;
    c->want_write = 1; /* EPOLLOUT is armed: send_bytes/arm drop it */
    arm(c, 0);
    send_bytes(c, (const unsigned char *)request, (size_t)n);
}

static void dispatch(struct conn *c, uint32_t events) {
    if (c->state == CONNECTING) {
        if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) on_connected(c);
        return;
    }
    if (events & EPOLLOUT) flush(c);
    if (c->state != CLOSED && (events & (EPOLLIN | EPOLLERR | EPOLLHUP))) on_readable(c);
}

/* Runs the loop until `deadline` (ns), or until `done()` holds. */
static void run_until(struct conn *conns, uint64_t deadline, int (*done)(struct conn *)) {
    struct epoll_event events[256];
    for (;;) {
        uint64_t now = now_ns();
        if (now >= deadline || (done && done(conns))) return;
        int timeout = (int)((deadline - now + 999999) / 1000000);
        int n = epoll_wait(g.epoll, events, 256, timeout);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("epoll_wait");
        }
        for (int i = 0; i < n; i++) dispatch(events[i].data.ptr, events[i].events);
    }
}

static int handshakes_done(struct conn *conns) {
    /* Starts the next connections while fewer than CONNECT_BATCH are pending. */
    int pending = 0, unopened = 0;
    for (int i = 0; i < g.connections; i++) {
        if (conns[i].state == CONNECTING || conns[i].state == HANDSHAKING) pending++;
        if (conns[i].state != OPEN && conns[i].state != CLOSED) unopened++;
    }
    for (int i = 0; i < g.connections && pending < CONNECT_BATCH; i++) {
        if (conns[i].state == IDLE) {
            start_connect(&conns[i]);
            pending++;
        }
    }
    return unopened == 0;
}

static int compare_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static void usage(const char *problem) {
    fprintf(stderr,
            "wsload: %s\nusage: wsload echo|broadcast --port PORT [--host 127.0.0.1] "
            "[--path PATH] [--connections N] [--seconds S] [--size BYTES] "
            "[--publishers N] [--settle S]\n",
            problem);
    exit(2);
}

static double number(const char *text, const char *name, double low, double high) {
    char *end;
    double value = strtod(text, &end);
    if (*text == '\0' || *end != '\0' || value < low || value > high) {
        char problem[128];
        snprintf(problem, sizeof problem, "--%s must be a number from %g to %g, not %s", name,
                 low, high, text);
        usage(problem);
    }
    return value;
}

int main(int argc, char **argv) {
    static const struct option options[] = {
        {"host", required_argument, 0, 'h'},        {"port", required_argument, 0, 'p'},
        {"path", required_argument, 0, 'u'},        {"connections", required_argument, 0, 'c'},
        {"seconds", required_argument, 0, 's'},     {"size", required_argument, 0, 'z'},
        {"publishers", required_argument, 0, 'b'},  {"settle", required_argument, 0, 'w'},
        {0, 0, 0, 0},
    };
    const char *host = "127.0.0.1";
    int port = 0;
    g.connections = 100, g.size = 64, g.publishers = 4, g.seconds = 5, g.settle = 0.5;
    g.path = NULL;
    int option;
    while ((option = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (option) {
        case 'h': host = optarg; break;
        case 'p': port = (int)number(optarg, "port", 1, 65535); break;
        case 'u': g.path = optarg; break;
        case 'c': g.connections = (int)number(optarg, "connections", 1, 100000); break;
        case 's': g.seconds = number(optarg, "seconds", 0.1, 3600); break;
        case 'z': g.size = (int)number(optarg, "size", 26, 125); break;
        case 'b': g.publishers = (int)number(optarg, "publishers", 1, 10); break;
        case 'w': g.settle = number(optarg, "settle", 0, 60); break;
        default: usage("unknown option");
        }
    }
    if (optind != argc - 1) usage("give one scenario: echo or broadcast");
    if (strcmp(argv[optind], "echo") == 0) g.scenario = ECHO;
    else if (strcmp(argv[optind], "broadcast") == 0) g.scenario = BROADCAST;
    else usage("the scenario is echo or broadcast");
    if (!port) usage("--port is required");
    if (g.scenario == BROADCAST && g.publishers > g.connections)
        usage("--publishers cannot exceed --connections");
    if (!g.path) g.path = g.scenario == ECHO ? "/echo" : "/broadcast";
    if (g.path[0] != '/' || strpbrk(g.path, " \r\n")) usage("--path must be a path, e.g. /echo");
    g.addr.sin_family = AF_INET;
    g.addr.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &g.addr.sin_addr) != 1) usage("--host must be an IPv4 address");

    g.epoll = epoll_create1(EPOLL_CLOEXEC);
    if (g.epoll < 0) die("epoll_create1");
    struct conn *conns = calloc((size_t)g.connections, sizeof *conns);
    if (!conns) die("calloc");
    g_conns = conns;
    for (int i = 0; i < g.connections; i++) {
        struct conn *c = &conns[i];
        c->index = i;
        c->fd = -1;
        c->publisher = g.scenario == BROADCAST && i < g.publishers ? i : -1;
        c->frame = malloc((size_t)g.size + 16);
        c->payload = malloc((size_t)g.size + 16);
        if (!c->frame || !c->payload) die("malloc");
        random_bytes(c->mask, 4);
        if (c->publisher >= 0) { /* "p<i>:" + size bytes of 'x': the same message each time */
            int head = snprintf((char *)c->payload, 16, "p%d:", i);
            memset(c->payload + head, 'x', (size_t)g.size);
            c->payload_len = (size_t)head + (size_t)g.size;
            c->frame_len = mask_frame(c->frame, 0x1, c->payload, c->payload_len, c->mask);
        }
    }

    run_until(conns, now_ns() + (uint64_t)(HANDSHAKE_SECONDS * 1e9), handshakes_done);
    for (int i = 0; i < g.connections; i++)
        if (conns[i].state != OPEN) fail(&conns[i], "no handshake within %g s", HANDSHAKE_SECONDS);
    if (g.scenario == BROADCAST) run_until(conns, now_ns() + (uint64_t)(g.settle * 1e9), NULL);

    double cpu_before = cpu_seconds();
    uint64_t began = now_ns();
    g.running = 1;
    for (int i = 0; i < g.connections; i++) {
        struct conn *c = &conns[i];
        if (c->state != OPEN) continue;
        if (g.scenario == ECHO) {
            next_message(c);
            publish(c);
        } else if (c->publisher >= 0) publish(c);
    }
    run_until(conns, began + (uint64_t)(g.seconds * 1e9), NULL);
    g.running = 0;
    uint64_t ended = now_ns();
    double cpu = cpu_seconds() - cpu_before;
    double elapsed = (double)(ended - began) / 1e9;

    double p50 = 0, p99 = 0;
    if (g.latencies_len) {
        qsort(g.latencies, g.latencies_len, sizeof *g.latencies, compare_u64);
        p50 = (double)g.latencies[g.latencies_len / 2] / 1e6;
        p99 = (double)g.latencies[(size_t)((double)g.latencies_len * 0.99)] / 1e6;
    }
    printf("scenario=%s\nconnections=%d\nseconds=%.6f\nmessages=%llu\nrate=%.3f\n"
           "p50_ms=%.6f\np99_ms=%.6f\nclient_cpu_s=%.6f\nerrors=%d\n",
           g.scenario == ECHO ? "echo" : "broadcast", g.connections, elapsed,
           (unsigned long long)g.messages, (double)g.messages / elapsed, p50, p99, cpu, g.errors);
    if (g.errors > MAX_REPORTED_ERRORS)
        fprintf(stderr, "wsload: %d more errors not shown\n", g.errors - MAX_REPORTED_ERRORS);
    return g.errors ? 1 : 0;
}
