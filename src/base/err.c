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

int tg_err_fset(tg_err *err, int code, const char *field, const char *fmt, ...)
{
    if (err == NULL || err->code != 0) return code;
    err->code = code;
    snprintf(err->field, sizeof(err->field), "%s", field ? field : "");
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
    err->field[0] = '\0';
}
