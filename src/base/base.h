/*
 * base.h — the face of src/base: errors, bounded file I/O, secrets and passphrases.
 *
 * Every fallible function in tlsgate returns 0 or a negative TG_E… code and, on failure,
 * leaves one sentence in the caller's tg_err that says what was wrong and what to do.
 * No OpenSSL types appear here; the implementation may use OpenSSL only for wiping and
 * randomness.
 */
#ifndef TG_BASE_H
#define TG_BASE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Error codes. The CLI's exit status is the negated code (README, "Exit statuses"). */
enum {
    TG_OK = 0,
    TG_E_USAGE = -2,    /* the command line itself is wrong */
    TG_E_INVALID = -3,  /* an input (file, field, value) is malformed or breaks a rule */
    TG_E_NOTFOUND = -4, /* a named object or a file does not exist */
    TG_E_CONFLICT = -5, /* the request contradicts the store: duplicate, referenced, refused */
    TG_E_PASSWORD = -6, /* a password is wrong or could not be obtained */
    TG_E_STORE = -7,    /* the store cannot be opened, is locked, damaged or tampered with */
    TG_E_IO = -8,       /* an output file or directory cannot be written */
    TG_E_INTERNAL = -9  /* a bug or a library failure we did not expect */
};

#define TG_ERR_MAX 512
typedef struct tg_err {
    int code;
    char msg[TG_ERR_MAX];
    /* The input the error is about, by its neutral name ("days", "key", "with_chain"), or
     * "". Sentences name inputs in words; each face maps the field to what its user typed
     * (the CLI to --days, the API to the JSON member). */
    char field[32];
} tg_err;

/* Records code and a printf-style sentence in err (if err is non-NULL); returns code.
 * An error already recorded is kept: the first, most specific sentence wins. */
int tg_err_set(tg_err *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The same, naming the input field (see tg_err.field). */
int tg_err_fset(tg_err *err, int code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void tg_err_clear(tg_err *err);

/* Largest file any command will read (certificates, keys, bundles, password files). */
#define TG_FILE_MAX (10u * 1024u * 1024u)

/* Reads a whole regular file of at most max bytes into a new NUL-terminated buffer
 * (caller frees with tg_free_secret if it may hold a secret, else free). */
int tg_file_read(const char *path, size_t max, unsigned char **out, size_t *outlen, tg_err *err);
/* How long reading standard input may take, in all (a deadline, not an idle timer). */
#define TG_STDIN_DEADLINE_MS 120000
/* Reads descriptor fd to its end: at most max bytes, within deadline_ms in all; label names
 * it in errors ("standard input"). The buffer is NUL-terminated, as tg_file_read's. An
 * empty input is TG_E_INVALID. */
int tg_fd_read_all(int fd, const char *label, size_t max, int deadline_ms, unsigned char **out,
                   size_t *outlen, tg_err *err);

/* Bytes handed to a library call in place of a file: what a face (the CLI, the API) read
 * or received, and the label errors name it by (a path, an upload's field). Borrowed. */
typedef struct tg_input {
    const unsigned char *data;
    size_t len;
    const char *label;
} tg_input;
/* Writes data to path atomically (temporary file, fsync, rename) with the given mode. */
int tg_file_write(const char *path, const void *data, size_t len, unsigned mode, tg_err *err);
/* The same for a file a person named (exports): never through a symbolic link at path,
 * never over a directory or special file, and over an existing file only when replace
 * is set (else TG_E_CONFLICT, also when one appears while writing). A replaced file is
 * replaced by rename, never written into. */
/* Whether tg_file_create may write path: not a symbolic link, directory or other
 * non-regular file, and not existing at all unless replace (TG_E_CONFLICT otherwise). */
int tg_file_target_check(const char *path, int replace, tg_err *err);
int tg_file_create(const char *path, const void *data, size_t len, unsigned mode, int replace,
                   tg_err *err);
int tg_mkdir_p(const char *path, unsigned mode, tg_err *err);

/* Secrets: wiped before they are freed. */
void tg_wipe(void *p, size_t len);
void tg_free_secret(void *p, size_t len);
int tg_random(void *buf, size_t len, tg_err *err);

/* Memory for the secrets a process keeps (the store's master and data keys, passphrases):
 * zeroed pages of their own, locked into RAM (mlock: never swapped out; best effort when
 * RLIMIT_MEMLOCK forbids it) and left out of core dumps (MADV_DONTDUMP). tg_secure_free
 * wipes them before unmapping. NULL when out of memory. docs/store.md, "Keys in memory". */
void *tg_secure_alloc(size_t len);
void tg_secure_free(void *p, size_t len);
/* For every command, first thing: no core dumps (RLIMIT_CORE 0, soft and hard) and not
 * dumpable (PR_SET_DUMPABLE 0: no core file whatever the limit, and /proc/PID/mem,
 * environ, maps belong to root, so other processes of the same user cannot read it). */
void tg_process_harden(void);

/* Where a passphrase comes from, as the face provides it (SPEC F4: never from the
 * command line). The CLI reads a file, the environment or the terminal (cli/pass.c); the
 * API takes a request member. Libraries ask only when an input turns out to need one, and
 * never prompt themselves. get fills buf (NUL-terminated, at most bufsize-1 bytes) and
 * *len; confirm says the secret is a new one (the CLI asks twice on a terminal). */
typedef struct tg_passsrc {
    int (*get)(void *arg, int confirm, char *buf, size_t bufsize, size_t *len, tg_err *err);
    void *arg;
    int confirm;
    int stable; /* the same answer every time, and nobody is asked (a file, the environment,
                 * an upload): it may be asked from several threads (one at a time) */
} tg_passsrc;

#define TG_PASS_MAX 1024
/* Asks src (NULL or without get: TG_E_PASSWORD, none was given). */
int tg_pass_get(const tg_passsrc *src, char *buf, size_t bufsize, size_t *len, tg_err *err);

/* A moment as typed (time.c): Unix seconds ("1767225600", "-1"), an RFC 3339 date-time
 * ("2026-01-01T00:00:00Z", "2026-01-01T01:00:00+01:00"; fractions dropped) or a date
 * alone ("2026-01-01": its first second, UTC). 0, or -1 when s is none of these. */
int tg_time_parse(const char *s, long long *out);

/* Text helpers. */
char *tg_strdup(const char *s);
/* Formats t as "YYYY-MM-DD HH:MM:SS GMT" into buf (at least 32 bytes). */
void tg_time_fmt(time_t t, char *buf, size_t bufsize);
/* Formats t as RFC 3339 UTC, "YYYY-MM-DDTHH:MM:SSZ", into buf (at least 32 bytes): the
 * form of every timestamp in a JSON document (docs/json.md). */
void tg_time_rfc3339(time_t t, char *buf, size_t bufsize);
/* Milliseconds on CLOCK_MONOTONIC: what every deadline and interval is measured with. */
long long tg_now_ms(void);
void tg_hex(const unsigned char *in, size_t len, char *out /* 2*len+1 */);
/* Room for element n of the array *vp points to (a T**, *cap elements of size bytes
 * allocated): nothing when there is, else the allocation doubled (first when empty).
 * 0, or -1 out of memory (the array unchanged). The one growth loop of the house. */
int tg_grow(void *vp, size_t *cap, size_t n, size_t size, size_t first);

/* Printable text: shortest-form UTF-8 of Unicode scalar values without C0/C1 controls,
 * DEL, bidi overrides and isolates (U+202A-202E, U+2066-2069) or invisible characters
 * (U+200B-200F, U+2060, U+FEFF). tg_text_check: 0, TG_TEXT_NOT_UTF8 or TG_TEXT_FORBIDDEN;
 * *at (if non-NULL) gets the offending byte offset, *cp the forbidden code point. */
enum { TG_TEXT_NOT_UTF8 = 1, TG_TEXT_FORBIDDEN = 2 };
int tg_text_check(const char *s, size_t *at, uint32_t *cp);
/* A printable copy of s in out (at most max bytes plus NUL; outsize > max): bytes that
 * are not UTF-8 and controls become U+FFFD, invisible characters are dropped, and the
 * text is cut on a character boundary. Returns out. */
char *tg_text_clean(const char *s, char *out, size_t outsize, size_t max);
/* The length of the longest prefix of the first n bytes of s that ends on a UTF-8
 * character boundary and is at most max bytes long. */
size_t tg_utf8_cut(const char *s, size_t n, size_t max);
/* The length of the UTF-8 character at s (*cp its code point), or 0 when the bytes there
 * are not the shortest form of a scalar value. */
size_t tg_utf8_next(const char *s, uint32_t *cp);

/* The daemon's log (log.c; README, "Logs and metrics"): one line per event with a level,
 * to syslog (SOCK_DGRAM to /dev/log or another socket, facility daemon; the journal reads
 * it too) and/or standard error. A line is at most TG_LOG_LINE_MAX bytes of message,
 * controls shown as '?'; at most TG_LOG_BURST lines go out per TG_LOG_WINDOW_SECS, the rest
 * are counted and reported by one "N messages suppressed" line. Nothing here blocks on a
 * slow syslog reader: a datagram that cannot be queued at once is counted as suppressed.
 * Before tg_log_open: standard error only, prefix "tlsgate". Thread-safe. */
#define TG_LOG_LINE_MAX    640
#define TG_LOG_BURST       100
#define TG_LOG_WINDOW_SECS 10
#define TG_LOG_SOCKET      "/dev/log"
typedef enum { TG_LOG_ERROR = 3, TG_LOG_WARNING = 4, TG_LOG_INFO = 6 } tg_log_level; /* syslog's */
enum { TG_LOG_TO_STDERR = 1u, TG_LOG_TO_SYSLOG = 2u };
typedef struct tg_log_opts {
    unsigned sinks;     /* TG_LOG_TO_*; 0: tg_log_default_sinks() */
    int quiet;          /* info lines are dropped (warnings and errors stay) */
    const char *prefix; /* standard error lines start "PREFIX: " ("tlsgate serve") */
    const char *ident;  /* syslog's tag ("tlsgate") */
    const char *socket; /* the syslog socket; NULL: TG_LOG_SOCKET */
} tg_log_opts;
/* Both sinks, except when standard error is the journal already ($JOURNAL_STREAM names
 * it, as systemd sets it for a service): then syslog only, so no line is logged twice. */
unsigned tg_log_default_sinks(void);
/* "stderr", "syslog" or "both": 0, or TG_E_USAGE naming the field "log". */
int tg_log_sinks_parse(const char *s, unsigned *out, tg_err *err);
/* (Re)configures the log; a syslog socket that is missing now is tried again per line. */
void tg_log_open(const tg_log_opts *o);
void tg_log_close(void); /* reports what was suppressed; back to the state before open */
void tg_log(tg_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void tg_logv(tg_log_level level, const char *fmt, va_list ap);
/* From a timer: reports a finished window's suppressed lines without waiting for a line. */
void tg_log_tick(void);

#endif
