/*
 * store_int.h — shared by the files of src/store only.
 */
#ifndef TG_STORE_INT_H
#define TG_STORE_INT_H

#include "store.h"

#include <sqlite3.h>

/* Prepared statements are kept per SQL text (string literals: compared by address),
 * so that a bulk import does not compile the same statements for every row. A
 * statement handed out is busy until released, so nested iteration gets its own. */
#define TG_STMT_CACHE 64
typedef struct tg_stmt_slot {
    const char *sql;
    sqlite3_stmt *stmt;
    int busy;
} tg_stmt_slot;

struct tg_store {
    sqlite3 *db;
    tg_stmt_slot stmts[TG_STMT_CACHE];
    char *home, *dbpath, *keypath, *newkeypath;
    unsigned char store_id[16];
    /* Secrets in one locked, not-dumped page (tg_secure_alloc): the data key, and scratch
     * room for a master key and a new data key while they are in use. */
    unsigned char *secrets;
    unsigned char *data_key, *mk, *dk; /* 32 bytes each, inside secrets */
    unsigned char *sealed_dk;          /* the sealed data key data_key came from */
    size_t sealed_dk_len;
    int have_data_key, in_tx;
    int scrub;          /* the transaction removed secrets: truncate the WAL after commit */
    int pending_master; /* a new master key waits in newkeypath for the commit */
};
/* Marks the current transaction as one that removes secrets (see scrub_wal in db.c). */
#define TG_STORE_SCRUB(st) ((st)->scrub = 1)

int tg_db_err(tg_store *st, tg_err *err, const char *what);
/* Prepares sql (a string literal) or records an error. */
sqlite3_stmt *tg_db_prep(tg_store *st, const char *sql, tg_err *err);
/* Steps s through its rows, calling row for each: 0 goes on, 1 stops, a negative code
 * stops with that error (its sentence set by row). Releases s; what names the query in
 * a database error. */
typedef int (*tg_db_row_fn)(sqlite3_stmt *s, void *arg, tg_err *err);
int tg_db_each(tg_store *st, sqlite3_stmt *s, tg_db_row_fn row, void *arg, tg_err *err,
               const char *what);
/* The first column of every row of s as ids (*ids freed by the caller; NULL when none).
 * Releases s; what names the query in a database error. */
int tg_db_ids(tg_store *st, sqlite3_stmt *s, int64_t **ids, size_t *n, tg_err *err,
              const char *what);
/* Gives a statement from tg_db_prep back (reset for reuse, or finalized). */
void tg_db_release(tg_store *st, sqlite3_stmt *s);
/* Steps a statement that returns no row; releases it. */
int tg_db_done(tg_store *st, sqlite3_stmt *s, tg_err *err, const char *what);
int tg_store_data_key(tg_store *st, tg_err *err);

#endif
