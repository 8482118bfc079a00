/*
 * pcapgen.c — a test driver, not a test: writes a pcap with src/proxy/pcap.c from a
 * script on standard input, for tests/interop/test_pcap_tshark.py to hand to tshark.
 *
 *   pcapgen OUT [MAX_BYTES]      OUT "-" writes a stream to standard output
 *
 * Script lines (IDs 0-15, ADDR an IPv4 or IPv6 address, FILE the bytes to send):
 *   flow ID CLIENT_ADDR CLIENT_PORT SERVER_ADDR SERVER_PORT
 *   open ID | close ID | flush
 *   data ID c|s FILE [CHUNK]     sent by the client or the server, CHUNK bytes per call
 * At the end: "packets N dropped N" on standard error; exit 0, or 1 on a bad script.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proxy/pcap.h"

static int address(const char *a, unsigned port, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *in = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, a, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)port);
        return 0;
    }
    if (inet_pton(AF_INET6, a, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        return 0;
    }
    return -1;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: pcapgen OUT [MAX_BYTES] < script\n");
        return 1;
    }
    tg_err err = {0};
    tg_pcap *p = NULL;
    int rc = strcmp(argv[1], "-") == 0
                 ? tg_pcap_fd(dup(1), &p, &err)
                 : tg_pcap_open(argv[1], argc > 2 ? strtoull(argv[2], NULL, 10) : 0, &p, &err);
    if (rc != 0) {
        fprintf(stderr, "pcapgen: %s\n", err.msg);
        return 1;
    }
    tg_pcap_flow flows[16];
    char line[1024];
    int bad = 0;
    while (!bad && fgets(line, sizeof line, stdin)) {
        char a[64], b[64], who[4], file[512];
        unsigned id, ca, sa;
        size_t chunk = 0;
        struct sockaddr_storage cs, ss;
        if (sscanf(line, "flow %u %63s %u %63s %u", &id, a, &ca, b, &sa) == 5 && id < 16) {
            if (address(a, ca, &cs) != 0 || address(b, sa, &ss) != 0)
                bad = 1;
            else
                tg_pcap_flow_init(&flows[id], (struct sockaddr *)&cs, (struct sockaddr *)&ss);
        } else if (sscanf(line, "open %u", &id) == 1 && id < 16) {
            tg_pcap_flow_open(p, &flows[id]);
        } else if (sscanf(line, "close %u", &id) == 1 && id < 16) {
            tg_pcap_flow_close(p, &flows[id]);
        } else if (strncmp(line, "flush", 5) == 0) {
            tg_pcap_flush(p);
        } else if (sscanf(line, "data %u %3s %511s %zu", &id, who, file, &chunk) >= 3 && id < 16) {
            unsigned char *d = NULL;
            size_t n = 0;
            if (tg_file_read(file, 64u << 20, &d, &n, &err) != 0) {
                fprintf(stderr, "pcapgen: %s\n", err.msg);
                bad = 1;
                continue;
            }
            if (chunk == 0) chunk = n;
            for (size_t at = 0; at < n; at += chunk)
                tg_pcap_flow_data(p, &flows[id], who[0] == 'c', d + at,
                                  n - at < chunk ? n - at : chunk);
            free(d);
        } else if (line[0] != '\n' && line[0] != '#') {
            fprintf(stderr, "pcapgen: cannot read the line: %s", line);
            bad = 1;
        }
    }
    tg_pcap_stats st;
    tg_pcap_stats_get(p, &st);
    tg_pcap_close(p);
    fprintf(stderr, "packets %llu dropped %llu\n", (unsigned long long)st.packets,
            (unsigned long long)st.dropped);
    return bad;
}
