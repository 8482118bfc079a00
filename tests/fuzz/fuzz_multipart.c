/*
 * fuzz_multipart.c — libFuzzer target for the API's multipart/form-data reader
 * (src/api/upload.c, api_multipart_read): the one parser of ours that reads request
 * bodies from the network (issue 10; libevent has none).
 *
 * Input layout (seeds.sh writes seeds in it): up to the first '\n' the Content-Type's
 * parameters (what follows "multipart/form-data"), the rest the body.
 *
 * Invariants: it returns 0 or a usage/invalid error with a sentence; on success there are
 * at most API_PARTS_MAX parts, each named (1 to API_PART_NAME_MAX bytes, no NUL), at most
 * TG_FILE_MAX bytes, NUL-terminated, and its bytes are a piece of the body.
 *
 * upload.c and request.c (api_fail, the readers) are compiled into this target with the
 * libraries they call; the HTTP server (listener.c) is not.
 */
#include "api/api_int.h"
#include "check.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t hl = nl ? (size_t)(nl - data) : size;
    if (hl > 512) return 0;
    char ct[600];
    snprintf(ct, sizeof(ct), "multipart/form-data%.*s", (int)hl, (const char *)data);
    if (strlen(ct) != strlen("multipart/form-data") + hl) return 0; /* a NUL in the header */
    const uint8_t *body = nl ? nl + 1 : data + size;
    size_t blen = (size_t)(data + size - body);
    /* the body as the listener hands it over: a copy with a NUL after it */
    unsigned char *copy = malloc(blen + 1);
    if (copy == NULL) return 0;
    memcpy(copy, body, blen);
    copy[blen] = '\0';
    api_req r = {.body = copy, .bodylen = blen};
    api_form f;
    memset(&f, 0, sizeof(f));
    int rc = api_multipart_read(&r, &f, ct);
    if (rc != 0) {
        CHECK(rc == TG_E_USAGE || rc == TG_E_INVALID || rc == TG_E_INTERNAL);
        CHECK(r.err.code == rc && r.err.msg[0] != '\0');
    } else {
        CHECK(f.n <= API_PARTS_MAX);
        for (size_t i = 0; i < f.n; i++) {
            const api_part *p = &f.parts[i];
            size_t nl2 = strlen(p->name);
            CHECK(nl2 >= 1 && nl2 <= API_PART_NAME_MAX);
            CHECK(p->len <= TG_FILE_MAX);
            CHECK(p->data[p->len] == '\0');
            CHECK(p->len == 0 || memmem(copy, blen, p->data, p->len) != NULL);
        }
    }
    api_form_free(&f);
    free(copy);
    return 0;
}
