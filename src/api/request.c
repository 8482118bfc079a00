/*
 * request.c — reading one request (its query, its JSON body's members) and failing it with
 * a sentence: what every handler uses, apart from the HTTP server in listener.c so that
 * the multipart reader's fuzz target (tests/fuzz/fuzz_multipart.c) links the same code.
 */
#include "api_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int api_fail(api_req *r, int code, const char *field, const char *fmt, ...)
{
    char msg[TG_ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return field ? tg_err_fset(&r->err, code, field, "%s", msg)
                 : tg_err_set(&r->err, code, "%s", msg);
}

/* ---- reading ---- */

const char *api_query(api_req *r, const char *name)
{
    return evhttp_find_header(&r->query, name);
}

int api_query_int(api_req *r, const char *name, int lo, int hi, int *out, int *given)
{
    const char *v = api_query(r, name);
    if (v == NULL) return 0;
    char *end;
    long n = strtol(v, &end, 10);
    if (*v == '\0' || *end != '\0' || n < lo || n > hi)
        return api_fail(r, TG_E_USAGE, name, "%s must be a whole number from %d to %d, not '%s'",
                        name, lo, hi, v);
    *out = (int)n;
    if (given) *given = 1;
    return 0;
}

static json_t *member(api_req *r, const char *name)
{
    return r->json ? json_object_get(r->json, name) : NULL;
}

int api_member_str(api_req *r, const char *name, int required, const char **out)
{
    json_t *v = member(r, name);
    if (v == NULL || json_is_null(v)) {
        if (required) return api_fail(r, TG_E_USAGE, name, "the member '%s' is required", name);
        return 0;
    }
    if (!json_is_string(v))
        return api_fail(r, TG_E_USAGE, name, "the member '%s' must be a string", name);
    if (strlen(json_string_value(v)) != json_string_length(v))
        return api_fail(r, TG_E_INVALID, name, "the member '%s' holds a NUL character", name);
    *out = json_string_value(v);
    return 0;
}

int api_member_int(api_req *r, const char *name, int *out, int *given)
{
    json_t *v = member(r, name);
    if (v == NULL || json_is_null(v)) return 0;
    if (!json_is_integer(v) || json_integer_value(v) < -2147483647LL ||
        json_integer_value(v) > 2147483647LL)
        return api_fail(r, TG_E_USAGE, name, "the member '%s' must be a whole number", name);
    *out = (int)json_integer_value(v);
    if (given) *given = 1;
    return 0;
}

int api_member_bool(api_req *r, const char *name, int *out)
{
    json_t *v = member(r, name);
    if (v == NULL || json_is_null(v)) return 0;
    if (!json_is_boolean(v))
        return api_fail(r, TG_E_USAGE, name, "the member '%s' must be true or false", name);
    *out = json_is_true(v);
    return 0;
}

int api_member_strs(api_req *r, const char *name, const char ***out, size_t *n)
{
    json_t *v = member(r, name), *e;
    size_t i;
    if (v == NULL || json_is_null(v)) return 0;
    if (!json_is_array(v))
        return api_fail(r, TG_E_USAGE, name, "the member '%s' must be a list of strings", name);
    const char **l = calloc(json_array_size(v) + 1, sizeof(*l));
    if (l == NULL) return api_fail(r, TG_E_INTERNAL, NULL, "out of memory");
    json_array_foreach(v, i, e)
    {
        if (!json_is_string(e) || strlen(json_string_value(e)) != json_string_length(e)) {
            free(l);
            return api_fail(r, TG_E_USAGE, name, "the member '%s' must be a list of strings", name);
        }
        l[i] = json_string_value(e);
    }
    *out = l;
    *n = json_array_size(v);
    return 0;
}
