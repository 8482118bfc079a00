/*
 * upload.c — files sent to the API: a raw body (the body is one file; the other members
 * are query parameters, a password the X-Tlsgate-Password header) or multipart/form-data
 * (RFC 7578; parts named as the CLI's arguments and options). libevent reads no
 * multipart, so this is a small reader of our own, bounded everywhere: the body is
 * already at most TG_API_BODY_MAX (evhttp), at most API_PARTS_MAX parts, each part's
 * headers API_PART_HEAD_MAX bytes and its content TG_FILE_MAX (the CLI's file limit).
 * Anything malformed is refused naming what is wrong; nothing is guessed.
 *
 * Each part is copied into a buffer of its own (the keyring takes NUL-terminated bytes
 * like tg_file_read's) and wiped when freed: a part may hold a private key or a password.
 */
#include "api_int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

static int in_list(const char *const *l, const char *name)
{
    for (size_t i = 0; l && l[i]; i++)
        if (strcmp(l[i], name) == 0) return 1;
    return 0;
}

/* Secrets never travel in a URL (it is logged by proxies and kept in histories). */
static int is_secret(const char *name)
{
    return strcmp(name, "password") == 0 || strcmp(name, "passphrase") == 0;
}

static int add_part(api_req *r, api_form *f, const char *name, size_t namelen, const char *filename,
                    const unsigned char *data, size_t len)
{
    if (f->n >= API_PARTS_MAX)
        return api_fail(r, TG_E_USAGE, NULL, "the body has more than %d parts", API_PARTS_MAX);
    if (len > TG_FILE_MAX)
        return api_fail(r, TG_E_INVALID, NULL,
                        "the part '%.*s' is too large (%zu bytes; the limit is %u)", (int)namelen,
                        name, len, TG_FILE_MAX);
    api_part *p = &f->parts[f->n];
    p->name = strndup(name, namelen);
    p->filename = filename ? strdup(filename) : NULL;
    p->data = malloc(len + 1);
    if (p->name == NULL || (filename && p->filename == NULL) || p->data == NULL) {
        free(p->name);
        free(p->filename);
        free(p->data);
        *p = (api_part){0};
        return api_fail(r, TG_E_INTERNAL, NULL, "out of memory");
    }
    if (len) memcpy(p->data, data, len);
    p->data[len] = '\0';
    p->len = len;
    f->n++;
    return 0;
}

/* ---- multipart/form-data ---- */

static const char *skip_ws(const char *s, const char *end)
{
    while (s < end && (*s == ' ' || *s == '\t'))
        s++;
    return s;
}

/* The value of a parameter after '=' (a token, or a quoted string with '\' escapes) into
 * out; returns where it ended, NULL when it is malformed or longer than outsize - 1. */
static const char *param_value(const char *s, const char *end, char *out, size_t outsize)
{
    size_t n = 0;
    if (s < end && *s == '"') {
        for (s++; s < end && *s != '"'; s++) {
            if (*s == '\\' && s + 1 < end) s++;
            if (n + 1 >= outsize) return NULL;
            out[n++] = *s;
        }
        if (s >= end) return NULL; /* no closing quote */
        s++;
    } else {
        for (; s < end && *s != ';' && *s != ' ' && *s != '\t'; s++) {
            if (n + 1 >= outsize) return NULL;
            out[n++] = *s;
        }
    }
    out[n] = '\0';
    return s;
}

/* A Content-Type's boundary parameter (RFC 2046: 1-70 characters). */
static int boundary_of(api_req *r, const char *ct, char *out, size_t outsize)
{
    const char *end = ct + strlen(ct), *s = strchr(ct, ';');
    while (s != NULL) {
        s = skip_ws(s + 1, end);
        const char *semi = strchr(s, ';');
        const char *eq = memchr(s, '=', (size_t)((semi ? semi : end) - s));
        if (eq != NULL) {
            size_t kl = (size_t)(eq - s);
            while (kl > 0 && (s[kl - 1] == ' ' || s[kl - 1] == '\t'))
                kl--;
            char value[128];
            const char *after = param_value(skip_ws(eq + 1, end), end, value, sizeof(value));
            if (after != NULL && kl == 8 && strncasecmp(s, "boundary", 8) == 0) {
                size_t bl = strlen(value);
                if (bl < 1 || bl > 70 || bl + 1 > outsize) break;
                memcpy(out, value, bl + 1);
                return 0;
            }
            if (after != NULL) semi = strchr(after, ';');
        }
        s = semi;
    }
    return api_fail(r, TG_E_USAGE, NULL,
                    "the Content-Type multipart/form-data needs a boundary of 1 to 70 characters");
}

/* One part's Content-Disposition: "form-data; name=\"file\"; filename=\"a.pem\"". */
static int disposition(api_req *r, const char *v, const char *end, char *name, char *filename,
                       int *has_filename)
{
    v = skip_ws(v, end);
    if ((size_t)(end - v) < 9 || strncasecmp(v, "form-data", 9) != 0 ||
        (v + 9 < end && v[9] != ';' && v[9] != ' ' && v[9] != '\t'))
        return api_fail(r, TG_E_USAGE, NULL,
                        "a part's Content-Disposition must be form-data with a name");
    const char *s = v + 9;
    name[0] = '\0';
    *has_filename = 0;
    while ((s = skip_ws(s, end)) < end) {
        if (*s != ';')
            return api_fail(r, TG_E_USAGE, NULL, "a part's Content-Disposition is malformed");
        s = skip_ws(s + 1, end);
        const char *k = s;
        while (s < end && *s != '=' && *s != ';')
            s++;
        if (s >= end || *s != '=')
            return api_fail(r, TG_E_USAGE, NULL, "a part's Content-Disposition is malformed");
        size_t kl = (size_t)(s - k);
        while (kl > 0 && (k[kl - 1] == ' ' || k[kl - 1] == '\t'))
            kl--;
        s = skip_ws(s + 1, end);
        char value[API_FILENAME_MAX + 1];
        const char *after = param_value(s, end, value, sizeof(value));
        if (after == NULL)
            return api_fail(r, TG_E_USAGE, NULL,
                            "a part's Content-Disposition has a malformed or too long value "
                            "(names up to %d bytes, filenames up to %d)",
                            API_PART_NAME_MAX, API_FILENAME_MAX);
        if (kl == 4 && strncasecmp(k, "name", 4) == 0) {
            if (strlen(value) > API_PART_NAME_MAX)
                return api_fail(r, TG_E_USAGE, NULL, "a part's name is longer than %d bytes",
                                API_PART_NAME_MAX);
            strcpy(name, value);
        } else if (kl == 8 && strncasecmp(k, "filename", 8) == 0) {
            strcpy(filename, value);
            *has_filename = 1;
        } /* other parameters (filename*) are not used */
        s = after;
    }
    if (name[0] == '\0')
        return api_fail(r, TG_E_USAGE, NULL, "a part's Content-Disposition has no name");
    return 0;
}

/* The headers of one part, from p (just after the boundary line) to the blank line;
 * *content is where its content starts. */
static int part_head(api_req *r, const unsigned char *p, const unsigned char *end,
                     const unsigned char **content, char *name, char *filename, int *has_filename)
{
    size_t room = (size_t)(end - p);
    if (room > API_PART_HEAD_MAX + 4) room = API_PART_HEAD_MAX + 4;
    const unsigned char *blank = NULL;
    if (room >= 2 && p[0] == '\r' && p[1] == '\n')
        blank = p; /* no headers at all */
    else {
        const unsigned char *hit = memmem(p, room, "\r\n\r\n", 4);
        if (hit != NULL) blank = hit + 2;
    }
    if (blank == NULL)
        return api_fail(r, TG_E_USAGE, NULL,
                        "a part's headers do not end with a blank line within %d bytes",
                        API_PART_HEAD_MAX);
    *content = blank + 2;
    int seen = 0;
    for (const unsigned char *line = p; line < blank;) {
        const unsigned char *eol = memmem(line, (size_t)(blank - line), "\r\n", 2);
        const char *l = (const char *)line, *le = (const char *)eol;
        const char *colon = memchr(l, ':', (size_t)(le - l));
        if (colon == NULL || memchr(l, '\0', (size_t)(le - l)) != NULL)
            return api_fail(r, TG_E_USAGE, NULL, "a part's header line is malformed");
        if (colon - l == 19 && strncasecmp(l, "Content-Disposition", 19) == 0) {
            int rc = disposition(r, colon + 1, le, name, filename, has_filename);
            if (rc != 0) return rc;
            seen = 1;
        } /* Content-Type and others: the keyring reads the bytes for what they are */
        line = eol + 2;
    }
    if (!seen) return api_fail(r, TG_E_USAGE, NULL, "a part has no Content-Disposition");
    return 0;
}

int api_multipart_read(api_req *r, api_form *f, const char *ct)
{
    char boundary[72], delim[80];
    int rc = boundary_of(r, ct, boundary, sizeof(boundary));
    if (rc != 0) return rc;
    /* "\r\n--BOUNDARY": every delimiter but a first one at the very start */
    int dl = snprintf(delim, sizeof(delim), "\r\n--%s", boundary);
    const unsigned char *body = r->body ? r->body : (const unsigned char *)"";
    const unsigned char *end = body + r->bodylen, *p;
    if (r->bodylen >= (size_t)dl - 2 && memcmp(body, delim + 2, (size_t)dl - 2) == 0)
        p = body + dl - 2;
    else if ((p = memmem(body, r->bodylen, delim, (size_t)dl)) != NULL)
        p += dl;
    else
        return api_fail(r, TG_E_USAGE, NULL, "the multipart body has no boundary line");
    for (;;) {
        if (end - p >= 2 && p[0] == '-' && p[1] == '-') return 0; /* the closing delimiter */
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        if (end - p < 2 || p[0] != '\r' || p[1] != '\n')
            return api_fail(r, TG_E_USAGE, NULL,
                            "the multipart body ends without its closing boundary line");
        p += 2;
        const unsigned char *content = p;
        char name[API_PART_NAME_MAX + 1] = "", filename[API_FILENAME_MAX + 1] = "";
        int has_filename = 0;
        if ((rc = part_head(r, p, end, &content, name, filename, &has_filename)) != 0) return rc;
        const unsigned char *next = memmem(content, (size_t)(end - content), delim, (size_t)dl);
        if (next == NULL)
            return api_fail(r, TG_E_USAGE, NULL,
                            "the part '%s' is not followed by a boundary line (the body ends "
                            "before it is complete)",
                            name);
        rc = add_part(r, f, name, strlen(name), has_filename ? filename : NULL, content,
                      (size_t)(next - content));
        if (rc != 0) return rc;
        p = next + dl;
    }
}

/* ---- the form ---- */

int api_form_read(api_req *r, api_form *f, const char *const *files, const char *const *texts)
{
    memset(f, 0, sizeof(*f));
    struct evkeyvalq *h = evhttp_request_get_input_headers(r->req);
    const char *ct = evhttp_find_header(h, "Content-Type");
    int rc = 0;
    struct evkeyval *q;
    TAILQ_FOREACH(q, &r->query, next)
    {
        if (is_secret(q->key))
            return api_fail(r, TG_E_USAGE, q->key,
                            "a %s never goes in a URL: send it in the header %s or a "
                            "multipart part",
                            q->key, API_PASSWORD_HEADER);
        if (!in_list(texts, q->key) && strcmp(q->key, "filename") != 0) /* a raw file's */
            return api_fail(r, TG_E_USAGE, q->key, "the parameter '%s' is not known here", q->key);
    }
    if (ct != NULL && strncasecmp(ct, "multipart/form-data", 19) == 0 &&
        (ct[19] == '\0' || ct[19] == ';' || ct[19] == ' ')) {
        f->multipart = 1;
        rc = api_multipart_read(r, f, ct);
        for (size_t i = 0; rc == 0 && i < f->n; i++)
            if (!in_list(files, f->parts[i].name) && !in_list(texts, f->parts[i].name))
                rc = api_fail(r, TG_E_USAGE, f->parts[i].name, "the part '%s' is not known here",
                              f->parts[i].name);
    } else {
        /* the body is the file itself, whatever its type says (PEM, DER, PKCS#12…) */
        if (r->bodylen == 0)
            return api_fail(r, TG_E_USAGE, files[0],
                            "the body is empty: send the file as the body, or as multipart "
                            "form data with a part '%s'",
                            files[0]);
        const char *label = api_query(r, "filename");
        rc = add_part(r, f, files[0], strlen(files[0]), label ? label : "upload", r->body,
                      r->bodylen);
    }
    /* a password in a header, where a raw body cannot carry it */
    const char *pw = evhttp_find_header(h, API_PASSWORD_HEADER);
    if (rc == 0 && pw != NULL) {
        if (!in_list(texts, "password"))
            rc = api_fail(r, TG_E_USAGE, "password", "this takes no password (%s)",
                          API_PASSWORD_HEADER);
        for (size_t i = 0; rc == 0 && i < f->n; i++)
            if (strcmp(f->parts[i].name, "password") == 0)
                rc = api_fail(r, TG_E_USAGE, "password",
                              "the password is given twice (a part and the header %s)",
                              API_PASSWORD_HEADER);
        if (rc == 0)
            rc = add_part(r, f, "password", 8, NULL, (const unsigned char *)pw, strlen(pw));
    }
    if (rc != 0) api_form_free(f);
    return rc;
}

void api_form_free(api_form *f)
{
    for (size_t i = 0; i < f->n; i++) {
        free(f->parts[i].name);
        free(f->parts[i].filename);
        tg_free_secret(f->parts[i].data, f->parts[i].len + 1);
    }
    memset(f, 0, sizeof(*f));
}

int api_form_inputs(api_req *r, api_form *f, const char *name, tg_input **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    tg_input *v = calloc(f->n + 1, sizeof(*v));
    if (v == NULL) return api_fail(r, TG_E_INTERNAL, NULL, "out of memory");
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->parts[i].name, name) == 0)
            v[(*n)++] = (tg_input){.data = f->parts[i].data,
                                   .len = f->parts[i].len,
                                   .label = f->parts[i].filename ? f->parts[i].filename : name};
    *out = v;
    return 0;
}

int api_form_text(api_req *r, api_form *f, const char *name, const char **out)
{
    const char *found = NULL;
    size_t count = 0, len = 0;
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->parts[i].name, name) == 0) {
            found = (const char *)f->parts[i].data;
            len = f->parts[i].len;
            count++;
        }
    const char *q = is_secret(name) ? NULL : api_query(r, name);
    if (q != NULL) {
        found = q;
        len = strlen(q);
        count++;
    }
    if (count > 1) return api_fail(r, TG_E_USAGE, name, "'%s' is given more than once", name);
    if (found == NULL) return 0;
    if (strlen(found) != len)
        return api_fail(r, TG_E_INVALID, name, "'%s' holds a NUL character", name);
    *out = found;
    return 0;
}

int api_form_bool(api_req *r, api_form *f, const char *name, int *out)
{
    const char *v = NULL;
    int rc = api_form_text(r, f, name, &v);
    if (rc != 0 || v == NULL) return rc;
    if (*v == '\0' || strcmp(v, "true") == 0 || strcmp(v, "1") == 0 || strcmp(v, "yes") == 0)
        *out = 1;
    else if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0 || strcmp(v, "no") == 0)
        *out = 0;
    else
        return api_fail(r, TG_E_USAGE, name, "'%s' must be true or false, not '%s'", name, v);
    return 0;
}

/* ---- secrets ---- */

static int secret_get(void *arg, int confirm, char *buf, size_t bufsize, size_t *len, tg_err *err)
{
    (void)confirm; /* asked once: the client typed it, or read it from its own file */
    const api_secret *s = arg;
    if (s->len + 1 > bufsize)
        return tg_err_fset(err, TG_E_PASSWORD, "password",
                           "the password is too long (limit %zu bytes)", bufsize - 1);
    memcpy(buf, s->data, s->len);
    buf[s->len] = '\0';
    *len = s->len;
    return 0;
}

const tg_passsrc *api_secret_src(api_secret *s, const char *data, size_t len)
{
    if (data == NULL) return NULL;
    *s = (api_secret){.data = data, .len = len, .src = {.get = secret_get, .arg = s, .stable = 1}};
    return &s->src;
}

const tg_passsrc *api_form_pass(api_form *f, api_secret *s)
{
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->parts[i].name, "password") == 0)
            return api_secret_src(s, (const char *)f->parts[i].data, f->parts[i].len);
    return NULL;
}

int api_member_secret(api_req *r, const char *name, const char **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    json_t *v = r->json ? json_object_get(r->json, name) : NULL;
    if (v == NULL || json_is_null(v)) return 0;
    if (!json_is_string(v))
        return api_fail(r, TG_E_USAGE, name, "the member '%s' must be a string", name);
    *data = json_string_value(v);
    *len = json_string_length(v);
    return 0;
}

void api_member_wipe(api_req *r, const char *name)
{
    json_t *v = r->json ? json_object_get(r->json, name) : NULL;
    /* the parsed document is the request's and is freed right after: its copy of the
     * secret is overwritten first */
    if (v != NULL && json_is_string(v))
        tg_wipe((char *)json_string_value(v), json_string_length(v));
}
