/*
 * print.c — the human forms of the keyring's documents: tables and detail views.
 * Column widths are fitted to the content, with long cells cut at a fixed width; the
 * certificates tables are fitted to the terminal instead (their names never cut).
 */
#include "cli_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define CELL_MAX 48

/* Display width of a UTF-8 string (code points; good enough for names and CNs). */
static size_t width(const char *s)
{
    size_t w = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xc0) != 0x80) w++;
    return w;
}

/* A copy of s cut at a code point boundary to w columns (w >= 1), the cut marked with an
 * ellipsis. */
static char *cut(const char *s, size_t w)
{
    if (width(s) <= w) return tg_strdup(s);
    size_t cps = 0, i = 0;
    for (; s[i] && cps + 1 < w; i++)
        if (((unsigned char)s[i + 1] & 0xc0) != 0x80) cps++;
    char *t = malloc(i + sizeof("…"));
    if (t != NULL) snprintf(t, i + sizeof("…"), "%.*s…", (int)i, s);
    return t;
}

static void cell(const char *s, size_t w, int last)
{
    size_t n = width(s);
    char *t = n > w ? cut(s, w) : NULL;
    fputs(t ? t : s, stdout);
    free(t);
    if (n > w) n = w;
    if (!last) printf("%*s", (int)(w - n + 2), "");
}

/* One list item as text: a string, or a SAN {"type", "value"} shown as "TYPE:value"
 * (for display only: never parsed back). *b is NULL for a string. */
static void item_text(json_t *v, const char **a, const char **b)
{
    *a = json_string_value(json_is_object(v) ? json_object_get(v, "type") : v);
    *b = json_is_object(v) ? json_string_value(json_object_get(v, "value")) : NULL;
    if (*a == NULL) *a = "?";
}

static char *append(char *p, const char *s)
{
    size_t n = strlen(s);
    memcpy(p, s, n);
    return p + n;
}

/* The items joined with sep: sized first, then copied once (linear in the output). */
static char *joined(json_t *arr, const char *sep)
{
    size_t total = 1, i;
    json_t *v;
    const char *a, *b;
    json_array_foreach(arr, i, v)
    {
        item_text(v, &a, &b);
        total += strlen(a) + (b ? 1 + strlen(b) : 0) + strlen(sep);
    }
    char *s = malloc(total), *p = s;
    if (s == NULL) return NULL;
    json_array_foreach(arr, i, v)
    {
        if (i > 0) p = append(p, sep);
        item_text(v, &a, &b);
        p = append(p, a);
        if (b != NULL) p = append(append(p, ":"), b);
    }
    *p = '\0';
    return s;
}

typedef struct column {
    const char *title, *key;
    int kind; /* 0 string, 1 bool Yes/No, 2 list, 3 default marker, 4 number, 5 bool No/Yes,
               * 6 time (from key's *_unix twin), 7 optional text (blank when null),
               * 8 port ranges, 9 expiry date and days left, 10 status word, 11 first
               * alternative name and the count of the others */
    int min;  /* fitted tables: the narrowest a cut may leave it (0: never cut) */
    int want; /* fitted tables: the narrowest before a droppable column goes */
    int drop; /* fitted tables: left out, highest first, when the line is too long */
} column;

/* Port ranges [[first, last], …] as the option writes them: "443-444,8443". */
static char *ports_text(json_t *ranges)
{
    size_t n = json_array_size(ranges), i;
    size_t size = n * 44 + 1; /* ",LO-HI" with 20 digits each at most */
    char *s = malloc(size), *p = s;
    json_t *r;
    if (s == NULL) return NULL;
    *p = '\0';
    json_array_foreach(ranges, i, r)
    {
        long long lo = (long long)json_integer_value(json_array_get(r, 0)),
                  hi = (long long)json_integer_value(json_array_get(r, 1));
        p += lo == hi ? snprintf(p, size - (size_t)(p - s), "%s%lld", i ? "," : "", lo)
                      : snprintf(p, size - (size_t)(p - s), "%s%lld-%lld", i ? "," : "", lo, hi);
    }
    return s;
}

char *cli_time_text(json_t *doc, const char *key)
{
    char k[64], buf[40];
    snprintf(k, sizeof(k), "%s_unix", key);
    json_t *v = json_object_get(doc, k);
    if (!json_is_integer(v)) return tg_strdup("-");
    tg_time_fmt((time_t)json_integer_value(v), buf, sizeof(buf));
    return tg_strdup(buf);
}

static long long num(json_t *doc, const char *key)
{
    return (long long)json_integer_value(json_object_get(doc, key));
}

/* Expiry as "YYYY-MM-DD (30d)", or "YYYY-MM-DD (expired)" (days_left as the keyring
 * rounds it: 0 or less once expired). */
static char *expires_text(json_t *row)
{
    char *t = cli_time_text(row, "not_after"), buf[64];
    long long days = num(row, "days_left");
    if (t == NULL) return NULL;
    if (days > 0)
        snprintf(buf, sizeof(buf), "%.10s (%lldd)", t, days);
    else
        snprintf(buf, sizeof(buf), "%.10s (expired)", t);
    free(t);
    return tg_strdup(buf);
}

/* The validity in one word (NULL: valid and more than 30 days left, K9's warning). */
static const char *validity_word(json_t *row)
{
    long long days = num(row, "days_left");
    if (days <= 0) return "expired";
    if (num(row, "not_before_unix") > (long long)time(NULL)) return "not-yet-valid";
    return days <= 30 ? "expiring" : NULL;
}

/* The warnings in a word: the validity's (whose warning comes first in the list), "ok",
 * the one other warning, or how many there are; "expiring +2": two more. */
static char *status_text(json_t *row)
{
    json_t *w = json_object_get(row, "warnings");
    const char *state = validity_word(row);
    size_t n = json_array_size(w), others = n - (state && n > 0 ? 1 : 0);
    char buf[96];
    if (state != NULL && others > 0)
        snprintf(buf, sizeof(buf), "%s +%zu", state, others);
    else if (state != NULL)
        snprintf(buf, sizeof(buf), "%s", state);
    else if (others == 1 && json_is_string(json_array_get(w, 0)))
        snprintf(buf, sizeof(buf), "%s", json_string_value(json_array_get(w, 0)));
    else if (others > 1)
        snprintf(buf, sizeof(buf), "%zu warnings", others);
    else
        snprintf(buf, sizeof(buf), "ok");
    return tg_strdup(buf);
}

/* The first alternative name's value and how many more: "www.example.com +3"; with w > 0
 * the value is cut so that the whole fits in w columns and the count stays. */
static char *san_text(json_t *sans, size_t w)
{
    size_t n = json_array_size(sans);
    if (n == 0) return tg_strdup("-");
    const char *first = json_string_value(json_object_get(json_array_get(sans, 0), "value"));
    char more[32] = "";
    if (n > 1) snprintf(more, sizeof(more), " +%zu", n - 1);
    size_t room = w > strlen(more) ? w - strlen(more) : 0;
    char *v = w == 0 || room < 2 ? tg_strdup(first ? first : "?") : cut(first ? first : "?", room);
    if (v == NULL) return NULL;
    char *t = malloc(strlen(v) + strlen(more) + 1);
    if (t != NULL) sprintf(t, "%s%s", v, more);
    free(v);
    return t;
}

static char *cell_text(json_t *row, const column *col)
{
    json_t *v = json_object_get(row, col->key);
    switch (col->kind) {
    case 1:
        return tg_strdup(json_is_true(v) ? "Yes" : "No");
    case 5:
        return tg_strdup(json_is_true(v) ? "No" : "Yes");
    case 2:
        return json_array_size(v) ? joined(v, ", ") : tg_strdup("-");
    case 3:
        return tg_strdup(json_is_true(v) ? "*" : "");
    case 6:
        return cli_time_text(row, col->key);
    case 7:
        return tg_strdup(json_is_string(v) ? json_string_value(v) : "");
    case 8:
        return ports_text(v);
    case 9:
        return expires_text(row);
    case 10:
        return status_text(row);
    case 11:
        return san_text(v, 0);
    case 4: {
        char buf[32];
        snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(v));
        return tg_strdup(buf);
    }
    default:
        return tg_strdup(json_is_string(v) ? json_string_value(v) : "-");
    }
}

static void table(json_t *rows, const column *cols, size_t ncols, const char *empty)
{
    size_t nrows = json_array_size(rows);
    if (nrows == 0) {
        printf("%s\n", empty);
        return;
    }
    size_t w[16] = {0};
    char **cells = calloc(nrows * ncols, sizeof(*cells));
    if (cells == NULL) return;
    for (size_t c = 0; c < ncols; c++)
        w[c] = width(cols[c].title);
    for (size_t r = 0; r < nrows; r++)
        for (size_t c = 0; c < ncols; c++) {
            char *t = cell_text(json_array_get(rows, r), &cols[c]);
            cells[r * ncols + c] = t ? t : tg_strdup("");
            size_t n = width(cells[r * ncols + c]);
            if (n > w[c]) w[c] = n > CELL_MAX ? CELL_MAX : n;
        }
    for (size_t c = 0; c < ncols; c++)
        cell(cols[c].title, w[c], c + 1 == ncols);
    putchar('\n');
    for (size_t r = 0; r < nrows; r++) {
        for (size_t c = 0; c < ncols; c++) {
            cell(cells[r * ncols + c] ? cells[r * ncols + c] : "", w[c], c + 1 == ncols);
            free(cells[r * ncols + c]);
        }
        putchar('\n');
    }
    free(cells);
}

/* The width to fit: the terminal's when standard output is one, else $COLUMNS, else 80. */
static size_t term_width(void)
{
    struct winsize ws;
    if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        return ws.ws_col;
    const char *e = getenv("COLUMNS");
    char *end;
    long n = e ? strtol(e, &end, 10) : 0;
    return e && *e && *end == '\0' && n > 0 && n <= 10000 ? (size_t)n : 80;
}

/* The widths of the columns that are on (w, from their natural widths nat) with the widest
 * cuttable one giving up a column at a time, down to its want (floor_min: its min), until
 * the line fits; returns the line's length. */
static size_t shrink(const column *cols, size_t ncols, const int *on, const size_t *nat, size_t *w,
                     size_t fit, int floor_min)
{
    size_t line = 0, shown = 0, c;
    for (c = 0; c < ncols; c++) {
        w[c] = nat[c];
        if (on[c]) line += w[c], shown++;
    }
    line += shown > 1 ? 2 * (shown - 1) : 0;
    while (line > fit) {
        size_t best = ncols;
        for (c = 0; c < ncols; c++) {
            size_t floor =
                (size_t)(floor_min || cols[c].want < cols[c].min ? cols[c].min : cols[c].want);
            if (on[c] && cols[c].min > 0 && w[c] > floor && (best == ncols || w[c] > w[best]))
                best = c;
        }
        if (best == ncols) break;
        w[best]--, line--;
    }
    return line;
}

/* The shown column with the highest drop (ncols: none can go). */
static size_t droppable(const column *cols, size_t ncols, const int *on)
{
    size_t drop = ncols;
    for (size_t c = 0; c < ncols; c++)
        if (on[c] && cols[c].drop > 0 && (drop == ncols || cols[c].drop > cols[drop].drop))
            drop = c;
    return drop;
}

/* A table fitted to width (0: every column in full): the cuttable columns are cut down to
 * what they want; when that is not enough, the droppable columns go (highest drop first);
 * when that is not enough either, the cuttable ones are cut down to their min. A column that is
 * never cut (the name) can still make the line longer than width. */
static void fit_table(json_t *rows, const column *cols, size_t ncols, size_t fit)
{
    size_t nrows = json_array_size(rows), nat[16] = {0}, w[16], c, r;
    int on[16];
    char **cells = calloc(nrows * ncols + 1, sizeof(*cells));
    if (cells == NULL || ncols > 16) {
        free(cells);
        return;
    }
    for (c = 0; c < ncols; c++) {
        nat[c] = width(cols[c].title);
        on[c] = 1;
    }
    for (r = 0; r < nrows; r++)
        for (c = 0; c < ncols; c++) {
            char *t = cell_text(json_array_get(rows, r), &cols[c]);
            cells[r * ncols + c] = t ? t : tg_strdup("");
            size_t n = cells[r * ncols + c] ? width(cells[r * ncols + c]) : 0;
            if (n > nat[c]) nat[c] = n;
        }
    if (fit == 0)
        memcpy(w, nat, sizeof(w));
    else {
        /* the droppable columns give way while the cut ones are at their want; when that
         * is not enough, those are cut down to their min */
        size_t drop;
        while (shrink(cols, ncols, on, nat, w, fit, 0) > fit &&
               (drop = droppable(cols, ncols, on)) < ncols)
            on[drop] = 0;
        if (shrink(cols, ncols, on, nat, w, fit, 0) > fit) shrink(cols, ncols, on, nat, w, fit, 1);
    }
    size_t last = 0;
    for (c = 0; c < ncols; c++)
        if (on[c]) last = c;
    for (c = 0; c < ncols; c++)
        if (on[c]) cell(cols[c].title, w[c], c == last);
    putchar('\n');
    for (r = 0; r < nrows; r++) {
        char **row = &cells[r * ncols];
        last = 0; /* the row's last cell with text: no blanks at the end of a line */
        for (c = 0; c < ncols; c++)
            if (on[c] && row[c] && row[c][0]) last = c;
        for (c = 0; c < ncols; c++) {
            char *s = NULL;
            if (on[c] && cols[c].kind == 11 && row[c] && width(row[c]) > w[c])
                s = san_text(json_object_get(json_array_get(rows, r), cols[c].key), w[c]);
            if (on[c] && c <= last) cell(s ? s : row[c] ? row[c] : "", w[c], c == last);
            free(s);
            free(row[c]);
        }
        putchar('\n');
    }
    free(cells);
}

/* After the table: how many, of how many the filter saw, and how many need attention. */
static void list_total(json_t *rows, const cli_listview *v)
{
    const char *noun = v->ca ? "CA certificate" : "certificate";
    size_t n = json_array_size(rows), expiring = 0, expired = 0, i;
    char within[64] = "";
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        long long d = num(row, "days_left");
        if (d <= 0)
            expired++;
        else if (d <= 30)
            expiring++;
    }
    if (v->expiring >= 0)
        snprintf(within, sizeof(within), " expiring within %d day%s", v->expiring,
                 v->expiring == 1 ? "" : "s");
    if (n == 0 && v->filter == NULL)
        printf("No %ss%s.%s\n", noun, within,
               v->ca || v->expiring >= 0 ? "" : " (CA certificates: tlsgate ca list)");
    else if (n == 0)
        printf("No %ss%s match '%s' (%zu in all).\n", noun, within, v->filter, v->total);
    else {
        if (v->filter != NULL)
            printf("%zu of %zu %s%s%s match%s '%s'", n, v->total, noun, v->total == 1 ? "" : "s",
                   within, n == 1 ? "es" : "", v->filter);
        else
            printf("%zu %s%s%s", n, noun, n == 1 ? "" : "s", within);
        printf(" (%zu expiring within 30 days, %zu expired)\n", expiring, expired);
    }
}

void print_cert_list(json_t *rows, const cli_listview *v)
{
    /* --wide: every fact of the row, uncut */
    static const column wide[] = {
        {"Friendly Name", "name", 0},
        {"Type", "type", 0},
        {"Issued To", "issued_to", 0},
        {"Issued By", "issued_by", 0},
        {"Expiration", "not_after", 6},
        {"Days Left", "days_left", 4},
        {"Alternative Name(s)", "alternative_names", 2},
        {"Private Key?", "private_key", 1},
        {"Signing", "signing", 1},
        {"Default", "default", 3},
        {"Warnings", "warnings", 2},
    };
    static const column certs[] = {
        {"Name", "name", 0, 0, 0},
        {"Type", "type", 0, 0, 0},
        {"Expires", "not_after", 9, 0, 0},
        {"Status", "warnings", 10, 6, 11, 0},
        {"Alt names", "alternative_names", 11, 10, 24, 0},
        {"Key", "private_key", 1, 0, 0, 1},
        {"Def", "default", 3, 0, 0, 2},
    };
    static const column cas[] = {
        {"Name", "name", 0, 0, 0},
        {"Type", "type", 0, 0, 0},
        {"Subject", "issued_to", 0, 10, 20, 0},
        {"Expires", "not_after", 9, 0, 0},
        {"Key", "private_key", 1, 0, 1},
        {"Signing", "signing", 1, 0, 2},
    };
    if (json_array_size(rows) > 0) {
        if (v->wide)
            fit_table(rows, wide, sizeof(wide) / sizeof(wide[0]), 0);
        else if (v->ca)
            fit_table(rows, cas, sizeof(cas) / sizeof(cas[0]), term_width());
        else
            fit_table(rows, certs, sizeof(certs) / sizeof(certs[0]), term_width());
    }
    list_total(rows, v);
}

void print_request_table(json_t *rows)
{
    static const column cols[] = {
        {"Name", "name", 0},       {"Status", "status", 0},
        {"Subject", "subject", 0}, {"Alternative Name(s)", "alternative_names", 2},
        {"Key", "key", 0},         {"Certificate", "certificate", 0},
    };
    table(rows, cols, sizeof(cols) / sizeof(cols[0]), "No certificate requests.");
}

static void field(json_t *doc, const char *label, const char *key)
{
    json_t *v = json_object_get(doc, key);
    printf("%-22s ", label);
    if (json_is_string(v))
        printf("%s\n", json_string_value(v));
    else if (json_is_boolean(v))
        printf("%s\n", json_is_true(v) ? "yes" : "no");
    else if (json_is_array(v)) {
        char *s = json_array_size(v) ? joined(v, ", ") : NULL;
        printf("%s\n", s ? s : "-");
        free(s);
    } else
        printf("-\n");
}

static void time_field(json_t *doc, const char *label, const char *key)
{
    char *t = cli_time_text(doc, key);
    printf("%-22s %s\n", label, t ? t : "-");
    free(t);
}

void print_cert_doc(json_t *doc)
{
    int has_key = json_is_true(json_object_get(doc, "private_key"));
    field(doc, "Friendly name:", "name");
    field(doc, "Type:", "type");
    field(doc, "Subject:", "subject");
    field(doc, "Issuer:", "issuer");
    field(doc, "Serial:", "serial");
    time_field(doc, "Valid from:", "not_before");
    time_field(doc, "Valid until:", "not_after");
    field(doc, "Alternative names:", "alternative_names");
    field(doc, "Key:", "key");
    field(doc, "Signature:", "signature_algorithm");
    field(doc, "SHA-256 fingerprint:", "sha256");
    printf("%-22s %s\n",
           "Private key:", has_key ? "private key held in the store" : "no private key");
    if (has_key)
        field(doc, "Exportable:", "exportable");
    else
        printf("%-22s -\n", "Exportable:");
    field(doc, "Signing:", "signing");
    field(doc, "Default:", "default");
    field(doc, "Used by:", "used_by");
    field(doc, "Request:", "request");
    field(doc, "Predecessor:", "predecessor");
    field(doc, "Successor:", "successor");
    field(doc, "Warnings:", "warnings");
    field(doc, "Chain status:", "chain_status");
    json_t *chain = json_object_get(doc, "chain");
    size_t i;
    json_t *v;
    json_array_foreach(chain, i, v)
    {
        char *expires = cli_time_text(v, "not_after");
        printf("  %zu %-13s %s (expires %s)\n", i, json_string_value(json_object_get(v, "type")),
               json_string_value(json_object_get(v, "subject")), expires ? expires : "-");
        free(expires);
    }
}

void print_ts_table(json_t *rows)
{
    static const column cols[] = {
        {"Name", "name", 0},
        {"Description", "description", 7},
        {"CA certificates", "ca_count", 4},
        {"Default CA package", "include_defaults", 1},
    };
    table(rows, cols, sizeof(cols) / sizeof(cols[0]), "No trust stores.");
}

/* Optional text (null when there is none) printed blank. */
static void text_field(json_t *doc, const char *label, const char *key)
{
    json_t *v = json_object_get(doc, key);
    printf("%-22s %s\n", label, json_is_string(v) ? json_string_value(v) : "");
}

void print_ts_doc(json_t *doc)
{
    field(doc, "Trust store:", "name");
    text_field(doc, "Description:", "description");
    time_field(doc, "Created:", "created");
    static const column cols[] = {
        {"Entry", "name", 0},
        {"Subject", "subject", 0},
        {"Expiration", "not_after", 6},
    };
    putchar('\n');
    /* the default package is a count in the document; the table shows it as one entry */
    json_t *rows = json_copy(json_object_get(doc, "entries"));
    if (rows != NULL && json_is_true(json_object_get(doc, "include_defaults"))) {
        char entry[96];
        snprintf(entry, sizeof(entry), "Default CA package (%lld certificates)",
                 (long long)json_integer_value(json_object_get(doc, "default_ca_count")));
        json_array_append_new(
            rows, json_pack("{s:s, s:s}", "name", entry, "subject", "the system's public roots"));
    }
    table(rows, cols, sizeof(cols) / sizeof(cols[0]),
          "No CA certificates yet (tlsgate truststore add NAME CA…).");
    json_decref(rows);
}

void print_proxy_table(json_t *rows)
{
    static const column cols[] = {
        {"Name", "name", 0},   {"Mode", "mode", 0},       {"Listen", "listen", 0},
        {"Ports", "ports", 8}, {"Signing", "signing", 0}, {"Trust store", "truststore", 0},
    };
    table(rows, cols, sizeof(cols) / sizeof(cols[0]),
          "No client proxies (tlsgate proxy client create NAME …).");
}

static void entries(json_t *doc, const char *title, const char *key);

/* How many certificates of a server proxy's document have a key in each state. */
static void key_counts(json_t *doc, size_t counts[3])
{
    static const char *const states[] = {"ok", "missing", "broken"};
    json_t *c;
    size_t i;
    counts[0] = counts[1] = counts[2] = 0;
    json_array_foreach(json_object_get(doc, "certificates"), i, c)
    {
        const char *k = json_string_value(json_object_get(c, "key"));
        for (size_t s = 0; k != NULL && s < 3; s++)
            if (strcmp(k, states[s]) == 0) counts[s]++;
    }
}

void print_srvproxy_table(json_t *rows)
{
    static const column cols[] = {
        {"Name", "name", 0},
        {"Mode", "mode", 0},
        {"Destinations", "dest", 2},
        {"Ports", "ports", 8},
        {"Certs", "certs", 0},
        {"Keys", "keys", 0},
        {"Trust store", "truststore", 0},
    };
    json_t *row;
    size_t i;
    json_array_foreach(rows, i, row)
    {
        size_t k[3];
        char certs[24], keys[64];
        key_counts(row, k);
        snprintf(certs, sizeof(certs), "%zu",
                 json_array_size(json_object_get(row, "certificates")));
        if (k[1] == 0 && k[2] == 0)
            snprintf(keys, sizeof(keys), "ok");
        else
            snprintf(keys, sizeof(keys), "%zu missing, %zu broken", k[1], k[2]);
        json_object_set_new(row, "certs", json_string(certs));
        json_object_set_new(row, "keys", json_string(keys));
        if (!json_is_string(json_object_get(row, "truststore")))
            json_object_set_new(row, "truststore", json_string("(not verified)"));
        if (json_array_size(json_object_get(row, "dest")) == 0)
            json_object_set(row, "dest", json_object_get(row, "upstream"));
    }
    table(rows, cols, sizeof(cols) / sizeof(cols[0]),
          "No server proxies (tlsgate proxy server create NAME …).");
}

/* What both kinds of proxy say about their ports and TLS. */
static void tls_fields(json_t *doc)
{
    char *ports = ports_text(json_object_get(doc, "ports"));
    printf("%-22s %s\n", "Ports:", ports ? ports : "-");
    free(ports);
    field(doc, "Service:", "service");
    field(doc, "TLS versions:", "protocols");
    json_t *ciphers = json_object_get(doc, "ciphers");
    printf("%-22s %s\n", "TLS 1.2 ciphers:",
           json_is_string(ciphers) ? json_string_value(ciphers) : "library defaults");
}

void print_srvproxy_doc(json_t *doc)
{
    field(doc, "Server proxy:", "name");
    text_field(doc, "Description:", "description");
    field(doc, "Mode:", "mode");
    json_t *ts = json_object_get(doc, "truststore");
    printf("%-22s %s\n",
           "Verify servers:", json_is_string(ts) ? json_string_value(ts) : "no (no trust store)");
    if (json_is_string(json_object_get(doc, "listen"))) {
        field(doc, "Listen:", "listen");
        field(doc, "Upstream:", "upstream");
    }
    tls_fields(doc);
    field(doc, "HTTP/2 downgrade:", "http2_downgrade");
    field(doc, "TCP reset:", "tcp_reset");
    field(doc, "Log:", "log");
    time_field(doc, "Created:", "created");
    time_field(doc, "Updated:", "updated");
    if (json_array_size(json_object_get(doc, "dest")) > 0 ||
        !json_is_string(json_object_get(doc, "listen")))
        entries(doc, "Destinations", "dest");
    entries(doc, "Source exceptions", "source_except");
    json_t *certs = json_object_get(doc, "certificates"), *c;
    size_t i, k[3];
    key_counts(doc, k);
    printf("Certificates (%zu; keys: %zu ok, %zu missing, %zu broken):\n", json_array_size(certs),
           k[0], k[1], k[2]);
    json_array_foreach(certs, i, c)
    {
        char *sans = san_text(json_object_get(c, "sans"), 0);
        const char *key = json_string_value(json_object_get(c, "key"));
        json_t *cn = json_object_get(c, "cn");
        printf("  %s  [key %s]  %s%s%s\n", json_string_value(json_object_get(c, "name")),
               key ? key : "?", json_is_string(cn) ? json_string_value(cn) : "",
               json_is_string(cn) && sans && *sans ? "; " : "", sans ? sans : "");
        free(sans);
    }
    if (k[1] + k[2] > 0)
        printf("A certificate whose key is missing or broken is not served: import its key "
               "alone (tlsgate cert import KEYFILE) to repair it.\n");
}

void print_proxy_stats(json_t *doc)
{
    static const column cols[] = {
        {"Name", "name", 0},
        {"Active", "active", 4},
        {"Conns", "connections", 4},
        {"Decrypted", "decrypted", 4},
        {"Not decr.", "not_decrypted", 4},
        {"Bypassed", "bypassed", 4},
        {"Blocked", "blocked", 4},
        {"Hits", "cache_hits", 4},
        {"Mints", "mints", 4},
        {"Mint us", "mint_us_avg", 4},
        {"Client fail", "client_failures", 4},
        {"Upstream fail", "upstream_failures", 4},
    };
    printf("Counters written by serve (pid %lld) at %s\n",
           (long long)json_integer_value(json_object_get(doc, "pid")),
           json_string_value(json_object_get(doc, "written")));
    table(json_object_get(doc, "proxies"), cols, sizeof(cols) / sizeof(cols[0]),
          "No client proxy has run yet.");
    json_t *srv = json_object_get(doc, "serve");
    printf("serve: %lld of %lld connections in use; %lld refused and %lld evicted at the cap\n",
           (long long)json_integer_value(json_object_get(srv, "connections")),
           (long long)json_integer_value(json_object_get(srv, "cap")),
           (long long)json_integer_value(json_object_get(srv, "refused")),
           (long long)json_integer_value(json_object_get(srv, "evicted")));
}

/* A number, or what 0 means for it. */
static void count_field(json_t *doc, const char *label, const char *key, const char *zero)
{
    long long n = (long long)json_integer_value(json_object_get(doc, key));
    if (n == 0)
        printf("%-22s %s\n", label, zero);
    else
        printf("%-22s %lld\n", label, n);
}

void print_proxy_doc(json_t *doc)
{
    field(doc, "Client proxy:", "name");
    text_field(doc, "Description:", "description");
    field(doc, "Signing certificate:", "signing");
    field(doc, "Trust store:", "truststore");
    field(doc, "Listen:", "listen");
    field(doc, "Mode:", "mode");
    tls_fields(doc);
    count_field(doc, "Minimum key bits:", "min_key_bits", "no minimum");
    field(doc, "Block invalid:", "block_invalid");
    field(doc, "Block expired:", "block_expired");
    field(doc, "HTTP/2 downgrade:", "http2_downgrade");
    count_field(doc, "Connection limit:", "max_conns", "none");
    field(doc, "Over the limit:", "over_max");
    field(doc, "TCP reset:", "tcp_reset");
    field(doc, "Log:", "log");
    json_t *policy = json_object_get(doc, "policy");
    printf("%-22s %s\n",
           "Decryption policy:", json_is_string(policy) ? json_string_value(policy) : "none");
    field(doc, "No SNI:", "no_sni");
    field(doc, "ECH:", "ech");
    field(doc, "Not TLS:", "non_tls");
    count_field(doc, "Fail open (s):", "fail_open_secs", "off");
    field(doc, "TLS key log:", "keylog");
    time_field(doc, "Created:", "created");
    time_field(doc, "Updated:", "updated");
}

void print_policy_table(json_t *rows)
{
    static const column cols[] = {
        {"Name", "name", 0},
        {"Description", "description", 7},
        {"Default list", "no_defaults", 5},
        {"Domains", "never_domain_count", 4},
        {"Categories", "never_category_count", 4},
        {"Never src", "never_source_count", 4},
        {"Always src", "always_source_count", 4},
        {"Used by", "used_by", 2},
    };
    table(rows, cols, sizeof(cols) / sizeof(cols[0]),
          "No policies (tlsgate policy create NAME …).");
}

/* A list one entry a line under its title, with its count. */
static void entries(json_t *doc, const char *title, const char *key)
{
    json_t *list = json_object_get(doc, key), *v;
    size_t i;
    printf("%s (%zu)%s\n", title, json_array_size(list), json_array_size(list) ? ":" : "");
    json_array_foreach(list, i, v) printf("  %s\n", json_string_value(v));
}

void print_policy_doc(json_t *doc)
{
    field(doc, "Policy:", "name");
    text_field(doc, "Description:", "description");
    printf("%-22s %s\n", "Default list:",
           json_is_true(json_object_get(doc, "no_defaults"))
               ? "left out"
               : "included (tlsgate policy defaults show)");
    field(doc, "Used by:", "used_by");
    time_field(doc, "Created:", "created");
    time_field(doc, "Updated:", "updated");
    entries(doc, "Never-decrypt domains", "never_domains");
    entries(doc, "Never-decrypt categories", "never_categories");
    entries(doc, "Never-decrypt sources", "never_sources");
    entries(doc, "Always-decrypt sources", "always_sources");
}

void print_defaults_doc(json_t *doc)
{
    printf("Default never-decrypt list (%s):\n", json_string_value(json_object_get(doc, "source")));
    entries(doc, "Domains", "domains");
}

void print_category_import(json_t *doc)
{
    printf("Read %lld line(s): %lld mapping(s); the category map now holds %lld domain(s)%s\n",
           (long long)json_integer_value(json_object_get(doc, "lines")),
           (long long)json_integer_value(json_object_get(doc, "mappings")),
           (long long)json_integer_value(json_object_get(doc, "domain_count")),
           json_is_true(json_object_get(doc, "replaced")) ? " (replaced)" : "");
}

void print_category_table(json_t *rows)
{
    static const column cols[] = {
        {"Category", "category", 0},
        {"Domains", "domain_count", 4},
    };
    table(rows, cols, sizeof(cols) / sizeof(cols[0]),
          "The category map is empty (tlsgate category import FILE).");
}

void print_category_doc(json_t *doc)
{
    json_t *cat = json_object_get(doc, "category");
    if (json_is_string(cat))
        printf("%s: %s (from %s)\n", json_string_value(json_object_get(doc, "name")),
               json_string_value(cat), json_string_value(json_object_get(doc, "matched")));
    else
        printf("%s: no category\n", json_string_value(json_object_get(doc, "name")));
}

void print_request_doc(json_t *doc)
{
    field(doc, "Request:", "name");
    field(doc, "Status:", "status");
    field(doc, "Subject:", "subject");
    field(doc, "Alternative names:", "alternative_names");
    field(doc, "Key:", "key");
    field(doc, "Signing (CA):", "signing");
    time_field(doc, "Created:", "created");
    field(doc, "Certificate:", "certificate");
    json_t *pem = json_object_get(doc, "pem");
    if (json_is_string(pem)) printf("\n%s", json_string_value(pem));
}

void print_import(json_t *doc)
{
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(doc, "imported"), i, v)
    {
        const char *action = json_string_value(json_object_get(v, "action"));
        printf("%s: %s", json_string_value(json_object_get(v, "name")), action);
        int imported = strcmp(action, "imported") == 0;
        if (imported && json_is_true(json_object_get(v, "ca"))) printf(" (CA certificate)");
        if (imported)
            printf(", private key: %s",
                   json_is_true(json_object_get(v, "private_key")) ? "yes" : "no");
        json_t *req = json_object_get(v, "request");
        if (json_is_string(req)) printf(", completes request '%s'", json_string_value(req));
        json_t *pred = json_object_get(v, "predecessor");
        if (json_is_string(pred)) printf(", successor of '%s'", json_string_value(pred));
        if (json_is_true(json_object_get(v, "key_made_non_exportable")) &&
            strcmp(action, "private key made non-exportable") != 0) /* said already */
            printf(", private key now non-exportable");
        putchar('\n');
        size_t j;
        json_t *w;
        json_array_foreach(json_object_get(v, "warnings"), j, w)
            fprintf(stderr, "tlsgate: warning: %s: %s\n",
                    json_string_value(json_object_get(v, "name")), json_string_value(w));
    }
    json_array_foreach(json_object_get(doc, "skipped"), i, v)
        printf("%s: skipped, %s\n", json_string_value(json_object_get(v, "name")),
               json_string_value(json_object_get(v, "reason")));
    printf("%lld new, %lld already present\n",
           (long long)json_integer_value(json_object_get(doc, "new")),
           (long long)json_integer_value(json_object_get(doc, "already_present")));
}

/* ---- users, tokens, the audit log ---- */

void print_user_table(json_t *rows)
{
    static const column cols[] = {
        {"User", "name", 0},
        {"Role", "role", 0},
        {"Group", "group", 0},
        {"Enabled", "disabled", 5},
        {"Must change password", "must_change", 1},
        {"Tokens", "token_count", 4},
        {"Created", "created", 0},
    };
    table(rows, cols, sizeof(cols) / sizeof(cols[0]), "No users (tlsgate init creates the first).");
}

void print_user_doc(json_t *doc)
{
    field(doc, "User:", "name");
    field(doc, "Role:", "role");
    field(doc, "Group:", "group");
    field(doc, "Disabled:", "disabled");
    field(doc, "Must change password:", "must_change");
    printf("%-22s %lld\n",
           "Tokens:", (long long)json_integer_value(json_object_get(doc, "token_count")));
    field(doc, "Created:", "created");
    field(doc, "Changed:", "changed");
}

void print_group_doc(json_t *doc)
{
    json_t *denied = json_object_get(doc, "denied");
    field(doc, "Group:", "name");
    field(denied, "Denied proxies:", "proxies");
    field(denied, "Denied policies:", "policies");
    field(doc, "Users:", "users");
    field(doc, "Created:", "created");
}

void print_group_table(json_t *rows)
{
    if (json_array_size(rows) == 0) {
        printf("No groups.\n");
        return;
    }
    size_t i;
    json_t *doc;
    json_array_foreach(rows, i, doc)
    {
        if (i) printf("\n");
        print_group_doc(doc);
    }
}

void print_token_table(json_t *rows)
{
    static const column cols[] = {
        {"Id", "id", 4},           {"Label", "label", 0},
        {"Created", "created", 0}, {"Last used", "last_used", 0},
        {"Expires", "expires", 0}, {"Expired", "expired", 1},
    };
    table(rows, cols, sizeof(cols) / sizeof(cols[0]), "No tokens.");
}

void print_audit_table(json_t *rows)
{
    static const column cols[] = {
        {"Time", "time", 0},     {"Actor", "actor", 0},   {"Source", "source", 0},
        {"Action", "action", 0}, {"Object", "object", 0}, {"Outcome", "outcome", 0},
    };
    table(rows, cols, sizeof(cols) / sizeof(cols[0]), "No audit records.");
}

/* ---- config show ---- */

static const char *str_or(json_t *doc, const char *key, const char *none)
{
    const char *s = json_string_value(json_object_get(doc, key));
    return s ? s : none;
}

static void config_serve(json_t *srv)
{
    printf("\nserve\n");
    if (!json_is_true(json_object_get(srv, "running"))) {
        if (json_object_get(srv, "stale_pid"))
            printf("  serve is not running (its state file, written %s by pid %lld, was left "
                   "by a serve that did not stop cleanly)\n",
                   str_or(srv, "stale_written", "-"), num(srv, "stale_pid"));
        else
            printf("  serve is not running\n");
        return;
    }
    printf("  running                pid %lld, since %s, %lld thread%s\n", num(srv, "pid"),
           str_or(srv, "started", "-"), num(srv, "threads"), num(srv, "threads") == 1 ? "" : "s");
    json_t *l, *ls = json_object_get(srv, "listeners");
    size_t i;
    json_array_foreach(ls, i, l)
    {
        const char *kind = str_or(l, "kind", "?"), *name = str_or(l, "name", kind);
        char label[200];
        if (strcmp(kind, name) == 0 || strcmp(kind, "front") == 0)
            snprintf(label, sizeof(label), "%s", kind);
        else
            snprintf(label, sizeof(label), "%s %s", kind, name);
        printf("  %-22s %s\n", label, str_or(l, "address", "?"));
    }
    printf("  %-22s %s\n", "backend", str_or(srv, "backend", "none (built-in responder)"));
    printf("  %-22s every %lld s\n", "expiry check", num(srv, "check_every"));
}

void print_config(json_t *doc)
{
    printf("tlsgate %s, store %s\n\n", str_or(doc, "version", "?"), str_or(doc, "home", "?"));
    printf("Certificates\n");
    printf("  %-22s %s\n", "default certificate", str_or(doc, "default_certificate", "none"));
    printf("  %-22s %lld (CA certificates: %lld)\n", "certificates", num(doc, "certificates"),
           num(doc, "ca_certificates"));
    json_t *by = json_object_get(doc, "certificates_by_status"), *v, *row;
    const char *key;
    int first = 1;
    printf("  %-22s ", "by chain status");
    json_object_foreach(by, key, v)
    {
        printf("%s%s %lld", first ? "" : ", ", key, (long long)json_integer_value(v));
        first = 0;
    }
    printf("%s\n", first ? "-" : "");
    printf("  %-22s %s\n", "earliest expiry", str_or(doc, "earliest_expiry", "-"));
    long long lead = num(doc, "ca_rollover_lead_days");
    if (lead > 0)
        printf("  %-22s %lld days before a CA expires\n", "CA rollover", lead);
    else
        printf("  %-22s off\n", "CA rollover");
    json_t *ident = json_object_get(doc, "identity"), *eca = json_object_get(doc, "enrollment_ca");
    printf("\nIdentity\n");
    if (json_is_true(json_object_get(ident, "certificate")))
        printf("  %-22s '%s', valid until %s\n", "appliance-key", str_or(ident, "device_id", "?"),
               str_or(ident, "not_after", "?"));
    else
        printf("  %-22s none yet\n", "appliance-key");
    printf("  %-22s %s\n", "enrollment server", str_or(ident, "server", "none"));
    if (json_is_object(eca))
        printf("  %-22s %lld requests, approval %s, devices %lld days\n", "enrollment CA",
               num(eca, "requests"), str_or(eca, "approval", "?"), num(eca, "device_days"));
    size_t i;
    printf("\nTrust stores\n");
    json_t *ts = json_object_get(doc, "truststores");
    if (json_array_size(ts) == 0) printf("  none\n");
    json_array_foreach(ts, i, row) printf(
        "  %-22s %lld CA certificates%s\n", str_or(row, "name", "?"), num(row, "ca_count"),
        json_is_true(json_object_get(row, "include_defaults")) ? ", and the default package" : "");
    printf("\nClient proxies\n");
    json_t *px = json_object_get(doc, "client_proxies");
    if (json_array_size(px) == 0) printf("  none\n");
    json_array_foreach(px, i, row)
    {
        char *ports = ports_text(json_object_get(row, "ports"));
        printf("  %-22s %s on %s, ports %s, signing %s, trust store %s, policy %s\n",
               str_or(row, "name", "?"), str_or(row, "mode", "?"), str_or(row, "listen", "?"),
               ports ? ports : "?", str_or(row, "signing", "none"),
               str_or(row, "truststore", "none"), str_or(row, "policy", "none"));
        free(ports);
    }
    printf("\nServer proxies\n");
    px = json_object_get(doc, "server_proxies");
    if (json_array_size(px) == 0) printf("  none\n");
    json_array_foreach(px, i, row)
    {
        char *ports = ports_text(json_object_get(row, "ports"));
        char *dests = json_array_size(json_object_get(row, "dest"))
                          ? joined(json_object_get(row, "dest"), ", ")
                          : tg_strdup(str_or(row, "upstream", "?"));
        printf("  %-22s %s, %s, ports %s, %zu certificates, trust store %s\n",
               str_or(row, "name", "?"), str_or(row, "mode", "?"), dests ? dests : "?",
               ports ? ports : "?", json_array_size(json_object_get(row, "certificates")),
               str_or(row, "truststore", "none (not verified)"));
        free(ports);
        free(dests);
    }
    printf("\nPolicies\n");
    json_t *pol = json_object_get(doc, "policies");
    if (json_array_size(pol) == 0) printf("  none\n");
    json_array_foreach(pol, i, row)
    {
        char *used = joined(json_object_get(row, "used_by"), ", ");
        printf("  %-22s never: %lld domains, %lld categories, %lld sources; always: %lld "
               "sources%s; used by %s\n",
               str_or(row, "name", "?"), num(row, "never_domain_count"),
               num(row, "never_category_count"), num(row, "never_source_count"),
               num(row, "always_source_count"),
               json_is_true(json_object_get(row, "no_defaults")) ? "; without the default list"
                                                                 : "",
               used && used[0] ? used : "none");
        free(used);
    }
    printf("\nUsers\n");
    json_t *us = json_object_get(doc, "users");
    if (json_array_size(us) == 0) printf("  none\n");
    json_array_foreach(us, i, row)
        printf("  %-22s %s%s\n", str_or(row, "name", "?"), str_or(row, "role", "?"),
               json_is_true(json_object_get(row, "disabled")) ? " (disabled)" : "");
    config_serve(json_object_get(doc, "serve"));
}

/* ca rollover-plan: one line per CA within 80 columns; the dates as days (the JSON has the
 * instants). */
void print_rollover_plan(json_t *rows)
{
    if (json_array_size(rows) == 0) {
        printf("No CA certificates.\n");
        return;
    }
    printf("%-24s  %-10s  %5s  %-4s  %-9s  %s\n", "Name", "Expires", "Days", "Warn", "Rollover",
           "Due / copy");
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r)
    {
        char exp[40] = "-", due[40] = "", warn[8] = "-";
        json_t *na = json_object_get(r, "not_after"), *d = json_object_get(r, "rollover_due");
        if (json_is_string(na)) snprintf(exp, sizeof(exp), "%.10s", json_string_value(na));
        if (json_is_true(json_object_get(r, "expired")))
            snprintf(warn, sizeof(warn), "exp");
        else if (num(r, "warning") > 0)
            snprintf(warn, sizeof(warn), "%lld", num(r, "warning"));
        const char *succ = json_string_value(json_object_get(r, "successor"));
        if (succ != NULL)
            snprintf(due, sizeof(due), "%.38s", succ);
        else if (json_is_true(json_object_get(r, "due")))
            snprintf(due, sizeof(due), "now");
        else if (json_is_string(d) && strcmp(str_or(r, "rollover", ""), "off") != 0)
            snprintf(due, sizeof(due), "%.10s", json_string_value(d));
        cell(str_or(r, "name", "?"), 24, 0);
        printf("%-10s  %5lld  %-4s  %-9s  ", exp, num(r, "days_left"), warn,
               str_or(r, "rollover", "?"));
        cell(due[0] ? due : "-", 20, 1);
        putchar('\n');
    }
}
