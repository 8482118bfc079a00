/*
 * err.c — the one error convention: a negative code plus one sentence for the user.
 */
#include "base.h"

#include <stdio.h>
#include <string.h>

int tg_err_set(tg_err *err, int code, const char *fmt, ...)
{
    if (err == NULL || err->code != 0) return code;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    return code;
}

void tg_err_clear(tg_err *err)
{
    if (err == NULL) return;
    err->code = 0;
    err->msg[0] = '\0';
}

const char *tg_err_name(int code)
{
    switch (code) {
    case TG_OK:
        return "ok";
    case TG_E_USAGE:
        return "usage";
    case TG_E_INVALID:
        return "invalid input";
    case TG_E_NOTFOUND:
        return "not found";
    case TG_E_CONFLICT:
        return "conflict";
    case TG_E_PASSWORD:
        return "password";
    case TG_E_STORE:
        return "store";
    case TG_E_IO:
        return "i/o";
    default:
        return "internal";
    }
}
