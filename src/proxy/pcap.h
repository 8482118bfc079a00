/*
 * pcap.h — the decrypted-traffic PCAP writer of the inspection proxy (issue 9, item 8).
 *
 * A section of the future face src/proxy/proxy.h, kept apart until that face exists:
 * self-contained, no libevent or OpenSSL types.
 *
 * The plaintext of an inspected connection is written as a synthetic TCP conversation
 * between the real client (its ephemeral port) and the real server (its port): a
 * handshake, data segments of at most TG_PCAP_SEGMENT bytes each acknowledged by the
 * other side, and a FIN exchange. Headers are IPv4 or IPv6 (LINKTYPE_RAW) with valid IP
 * and TCP checksums, so that Wireshark's checksum validation and TCP analysis accept
 * every packet and "Follow TCP stream" gives exactly the bytes the proxy relayed.
 */
#ifndef TG_PROXY_PCAP_H
#define TG_PROXY_PCAP_H

#include "../base/base.h"

#include <stddef.h>
#include <stdint.h>

struct sockaddr;

/* The largest TCP payload in one packet (an IPv4 datagram stays below 65,535 bytes). */
#define TG_PCAP_SEGMENT 65000
/* The write buffer: a file or stream receives writes of at most this size. */
#define TG_PCAP_BUFFER (64u * 1024u)

/*
 * One pcap file or stream, shared by every thread. Each packet is one record, appended
 * whole under a mutex: records of different threads never interleave. Records are
 * buffered (TG_PCAP_BUFFER) and written when the buffer is full, when a packet arrives
 * and the oldest buffered one is a second old, and by tg_pcap_flush — which the owner
 * calls at least once a second (a timer on one event loop), so that an idle proxy's last
 * packets reach the file too.
 *
 * Nothing is allocated per packet. The writer never fails a connection and never ends
 * the process: past max_bytes, or after a write error (disk full, EPIPE from a reader
 * that went away), it stops writing for good and counts the packets it refuses; the
 * owner reads tg_pcap_stats (or tg_pcap_dropped) on its timer and logs the change once.
 */
typedef struct tg_pcap tg_pcap;

/* Opens path for writing: a new file (mode 0600) gets the global header (LINKTYPE_RAW,
 * microsecond times); an existing regular file must be such a pcap written on a machine
 * of this byte order, and is appended to (a record cut short by a crash at its end is
 * cut off first; group and other permissions are removed: it holds decrypted traffic).
 * Never through a symbolic link, never into a FIFO, device or directory. The file is
 * locked (flock) against a second writer. max_bytes caps the file's size (0: no cap). */
int tg_pcap_open(const char *path, uint64_t max_bytes, tg_pcap **out, tg_err *err);
/* A stream on fd (a pipe to `tshark -r -`, a socket): takes ownership of fd (closed by
 * tg_pcap_close, or here on failure) and writes the global header at once. Writes never
 * raise SIGPIPE. A non-blocking fd never stalls the caller: what a slow reader leaves in
 * the buffer stays there, and packets that do not fit beside it are dropped (counted). */
int tg_pcap_fd(int fd, tg_pcap **out, tg_err *err);
/* Writes what is buffered; 0, or TG_E_IO once the writer is off (full or failed). */
int tg_pcap_flush(tg_pcap *p);
/* Flushes, closes the file or stream and frees p; NULL is a no-op. A non-blocking
 * stream whose reader is behind gets up to two seconds to take the rest. */
void tg_pcap_close(tg_pcap *p);

typedef struct tg_pcap_stats {
    uint64_t packets; /* records accepted into the buffer (those buffered when a write
                         fails are lost with it) */
    uint64_t dropped; /* records refused: cap reached, writer off, or no room (stream) */
    uint64_t bytes;   /* size of the file or stream so far, buffered records included */
    int full;         /* max_bytes was reached: nothing more is written */
    int error;        /* the errno of the write that turned the writer off, or 0 */
} tg_pcap_stats;
void tg_pcap_stats_get(tg_pcap *p, tg_pcap_stats *st);
uint64_t tg_pcap_dropped(tg_pcap *p);

/*
 * One connection's state: its addresses and ports and the next sequence number each
 * side sends. Owned by the connection and used by one thread at a time (its event loop);
 * only the tg_pcap it writes into is shared. Side 0 is the client, side 1 the server.
 */
typedef struct tg_pcap_flow {
    uint8_t v6;          /* IPv6 headers; else IPv4 */
    uint8_t state;       /* TG_PCAP_FLOW_… */
    uint16_t port[2];    /* host order */
    uint8_t addr[2][16]; /* network order; an IPv4 address in the first 4 bytes */
    uint32_t seq[2];     /* the next sequence number each side sends */
    uint16_t ipid[2];    /* IPv4 identification, per side */
} tg_pcap_flow;

enum { TG_PCAP_FLOW_NEW = 0, TG_PCAP_FLOW_OPEN = 1, TG_PCAP_FLOW_CLOSED = 2 };

/* Sets up f for a client and a server address (AF_INET or AF_INET6, with ports), with
 * random initial sequence numbers. A pair of one IPv4 and one IPv6 address is written
 * as IPv6 (the IPv4 one as ::ffff:a.b.c.d); a pair of IPv4 and IPv4-mapped IPv6
 * addresses (a dual-stack listener's view) as IPv4. NULL or another family counts as
 * the unspecified address, port 0. */
void tg_pcap_flow_init(tg_pcap_flow *f, const struct sockaddr *client,
                       const struct sockaddr *server);
/*
 * The packets of a flow. Each returns 0 when every packet was accepted, TG_E_IO when
 * the writer dropped some (the flow's state advances all the same), TG_E_INVALID for a
 * flow already closed, or opened again (nothing written). None of them needs checking
 * to stay correct. With p NULL nothing is written but the flow's state advances.
 */
/* SYN, SYN/ACK, ACK. */
int tg_pcap_flow_open(tg_pcap *p, tg_pcap_flow *f);
/* len bytes sent by the client (from_client) or the server: segments of at most
 * TG_PCAP_SEGMENT bytes with PSH|ACK, each followed by the other side's ACK. Opens the
 * flow first if it is new; len 0 writes nothing. */
int tg_pcap_flow_data(tg_pcap *p, tg_pcap_flow *f, int from_client, const void *data, size_t len);
/* FIN/ACK from the client, FIN/ACK from the server, the client's last ACK. A flow never
 * opened writes nothing and is closed. */
int tg_pcap_flow_close(tg_pcap *p, tg_pcap_flow *f);

#endif
