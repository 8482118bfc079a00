/*
 * help.c — help, the man page, bash completion and the JSON description of the command
 * line, all generated from the tables the parser and the dispatcher use (opts.c's option
 * table, each command's cli_sub table, cli.c's command table): there is no second copy.
 */
#include "opts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef TG_VERSION
#define TG_VERSION "0.1.0"
#endif
#ifndef TG_CONF_DEFAULT
#define TG_CONF_DEFAULT "/etc/tlsgate/tlsgate.conf"
#endif

#define MAXDEPTH 4

/* ---- finding a command from words ---- */

/* Where words lead: a group (its subcommands) or a leaf (one subcommand, or a command
 * without subcommands). path holds the words that matched. */
typedef struct node {
    const char *path[MAXDEPTH];
    int depth;
    const char *summary;
    const cli_group *group;
    const cli_sub *leaf;
} node;

static const cli_cmd *find_cmd(const char *name)
{
    for (size_t i = 0; i < cli_ncommands; i++)
        if (strcmp(cli_commands[i].name, name) == 0) return &cli_commands[i];
    return NULL;
}

static const cli_sub *find_sub(const cli_group *g, const char *name)
{
    for (size_t i = 0; i < g->n; i++)
        if (strcmp(g->subs[i].name, name) == 0) return &g->subs[i];
    return NULL;
}

const char *cli_nearest(const char *word, const char *const *names, size_t n)
{
    size_t len = strlen(word), prefixed = 0;
    const char *prefix = NULL, *best = NULL;
    size_t bestd = 3;
    for (size_t i = 0; i < n; i++) {
        if (len > 0 && strncmp(names[i], word, len) == 0) {
            prefixed++;
            prefix = names[i];
        }
        /* Levenshtein distance, one row at a time (names are short) */
        size_t m = strlen(names[i]);
        if (m > 63 || len > 63) continue;
        size_t row[64];
        for (size_t j = 0; j <= m; j++)
            row[j] = j;
        for (size_t k = 1; k <= len; k++) {
            size_t diag = row[0];
            row[0] = k;
            for (size_t j = 1; j <= m; j++) {
                size_t up = row[j];
                size_t v = diag + (word[k - 1] != names[i][j - 1]);
                if (row[j] + 1 < v) v = row[j] + 1;
                if (row[j - 1] + 1 < v) v = row[j - 1] + 1;
                row[j] = v;
                diag = up;
            }
        }
        if (row[m] < bestd) {
            bestd = row[m];
            best = names[i];
        }
    }
    if (prefixed == 1) return prefix;
    return best;
}

static void suggest(FILE *f, const char *word, const char *before, const cli_group *g)
{
    const char *names[64];
    size_t n = 0;
    if (g == NULL)
        for (size_t i = 0; i < cli_ncommands && n < 64; i++)
            names[n++] = cli_commands[i].name;
    else
        for (size_t i = 0; i < g->n && n < 64; i++)
            names[n++] = g->subs[i].name;
    const char *near = cli_nearest(word, names, n);
    if (near != NULL) fprintf(f, " (did you mean '%s%s'?)", before, near);
}

/* Follows words (options skipped) from the top; returns 0, or 2 after saying on standard
 * error which word is unknown. */
static int resolve(int argc, char **argv, node *nd, int quiet)
{
    memset(nd, 0, sizeof(*nd));
    char before[256] = "";
    for (int i = 0; i < argc; i++) {
        const char *w = argv[i];
        if (w[0] == '-') continue;
        if (nd->leaf != NULL) break; /* positional arguments */
        const cli_sub *s = NULL;
        if (nd->depth == 0) {
            const cli_cmd *cmd = find_cmd(w);
            if (cmd == NULL && quiet) return 2;
            if (cmd == NULL) {
                fprintf(stderr, "tlsgate: unknown command '%s'", w);
                suggest(stderr, w, "", NULL);
                fputs("\n(tlsgate --help shows the commands)\n", stderr);
                return 2;
            }
            nd->summary = cmd->summary;
            nd->group = cmd->group;
            nd->leaf = cmd->self;
        } else {
            s = nd->group ? find_sub(nd->group, w) : NULL;
            if (s == NULL && quiet) return 2;
            if (s == NULL) {
                fprintf(stderr, "tlsgate: unknown subcommand '%s %s'", before, w);
                char b[260];
                snprintf(b, sizeof(b), "%s ", before);
                suggest(stderr, w, b, nd->group);
                fprintf(stderr, "\n(tlsgate help %s lists them)\n", before);
                return 2;
            }
            nd->summary = s->summary;
            nd->group = s->kind;
            nd->leaf = s->kind ? NULL : s;
        }
        if (nd->depth < MAXDEPTH) nd->path[nd->depth++] = w;
        snprintf(before + strlen(before), sizeof(before) - strlen(before), "%s%s",
                 before[0] ? " " : "", w);
    }
    return 0;
}

static void path_text(const node *nd, char *buf, size_t size)
{
    buf[0] = '\0';
    for (int i = 0; i < nd->depth; i++)
        snprintf(buf + strlen(buf), size - strlen(buf), "%s%s", i ? " " : "", nd->path[i]);
}

/* The options a mask accepts, in the table's order, each long name once (the parser takes
 * the first entry of a name that the mask allows): calls fn for each. O_ALWAYS (--json,
 * --home) are the global options, listed apart. */
static size_t leaf_options(opt_mask allowed, const opt_entry **out, size_t max)
{
    size_t n, k = 0;
    const opt_entry *t = opts_table(&n);
    for (size_t i = 0; i < n && k < max; i++) {
        if (t[i].bit == O_ALWAYS || !(t[i].bit & allowed)) continue;
        int seen = 0;
        for (size_t j = 0; j < k; j++)
            if (strcmp(out[j]->opt.name, t[i].opt.name) == 0) seen = 1;
        if (!seen) out[k++] = &t[i];
    }
    return k;
}

static const opt_entry *global_option(const char *name)
{
    size_t n;
    const opt_entry *t = opts_table(&n);
    for (size_t i = 0; i < n; i++)
        if (t[i].bit == O_ALWAYS && strcmp(t[i].opt.name, name) == 0) return &t[i];
    return NULL;
}

/* ---- text ---- */

/* Writes text from column col, wrapped at 80 columns: a new line starts at column indent
 * (after cont, " \\" for a command line). */
/* The length of the next word of text; on a command line an option and its value are one
 * ("--key ec:p256": never broken between them). */
static size_t unit(const char *text, int cmdline)
{
    size_t w = strcspn(text, " ");
    if (cmdline && strncmp(text, "--", 2) == 0 && text[w] == ' ' && text[w + 1] != '-' &&
        text[w + 1] != '\0')
        w += 1 + strcspn(text + w + 1, " ");
    return w;
}

static void wrap(FILE *f, const char *text, int col, int indent, const char *cont)
{
    if (text == NULL) text = ""; /* an entry without its help text (test_help refuses it) */
    int start = col, room = 80 - (int)strlen(cont);
    while (*text) {
        size_t w = unit(text, cont[0] != '\0');
        if (col > start && col + 1 + (int)w > room) {
            fprintf(f, "%s\n%*s", cont, indent, "");
            col = start = indent;
        } else if (col > start) {
            fputc(' ', f);
            col++;
        }
        fprintf(f, "%.*s", (int)w, text);
        col += (int)w;
        text += w;
        while (*text == ' ')
            text++;
    }
    fputc('\n', f);
}

/* "  LEFT   text" with text wrapped under itself. */
static void print_row(FILE *f, const char *left, const char *text)
{
    if (strlen(left) <= 24)
        fprintf(f, "  %-24s  ", left);
    else
        fprintf(f, "  %s\n%28s", left, "");
    wrap(f, text, 28, 28, "");
}

static void print_opt(FILE *f, const char *name, const char *arg, const char *desc)
{
    char left[64];
    snprintf(left, sizeof(left), "--%s%s%s", name, arg ? " " : "", arg ? arg : "");
    print_row(f, left, desc);
}

static const char *const globals[] = {"home", "json"};

void cli_help_usage(FILE *f)
{
    fputs("usage: tlsgate [--home DIR] [--json] COMMAND [SUBCOMMAND] [ARGS] [OPTIONS]\n"
          "       tlsgate help [COMMAND [SUBCOMMAND]]   (or COMMAND [SUBCOMMAND] --help)\n"
          "       tlsgate --version\n\n"
          "commands:\n",
          f);
    for (size_t i = 0; i < cli_ncommands; i++)
        print_row(f, cli_commands[i].name, cli_commands[i].summary);
    fputs("\nglobal options (before the command, or anywhere after it):\n", f);
    for (size_t i = 0; i < sizeof(globals) / sizeof(globals[0]); i++) {
        const opt_entry *e = global_option(globals[i]);
        if (e != NULL) print_opt(f, e->opt.name, e->arg, e->desc);
    }
    print_opt(f, "help, -h", NULL, "this help; after a command, that command's");
    print_opt(f, "version", NULL, "the version");
    fputs("\nThe store lives in --home, else $TLSGATE_HOME, else $XDG_DATA_HOME/tlsgate\n"
          "(~/.local/share/tlsgate). Passwords come from a file, $TLSGATE_PASSWORD or the\n"
          "terminal. Exit statuses: 0 success, 1 verify: invalid, 2 usage, 3 invalid input,\n"
          "4 not found, 5 conflict, 6 password, 7 store, 8 i/o, 9 internal (man tlsgate).\n",
          f);
}

static void print_group(FILE *f, const node *nd)
{
    char path[256];
    path_text(nd, path, sizeof(path));
    fprintf(f, "usage: tlsgate %s SUBCOMMAND [ARGS] [OPTIONS]\n  ", path);
    wrap(f, nd->summary, 2, 2, "");
    fputs("\nsubcommands:\n", f);
    for (size_t i = 0; i < nd->group->n; i++) {
        const cli_sub *s = &nd->group->subs[i];
        char left[128];
        snprintf(left, sizeof(left), "%s%s%s", s->name, s->kind ? " SUBCOMMAND" : "",
                 s->args && s->args[0] ? " " : "");
        if (s->args) snprintf(left + strlen(left), sizeof(left) - strlen(left), "%s", s->args);
        print_row(f, left, s->summary);
    }
    fputs("\nexamples:\n", f);
    for (size_t i = 0; i < nd->group->n; i++) {
        const cli_sub *s = &nd->group->subs[i];
        if (s->example == NULL) continue;
        fputs("  tlsgate ", f);
        wrap(f, s->example, 10, 6, " \\");
    }
    fprintf(f,
            "\n'tlsgate help %s SUBCOMMAND' shows a subcommand's options\n(or 'tlsgate %s "
            "SUBCOMMAND --help').\n",
            path, path);
}

static void print_leaf(FILE *f, const node *nd)
{
    char path[256];
    path_text(nd, path, sizeof(path));
    const cli_sub *s = nd->leaf;
    const opt_entry *o[160];
    size_t n = leaf_options(s->allowed, o, 160);
    fprintf(f, "usage: tlsgate %s%s%s%s\n  ", path, s->args && s->args[0] ? " " : "",
            s->args ? s->args : "", n ? " [OPTIONS]" : "");
    wrap(f, s->summary, 2, 2, "");
    if (n > 0) fputs("\noptions:\n", f);
    for (size_t i = 0; i < n; i++)
        print_opt(f, o[i]->opt.name, o[i]->arg, o[i]->desc);
    fputs("\nand the global options --json and --home DIR (tlsgate --help).\n", f);
    if (s->example != NULL) {
        fputs("\nexample:\n  tlsgate ", f);
        wrap(f, s->example, 10, 6, " \\");
    }
}

static int show(const node *nd)
{
    if (nd->leaf != NULL)
        print_leaf(stdout, nd);
    else if (nd->group != NULL)
        print_group(stdout, nd);
    else
        cli_help_usage(stdout);
    return 0;
}

int cli_help_for(int argc, char **argv)
{
    node nd;
    int rc = resolve(argc, argv, &nd, 0);
    return rc != 0 ? rc : show(&nd);
}

void cli_help_hint(FILE *f, int argc, char **argv)
{
    node nd;
    char path[256];
    int rc = resolve(argc, argv, &nd, 1);
    if (nd.depth == 0) {
        fputs("(tlsgate --help shows the commands)\n", f);
        return;
    }
    path_text(&nd, path, sizeof(path));
    if (rc == 0 && nd.leaf != NULL)
        fprintf(f, "(tlsgate help %s shows its usage and options)\n", path);
    else
        fprintf(f, "(tlsgate help %s shows its subcommands)\n", path);
}

/* ---- walking every leaf ---- */

typedef void (*visit_fn)(const node *nd, void *ctx);

static void walk_group(node *nd, visit_fn fn, void *ctx)
{
    const cli_group *g = nd->group;
    for (size_t i = 0; i < g->n; i++) {
        node child = *nd;
        const cli_sub *s = &g->subs[i];
        if (child.depth < MAXDEPTH) child.path[child.depth++] = s->name;
        child.summary = s->summary;
        child.group = s->kind;
        child.leaf = s->kind ? NULL : s;
        fn(&child, ctx);
        if (s->kind) walk_group(&child, fn, ctx);
    }
}

/* Calls fn for every command, group and leaf, parents first. */
static void walk(visit_fn fn, void *ctx)
{
    for (size_t i = 0; i < cli_ncommands; i++) {
        node nd = {.path = {cli_commands[i].name},
                   .depth = 1,
                   .summary = cli_commands[i].summary,
                   .group = cli_commands[i].group,
                   .leaf = cli_commands[i].self};
        fn(&nd, ctx);
        if (nd.group) walk_group(&nd, fn, ctx);
    }
}

/* ---- JSON ---- */

static json_t *opts_json(opt_mask allowed)
{
    const opt_entry *o[160];
    size_t n = leaf_options(allowed, o, 160);
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_pack("{s:s, s:s?, s:s?}", "name", o[i]->opt.name, "arg", o[i]->arg,
                              "description", o[i]->desc);
        if (o[i]->values != NULL) {
            json_t *v = json_array();
            for (const char *p = o[i]->values; *p;) {
                size_t w = strcspn(p, " ");
                json_array_append_new(v, json_stringn(p, w));
                p += w + (p[w] == ' ');
            }
            json_object_set_new(e, "values", v);
        }
        json_array_append_new(a, e);
    }
    return a;
}

static json_t *group_json(const cli_group *g, const char *path);

static json_t *node_json(const char *name, const char *path, const char *summary,
                         const cli_group *g, const cli_sub *leaf)
{
    json_t *o = json_pack("{s:s, s:s, s:s?}", "name", name, "path", path, "summary", summary);
    if (leaf != NULL) {
        json_object_set_new(o, "args", json_string(leaf->args ? leaf->args : ""));
        json_object_set_new(o, "options", opts_json(leaf->allowed));
        json_object_set_new(o, "example", leaf->example ? json_string(leaf->example) : json_null());
    } else if (g != NULL) {
        json_object_set_new(o, "subcommands", group_json(g, path));
    }
    return o;
}

static json_t *group_json(const cli_group *g, const char *path)
{
    json_t *a = json_array();
    for (size_t i = 0; i < g->n; i++) {
        const cli_sub *s = &g->subs[i];
        char p[256];
        snprintf(p, sizeof(p), "%s %s", path, s->name);
        json_array_append_new(a, node_json(s->name, p, s->summary, s->kind, s->kind ? NULL : s));
    }
    return a;
}

static int help_json(void)
{
    json_t *cmds = json_array(), *g = json_array();
    for (size_t i = 0; i < cli_ncommands; i++) {
        const cli_cmd *c = &cli_commands[i];
        json_array_append_new(cmds, node_json(c->name, c->name, c->summary, c->group, c->self));
    }
    for (size_t i = 0; i < sizeof(globals) / sizeof(globals[0]); i++) {
        const opt_entry *e = global_option(globals[i]);
        if (e != NULL)
            json_array_append_new(g, json_pack("{s:s, s:s?, s:s?}", "name", e->opt.name, "arg",
                                               e->arg, "description", e->desc));
    }
    json_t *doc =
        json_pack("{s:s, s:o, s:o}", "version", TG_VERSION, "global_options", g, "commands", cmds);
    json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    fputc('\n', stdout);
    json_decref(doc);
    return 0;
}

/* ---- the man page ---- */

/* Roff text: backslashes and '-' escaped, a leading '.' or '\'' made harmless. */
static void roff(FILE *f, const char *s)
{
    if (s == NULL) s = "";
    if (*s == '.' || *s == '\'') fputs("\\&", f);
    for (; *s; s++) {
        if (*s == '\\')
            fputs("\\e", f);
        else if (*s == '-')
            fputs("\\-", f);
        else
            fputc(*s, f);
    }
}

static void man_opt(FILE *f, const char *name, const char *arg, const char *desc)
{
    fputs(".TP\n\\fB\\-\\-", f);
    roff(f, name);
    fputs("\\fR", f);
    if (arg != NULL) {
        fputs(" \\fI", f);
        roff(f, arg);
        fputs("\\fR", f);
    }
    fputc('\n', f);
    roff(f, desc);
    fputc('\n', f);
}

static void man_visit(const node *nd, void *ctx)
{
    FILE *f = ctx;
    char path[256];
    path_text(nd, path, sizeof(path));
    if (nd->leaf == NULL) {
        fputs(".SS \"", f);
        roff(f, path);
        fputs("\"\n", f);
        roff(f, nd->summary);
        fputs(".\n", f);
        return;
    }
    const cli_sub *s = nd->leaf;
    fputs(".SS \"", f);
    roff(f, path);
    if (s->args && s->args[0]) {
        fputc(' ', f);
        roff(f, s->args);
    }
    fputs("\"\n", f);
    roff(f, s->summary);
    fputs(".\n", f);
    const opt_entry *o[160];
    size_t n = leaf_options(s->allowed, o, 160);
    for (size_t i = 0; i < n; i++)
        man_opt(f, o[i]->opt.name, o[i]->arg, o[i]->desc);
    if (s->example != NULL) {
        fputs(".PP\nExample:\n.PP\n.RS 4\n.nf\ntlsgate", f);
        /* lines of at most 64 columns, continued with a backslash */
        int col = 7;
        for (const char *p = s->example; *p;) {
            size_t w = unit(p, 1);
            if (col + 1 + (int)w > 64) {
                fputs(" \\e\n    ", f);
                col = 4;
            } else {
                fputc(' ', f);
                col++;
            }
            char word[512];
            snprintf(word, sizeof(word), "%.*s", (int)w, p);
            roff(f, word);
            col += (int)w;
            p += w;
            while (*p == ' ')
                p++;
        }
        fputs("\n.fi\n.RE\n", f);
    }
}

static int help_man(void)
{
    FILE *f = stdout;
    fputs(
        ".\\\" Generated by 'tlsgate help --man' from the tables the parser uses.\n"
        ".TH TLSGATE 1 \"\" \"tlsgate " TG_VERSION "\" \"User Commands\"\n"
        ".SH NAME\n"
        "tlsgate \\- TLS appliance: certificate store, TLS front end and inspection proxy\n"
        ".SH SYNOPSIS\n"
        ".B tlsgate\n"
        "[\\fB\\-\\-home\\fR \\fIDIR\\fR] [\\fB\\-\\-json\\fR] \\fICOMMAND\\fR "
        "[\\fISUBCOMMAND\\fR] [\\fIARGS\\fR] [\\fIOPTIONS\\fR]\n"
        ".br\n"
        ".B tlsgate help\n"
        "[\\fICOMMAND\\fR [\\fISUBCOMMAND\\fR]]\n"
        ".br\n"
        ".B tlsgate\n"
        "\\fB\\-\\-version\\fR\n"
        ".SH DESCRIPTION\n"
        "tlsgate keeps certificates, keys, requests, CA certificates and trust stores in one\n"
        "store, serves them as a TLS front end chosen by SNI, runs client inspection proxies\n"
        "with decryption policies, renews certificates with ACME and enrolls with EST.\n"
        "Every command prints a table, or JSON with \\fB\\-\\-json\\fR.\n"
        "\\fBtlsgate help\\fR \\fICOMMAND\\fR [\\fISUBCOMMAND\\fR], or \\fB\\-\\-help\\fR after a\n"
        "command, shows the same text as this page for one command.\n"
        ".SH OPTIONS\n"
        "These are taken before the command, or anywhere after it.\n",
        f);
    for (size_t i = 0; i < sizeof(globals) / sizeof(globals[0]); i++) {
        const opt_entry *e = global_option(globals[i]);
        if (e != NULL) man_opt(f, e->opt.name, e->arg, e->desc);
    }
    man_opt(f, "help", NULL, "help: of every command, or, after a command, of that command");
    man_opt(f, "version", NULL, "print the version");
    fputs(".SH COMMANDS\n", f);
    walk(man_visit, f);
    fputs(
        ".SH EXIT STATUS\n"
        "The same for every command; the message on standard error says what was wrong.\n"
        ".TP\n0\nsuccess (\\fBverify\\fR: the certificate is valid)\n"
        ".TP\n1\n\\fBverify\\fR only: the certificate is invalid\n"
        ".TP\n2\nusage: the command line is wrong (unknown option, missing argument)\n"
        ".TP\n3\ninvalid input: a file, field or value is malformed or breaks a rule\n"
        ".TP\n4\nnot found: no object of that name, a missing file, or no store (only\n"
        "\\fBinit\\fR and \\fBserve\\fR create one)\n"
        ".TP\n5\nconflict: the name is taken, the object is referenced, protected or not\n"
        "exportable, an export's \\fB\\-\\-out\\fR exists\n"
        ".TP\n6\npassword: wrong, missing or too short\n"
        ".TP\n7\nstore: the store is busy, damaged, or its master key is missing or wrong\n"
        ".TP\n8\ni/o: an output file cannot be written, a port cannot be listened on\n"
        ".TP\n9\ninternal: a bug or an unexpected library failure\n"
        ".PP\nA failing command changes nothing: every command is one transaction.\n"
        ".SH ENVIRONMENT\n"
        ".TP\n.B TLSGATE_HOME\nthe store directory when \\fB\\-\\-home\\fR is not given\n"
        ".TP\n.B XDG_DATA_HOME\nwithout either, the store is \\fI$XDG_DATA_HOME/tlsgate\\fR\n"
        "(else \\fI~/.local/share/tlsgate\\fR)\n"
        ".TP\n.B TLSGATE_PASSWORD\na password or passphrase, when no \\fB\\-\\-password\\-file\\fR "
        "is given (else the terminal asks)\n"
        ".SH FILES\n"
        ".TP\n.I " TG_CONF_DEFAULT "\nthe configuration \\fBserve\\fR reads (\\fB\\-\\-config\\fR "
        "\\fIFILE\\fR instead); its flags override it\n"
        ".TP\n.I /var/lib/tlsgate\nthe store of the installed service (\\fBtlsgate.service\\fR)\n"
        ".TP\n.I ~/.local/share/tlsgate\nthe store of a user without \\fBTLSGATE_HOME\\fR\n"
        ".SH SEE ALSO\n"
        ".BR openssl (1),\n"
        ".BR systemctl (1),\n"
        ".BR syslog (3)\n"
        ".PP\nThe README installed with the package (\\fI/usr/share/doc/tlsgate\\fR).\n",
        f);
    return 0;
}

/* ---- bash completion ---- */

static void bash_opts(FILE *f, const cli_sub *s)
{
    const opt_entry *o[160];
    size_t n = leaf_options(s->allowed, o, 160);
    for (size_t i = 0; i < n; i++)
        fprintf(f, " --%s", o[i]->opt.name);
    fputs(" --json --home --help", f);
}

static void bash_visit(const node *nd, void *ctx)
{
    FILE *f = ctx;
    char path[256];
    path_text(nd, path, sizeof(path));
    if (nd->leaf != NULL) {
        fprintf(f, "    \"%s\"|\"%s \"*) opts=\"", path, path);
        bash_opts(f, nd->leaf);
        fputs("\"; words=\"\"\n", f);
        const opt_entry *o[160];
        size_t n = leaf_options(nd->leaf->allowed, o, 160);
        for (size_t i = 0; i < n; i++)
            if (o[i]->values != NULL)
                fprintf(f, "        [[ $prev == --%s ]] && vals=\"%s\"\n", o[i]->opt.name,
                        o[i]->values);
        fputs("        ;;\n", f);
    } else if (nd->group != NULL) {
        fprintf(f, "    \"%s\") opts=\"--help\"; words=\"", path);
        for (size_t i = 0; i < nd->group->n; i++)
            fprintf(f, "%s%s", i ? " " : "", nd->group->subs[i].name);
        fputs("\" ;;\n", f);
    }
}

/* The options that take a value: the word after one is not a subcommand. */
static void bash_valued(FILE *f)
{
    size_t n;
    const opt_entry *t = opts_table(&n);
    int first = 1;
    for (size_t i = 0; i < n; i++) {
        if (t[i].opt.has_arg != required_argument) continue;
        int seen = 0;
        for (size_t j = 0; j < i; j++)
            if (t[j].opt.has_arg == required_argument && strcmp(t[j].opt.name, t[i].opt.name) == 0)
                seen = 1;
        if (seen) continue;
        fprintf(f, "%s--%s", first ? "" : "|", t[i].opt.name);
        first = 0;
    }
}

static int help_bash(void)
{
    FILE *f = stdout;
    fputs("# bash completion for tlsgate; generated by 'tlsgate help --bash-completion' from\n"
          "# the tables the parser uses.\n"
          "_tlsgate()\n"
          "{\n"
          "    local -a ws=(\"${COMP_WORDS[@]:0:COMP_CWORD + 1}\")\n"
          "    # bash splits words at ':' (rsa:2048): the line itself, split at blanks only\n"
          "    if [[ -n ${COMP_LINE-} ]]; then\n"
          "        read -ra ws <<<\"${COMP_LINE:0:COMP_POINT}\"\n"
          "        [[ ${COMP_LINE:0:COMP_POINT} == *[[:blank:]] ]] && ws+=(\"\")\n"
          "    fi\n"
          "    local n=${#ws[@]}\n"
          "    local cur=${ws[n - 1]} prev=${ws[n - 2]}\n"
          "    local path=\"\" w i opts words vals=\"\"\n"
          "    for ((i = 1; i < n - 1; i++)); do\n"
          "        w=${ws[i]}\n"
          "        case $w in\n"
          "        ",
          f);
    bash_valued(f);
    fputs(") ((i++)) ;;\n"
          "        -*) ;;\n"
          "        *) path+=\"${path:+ }$w\" ;;\n"
          "        esac\n"
          "    done\n"
          "    case $path in\n"
          "    \"\") opts=\"--home --json --help --version\"; words=\"",
          f);
    for (size_t i = 0; i < cli_ncommands; i++)
        fprintf(f, "%s ", cli_commands[i].name);
    fputs("help\" ;;\n", f);
    fputs("    help|help\\ *) opts=\"--json --man --bash-completion\"; words=\"", f);
    for (size_t i = 0; i < cli_ncommands; i++)
        fprintf(f, "%s%s", i ? " " : "", cli_commands[i].name);
    fputs("\" ;;\n", f);
    walk(bash_visit, f);
    fputs("    *) opts=\"\"; words=\"\" ;;\n"
          "    esac\n"
          "    # the value of an option: its choices, else files (complete -o default)\n"
          "    case $prev in\n"
          "    ",
          f);
    bash_valued(f);
    fputs(")\n"
          "        COMPREPLY=($(compgen -W \"$vals\" -- \"$cur\"))\n"
          "        # bash replaces only what follows the last ':' of the word\n"
          "        [[ $cur == *:* ]] && COMPREPLY=(\"${COMPREPLY[@]#\"${cur%\"${cur##*:}\"}\"}\")\n"
          "        return\n"
          "        ;;\n"
          "    esac\n"
          "    if [[ $cur == -* ]]; then\n"
          "        COMPREPLY=($(compgen -W \"$opts\" -- \"$cur\"))\n"
          "    else\n"
          "        COMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n"
          "    fi\n"
          "}\n"
          "complete -o default -F _tlsgate tlsgate\n",
          f);
    return 0;
}

/* ---- tlsgate help ---- */

int cli_help(int argc, char **argv)
{
    if (argc == 1 && strcmp(argv[0], "--json") == 0) return help_json();
    if (argc == 1 && strcmp(argv[0], "--man") == 0) return help_man();
    if (argc == 1 && strcmp(argv[0], "--bash-completion") == 0) return help_bash();
    for (int i = 0; i < argc; i++)
        if (argv[i][0] == '-' && strcmp(argv[i], "--help") != 0 && strcmp(argv[i], "-h") != 0) {
            fprintf(stderr,
                    "tlsgate: help: unknown option '%s' (help takes --json, --man or "
                    "--bash-completion alone, or words: help cert create)\n",
                    argv[i]);
            return 2;
        }
    return cli_help_for(argc, argv);
}
