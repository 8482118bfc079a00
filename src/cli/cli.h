/*
 * cli.h — the face of src/cli: the command line. Parse, call the keyring, print.
 * No rule about certificates lives here; the keyring decides, the CLI reports.
 */
#ifndef TG_CLI_H
#define TG_CLI_H

/* Runs one command line; returns the process exit status (README, "Exit statuses"). */
int tg_cli_main(int argc, char **argv);

#endif
