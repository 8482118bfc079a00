/*
 * conf.c — serve's configuration file, /etc/tlsgate/tlsgate.conf (README "Install").
 * One "key = value" a line; blank lines and lines whose first non-blank character is '#'
 * are skipped (a '#' later in a line is part of the value); keys are serve's long options
 * without "--"; listen may repeat, every other key is given once; switches take yes or no.
 * Every value is judged here, whole file first, so that a bad file is refused by its line
 * before serve opens the store or binds a port, and a refused file changes nothing in opts.
 */
#include "conf.h"
#include "../proxy/proxy.h"

#include <errno.h>
#include <event2/util.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum {
    K_LISTEN,
    K_BACKEND,
    K_THREADS,
    K_CACHE,
    K_ADMIN,
    K_ADMIN_CERT,
    K_NO_ADMIN,
    K_LOG,
    K_LOG_SOCKET,
    K_CHECK_EVERY,
    K_NO_TICKETS,
    K_HTTP,
    K_QUIET,
    K_INTERCEPT,
    K_N
};
static const char *const keys[K_N] = {
    "listen", "backend",    "threads",     "cache",      "admin", "admin-cert", "no-admin",
    "log",    "log-socket", "check-every", "no-tickets", "http",  "quiet",      "intercept"};

struct cli_conf {
    unsigned char *text; /* the file, its keys and values cut out in place */
    const char *listen[TG_CONF_MAX_LISTEN];
    size_t nlisten;
    const char *intercept[TG_PROXY_INTERCEPT_MAX];
    size_t nintercept;
    const char *value[K_N]; /* the last value of each key (NULL: not in the file) */
    int line[K_N];          /* where it was given */
    long num[K_N];          /* numbers and switches, judged */
};

static int bad(cli *c, const char *path, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int bad(cli *c, const char *path, int line, const char *fmt, ...)
{
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return tg_err_set(&c->err, TG_E_INVALID, "%s, line %d: %s", path, line, msg);
}

/* ADDRESS:PORT with a port from 1 to 65535, the way the listeners parse it. */
static int addr_ok(const char *v)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    if (evutil_parse_sockaddr_port(v, (struct sockaddr *)&ss, &len) != 0) return 0;
    if (ss.ss_family == AF_INET) return ((struct sockaddr_in *)&ss)->sin_port != 0;
    if (ss.ss_family == AF_INET6) return ((struct sockaddr_in6 *)&ss)->sin6_port != 0;
    return 0;
}

static int number(const char *v, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (*v == '\0' || *end != '\0' || errno != 0 || n < lo || n > hi) return 0;
    *out = n;
    return 1;
}

static int yes_no(const char *v, long *out)
{
    static const char *const yes[] = {"yes", "true", "on", "1"}, *const no[] = {"no", "false",
                                                                                "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcmp(v, yes[i]) == 0) return (*out = 1), 1;
        if (strcmp(v, no[i]) == 0) return (*out = 0), 1;
    }
    return 0;
}

/* Judges one value of key k; 0 or TG_E_INVALID naming path and line. */
static int judge(cli *c, cli_conf *cf, const char *path, int ln, int k, const char *v)
{
    long n = 0;
    switch (k) {
    case K_LISTEN:
    case K_INTERCEPT:
    case K_BACKEND:
    case K_ADMIN:
    case K_HTTP:
        if (!addr_ok(v))
            return bad(c, path, ln,
                       "%s needs ADDRESS:PORT (an IPv4 address, or an IPv6 one in brackets, "
                       "and a port from 1 to 65535), not '%s'",
                       keys[k], v);
        break;
    case K_THREADS:
        if (!number(v, 0, TG_SERVE_THREADS_MAX, &n))
            return bad(c, path, ln,
                       "threads takes a number from 0 to %d (0: one per core), not '%s'",
                       TG_SERVE_THREADS_MAX, v);
        break;
    case K_CACHE:
        if (!number(v, 0, TG_SERVE_CACHE_MAX, &n))
            return bad(c, path, ln, "cache takes a number from 0 to %d (0: %d), not '%s'",
                       TG_SERVE_CACHE_MAX, TG_SERVE_CACHE_DEFAULT, v);
        break;
    case K_CHECK_EVERY:
        if (!number(v, 0, TG_SERVE_CHECK_MAX, &n) || (n != 0 && n < TG_SERVE_CHECK_MIN))
            return bad(c, path, ln, "check-every takes seconds from %d to %d (0: daily), not '%s'",
                       TG_SERVE_CHECK_MIN, TG_SERVE_CHECK_MAX, v);
        break;
    case K_NO_ADMIN:
    case K_NO_TICKETS:
    case K_QUIET:
        if (!yes_no(v, &n)) return bad(c, path, ln, "%s takes yes or no, not '%s'", keys[k], v);
        break;
    case K_LOG:
        if (strcmp(v, "stderr") != 0 && strcmp(v, "syslog") != 0 && strcmp(v, "both") != 0)
            return bad(c, path, ln, "log takes stderr, syslog or both, not '%s'", v);
        break;
    case K_LOG_SOCKET:
        if (v[0] != '/' || strlen(v) >= 108)
            return bad(c, path, ln,
                       "log-socket takes the absolute path of a syslog socket, shorter than 108 "
                       "bytes, not '%s'",
                       v);
        break;
    case K_ADMIN_CERT:
        if (strlen(v) > 255)
            return bad(c, path, ln, "admin-cert takes a certificate name of at most 255 bytes");
        break;
    }
    if (k == K_LISTEN) {
        if (cf->nlisten == TG_CONF_MAX_LISTEN)
            return bad(c, path, ln, "more than %d listen lines", TG_CONF_MAX_LISTEN);
        cf->listen[cf->nlisten++] = v;
    } else if (k == K_INTERCEPT) {
        if (cf->nintercept == TG_PROXY_INTERCEPT_MAX)
            return bad(c, path, ln, "more than %d intercept lines", TG_PROXY_INTERCEPT_MAX);
        cf->intercept[cf->nintercept++] = v;
    } else if (cf->value[k] != NULL) {
        return bad(c, path, ln, "%s is given twice (first on line %d); give it once", keys[k],
                   cf->line[k]);
    }
    cf->value[k] = v;
    cf->line[k] = ln;
    cf->num[k] = n;
    return 0;
}

static char *trim(char *s, char *end)
{
    while (s < end && (*s == ' ' || *s == '\t'))
        s++;
    while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    *end = '\0';
    return s;
}

/* Cuts the file into keys and values and judges each line. */
static int parse(cli *c, cli_conf *cf, const char *path, size_t len)
{
    char *p = (char *)cf->text, *stop = p + len;
    for (int ln = 1; p < stop; ln++) {
        char *eol = memchr(p, '\n', (size_t)(stop - p));
        char *end = eol ? eol : stop, *next = eol ? eol + 1 : stop;
        if (end > p && end[-1] == '\r') end--; /* CRLF */
        if (end - p > TG_CONF_MAX_LINE)
            return bad(c, path, ln, "the line is longer than %d bytes", TG_CONF_MAX_LINE);
        for (char *q = p; q < end; q++)
            if ((unsigned char)*q < 0x20 && *q != '\t')
                return bad(c, path, ln, "the line holds a control character (byte %d)",
                           (int)(q - p) + 1);
        char *s = trim(p, end);
        p = next;
        if (*s == '\0' || *s == '#') continue;
        char *eq = strchr(s, '=');
        if (eq == NULL) return bad(c, path, ln, "expected 'key = value', not '%.60s'", s);
        char *key = trim(s, eq), *value = trim(eq + 1, eq + 1 + strlen(eq + 1));
        int k = 0;
        while (k < K_N && strcmp(key, keys[k]) != 0)
            k++;
        if (k == K_N) {
            char known[160] = "";
            for (int i = 0; i < K_N; i++)
                snprintf(known + strlen(known), sizeof(known) - strlen(known), "%s%s",
                         i ? ", " : "", keys[i]);
            return bad(c, path, ln, "unknown key '%.60s' (keys: %s)", key, known);
        }
        if (*value == '\0') return bad(c, path, ln, "%s needs a value", key);
        int rc = judge(c, cf, path, ln, k, value);
        if (rc != 0) return rc;
    }
    if (cf->value[K_NO_ADMIN] != NULL && cf->num[K_NO_ADMIN] &&
        (cf->value[K_ADMIN] != NULL || cf->value[K_ADMIN_CERT] != NULL))
        return bad(c, path, cf->line[K_NO_ADMIN],
                   "no-admin turns the admin listener off: give it without admin and admin-cert");
    return 0;
}

/* What the command line left unset takes the file's value. */
static void merge(const cli_conf *cf, opts *o)
{
    const char *const *v = cf->value;
    if (o->serve.nlisten == 0 && cf->nlisten > 0) {
        o->serve.listen = cf->listen;
        o->serve.nlisten = cf->nlisten;
    }
    if (o->nintercepts == 0 && cf->nintercept > 0) {
        o->intercept = cf->intercept;
        o->nintercepts = cf->nintercept;
    }
    const char **strs[] = {[K_BACKEND] = &o->serve.backend,
                           [K_LOG] = &o->log,
                           [K_LOG_SOCKET] = &o->log_socket,
                           [K_HTTP] = &o->http};
    for (size_t k = 0; k < sizeof(strs) / sizeof(strs[0]); k++)
        if (strs[k] != NULL && *strs[k] == NULL && v[k] != NULL) *strs[k] = v[k];
    if (v[K_THREADS] && !(o->serve_given & SG_THREADS)) o->serve.threads = (int)cf->num[K_THREADS];
    if (v[K_CACHE] && !(o->serve_given & SG_CACHE)) o->serve.cache = cf->num[K_CACHE];
    if (v[K_CHECK_EVERY] && !(o->serve_given & SG_CHECK_EVERY))
        o->serve.check_every = (int)cf->num[K_CHECK_EVERY];
    if (v[K_QUIET] && cf->num[K_QUIET]) o->serve.quiet = 1;
    if (v[K_NO_TICKETS] && cf->num[K_NO_TICKETS]) o->serve.no_tickets = 1;
    /* the admin listener: --no-admin drops the file's admin and admin-cert; --admin or
     * --admin-cert drop its no-admin */
    if (!o->no_admin) {
        if (v[K_NO_ADMIN] && cf->num[K_NO_ADMIN] && o->admin == NULL && o->admin_cert == NULL)
            o->no_admin = 1;
        if (o->admin == NULL) o->admin = v[K_ADMIN];
        if (o->admin_cert == NULL) o->admin_cert = v[K_ADMIN_CERT];
    }
}

int cli_conf_apply(cli *c, const char *path, opts *o, cli_conf **out)
{
    *out = NULL;
    if (path != NULL && path[0] == '\0')
        return cli_usage(c, "--config needs the path of a configuration file");
    if (path == NULL) {
        struct stat st;
        path = TG_CONF_DEFAULT;
        if (stat(path, &st) != 0 && errno == ENOENT) return 0; /* none: serve as the flags say */
    }
    cli_conf *cf = calloc(1, sizeof(*cf));
    if (cf == NULL) return tg_err_set(&c->err, TG_E_INTERNAL, "out of memory");
    size_t len = 0;
    int rc = cli_read(path, "--config", TG_CONF_MAX_BYTES, &cf->text, &len, &c->err);
    if (rc == TG_E_NOTFOUND) { /* only --config's: the default's absence was checked */
        tg_err_clear(&c->err);
        rc = tg_err_set(&c->err, TG_E_NOTFOUND,
                        "the configuration file %s does not exist (serve --config FILE)", path);
    } else if (rc == TG_E_INVALID && strstr(c->err.msg, "too large") != NULL) {
        tg_err_clear(&c->err);
        rc = tg_err_set(&c->err, TG_E_INVALID, "%s: the configuration file is larger than %u bytes",
                        path, TG_CONF_MAX_BYTES);
    }
    if (rc == 0) rc = parse(c, cf, path, len);
    if (rc != 0) {
        cli_conf_free(cf);
        return rc;
    }
    merge(cf, o);
    *out = cf;
    return 0;
}

void cli_conf_free(cli_conf *cf)
{
    if (cf == NULL) return;
    free(cf->text);
    free(cf);
}
