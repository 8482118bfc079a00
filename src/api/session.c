/*
 * session.c — console sessions (issue 10, item 3): a password login makes a session kept
 * in the daemon's memory, named by a random id in an HttpOnly, Secure, SameSite=Strict
 * cookie; every change made with a session carries its CSRF token in a header. Logins are
 * rate-limited, since each costs a scrypt derivation (32 MiB, ~0.1 s) on the API thread.
 *
 * Invariants:
 *   - only the SHA-256 of a session id is kept: memory holds nothing a cookie can be made
 *     from; ids and CSRF tokens are compared in constant time;
 *   - a session names its user; role, must_change and whether the user still exists are
 *     read from the store on every request, so a demotion, a disabled user or a deletion
 *     takes effect at once;
 *   - at most API_SESSIONS sessions: a new one replaces the least recently used; each ends
 *     API_SESSION_IDLE seconds after its last use and API_SESSION_MAX after the login.
 * Everything here runs on the API thread: no locks.
 */
#include "api_int.h"
#include "../x509/x509.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define API_SESSIONS     256
#define API_SESSION_IDLE 1800  /* 30 min */
#define API_SESSION_MAX  43200 /* 12 h */
#define API_LOGIN_FAILS  5     /* failed logins from one address … */
#define API_LOGIN_LOCK   60    /* … lock it out for this many seconds */
#define API_LOGIN_RATE   5     /* logins per second, all addresses together */
#define API_LOGIN_ADDRS  256   /* addresses whose failures are remembered */
#define COOKIE           "tg_session"

typedef struct session {
    unsigned char id_hash[32];
    char csrf[TG_TOKEN_LEN + 1];
    char user[TG_USER_NAME_MAX + 1];
    long long created, used;
    int live;
} session;

typedef struct failure {
    char addr[64];
    int count;
    long long last, locked_until;
} failure;

struct api_sessions {
    session s[API_SESSIONS];
    failure f[API_LOGIN_ADDRS];
    long long rate_second;
    int rate_count;
};

/* Locked, zeroed pages, left out of core dumps: they hold the CSRF tokens. */
api_sessions *api_sessions_new(void)
{
    return tg_secure_alloc(sizeof(api_sessions));
}

void api_sessions_free(api_sessions *ss)
{
    if (ss) tg_secure_free(ss, sizeof(*ss));
}

static void end(session *s)
{
    tg_wipe(s, sizeof(*s));
}

/* The session whose id is the cookie's, or NULL (ended ones are wiped on the way). */
static session *find(api_sessions *ss, const char *id, long long now)
{
    unsigned char h[32];
    if (id == NULL || strlen(id) != TG_TOKEN_LEN || tg_sha256(id, strlen(id), h, NULL) != 0)
        return NULL;
    session *hit = NULL;
    for (int i = 0; i < API_SESSIONS; i++) { /* every slot, whatever matches: no early exit */
        session *s = &ss->s[i];
        if (!s->live) continue;
        if (now - s->used > API_SESSION_IDLE || now - s->created > API_SESSION_MAX) {
            end(s);
            continue;
        }
        if (tg_ct_equal(s->id_hash, h, 32)) hit = s;
    }
    return hit;
}

/* The value of cookie name in a Cookie header (RFC 6265 "a=b; c=d"), copied into out. */
static int cookie_value(const char *header, const char *name, char *out, size_t outsize)
{
    size_t nl = strlen(name);
    const char *p = header;
    while (p && *p) {
        while (*p == ' ' || *p == ';')
            p++;
        const char *end = strchr(p, ';');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > nl && strncmp(p, name, nl) == 0 && p[nl] == '=') {
            size_t vl = len - nl - 1;
            if (vl >= outsize) return -1;
            memcpy(out, p + nl + 1, vl);
            out[vl] = '\0';
            return 0;
        }
        p = end;
    }
    return -1;
}

static const char *header(api_req *r, const char *name)
{
    return evhttp_find_header(evhttp_request_get_input_headers(r->req), name);
}

static session *of_request(api_req *r, long long now)
{
    const char *h = header(r, "Cookie");
    char id[TG_TOKEN_LEN + 2];
    if (h == NULL || cookie_value(h, COOKIE, id, sizeof(id)) != 0) return NULL;
    session *s = find(r->sessions, id, now);
    tg_wipe(id, sizeof(id));
    return s;
}

int api_session_auth(api_req *r, int *found)
{
    long long now = (long long)time(NULL);
    session *s = of_request(r, now);
    *found = s != NULL;
    if (s == NULL) return 0;
    int rc = tg_keyring_principal(r->kr, s->user, &r->who, &r->err);
    if (rc == TG_E_PASSWORD) end(s); /* the user is gone or disabled: so is the session */
    if (rc != 0) return rc;
    s->used = now;
    r->by_session = 1;
    snprintf(r->csrf, sizeof(r->csrf), "%s", s->csrf);
    return 0;
}

int api_session_csrf(api_req *r)
{
    const char *h = header(r, "X-CSRF-Token");
    if (h && strlen(h) == strlen(r->csrf) && tg_ct_equal(h, r->csrf, strlen(r->csrf))) return 0;
    return api_fail(r, TG_E_USAGE, NULL,
                    "a change made with a console session needs its CSRF token in the "
                    "X-CSRF-Token header");
}

/* ---- the resource ---- */

static failure *failure_of(api_sessions *ss, const char *addr, int make)
{
    failure *oldest = &ss->f[0];
    for (int i = 0; i < API_LOGIN_ADDRS; i++) {
        if (ss->f[i].addr[0] && strcmp(ss->f[i].addr, addr) == 0) return &ss->f[i];
        if (ss->f[i].last < oldest->last) oldest = &ss->f[i];
    }
    if (!make) return NULL;
    memset(oldest, 0, sizeof(*oldest));
    snprintf(oldest->addr, sizeof(oldest->addr), "%s", addr);
    return oldest;
}

static int too_many(api_req *r, long long wait)
{
    char secs[24];
    snprintf(secs, sizeof(secs), "%lld", wait > 0 ? wait : 1);
    evhttp_add_header(evhttp_request_get_output_headers(r->req), "Retry-After", secs);
    r->status = 429;
    r->errname = "too_many_logins";
    return api_fail(r, TG_E_PASSWORD, NULL, "too many login attempts: try again in %s s", secs);
}

static json_t *session_doc(const api_req *r, const char *csrf)
{
    return json_pack("{s:s, s:s, s:b, s:s}", "user", r->who.name, "role", tg_role_name(r->who.role),
                     "must_change", r->who.must_change, "csrf_token", csrf);
}

/* Every password check of the API (a login, a self-service password change) goes
 * through these two: an address locked out, or over the rate, gets 429. */
int api_password_guard(api_req *r)
{
    api_sessions *ss = r->sessions;
    long long now = (long long)time(NULL);
    failure *f = failure_of(ss, r->peer, 0);
    if (f && f->locked_until > now) return too_many(r, f->locked_until - now);
    if (ss->rate_second != now) {
        ss->rate_second = now;
        ss->rate_count = 0;
    }
    if (++ss->rate_count > API_LOGIN_RATE) return too_many(r, 1);
    return 0;
}

void api_password_outcome(api_req *r, int ok)
{
    long long now = (long long)time(NULL);
    failure *f = failure_of(r->sessions, r->peer, !ok);
    if (f == NULL) return;
    if (ok) {
        memset(f, 0, sizeof(*f));
        return;
    }
    f->last = now;
    if (++f->count >= API_LOGIN_FAILS) {
        f->locked_until = now + API_LOGIN_LOCK;
        f->count = 0;
    }
}

/* POST /api/v1/session {"user", "password"}: a login. */
int api_session_login(api_req *r)
{
    api_sessions *ss = r->sessions;
    long long now = (long long)time(NULL);
    int guard = api_password_guard(r);
    if (guard != 0) return guard;
    const char *user = NULL, *pw = NULL;
    int rc = api_member_str(r, "user", 1, &user);
    if (rc == 0) rc = api_member_str(r, "password", 1, &pw);
    if (rc != 0) return rc;
    rc = tg_keyring_login(r->kr, user, (const unsigned char *)pw, strlen(pw), &r->who, &r->err);
    if (rc == TG_E_PASSWORD) {
        api_password_outcome(r, 0);
        r->status = 401;
        r->errname = "unauthorized";
    }
    if (rc != 0) return rc;
    api_password_outcome(r, 1);
    /* the least recently used slot (a free one first) takes the new session */
    session *slot = &ss->s[0];
    for (int i = 0; i < API_SESSIONS; i++) {
        if (!ss->s[i].live) {
            slot = &ss->s[i];
            break;
        }
        if (ss->s[i].used < slot->used) slot = &ss->s[i];
    }
    end(slot);
    char id[TG_TOKEN_LEN + 1];
    unsigned char hash[32];
    if ((rc = tg_token_new(id, hash, &r->err)) != 0 ||
        (rc = tg_token_new(slot->csrf, (unsigned char[32]){0}, &r->err)) != 0) {
        tg_wipe(id, sizeof(id));
        end(slot);
        return rc;
    }
    memcpy(slot->id_hash, hash, 32);
    snprintf(slot->user, sizeof(slot->user), "%s", r->who.name);
    slot->created = slot->used = now;
    slot->live = 1;
    char cookie[160];
    snprintf(cookie, sizeof(cookie),
             COOKIE "=%s; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=%d", id,
             API_SESSION_MAX);
    tg_wipe(id, sizeof(id));
    evhttp_add_header(evhttp_request_get_output_headers(r->req), "Set-Cookie", cookie);
    tg_wipe(cookie, sizeof(cookie));
    api_send_json(r, 201, session_doc(r, slot->csrf));
    return 0;
}

/* GET /api/v1/session: who the console is logged in as, and its CSRF token. */
int api_session_get(api_req *r)
{
    if (!r->by_session)
        return api_fail(r, TG_E_NOTFOUND, NULL, "this request has no console session");
    api_send_json(r, 200, session_doc(r, r->csrf));
    return 0;
}

/* DELETE /api/v1/session: a logout. */
int api_session_end(api_req *r)
{
    long long now = (long long)time(NULL);
    session *s = r->by_session ? of_request(r, now) : NULL;
    if (s == NULL) return api_fail(r, TG_E_NOTFOUND, NULL, "this request has no console session");
    end(s);
    evhttp_add_header(evhttp_request_get_output_headers(r->req), "Set-Cookie",
                      COOKIE "=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0");
    api_send_json(r, 200, json_pack("{s:b}", "ended", 1));
    return 0;
}
