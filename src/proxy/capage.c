/*
 * capage.c — the signing CA, downloadable from the proxy itself (SPEC I1; issue 9 item 9).
 *
 * Clients must trust the signing CA before inspection works for them, so an explicit
 * proxy answers plain-HTTP GETs for itself, as mitmproxy's mitm.it does: "/" (or
 * http://TG_PROXY_CA_HOST/ asked of the proxy) is a short page with install steps per
 * operating system, "/ca.pem" and "/ca.der" are the certificate, and during a `ca
 * reissue` rollover "/ca-2.pem", "/ca-2.der" … its other copies (same subject and key,
 * another validity: clients that install both keep trusting across the switch). Only
 * certificates are
 * served, never a key. Any other request that is not CONNECT gets 405 (flow.c).
 */
#include "proxy_int.h"

#include <openssl/pem.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static const char page_head[] =
    "<!doctype html><html><head><meta charset=\"utf-8\"><title>Install the inspection CA"
    "</title></head><body><h1>Install the inspection CA</h1><p>This network inspects TLS "
    "traffic. Install this certificate authority, <b>%s</b>, as trusted on this device, "
    "or secure sites will show a warning.</p><p>Download: <a href=\"/ca.pem\">PEM</a> "
    "(<code>ca.pem</code>) or <a href=\"/ca.der\">DER</a> (<code>ca.der</code>).</p>"
    "<p>SHA-256 fingerprint: <code>%s</code></p>";
static const char page_steps[] =
    "<h2>Windows</h2><p>Open <code>ca.der</code>, <i>Install Certificate</i>, <i>Local "
    "Machine</i>, <i>Trusted Root Certification Authorities</i>; or as an administrator: "
    "<code>certutil -addstore root ca.der</code>.</p>"
    "<h2>macOS</h2><p><code>sudo security add-trusted-cert -d -r trustRoot -k "
    "/Library/Keychains/System.keychain ca.pem</code></p>"
    "<h2>Debian, Ubuntu</h2><p><code>sudo cp ca.pem /usr/local/share/ca-certificates/"
    "inspection-ca.crt &amp;&amp; sudo update-ca-certificates</code></p>"
    "<h2>Fedora, RHEL</h2><p><code>sudo cp ca.pem /etc/pki/ca-trust/source/anchors/ &amp;&amp; "
    "sudo update-ca-trust</code></p>"
    "<h2>Firefox</h2><p>Settings, Privacy &amp; Security, Certificates, <i>View "
    "Certificates</i>, Authorities, <i>Import</i> <code>ca.pem</code>, trust it for "
    "websites.</p>"
    "<h2>Android</h2><p>Settings, Security, Encryption &amp; credentials, <i>Install a "
    "certificate</i>, CA certificate, <code>ca.der</code>.</p>"
    "<h2>iOS</h2><p>Open <code>ca.pem</code> in Safari, install the profile, then turn on "
    "full trust under Settings, General, About, Certificate Trust Settings.</p>"
    "</body></html>";

static void send_all(int fd, const char *type, const char *extra, const void *body, size_t len)
{
    char head[512];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
                     "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
                     type, len, extra);
    if (n <= 0) return;
    /* a fresh socket's send buffer holds a few KB: the whole answer goes at once */
    (void)!send(fd, head, (size_t)n, MSG_NOSIGNAL | MSG_MORE);
    (void)!send(fd, body, len, MSG_NOSIGNAL);
}

/* Certificate number k of the page: 0 the CA in use, 1.. its rollover copies. */
static X509 *nth(const pxy *px, int k)
{
    if (k == 0) return tg_cert_x509(px->sign->ca);
    return k - 1 < sk_X509_num(px->ca_copies) ? sk_X509_value(px->ca_copies, k - 1) : NULL;
}

/* "/ca.pem" -> 0, "/ca-2.der" -> 1, …; *der says which format; -1: not a certificate. */
static int which(const char *t, size_t len, int *der)
{
    char path[16];
    if (len >= sizeof(path)) return -1;
    memcpy(path, t, len);
    path[len] = '\0';
    int k = 0;
    char ext[4];
    if (sscanf(path, "/ca.%3s", ext) == 1 && strlen(path) == 7)
        k = 0;
    else if (sscanf(path, "/ca-%d.%3s", &k, ext) == 2 && k >= 2 && k <= 9 && strlen(path) == 9)
        k -= 1;
    else
        return -1;
    if (strcmp(ext, "pem") == 0)
        *der = 0;
    else if (strcmp(ext, "der") == 0)
        *der = 1;
    else
        return -1;
    return k;
}

static void fingerprint(X509 *x, char *fp, size_t size)
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    fp[0] = '\0';
    if (X509_digest(x, EVP_sha256(), md, &mdlen))
        for (unsigned int i = 0; i < mdlen && 3 * i + 3 <= size; i++)
            snprintf(fp + 3 * i, size - 3 * i, i + 1 < mdlen ? "%02X:" : "%02X", md[i]);
}

int capage_answer(const pxy *px, int fd, const char *target, size_t len)
{
    static const char abs[] = "http://" TG_PROXY_CA_HOST;
    if (len >= sizeof(abs) - 1 && strncmp(target, abs, sizeof(abs) - 1) == 0) {
        target += sizeof(abs) - 1;
        len -= sizeof(abs) - 1;
        if (len == 0) target = "/", len = 1;
    } else if (len == 0 || target[0] != '/')
        return 0;
    int der = 0, k = which(target, len, &der);
    X509 *ca = k >= 0 ? nth(px, k) : NULL;
    if (ca != NULL && !der) {
        BIO *b = BIO_new(BIO_s_mem());
        char *data = NULL, disp[96];
        long n = b && PEM_write_bio_X509(b, ca) ? BIO_get_mem_data(b, &data) : 0;
        snprintf(disp, sizeof(disp), "Content-Disposition: attachment; filename=\"%.12s\"\r\n",
                 target + 1);
        if (n > 0) send_all(fd, "application/x-pem-file", disp, data, (size_t)n);
        BIO_free(b);
        return 1;
    }
    if (ca != NULL && der) {
        unsigned char *d = NULL;
        char disp[96];
        int n = i2d_X509(ca, &d);
        snprintf(disp, sizeof(disp), "Content-Disposition: attachment; filename=\"%.12s\"\r\n",
                 target + 1);
        if (n > 0) send_all(fd, "application/x-x509-ca-cert", disp, d, (size_t)n);
        OPENSSL_free(d);
        return 1;
    }
    if (len == 1) {
        char subject[256] = "", fp[97] = "", page[sizeof(page_head) + sizeof(page_steps) + 2048];
        X509 *use = nth(px, 0);
        X509_NAME_oneline(X509_get_subject_name(use), subject, sizeof(subject));
        for (char *p = subject; *p; p++) /* the page is HTML: no markup from the subject */
            if (*p == '<' || *p == '>' || *p == '&' || *p == '"') *p = '?';
        fingerprint(use, fp, sizeof(fp));
        int n = snprintf(page, sizeof(page), page_head, subject, fp);
        for (int c = 1; n > 0 && (size_t)n < sizeof(page) && nth(px, c) != NULL; c++) {
            /* a rollover (ca reissue): the next copy, to install before the switch */
            char f2[97], until[32] = "";
            struct tm tm;
            fingerprint(nth(px, c), f2, sizeof(f2));
            if (ASN1_TIME_to_tm(X509_get0_notAfter(nth(px, c)), &tm))
                strftime(until, sizeof(until), "%Y-%m-%d", &tm);
            n += snprintf(page + n, sizeof(page) - (size_t)n,
                          "<p>Also install its other copy (same name and key, valid until %s, "
                          "for a rollover): <a href=\"/ca-%d.pem\">PEM</a> or "
                          "<a href=\"/ca-%d.der\">DER</a>, SHA-256 <code>%s</code></p>",
                          until, c + 1, c + 1, f2);
        }
        if (n > 0 && (size_t)n + sizeof(page_steps) < sizeof(page)) {
            memcpy(page + n, page_steps, sizeof(page_steps) - 1);
            send_all(fd, "text/html; charset=utf-8", "", page, (size_t)n + sizeof(page_steps) - 1);
        }
        return 1;
    }
    return 0;
}
