/*
 * test_pcap.c — the PCAP writer: known packets, checksums recomputed here (a plain
 * big-endian RFC 1071 sum, not the writer's), sequence and acknowledgement numbers over
 * many calls and split segments, IPv6 and mixed families, the size cap, appending to a
 * file, streams whose reader goes away, and many threads writing at once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proxy/pcap.h"
#include "scratch.h"

enum { FIN = 0x01, SYN = 0x02, PSH = 0x08, ACK = 0x10 };

/* One decoded packet of a file. */
typedef struct pkt {
    int v; /* 4 or 6 */
    unsigned char src[16], dst[16];
    uint16_t sport, dport;
    uint32_t seq, ack;
    int flags;
    const unsigned char *data; /* payload */
    size_t len;
    const unsigned char *ip; /* the whole datagram */
    size_t iplen;
} pkt;

static uint16_t get16(const unsigned char *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)get16(p) << 16 | get16(p + 2);
}

/* RFC 1071, the slow and obvious way: big-endian 16-bit words. */
static uint32_t sum_be(uint32_t sum, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i + 1 < n; i += 2)
        sum += get16(p + i);
    if (n & 1) sum += (uint32_t)p[n - 1] << 8;
    return sum;
}

static uint16_t fold(uint32_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

/* Recomputes the IP and TCP checksums of a datagram with the fields zeroed and compares
 * them with the stored ones. */
static void check_sums(const unsigned char *ip, size_t n)
{
    unsigned char copy[70000];
    assert_true(n <= sizeof(copy));
    memcpy(copy, ip, n);
    unsigned char pseudo[40];
    size_t hl, plen;
    uint32_t sum;
    if ((ip[0] >> 4) == 4) {
        hl = 20;
        assert_int_equal(get16(ip + 2), n);
        copy[10] = copy[11] = 0;
        assert_int_equal(fold(sum_be(0, copy, 20)), get16(ip + 10));
        memcpy(pseudo, ip + 12, 8);
        pseudo[8] = 0;
        pseudo[9] = 6;
        pseudo[10] = (unsigned char)((n - hl) >> 8);
        pseudo[11] = (unsigned char)(n - hl);
        plen = 12;
    } else {
        hl = 40;
        assert_int_equal(get16(ip + 4), n - 40);
        memcpy(pseudo, ip + 8, 32);
        uint32_t l = (uint32_t)(n - hl);
        unsigned char lb[8] = {l >> 24, l >> 16 & 0xff, l >> 8 & 0xff, l & 0xff, 0, 0, 0, 6};
        memcpy(pseudo + 32, lb, 8);
        plen = 40;
    }
    copy[hl + 16] = copy[hl + 17] = 0;
    sum = sum_be(0, pseudo, plen);
    sum = sum_be(sum, copy + hl, n - hl);
    assert_int_equal(fold(sum), get16(ip + hl + 16));
}

typedef struct capture {
    unsigned char *buf;
    size_t len;
    pkt *p;
    size_t n;
} capture;

/* Decodes a whole pcap image (ours: native order, LINKTYPE_RAW), checking every
 * record's checksums and header fields. */
static void parse(capture *c)
{
    assert_true(c->len >= 24);
    uint32_t magic, link;
    uint16_t major, minor;
    memcpy(&magic, c->buf, 4);
    memcpy(&major, c->buf + 4, 2);
    memcpy(&minor, c->buf + 6, 2);
    memcpy(&link, c->buf + 20, 4);
    assert_int_equal(magic, 0xa1b2c3d4);
    assert_int_equal(major, 2);
    assert_int_equal(minor, 4);
    assert_int_equal(link, 101);
    size_t cap = 64, off = 24;
    c->p = calloc(cap, sizeof(pkt));
    c->n = 0;
    while (off < c->len) {
        uint32_t r[4];
        assert_true(off + 16 <= c->len);
        memcpy(r, c->buf + off, 16);
        assert_int_equal(r[2], r[3]);
        assert_true(r[1] < 1000000);
        assert_true(off + 16 + r[2] <= c->len);
        if (c->n == cap) c->p = realloc(c->p, (cap *= 2) * sizeof(pkt));
        pkt *k = &c->p[c->n++];
        const unsigned char *ip = c->buf + off + 16;
        k->ip = ip;
        k->iplen = r[2];
        k->v = ip[0] >> 4;
        size_t hl;
        memset(k->src, 0, 16);
        memset(k->dst, 0, 16);
        if (k->v == 4) {
            hl = 20;
            assert_int_equal(ip[0], 0x45);
            assert_int_equal(get16(ip + 6), 0x4000);
            assert_int_equal(ip[8], 64);
            assert_int_equal(ip[9], 6);
            memcpy(k->src, ip + 12, 4);
            memcpy(k->dst, ip + 16, 4);
        } else {
            assert_int_equal(k->v, 6);
            hl = 40;
            assert_int_equal(get32(ip), 0x60000000);
            assert_int_equal(ip[6], 6);
            assert_int_equal(ip[7], 64);
            memcpy(k->src, ip + 8, 16);
            memcpy(k->dst, ip + 24, 16);
        }
        const unsigned char *tcp = ip + hl;
        assert_int_equal(tcp[12], 0x50);
        assert_int_equal(get16(tcp + 14), 65535);
        k->sport = get16(tcp);
        k->dport = get16(tcp + 2);
        k->seq = get32(tcp + 4);
        k->ack = get32(tcp + 8);
        k->flags = tcp[13];
        k->data = tcp + 20;
        k->len = r[2] - hl - 20;
        assert_true(k->len <= TG_PCAP_SEGMENT);
        check_sums(ip, r[2]);
        off += 16 + r[2];
    }
}

static void load(capture *c, const char *path)
{
    assert_int_equal(tg_file_read(path, 64u << 20, &c->buf, &c->len, NULL), 0);
    parse(c);
}

static void capture_free(capture *c)
{
    free(c->buf);
    free(c->p);
    memset(c, 0, sizeof(*c));
}

static struct sockaddr_in sin4(const char *a, uint16_t port)
{
    struct sockaddr_in s = {.sin_family = AF_INET, .sin_port = htons(port)};
    assert_int_equal(inet_pton(AF_INET, a, &s.sin_addr), 1);
    return s;
}

static struct sockaddr_in6 sin6(const char *a, uint16_t port)
{
    struct sockaddr_in6 s = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
    assert_int_equal(inet_pton(AF_INET6, a, &s.sin6_addr), 1);
    return s;
}

static char *path_in(const char *name)
{
    static char p[400];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return p;
}

static void fill(unsigned char *b, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        b[i] = (unsigned char)(seed >> 16);
    }
}

/* The first packets of a flow with fixed numbers, byte for byte as computed by an
 * independent implementation (Python's struct and the RFC 1071 sum). */
static void known_packets(void **state)
{
    (void)state;
    static const unsigned char syn[] = {0x45, 0x00, 0x00, 0x28, 0x11, 0x11, 0x40, 0x00, 0x40, 0x06,
                                        0x3d, 0x88, 0xc0, 0x00, 0x02, 0x01, 0xc6, 0x33, 0x64, 0x02,
                                        0xc3, 0x50, 0x01, 0xbb, 0x01, 0x02, 0x03, 0x04, 0x00, 0x00,
                                        0x00, 0x00, 0x50, 0x02, 0xff, 0xff, 0xfa, 0x99, 0x00, 0x00};
    static const unsigned char hello[] = {
        0x45, 0x00, 0x00, 0x2d, 0x11, 0x13, 0x40, 0x00, 0x40, 0x06, 0x3d, 0x81, 0xc0, 0x00, 0x02,
        0x01, 0xc6, 0x33, 0x64, 0x02, 0xc3, 0x50, 0x01, 0xbb, 0x01, 0x02, 0x03, 0x05, 0xa0, 0xb0,
        0xc0, 0xd1, 0x50, 0x18, 0xff, 0xff, 0x55, 0x29, 0x00, 0x00, 0x68, 0x65, 0x6c, 0x6c, 0x6f};
    const char *path = path_in("known.pcap");
    tg_pcap *p = NULL;
    assert_int_equal(tg_pcap_open(path, 0, &p, NULL), 0);
    struct sockaddr_in c = sin4("192.0.2.1", 50000), s = sin4("198.51.100.2", 443);
    tg_pcap_flow f;
    tg_pcap_flow_init(&f, (struct sockaddr *)&c, (struct sockaddr *)&s);
    f.seq[0] = 0x01020304;
    f.seq[1] = 0xa0b0c0d0;
    f.ipid[0] = 0x1111;
    assert_int_equal(tg_pcap_flow_open(p, &f), 0);
    assert_int_equal(tg_pcap_flow_data(p, &f, 1, "hello", 5), 0);
    tg_pcap_close(p);
    capture cap = {0};
    load(&cap, path);
    assert_int_equal(cap.n, 5); /* SYN, SYN/ACK, ACK, data, ACK */
    assert_int_equal(cap.p[0].iplen, sizeof(syn));
    assert_memory_equal(cap.p[0].ip, syn, sizeof(syn));
    assert_int_equal(cap.p[3].iplen, sizeof(hello));
    assert_memory_equal(cap.p[3].ip, hello, sizeof(hello));
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    capture_free(&cap);
}

/* Replays a flow's packets from the capture and checks them against TCP's rules:
 * handshake, each data segment at the sender's next number and acknowledged at once by
 * the other side, FIN exchange. Returns the bytes each side sent (caller frees). */
typedef struct replay {
    unsigned char *sent[2];
    size_t nsent[2];
    size_t segments;
} replay;

static void replay_flow(const capture *c, uint16_t cport, replay *r)
{
    memset(r, 0, sizeof(*r));
    const pkt *k[100000];
    size_t n = 0;
    for (size_t i = 0; i < c->n; i++)
        if (c->p[i].sport == cport || c->p[i].dport == cport) k[n++] = &c->p[i];
    assert_true(n >= 3);
    assert_int_equal(k[0]->flags, SYN);
    assert_int_equal(k[0]->sport, cport);
    assert_int_equal(k[1]->flags, SYN | ACK);
    assert_int_equal(k[1]->ack, k[0]->seq + 1);
    uint32_t next[2] = {k[0]->seq + 1, k[1]->seq + 1};
    assert_int_equal(k[2]->flags, ACK);
    assert_int_equal(k[2]->seq, next[0]);
    assert_int_equal(k[2]->ack, next[1]);
    size_t i = 3;
    for (; i < n && k[i]->flags == (PSH | ACK); i += 2) {
        int s = k[i]->sport == cport ? 0 : 1;
        assert_int_equal(k[i]->seq, next[s]);
        assert_int_equal(k[i]->ack, next[!s]);
        assert_true(k[i]->len > 0);
        r->sent[s] = realloc(r->sent[s], r->nsent[s] + k[i]->len);
        memcpy(r->sent[s] + r->nsent[s], k[i]->data, k[i]->len);
        r->nsent[s] += k[i]->len;
        next[s] += (uint32_t)k[i]->len;
        r->segments++;
        assert_true(i + 1 < n);
        const pkt *a = k[i + 1];
        assert_int_equal(a->flags, ACK);
        assert_int_equal(a->sport, k[i]->dport);
        assert_int_equal(a->len, 0);
        assert_int_equal(a->seq, next[!s]);
        assert_int_equal(a->ack, next[s]);
    }
    assert_int_equal(n - i, 3);
    assert_int_equal(k[i]->flags, FIN | ACK);
    assert_int_equal(k[i]->sport, cport);
    assert_int_equal(k[i]->seq, next[0]);
    assert_int_equal(k[i]->ack, next[1]);
    assert_int_equal(k[i + 1]->flags, FIN | ACK);
    assert_int_equal(k[i + 1]->seq, next[1]);
    assert_int_equal(k[i + 1]->ack, next[0] + 1);
    assert_int_equal(k[i + 2]->flags, ACK);
    assert_int_equal(k[i + 2]->seq, next[0] + 1);
    assert_int_equal(k[i + 2]->ack, next[1] + 1);
}

static void replay_free(replay *r)
{
    free(r->sent[0]);
    free(r->sent[1]);
}

/* Many calls of many sizes in both directions, writes larger than a segment split. */
static void seq_ack(void **state)
{
    (void)state;
    static const size_t sizes[] = {1, 100, 150000, 70000, 65000, 65001, 2, 130000, 0, 7};
    size_t total[2] = {0, 0}, max = 0;
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        total[i % 2] += sizes[i];
        if (sizes[i] > max) max = sizes[i];
    }
    unsigned char *want[2] = {malloc(total[0]), malloc(total[1])};
    fill(want[0], total[0], 1);
    fill(want[1], total[1], 2);
    const char *path = path_in("seq.pcap");
    tg_pcap *p = NULL;
    assert_int_equal(tg_pcap_open(path, 0, &p, NULL), 0);
    struct sockaddr_in c = sin4("10.1.2.3", 41234), s = sin4("10.9.8.7", 8443);
    tg_pcap_flow f;
    tg_pcap_flow_init(&f, (struct sockaddr *)&c, (struct sockaddr *)&s);
    f.seq[1] = 0xfffff000; /* the server's numbers wrap */
    size_t at[2] = {0, 0};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        int side = i % 2;
        /* the first call opens the flow */
        assert_int_equal(tg_pcap_flow_data(p, &f, side == 0, want[side] + at[side], sizes[i]), 0);
        at[side] += sizes[i];
    }
    assert_int_equal(f.state, TG_PCAP_FLOW_OPEN);
    assert_int_equal(tg_pcap_flow_close(p, &f), 0);
    assert_int_equal(tg_pcap_flow_close(p, &f), TG_E_INVALID);
    assert_int_equal(tg_pcap_flow_data(p, &f, 1, "x", 1), TG_E_INVALID);
    tg_pcap_stats st;
    tg_pcap_stats_get(p, &st);
    assert_int_equal(st.dropped, 0);
    tg_pcap_close(p);

    capture cap = {0};
    load(&cap, path);
    assert_int_equal(st.packets, cap.n);
    assert_int_equal(st.bytes, cap.len);
    replay r;
    replay_flow(&cap, 41234, &r);
    /* 1, 100, 3 for 150000, 70000 (65000 + 5000), 65000, 65001 (2), 2, 130000 (2), 7 */
    assert_int_equal(r.segments, 1 + 1 + 3 + 2 + 1 + 2 + 1 + 2 + 1);
    for (int side = 0; side < 2; side++) {
        assert_int_equal(r.nsent[side], total[side]);
        assert_memory_equal(r.sent[side], want[side], total[side]);
    }
    for (size_t i = 0; i < cap.n; i++) {
        assert_int_equal(cap.p[i].v, 4);
        int from_client = cap.p[i].sport == 41234;
        assert_memory_equal(cap.p[i].src, from_client ? "\x0a\x01\x02\x03" : "\x0a\x09\x08\x07", 4);
        assert_int_equal(from_client ? cap.p[i].dport : cap.p[i].sport, 8443);
    }
    replay_free(&r);
    capture_free(&cap);
    free(want[0]);
    free(want[1]);
}

static void ipv6(void **state)
{
    (void)state;
    const char *path = path_in("v6.pcap");
    tg_pcap *p = NULL;
    assert_int_equal(tg_pcap_open(path, 0, &p, NULL), 0);
    unsigned char body[100001];
    fill(body, sizeof(body), 3);

    /* plain IPv6 */
    struct sockaddr_in6 c6 = sin6("2001:db8::1", 50001), s6 = sin6("2001:db8:ffff::2", 443);
    tg_pcap_flow f;
    tg_pcap_flow_init(&f, (struct sockaddr *)&c6, (struct sockaddr *)&s6);
    assert_int_equal(f.v6, 1);
    assert_int_equal(tg_pcap_flow_open(p, &f), 0);
    assert_int_equal(tg_pcap_flow_open(p, &f), TG_E_INVALID);
    assert_int_equal(tg_pcap_flow_data(p, &f, 1, body, 333), 0);
    assert_int_equal(tg_pcap_flow_data(p, &f, 0, body, sizeof(body)), 0); /* odd, split */
    assert_int_equal(tg_pcap_flow_close(p, &f), 0);

    /* IPv4 client, IPv6 server: IPv6 with ::ffff:192.0.2.7 */
    struct sockaddr_in c4 = sin4("192.0.2.7", 50002);
    tg_pcap_flow m;
    tg_pcap_flow_init(&m, (struct sockaddr *)&c4, (struct sockaddr *)&s6);
    assert_int_equal(m.v6, 1);
    assert_int_equal(tg_pcap_flow_data(p, &m, 1, "GET / HTTP/1.1\r\n\r\n", 18), 0);
    assert_int_equal(tg_pcap_flow_close(p, &m), 0);

    /* a dual-stack listener's view of an IPv4 client, an IPv4 server: IPv4 */
    struct sockaddr_in6 mapped = sin6("::ffff:192.0.2.8", 50003);
    struct sockaddr_in s4 = sin4("198.51.100.9", 443);
    tg_pcap_flow d;
    tg_pcap_flow_init(&d, (struct sockaddr *)&mapped, (struct sockaddr *)&s4);
    assert_int_equal(d.v6, 0);
    assert_int_equal(tg_pcap_flow_data(p, &d, 0, "ok", 2), 0);
    assert_int_equal(tg_pcap_flow_close(p, &d), 0);

    /* no addresses at all: written, with unspecified addresses */
    tg_pcap_flow z;
    tg_pcap_flow_init(&z, NULL, NULL);
    assert_int_equal(z.v6, 0);
    assert_int_equal(z.port[0], 0);
    assert_int_equal(tg_pcap_flow_close(p, &z), 0); /* never opened: nothing written */
    assert_int_equal(z.state, TG_PCAP_FLOW_CLOSED);
    /* no writer: nothing written, the numbers move all the same */
    tg_pcap_flow_init(&z, (struct sockaddr *)&c4, (struct sockaddr *)&s4);
    uint32_t isn = z.seq[0];
    assert_int_equal(tg_pcap_flow_data(NULL, &z, 1, "abc", 3), 0);
    assert_int_equal(z.state, TG_PCAP_FLOW_OPEN);
    assert_int_equal(z.seq[0], isn + 1 + 3);
    tg_pcap_close(p);

    capture cap = {0};
    load(&cap, path);
    replay r;
    replay_flow(&cap, 50001, &r);
    assert_int_equal(r.nsent[1], sizeof(body));
    assert_memory_equal(r.sent[1], body, sizeof(body));
    assert_int_equal(r.nsent[0], 333);
    assert_int_equal(r.segments, 1 + 2);
    replay_free(&r);
    replay_flow(&cap, 50002, &r);
    assert_int_equal(r.nsent[0], 18);
    replay_free(&r);
    replay_flow(&cap, 50003, &r);
    assert_int_equal(r.nsent[1], 2);
    replay_free(&r);

    unsigned char a6[16], srv6[16],
        m4[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 7};
    inet_pton(AF_INET6, "2001:db8::1", a6);
    inet_pton(AF_INET6, "2001:db8:ffff::2", srv6);
    size_t v4 = 0;
    for (size_t i = 0; i < cap.n; i++) {
        const pkt *k = &cap.p[i];
        int from_client = k->sport != 443;
        const unsigned char *cl = from_client ? k->src : k->dst,
                            *sv = from_client ? k->dst : k->src;
        uint16_t cport = from_client ? k->sport : k->dport;
        if (cport == 50003) {
            assert_int_equal(k->v, 4);
            assert_memory_equal(cl, "\xc0\x00\x02\x08", 4);
            assert_memory_equal(sv, "\xc6\x33\x64\x09", 4);
            v4++;
            continue;
        }
        assert_int_equal(k->v, 6);
        assert_memory_equal(cl, cport == 50001 ? a6 : m4, 16);
        assert_memory_equal(sv, srv6, 16);
    }
    assert_int_equal(v4, 3 + 2 + 3);
    capture_free(&cap);
}

/* The cap holds: nothing past it, refusals counted, the writer stays off. */
static void max_bytes(void **state)
{
    (void)state;
    const char *path = path_in("cap.pcap");
    /* the header, a handshake (3 x 56 bytes), one 100-byte segment and its ACK fit */
    uint64_t max = 24 + 3 * 56 + (56 + 100) + 56 + 10;
    tg_pcap *p = NULL;
    assert_int_equal(tg_pcap_open(path, max, &p, NULL), 0);
    struct sockaddr_in c = sin4("10.0.0.1", 40000), s = sin4("10.0.0.2", 443);
    tg_pcap_flow f;
    tg_pcap_flow_init(&f, (struct sockaddr *)&c, (struct sockaddr *)&s);
    unsigned char body[100];
    fill(body, sizeof(body), 4);
    assert_int_equal(tg_pcap_flow_open(p, &f), 0);
    assert_int_equal(tg_pcap_flow_data(p, &f, 1, body, 100), 0);
    assert_int_equal(tg_pcap_dropped(p), 0);
    assert_int_equal(tg_pcap_flow_data(p, &f, 0, body, 1), TG_E_IO); /* 57 bytes: too many */
    assert_int_equal(tg_pcap_dropped(p), 2);
    uint32_t seq = f.seq[0];
    assert_int_equal(tg_pcap_flow_close(p, &f), TG_E_IO); /* 56 would fit, but off is off */
    assert_int_equal(f.seq[0], seq + 1);                  /* the state moved on */
    tg_pcap_stats st;
    tg_pcap_stats_get(p, &st);
    assert_int_equal(st.dropped, 5);
    assert_int_equal(st.packets, 5);
    assert_int_equal(st.full, 1);
    assert_int_equal(st.error, 0);
    assert_int_equal(st.bytes, max - 10);
    assert_int_equal(tg_pcap_flush(p), TG_E_IO);
    tg_pcap_close(p);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_size, max - 10);
    capture cap = {0};
    load(&cap, path);
    assert_int_equal(cap.n, 5);
    capture_free(&cap);

    /* reopened at its cap: appends nothing */
    assert_int_equal(tg_pcap_open(path, max - 10, &p, NULL), 0);
    tg_pcap_flow g;
    tg_pcap_flow_init(&g, (struct sockaddr *)&c, (struct sockaddr *)&s);
    assert_int_equal(tg_pcap_flow_open(p, &g), TG_E_IO);
    assert_int_equal(tg_pcap_dropped(p), 3);
    tg_pcap_close(p);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_size, max - 10);
}

/* Buffered until flushed; appended to when reopened; a torn tail cut; wrong files refused. */
static void files(void **state)
{
    (void)state;
    const char *path = path_in("append.pcap");
    struct sockaddr_in c = sin4("10.0.0.1", 40001), s = sin4("10.0.0.2", 443);
    tg_pcap *p = NULL;
    assert_int_equal(tg_pcap_open(path, 0, &p, NULL), 0);
    tg_pcap_flow f;
    tg_pcap_flow_init(&f, (struct sockaddr *)&c, (struct sockaddr *)&s);
    assert_int_equal(tg_pcap_flow_open(p, &f), 0);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_size, 24); /* buffered */
    assert_int_equal(tg_pcap_flush(p), 0);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_size, 24 + 3 * 56);

    /* a second writer is refused while the first holds the file */
    tg_pcap *q = NULL;
    tg_err err = {0};
    assert_int_equal(tg_pcap_open(path, 0, &q, &err), TG_E_CONFLICT);
    assert_non_null(strstr(err.msg, "another process"));
    assert_int_equal(tg_pcap_flow_data(p, &f, 1, "first", 5), 0);
    assert_int_equal(tg_pcap_flow_close(p, &f), 0);
    tg_pcap_close(p);

    /* appended; a torn last record (a crash mid-write) is cut off first */
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(stat(path, &sb), 0);
    off_t whole = sb.st_size;
    int fd = open(path, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    unsigned char torn[16 + 30] = {0};
    uint32_t rh[4] = {1, 2, 56, 56};
    memcpy(torn, rh, 16);
    assert_int_equal(write(fd, torn, sizeof(torn)), sizeof(torn));
    close(fd);
    assert_int_equal(tg_pcap_open(path, 0, &p, NULL), 0);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_size, whole);
    assert_int_equal(sb.st_mode & 0777, 0600); /* narrowed */
    tg_pcap_flow g;
    struct sockaddr_in c2 = sin4("10.0.0.1", 40002);
    tg_pcap_flow_init(&g, (struct sockaddr *)&c2, (struct sockaddr *)&s);
    assert_int_equal(tg_pcap_flow_data(p, &g, 0, "second", 6), 0);
    assert_int_equal(tg_pcap_flow_close(p, &g), 0);
    tg_pcap_close(p);
    capture cap = {0};
    load(&cap, path);
    replay r;
    replay_flow(&cap, 40001, &r);
    assert_int_equal(r.nsent[0], 5); /* from the client */
    assert_memory_equal(r.sent[0], "first", 5);
    replay_free(&r);
    replay_flow(&cap, 40002, &r);
    assert_int_equal(r.nsent[1], 6); /* from the server */
    assert_memory_equal(r.sent[1], "second", 6);
    replay_free(&r);
    capture_free(&cap);

    /* a larger file, read back in several buffers: cut anywhere, reopening keeps
     * exactly the whole records before the cut */
    const char *big = path_in("big.pcap");
    tg_pcap_stats st;
    assert_int_equal(tg_pcap_open(big, 0, &p, NULL), 0);
    tg_pcap_flow_init(&g, (struct sockaddr *)&c2, (struct sockaddr *)&s);
    static unsigned char body[150000];
    fill(body, sizeof(body), 6);
    for (int i = 0; i < 300; i++)
        assert_int_equal(tg_pcap_flow_data(p, &g, i % 2, body + i, 10), 0);
    assert_int_equal(tg_pcap_flow_data(p, &g, 0, body, sizeof(body)), 0);
    for (int i = 0; i < 300; i++)
        assert_int_equal(tg_pcap_flow_data(p, &g, i % 2, body + i, 1 + i % 7), 0);
    assert_int_equal(tg_pcap_flow_close(p, &g), 0);
    tg_pcap_close(p);
    load(&cap, big);
    size_t nbound = cap.n + 1, *bound = malloc(nbound * sizeof(size_t));
    bound[0] = 24;
    for (size_t i = 0; i < cap.n; i++)
        bound[i + 1] = (size_t)(cap.p[i].ip - cap.buf) + cap.p[i].iplen;
    assert_int_equal(bound[cap.n], cap.len);
    size_t cuts[] = {cap.len - 1,      cap.len - 16,     cap.len - 57,  bound[700] + 3,
                     bound[700] + 20,  bound[603] + 100, bound[604],    bound[604] + 65000,
                     bound[601] + 999, bound[5] + 16,    bound[1] - 15, 24};
    const char *cut = path_in("cut.pcap");
    for (size_t k = 0; k < sizeof(cuts) / sizeof(cuts[0]); k++) {
        size_t want = 24;
        for (size_t i = 0; i < nbound; i++)
            if (bound[i] <= cuts[k]) want = bound[i];
        assert_int_equal(tg_file_write(cut, cap.buf, cuts[k], 0600, NULL), 0);
        assert_int_equal(tg_pcap_open(cut, 0, &p, NULL), 0);
        tg_pcap_stats_get(p, &st);
        assert_int_equal(st.bytes, want);
        tg_pcap_close(p);
        assert_int_equal(stat(cut, &sb), 0);
        assert_int_equal(sb.st_size, want);
    }
    /* a record header that cannot be one: refused, named by its offset, untouched */
    uint32_t wild = 1u << 20;
    memcpy(cap.buf + bound[650] + 8, &wild, 4);
    assert_int_equal(tg_file_write(cut, cap.buf, cap.len, 0600, NULL), 0);
    tg_err_clear(&err);
    assert_int_equal(tg_pcap_open(cut, 0, &p, &err), TG_E_INVALID);
    char at[64];
    snprintf(at, sizeof at, "damaged at byte %zu", bound[650]);
    assert_non_null(strstr(err.msg, at));
    assert_int_equal(stat(cut, &sb), 0);
    assert_int_equal(sb.st_size, cap.len);
    free(bound);
    capture_free(&cap);

    /* what is not ours is never appended to or followed */
    const char *junk = path_in("junk.pcap");
    const char *text = "not a capture at all, but long enough\n";
    FILE *j = fopen(junk, "w");
    fputs(text, j);
    fclose(j);
    tg_err_clear(&err);
    assert_int_equal(tg_pcap_open(junk, 0, &p, &err), TG_E_INVALID);
    assert_non_null(strstr(err.msg, "not a pcap file"));
    assert_int_equal(stat(junk, &sb), 0);
    assert_int_equal(sb.st_size, strlen(text)); /* untouched */

    const char *link = path_in("link.pcap");
    assert_int_equal(symlink(path_in("target.pcap"), link), 0);
    tg_err_clear(&err);
    assert_int_equal(tg_pcap_open(link, 0, &p, &err), TG_E_CONFLICT);
    assert_non_null(strstr(err.msg, "symbolic link"));
    assert_int_equal(access(path_in("target.pcap"), F_OK), -1);

    const char *fifo = path_in("fifo.pcap");
    assert_int_equal(mkfifo(fifo, 0600), 0);
    tg_err_clear(&err);
    assert_int_equal(tg_pcap_open(fifo, 0, &p, &err), TG_E_CONFLICT);
    tg_err_clear(&err);
    assert_int_equal(tg_pcap_open(dir, 0, &p, &err), TG_E_CONFLICT);
    assert_non_null(strstr(err.msg, "directory"));
    assert_null(p);
}

/* Streams: a reader that goes away turns the writer off without a SIGPIPE (whose
 * default action would end this test); a slow reader of a non-blocking pipe costs
 * dropped packets, never a torn one or a stall. */
static void streams(void **state)
{
    (void)state;
    struct sockaddr_in c = sin4("10.0.0.1", 40003), s = sin4("10.0.0.2", 443);
    tg_pcap *p = NULL;
    tg_err err = {0};
    int fds[2];

    /* no reader at all: the header cannot be written */
    assert_int_equal(pipe(fds), 0);
    close(fds[0]);
    assert_int_equal(tg_pcap_fd(fds[1], &p, &err), TG_E_IO);
    assert_null(p);
    assert_non_null(strstr(err.msg, "Broken pipe"));

    /* a reader that leaves after the header */
    assert_int_equal(pipe(fds), 0);
    assert_int_equal(tg_pcap_fd(fds[1], &p, NULL), 0);
    unsigned char h[24];
    assert_int_equal(read(fds[0], h, 24), 24);
    close(fds[0]);
    tg_pcap_flow f;
    tg_pcap_flow_init(&f, (struct sockaddr *)&c, (struct sockaddr *)&s);
    assert_int_equal(tg_pcap_flow_data(p, &f, 1, "lost", 4), 0); /* buffered */
    assert_int_equal(tg_pcap_flush(p), TG_E_IO);
    tg_pcap_stats st;
    tg_pcap_stats_get(p, &st);
    assert_int_equal(st.error, EPIPE);
    assert_int_equal(tg_pcap_flow_close(p, &f), TG_E_IO);
    assert_int_equal(tg_pcap_dropped(p), 3);
    tg_pcap_close(p);

    /* the same on a socket */
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    assert_int_equal(tg_pcap_fd(fds[1], &p, NULL), 0);
    close(fds[0]);
    tg_pcap_flow_init(&f, (struct sockaddr *)&c, (struct sockaddr *)&s);
    tg_pcap_flow_open(p, &f);
    assert_int_equal(tg_pcap_flush(p), TG_E_IO);
    tg_pcap_stats_get(p, &st);
    assert_int_equal(st.error, EPIPE);
    tg_pcap_close(p);

    /* a non-blocking pipe nobody reads for a while: packets dropped, none torn */
    assert_int_equal(pipe(fds), 0);
    fcntl(fds[1], F_SETFL, O_NONBLOCK);
    fcntl(fds[0], F_SETFL, O_NONBLOCK);
    assert_int_equal(tg_pcap_fd(fds[1], &p, NULL), 0);
    static unsigned char body[1 << 20];
    fill(body, sizeof(body), 5);
    tg_pcap_flow_init(&f, (struct sockaddr *)&c, (struct sockaddr *)&s);
    int rc = tg_pcap_flow_data(p, &f, 1, body, sizeof(body)); /* returns, never blocks */
    assert_int_equal(rc, TG_E_IO);
    uint64_t dropped = tg_pcap_dropped(p);
    assert_true(dropped > 0);
    tg_pcap_stats_get(p, &st);
    assert_int_equal(st.error, 0); /* not off: later packets go through */
    capture cap = {0};
    /* read what is there, then let the writer finish and close: EOF */
    size_t got = 0, room = 4 << 20;
    unsigned char *all = malloc(room);
    ssize_t r;
    while ((r = read(fds[0], all + got, room - got)) > 0)
        got += (size_t)r;
    assert_true(r < 0 && errno == EAGAIN);
    tg_pcap_close(p); /* flushes what is left (the pipe has room now) */
    while ((r = read(fds[0], all + got, room - got)) > 0)
        got += (size_t)r;
    assert_int_equal(r, 0);
    close(fds[0]);
    cap.buf = all;
    cap.len = got;
    parse(&cap);                         /* whole records only */
    assert_int_equal(cap.n, st.packets); /* all accepted arrived, in whole */
    capture_free(&cap);
}

/* Many threads, many flows, one file: every record whole, every flow in order. */
enum { THREADS = 8, FLOWS = 40 };

static tg_pcap *shared;

static void *writer(void *arg)
{
    int t = (int)(intptr_t)arg;
    unsigned char body[3000];
    for (int i = 0; i < FLOWS; i++) {
        uint16_t port = (uint16_t)(20000 + t * FLOWS + i);
        struct sockaddr_in c = {.sin_family = AF_INET, .sin_port = htons(port)};
        struct sockaddr_in s4 = {.sin_family = AF_INET, .sin_port = htons(443)};
        struct sockaddr_in6 s6 = {.sin6_family = AF_INET6, .sin6_port = htons(443)};
        c.sin_addr.s_addr = htonl(0x0a000001);
        s4.sin_addr.s_addr = htonl(0x0a000002);
        s6.sin6_addr.s6_addr[15] = 1;
        tg_pcap_flow f;
        tg_pcap_flow_init(&f, (struct sockaddr *)&c,
                          t % 2 ? (struct sockaddr *)&s6 : (struct sockaddr *)&s4);
        fill(body, sizeof(body), port);
        for (int k = 0; k < 4; k++)
            if (tg_pcap_flow_data(shared, &f, k % 2, body, sizeof(body) - k) != 0) return (void *)1;
        if (tg_pcap_flow_close(shared, &f) != 0) return (void *)1;
    }
    return NULL;
}

static void threads(void **state)
{
    (void)state;
    const char *path = path_in("threads.pcap");
    assert_int_equal(tg_pcap_open(path, 0, &shared, NULL), 0);
    pthread_t th[THREADS];
    for (int t = 0; t < THREADS; t++)
        assert_int_equal(pthread_create(&th[t], NULL, writer, (void *)(intptr_t)t), 0);
    for (int t = 0; t < THREADS; t++) {
        void *ret;
        assert_int_equal(pthread_join(th[t], &ret), 0);
        assert_null(ret);
    }
    tg_pcap_close(shared);
    capture cap = {0};
    load(&cap, path);
    assert_int_equal(cap.n, THREADS * FLOWS * (3 + 4 * 2 + 3));
    unsigned char body[3000];
    for (int t = 0; t < THREADS; t++)
        for (int i = 0; i < FLOWS; i++) {
            uint16_t port = (uint16_t)(20000 + t * FLOWS + i);
            replay r;
            replay_flow(&cap, port, &r);
            fill(body, sizeof(body), port);
            assert_int_equal(r.nsent[0], 2 * 3000 - 1 - 3);
            assert_memory_equal(r.sent[0], body, 3000 - 1);
            assert_memory_equal(r.sent[1], body, 3000);
            replay_free(&r);
        }
    capture_free(&cap);
}

static int setup(void **state)
{
    (void)state;
    return scratch_setup("pcap");
}

static int teardown(void **state)
{
    (void)state;
    return scratch_teardown();
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(known_packets), cmocka_unit_test(seq_ack),
                                       cmocka_unit_test(ipv6),          cmocka_unit_test(max_bytes),
                                       cmocka_unit_test(files),         cmocka_unit_test(streams),
                                       cmocka_unit_test(threads)};
    return cmocka_run_group_tests(tests, setup, teardown);
}
