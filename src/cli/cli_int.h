/*
 * cli_int.h — shared by the files of src/cli only.
 */
#ifndef TG_CLI_INT_H
#define TG_CLI_INT_H

#include "cli.h"
#include "../keyring/keyring.h"

#include <getopt.h>
#include <jansson.h>

typedef struct cli {
    const char *home;
    int json;
    tg_err err;
    json_t *audit; /* members a command adds to its audit row's detail (never a secret) */
} cli;

/* Records a command in the audit log (actor "cli:LOGIN", source "cli"): action
 * ("cert.create"), object (its first argument, or NULL), rc (its outcome), detail (may be
 * NULL; borrowed) with c->audit's members added. A failure to record is a warning on
 * standard error; it does not change the command's exit status. */
void cli_audit(cli *c, tg_keyring *kr, const char *action, const char *object, int rc,
               json_t *detail);
/* Prints doc as JSON with one more member, key: secret, spliced in as text so that the
 * secret never enters jansson's memory (which is freed without being wiped). secret must
 * be of letters, digits, '-' and '_'. Takes ownership of doc. */
void cli_json_secret(json_t *doc, const char *key, const char *secret);

/* Opens the keyring at cli->home (records an error and returns NULL on failure): a store
 * that exists, else TG_E_NOTFOUND with a sentence saying where it looked and what to run.
 * Only init and serve create one (cli_create). */
tg_keyring *cli_open(cli *c);
tg_keyring *cli_create(cli *c);
/* The store directory: --home, $TLSGATE_HOME, else the per-user default. */
const char *cli_home(cli *c);
/* A JSON array written as its elements arrive (a list of 100,000 never held at once):
 * begin, cli_json_stream_row for each (the emit callback of the keyring's *_each
 * functions), end with the command's outcome. "[", then each element on one line, then
 * "]". A failure part-way leaves the array unfinished: the exit status says so. */
typedef struct cli_json_stream {
    size_t n;
    int failed;
} cli_json_stream;
void cli_json_stream_begin(cli_json_stream *js);
int cli_json_stream_row(json_t *row, void *arg);
void cli_json_stream_end(cli_json_stream *js, int rc);
/* Prints doc as JSON (with --json) or through the given human printer; takes ownership. */
void cli_emit(cli *c, json_t *doc, void (*human)(json_t *doc));
/* With --json, the summary of an export written to a file: {"name" (the object, or null),
 * "out", "bytes"} (docs/json.md, "Export summary"). */
void cli_emit_export(cli *c, const char *name, const char *out, size_t len);
int cli_usage(cli *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Writes an export to path ("-" is standard output) with the given file mode: never into
 * the store directory, never through a symbolic link, over an existing file only with
 * force (--force); these refusals are TG_E_CONFLICT. */
int cli_write_out(cli *c, const char *path, const unsigned char *data, size_t len, unsigned mode,
                  int force);
/* The same refusals, checked before the work (and before asking for a passphrase). */
int cli_out_check(cli *c, const char *path, int force);

/* Where a passphrase comes from (pass.c): the file (--password-file), TLSGATE_PASSWORD,
 * or a prompt on the terminal (none when prompt is NULL). p must outlive the call. */
typedef struct cli_pass {
    const char *file, *prompt;
    tg_passsrc src;
} cli_pass;
const tg_passsrc *cli_pass_init(cli_pass *p, const char *file, const char *prompt, int confirm);

/* Reads a file argument whole, as tg_file_read, where "-" is standard input (once per
 * command; what names the argument for the refusal of a second "-"). */
int cli_read(const char *path, const char *what, size_t max, unsigned char **out, size_t *len,
             tg_err *err);
/* Reads the files at paths into *out (cli_inputs_free wipes and frees them). */
/* what: the argument the files are, in sentences ("--key", "a certificate file"). */
int cli_inputs_read(cli *c, char *const *paths, size_t n, const char *what, tg_input **out);
void cli_inputs_free(tg_input *v, size_t n);
/* A bulk import's progress on standard error, when that is a terminal and --json is not
 * given (else nothing is attached); cli_progress_end clears the line. */
void cli_progress_attach(cli *c, tg_import *imp);
void cli_progress_end(const tg_import *imp);

/* A document's timestamp (docs/json.md: key and key_unix) the way tables show it,
 * "YYYY-MM-DD HH:MM:SS GMT" ("-" without one); a new string (NULL: out of memory). */
char *cli_time_text(json_t *doc, const char *key);
/* How cert list and ca list print their rows (print_cert_list). */
typedef struct cli_listview {
    int ca;             /* ca list: the CA columns */
    int wide;           /* --wide: every column, nothing cut */
    int expiring;       /* --expiring DAYS (-1: not given) */
    const char *filter; /* --filter TEXT (NULL: not given) */
    size_t total;       /* the rows before the filter */
} cli_listview;
/* The table fitted to the terminal (or every column with wide), then a total line. */
void print_cert_list(json_t *rows, const cli_listview *v);
void print_cert_doc(json_t *doc);
void print_request_table(json_t *rows);
void print_request_doc(json_t *doc);
void print_import(json_t *doc);

int cmd_cert(cli *c, int argc, char **argv);
int cmd_ca(cli *c, int argc, char **argv);
int cmd_truststore(cli *c, int argc, char **argv);
int cmd_refresh(cli *c, int argc, char **argv);
int cmd_serve(cli *c, int argc, char **argv);
void print_ts_table(json_t *rows);
void print_ts_doc(json_t *doc);
int cmd_request(cli *c, int argc, char **argv);
int cmd_proxy(cli *c, int argc, char **argv);
void print_proxy_table(json_t *rows);
void print_proxy_doc(json_t *doc);
void print_srvproxy_table(json_t *rows);
void print_srvproxy_doc(json_t *doc);
void print_proxy_stats(json_t *doc);
int cmd_policy(cli *c, int argc, char **argv);
int cmd_category(cli *c, int argc, char **argv);
void print_policy_table(json_t *rows);
void print_policy_doc(json_t *doc);
void print_defaults_doc(json_t *doc);
void print_category_import(json_t *doc);
void print_category_table(json_t *rows);
void print_category_doc(json_t *doc);
int cmd_user(cli *c, int argc, char **argv);
int cmd_group(cli *c, int argc, char **argv);
int cmd_acme(cli *c, int argc, char **argv);
int cmd_audit(cli *c, int argc, char **argv);
int cmd_config(cli *c, int argc, char **argv);
int cmd_identity(cli *c, int argc, char **argv);
int cmd_enrollca(cli *c, int argc, char **argv);
void print_config(json_t *doc);
void print_rollover_plan(json_t *rows);
void print_user_table(json_t *rows);
void print_user_doc(json_t *doc);
void print_group_table(json_t *rows);
void print_group_doc(json_t *doc);
void print_token_table(json_t *rows);
void print_audit_table(json_t *rows);
/* Returns 0 (valid), 1 (invalid: a verdict, passed through as the exit status) or TG_E_…. */
int cmd_verify(cli *c, int argc, char **argv);

#endif
