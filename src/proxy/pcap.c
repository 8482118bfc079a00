/*
 * pcap.c — decrypted traffic as a pcap file of synthetic TCP conversations.
 *
 * Format: libpcap 2.4 in this machine's byte order, microsecond times, LINKTYPE_RAW
 * (101: each record is an IPv4 or IPv6 datagram, told apart by its version nibble), no
 * IP or TCP options, window 65,535 and segments acknowledged one by one, so no segment
 * ever fills the window. Checksums (RFC 1071) are summed over native 32-bit words and
 * stored natively: the ones' complement sum is independent of byte order.
 *
 * Invariants: the buffer holds whole records only, except the unwritten tail of a
 * record a non-blocking stream took in part; a record enters the buffer whole under the
 * mutex or not at all; once the writer is off (full or failed) it stays off. A file is
 * written only by whole-buffer flushes, so a crash can tear only its last record, which
 * tg_pcap_open cuts off before appending.
 */
#include "pcap.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PCAP_MAGIC    0xa1b2c3d4u /* microsecond times, in the writer's byte order */
#define PCAP_SNAPLEN  65535u
#define LINKTYPE_RAW  101u
#define GLOBAL_HEADER 24u
#define RECORD_HEADER 16u

enum { TCP_FIN = 0x01, TCP_SYN = 0x02, TCP_PSH = 0x08, TCP_ACK = 0x10 };
enum { OUT_FILE, OUT_FIFO, OUT_SOCKET, OUT_OTHER };

struct tg_pcap {
    pthread_mutex_t mu;
    int fd;
    int kind;          /* OUT_…: how to write without SIGPIPE */
    uint64_t max;      /* cap on bytes, 0 for none */
    uint64_t bytes;    /* written and buffered */
    uint64_t packets;  /* records accepted */
    uint64_t dropped;  /* records refused */
    int full;          /* the cap was reached */
    int error;         /* errno of the failed write */
    int off;           /* full or failed: nothing more is written */
    int64_t oldest_us; /* when the first record now buffered arrived */
    size_t len;        /* bytes in buf */
    unsigned char buf[TG_PCAP_BUFFER];
};

/* A whole record always fits in an empty buffer. */
_Static_assert(RECORD_HEADER + 40 + 20 + TG_PCAP_SEGMENT <= TG_PCAP_BUFFER, "record too large");
_Static_assert(20 + 20 + TG_PCAP_SEGMENT <= 65535, "IPv4 datagram too large");

static void put16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
}

static void put32(unsigned char *p, uint32_t v)
{
    put16(p, (uint16_t)(v >> 16));
    put16(p + 2, (uint16_t)v);
}

/* Adds len bytes at p, which start at an even offset of the checksummed stream; only
 * the last piece of a stream may have an odd length. */
static uint64_t csum_add(uint64_t sum, const void *data, size_t len)
{
    const unsigned char *p = data;
    uint32_t w;
    for (; len >= 4; p += 4, len -= 4) {
        memcpy(&w, p, 4);
        sum += w;
    }
    uint16_t h = 0;
    if (len >= 2) {
        memcpy(&h, p, 2);
        sum += h;
        p += 2;
        len -= 2;
    }
    if (len == 1) {
        unsigned char last[2] = {p[0], 0};
        memcpy(&h, last, 2);
        sum += h;
    }
    return sum;
}

/* Stores the complement of the folded sum at p (native order, see the file head). */
static void csum_put(unsigned char *p, uint64_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    uint16_t c = (uint16_t)~sum;
    memcpy(p, &c, 2);
}

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* One write to the output, never raising SIGPIPE: send(MSG_NOSIGNAL) on a socket; on a
 * pipe or FIFO, SIGPIPE is blocked in this thread for the write and a SIGPIPE it raised
 * is taken off the pending set before the mask is restored. */
static ssize_t out_write(tg_pcap *p, const void *data, size_t len)
{
    if (p->kind == OUT_SOCKET) return send(p->fd, data, len, MSG_NOSIGNAL);
    if (p->kind != OUT_FIFO) return write(p->fd, data, len);
    sigset_t pipe_set, old, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigpending(&pending);
    int was_pending = sigismember(&pending, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    ssize_t w = write(p->fd, data, len);
    int e = errno;
    if (w < 0 && e == EPIPE && !was_pending) {
        struct timespec zero = {0, 0};
        while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR) {
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = e;
    return w;
}

static void turn_off(tg_pcap *p, int e)
{
    p->off = 1;
    p->error = e;
    p->len = 0;
}

/* Writes the buffer out; a non-blocking stream that takes less keeps the rest. */
static int flush_locked(tg_pcap *p)
{
    size_t done = 0;
    while (done < p->len) {
        ssize_t w = out_write(p, p->buf + done, p->len - done);
        if (w > 0) {
            done += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        turn_off(p, w < 0 ? errno : EIO);
        return TG_E_IO;
    }
    if (done > 0) {
        memmove(p->buf, p->buf + done, p->len - done);
        p->len -= done;
    }
    return 0;
}

/* Appends one record: rec holds its 16-byte record header (filled here) and the IP and
 * TCP headers (hlen bytes in all), data the payload. */
static int put_record(tg_pcap *p, unsigned char *rec, size_t hlen, const void *data, size_t len)
{
    size_t total = hlen + len;
    uint32_t caplen = (uint32_t)(total - RECORD_HEADER);
    pthread_mutex_lock(&p->mu);
    if (!p->off && p->max && p->bytes + total > p->max) {
        p->full = 1;
        p->off = 1;
        flush_locked(p);
    }
    if (p->off) goto drop;
    int64_t t = now_us();
    if (p->len + total > sizeof(p->buf) && flush_locked(p) != 0) goto drop;
    if (p->len + total > sizeof(p->buf)) goto drop; /* a slow non-blocking reader */
    uint32_t hdr[4] = {(uint32_t)(t / 1000000), (uint32_t)(t % 1000000), caplen, caplen};
    memcpy(rec, hdr, RECORD_HEADER);
    if (p->len == 0) p->oldest_us = t;
    memcpy(p->buf + p->len, rec, hlen);
    if (len) memcpy(p->buf + p->len + hlen, data, len);
    p->len += total;
    p->bytes += total;
    p->packets++;
    if (p->len == sizeof(p->buf) || t - p->oldest_us >= 1000000) flush_locked(p);
    pthread_mutex_unlock(&p->mu);
    return 0;
drop:
    p->dropped++;
    pthread_mutex_unlock(&p->mu);
    return TG_E_IO;
}

/* One packet from side to the other side: seq is the side's next sequence number, ack
 * the other side's (when ACK is set). */
static int emit(tg_pcap *p, tg_pcap_flow *f, int side, int flags, const void *data, size_t len)
{
    if (p == NULL) return 0;
    unsigned char rec[RECORD_HEADER + 40 + 20];
    size_t iplen = f->v6 ? 40 : 20, tcplen = 20 + len;
    unsigned char *ip = rec + RECORD_HEADER, *tcp = ip + iplen;
    int other = !side;

    put16(tcp, f->port[side]);
    put16(tcp + 2, f->port[other]);
    put32(tcp + 4, f->seq[side]);
    put32(tcp + 8, (flags & TCP_ACK) ? f->seq[other] : 0);
    tcp[12] = 5 << 4; /* data offset: 20 bytes, no options */
    tcp[13] = (unsigned char)flags;
    put16(tcp + 14, 65535); /* window */
    memset(tcp + 16, 0, 4); /* checksum, urgent pointer */

    unsigned char pseudo[40];
    uint64_t sum;
    if (f->v6) {
        put32(ip, 6u << 28);
        put16(ip + 4, (uint16_t)tcplen);
        ip[6] = IPPROTO_TCP;
        ip[7] = 64; /* hop limit */
        memcpy(ip + 8, f->addr[side], 16);
        memcpy(ip + 24, f->addr[other], 16);
        put32(pseudo, (uint32_t)tcplen);
        memset(pseudo + 4, 0, 3);
        pseudo[7] = IPPROTO_TCP;
        sum = csum_add(csum_add(0, ip + 8, 32), pseudo, 8);
    } else {
        ip[0] = 0x45; /* version 4, 20-byte header */
        ip[1] = 0;
        put16(ip + 2, (uint16_t)(20 + tcplen));
        put16(ip + 4, f->ipid[side]++);
        put16(ip + 6, 0x4000); /* don't fragment */
        ip[8] = 64;            /* TTL */
        ip[9] = IPPROTO_TCP;
        memset(ip + 10, 0, 2);
        memcpy(ip + 12, f->addr[side], 4);
        memcpy(ip + 16, f->addr[other], 4);
        csum_put(ip + 10, csum_add(0, ip, 20));
        pseudo[0] = 0;
        pseudo[1] = IPPROTO_TCP;
        put16(pseudo + 2, (uint16_t)tcplen);
        sum = csum_add(csum_add(0, ip + 12, 8), pseudo, 4);
    }
    sum = csum_add(sum, tcp, 20);
    if (len) sum = csum_add(sum, data, len);
    csum_put(tcp + 16, sum);
    return put_record(p, rec, RECORD_HEADER + iplen + 20, data, len);
}

static int worst(int a, int b)
{
    return a != 0 ? a : b;
}

int tg_pcap_flow_open(tg_pcap *p, tg_pcap_flow *f)
{
    if (f->state != TG_PCAP_FLOW_NEW) return TG_E_INVALID;
    f->state = TG_PCAP_FLOW_OPEN;
    int rc = emit(p, f, 0, TCP_SYN, NULL, 0);
    f->seq[0]++;
    rc = worst(rc, emit(p, f, 1, TCP_SYN | TCP_ACK, NULL, 0));
    f->seq[1]++;
    return worst(rc, emit(p, f, 0, TCP_ACK, NULL, 0));
}

int tg_pcap_flow_data(tg_pcap *p, tg_pcap_flow *f, int from_client, const void *data, size_t len)
{
    if (f->state == TG_PCAP_FLOW_CLOSED) return TG_E_INVALID;
    int rc = 0, side = from_client ? 0 : 1;
    if (len == 0) return 0;
    if (f->state == TG_PCAP_FLOW_NEW) rc = tg_pcap_flow_open(p, f);
    const unsigned char *d = data;
    while (len > 0) {
        size_t n = len < TG_PCAP_SEGMENT ? len : TG_PCAP_SEGMENT;
        rc = worst(rc, emit(p, f, side, TCP_PSH | TCP_ACK, d, n));
        f->seq[side] += (uint32_t)n;
        rc = worst(rc, emit(p, f, !side, TCP_ACK, NULL, 0));
        d += n;
        len -= n;
    }
    return rc;
}

int tg_pcap_flow_close(tg_pcap *p, tg_pcap_flow *f)
{
    if (f->state == TG_PCAP_FLOW_CLOSED) return TG_E_INVALID;
    int opened = f->state == TG_PCAP_FLOW_OPEN;
    f->state = TG_PCAP_FLOW_CLOSED;
    if (!opened) return 0;
    int rc = emit(p, f, 0, TCP_FIN | TCP_ACK, NULL, 0);
    f->seq[0]++;
    rc = worst(rc, emit(p, f, 1, TCP_FIN | TCP_ACK, NULL, 0));
    f->seq[1]++;
    return worst(rc, emit(p, f, 0, TCP_ACK, NULL, 0));
}

/* An endpoint's address: 4 (IPv4 or IPv4-mapped IPv6: a[0..3]), 6 (a[0..15]) or 0. */
static int endpoint(const struct sockaddr *sa, unsigned char a[16], uint16_t *port)
{
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    memset(a, 0, 16);
    *port = 0;
    if (sa && sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        memcpy(a, &in->sin_addr, 4);
        *port = ntohs(in->sin_port);
        return 4;
    }
    if (sa && sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        *port = ntohs(in6->sin6_port);
        if (memcmp(in6->sin6_addr.s6_addr, mapped, 12) == 0) {
            memcpy(a, in6->sin6_addr.s6_addr + 12, 4);
            return 4;
        }
        memcpy(a, in6->sin6_addr.s6_addr, 16);
        return 6;
    }
    return 0;
}

void tg_pcap_flow_init(tg_pcap_flow *f, const struct sockaddr *client,
                       const struct sockaddr *server)
{
    memset(f, 0, sizeof(*f));
    int fam[2] = {endpoint(client, f->addr[0], &f->port[0]),
                  endpoint(server, f->addr[1], &f->port[1])};
    f->v6 = fam[0] == 6 || fam[1] == 6;
    for (int i = 0; f->v6 && i < 2; i++) {
        if (fam[i] != 4) continue;
        memmove(f->addr[i] + 12, f->addr[i], 4); /* ::ffff:a.b.c.d */
        memset(f->addr[i], 0, 10);
        f->addr[i][10] = f->addr[i][11] = 0xff;
    }
    struct {
        uint32_t seq[2];
        uint16_t ipid[2];
    } r;
    if (tg_random(&r, sizeof(r), NULL) != 0) {
        /* Only a broken RNG gets here; numbers that differ per flow are enough. */
        static _Atomic uint32_t counter;
        uint64_t x = (uint64_t)now_us() * 0x9e3779b97f4a7c15ull + ++counter;
        r.seq[0] = (uint32_t)x;
        r.seq[1] = (uint32_t)(x >> 32) ^ 0x5bd1e995u;
        r.ipid[0] = r.ipid[1] = (uint16_t)x;
    }
    memcpy(f->seq, r.seq, sizeof(f->seq));
    memcpy(f->ipid, r.ipid, sizeof(f->ipid));
}

static tg_pcap *pcap_new(int fd, int kind, uint64_t max, uint64_t bytes)
{
    tg_pcap *p = calloc(1, sizeof(*p));
    if (p == NULL) return NULL;
    if (pthread_mutex_init(&p->mu, NULL) != 0) {
        free(p);
        return NULL;
    }
    p->fd = fd;
    p->kind = kind;
    p->max = max;
    p->bytes = bytes;
    return p;
}

static void global_header(unsigned char h[GLOBAL_HEADER])
{
    uint32_t magic = PCAP_MAGIC, snaplen = PCAP_SNAPLEN, link = LINKTYPE_RAW, zero = 0;
    uint16_t major = 2, minor = 4;
    memcpy(h, &magic, 4);
    memcpy(h + 4, &major, 2);
    memcpy(h + 6, &minor, 2);
    memcpy(h + 8, &zero, 4);  /* thiszone */
    memcpy(h + 12, &zero, 4); /* sigfigs */
    memcpy(h + 16, &snaplen, 4);
    memcpy(h + 20, &link, 4);
}

static int pwrite_all(int fd, const void *data, size_t len, off_t off)
{
    const unsigned char *d = data;
    while (len > 0) {
        ssize_t w = pwrite(fd, d, len, off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        d += w;
        len -= (size_t)w;
        off += w;
    }
    return 0;
}

static int pread_all(int fd, void *data, size_t len, off_t off)
{
    unsigned char *d = data;
    while (len > 0) {
        ssize_t r = pread(fd, d, len, off);
        if (r < 0 && errno == EINTR) continue;
        if (r == 0) errno = 0; /* the file is shorter than it was */
        if (r <= 0) return -1;
        d += r;
        len -= (size_t)r;
        off += r;
    }
    return 0;
}

/* An existing file: our global header, then whole records; a torn last record is cut
 * off. *size becomes the size to append at. The record headers are read through scratch
 * (TG_PCAP_BUFFER bytes, which hold a whole record and the next header): one read per
 * large record or per buffer of small ones. */
static int check_existing(int fd, const char *path, uint64_t *size, unsigned char *scratch,
                          tg_err *err)
{
    unsigned char h[GLOBAL_HEADER], mine[GLOBAL_HEADER];
    global_header(mine);
    if (*size < GLOBAL_HEADER || pread_all(fd, h, GLOBAL_HEADER, 0) != 0)
        return tg_err_set(err, TG_E_INVALID,
                          "%s exists and is not a pcap file; give a new file name or move it "
                          "away",
                          path);
    uint32_t magic, snaplen, link;
    memcpy(&magic, h, 4);
    memcpy(&snaplen, h + 16, 4);
    memcpy(&link, h + 20, 4);
    if (magic != PCAP_MAGIC || memcmp(h + 4, mine + 4, 4) != 0 || link != LINKTYPE_RAW)
        return tg_err_set(err, TG_E_INVALID,
                          "%s exists and is not a pcap file of raw IP packets with microsecond "
                          "times in this machine's byte order, which tlsgate could append to; "
                          "give a new file name or move it away",
                          path);
    uint64_t off = GLOBAL_HEADER, base = 0, have = 0;
    while (off < *size) {
        uint32_t r[4];
        if (off + RECORD_HEADER > *size) break;
        if (off + RECORD_HEADER > base + have) {
            base = off;
            have = *size - off < TG_PCAP_BUFFER ? *size - off : TG_PCAP_BUFFER;
            if (pread_all(fd, scratch, (size_t)have, (off_t)off) != 0)
                return tg_err_set(err, TG_E_IO, "cannot read %s: %s", path,
                                  errno ? strerror(errno) : "it shrank while read");
        }
        memcpy(r, scratch + (off - base), RECORD_HEADER);
        if (r[2] > snaplen || r[2] > r[3] || r[1] >= 1000000)
            return tg_err_set(err, TG_E_INVALID,
                              "%s is damaged at byte %llu (not a packet record); give a new file "
                              "name or move it away",
                              path, (unsigned long long)off);
        if (off + RECORD_HEADER + r[2] > *size) break;
        off += RECORD_HEADER + r[2];
    }
    if (off < *size && ftruncate(fd, (off_t)off) != 0)
        return tg_err_set(err, TG_E_IO, "cannot cut the torn last record off %s: %s", path,
                          strerror(errno));
    *size = off;
    return 0;
}

int tg_pcap_open(const char *path, uint64_t max_bytes, tg_pcap **out, tg_err *err)
{
    *out = NULL;
    struct stat st;
    if (lstat(path, &st) == 0 && !S_ISREG(st.st_mode))
        return tg_err_set(err, TG_E_CONFLICT,
                          S_ISLNK(st.st_mode)   ? "%s is a symbolic link; tlsgate does not write "
                                                  "through links: give the path of the file itself"
                          : S_ISDIR(st.st_mode) ? "%s is a directory; give a file name"
                                                : "%s exists and is not a regular file",
                          path);
    /* O_NONBLOCK: a FIFO that appeared since the check must not block the open; the type
     * is checked again on the descriptor. */
    int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0600);
    if (fd < 0) {
        if (errno == ELOOP)
            return tg_err_set(err, TG_E_CONFLICT,
                              "%s is a symbolic link; tlsgate does not write through links: give "
                              "the path of the file itself",
                              path);
        return tg_err_set(err, TG_E_IO, "cannot open %s: %s", path, strerror(errno));
    }
    int rc = 0;
    tg_pcap *p = NULL;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = tg_err_set(err, TG_E_CONFLICT, "%s exists and is not a regular file", path);
        goto fail;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        rc =
            errno == EWOULDBLOCK
                ? tg_err_set(err, TG_E_CONFLICT,
                             "%s is being written by another process; give another file name", path)
                : tg_err_set(err, TG_E_IO, "cannot lock %s: %s", path, strerror(errno));
        goto fail;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    if ((st.st_mode & 077) && fchmod(fd, st.st_mode & 0700) != 0) {
        rc = tg_err_set(err, TG_E_IO,
                        "%s can be read by others and its permissions cannot be narrowed (%s); it "
                        "would hold decrypted traffic: give another file name",
                        path, strerror(errno));
        goto fail;
    }
    p = pcap_new(fd, OUT_FILE, max_bytes, 0);
    if (p == NULL) {
        rc = tg_err_set(err, TG_E_INTERNAL, "out of memory");
        goto fail;
    }
    uint64_t size = (uint64_t)st.st_size;
    if (size == 0) {
        unsigned char h[GLOBAL_HEADER];
        global_header(h);
        if (pwrite_all(fd, h, sizeof(h), 0) != 0) {
            rc = tg_err_set(err, TG_E_IO, "cannot write %s: %s", path, strerror(errno));
            goto fail;
        }
        size = GLOBAL_HEADER;
    } else if ((rc = check_existing(fd, path, &size, p->buf, err)) != 0) {
        goto fail;
    }
    if (lseek(fd, (off_t)size, SEEK_SET) < 0) {
        rc = tg_err_set(err, TG_E_IO, "cannot write %s: %s", path, strerror(errno));
        goto fail;
    }
    p->bytes = size;
    /* A file already at its cap is opened, but writes nothing. */
    if (max_bytes && size >= max_bytes) p->full = p->off = 1;
    *out = p;
    return 0;
fail:
    if (p) {
        pthread_mutex_destroy(&p->mu);
        free(p);
    }
    close(fd);
    return rc;
}

int tg_pcap_fd(int fd, tg_pcap **out, tg_err *err)
{
    *out = NULL;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        if (fd >= 0) close(fd);
        return tg_err_set(err, TG_E_INVALID, "no stream to write the pcap to: %s", strerror(e));
    }
    int kind = S_ISSOCK(st.st_mode)   ? OUT_SOCKET
               : S_ISFIFO(st.st_mode) ? OUT_FIFO
               : S_ISREG(st.st_mode)  ? OUT_FILE
                                      : OUT_OTHER;
    tg_pcap *p = pcap_new(fd, kind, 0, GLOBAL_HEADER);
    if (p == NULL) {
        close(fd);
        return tg_err_set(err, TG_E_INTERNAL, "out of memory");
    }
    global_header(p->buf);
    p->len = GLOBAL_HEADER;
    p->oldest_us = now_us();
    if (flush_locked(p) != 0) {
        int e = p->error;
        tg_pcap_close(p);
        return tg_err_set(err, TG_E_IO, "cannot write the pcap stream: %s", strerror(e));
    }
    *out = p;
    return 0;
}

int tg_pcap_flush(tg_pcap *p)
{
    pthread_mutex_lock(&p->mu);
    int rc = p->len ? flush_locked(p) : 0;
    if (p->off) rc = TG_E_IO;
    pthread_mutex_unlock(&p->mu);
    return rc;
}

void tg_pcap_close(tg_pcap *p)
{
    if (p == NULL) return;
    pthread_mutex_lock(&p->mu);
    /* A non-blocking stream's reader gets a little time for the rest, so that the
     * stream does not end in the middle of a record. */
    for (int i = 0; p->len && flush_locked(p) == 0 && p->len && i < 20; i++) {
        struct pollfd pfd = {.fd = p->fd, .events = POLLOUT};
        poll(&pfd, 1, 100);
    }
    pthread_mutex_unlock(&p->mu);
    close(p->fd);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

void tg_pcap_stats_get(tg_pcap *p, tg_pcap_stats *st)
{
    pthread_mutex_lock(&p->mu);
    st->packets = p->packets;
    st->dropped = p->dropped;
    st->bytes = p->bytes;
    st->full = p->full;
    st->error = p->error;
    pthread_mutex_unlock(&p->mu);
}

uint64_t tg_pcap_dropped(tg_pcap *p)
{
    tg_pcap_stats st;
    tg_pcap_stats_get(p, &st);
    return st.dropped;
}
