/*
 * store_int.h — shared by the files of src/store only.
 */
#ifndef TG_STORE_INT_H
#define TG_STORE_INT_H

#include "store.h"

#include <sqlite3.h>

struct tg_store {
    sqlite3 *db;
    char *home, *dbpath, *keypath;
    unsigned char store_id[16];
    unsigned char data_key[32];
    int have_data_key, in_tx;
};

int tg_db_err(tg_store *st, tg_err *err, const char *what);
/* Prepares sql or records an error. */
sqlite3_stmt *tg_db_prep(tg_store *st, const char *sql, tg_err *err);
/* Steps a statement that returns no row; finalizes it. */
int tg_db_done(tg_store *st, sqlite3_stmt *s, tg_err *err, const char *what);
int tg_store_data_key(tg_store *st, tg_err *err);

#endif
