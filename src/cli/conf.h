/*
 * conf.h — serve's configuration file (conf.c): "key = value" lines, keys named as serve's
 * long options; what the command line gives wins over the file.
 */
#ifndef TG_CLI_CONF_H
#define TG_CLI_CONF_H

#include "opts.h"

/* Where serve looks when --config is not given (CMake: TG_CONF_FILE). */
#ifndef TG_CONF_DEFAULT
#define TG_CONF_DEFAULT "/etc/tlsgate/tlsgate.conf"
#endif
#define TG_CONF_MAX_BYTES  (64u * 1024u) /* the whole file */
#define TG_CONF_MAX_LINE   1024          /* one line, without its newline */
#define TG_CONF_MAX_LISTEN 64            /* listen lines */

typedef struct cli_conf cli_conf;

/* Reads the file at path (NULL: TG_CONF_DEFAULT, and nothing at all when that does not
 * exist) and fills in o what the command line left unset; a listen on the command line
 * replaces every listen of the file. A missing --config file is TG_E_NOTFOUND, a bad line
 * TG_E_INVALID with a sentence naming the file and line; o is then unchanged. *out owns
 * the strings o now points to: cli_conf_free it after o's last use (NULL: no file). */
int cli_conf_apply(cli *c, const char *path, opts *o, cli_conf **out);
void cli_conf_free(cli_conf *cf);

#endif
