/*
 * main.c — the tlsgate program: everything else lives in libtlsgate.
 */
#include "cli/cli.h"

int main(int argc, char **argv)
{
    return tg_cli_main(argc, argv);
}
