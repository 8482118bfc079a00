/*
 * mint.c — how long tg_cert_issue takes to mint one leaf (SPEC I1, P2): with the leaf's
 * key given as a tg_key (X509_set_pubkey encodes it each time) and as a tg_spki
 * prepared once. EC P-256 leaf keys, signed by a P-256 CA and by an RSA-2048 CA.
 * Prints figures; asserts nothing. Build: cmake --build build --target bench_mint;
 * run: build/bench_mint [N] (default 2000 per figure). Results: bench/RESULTS.md.
 */
#include "x509/x509.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static tg_key *gen(const char *spec)
{
    tg_keyspec ks;
    tg_key *k = NULL;
    if (tg_keyspec_parse(spec, &ks, NULL) != 0 || tg_key_generate(&ks, &k, NULL) != 0) exit(1);
    return k;
}

/* Median-free and simple: the mean over n mints, after 50 to warm up. */
static double mint(const tg_cert *ca, const tg_key *cakey, const tg_key *leaf, const tg_spki *spki,
                   const tg_sanlist *sans, int n)
{
    long long t = (long long)time(NULL);
    tg_issue_req req = {.cn = "www.example.com",
                        .sans = sans,
                        .not_before = t - 3600,
                        .not_after = t + 30 * 86400,
                        .key = spki ? NULL : leaf,
                        .spki = spki};
    double start = 0;
    for (int i = -50; i < n; i++) {
        if (i == 0) start = now_us();
        tg_cert *c = NULL;
        tg_err err = {0};
        if (tg_cert_issue(ca, cakey, &req, &c, &err) != 0) {
            fprintf(stderr, "mint: %s\n", err.msg);
            exit(1);
        }
        tg_cert_free(c);
    }
    return (now_us() - start) / n;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 2000;
    const char *cas[] = {"ec:p256", "rsa:2048"};
    tg_key *leaf = gen("ec:p256");
    tg_sanlist sans = {0};
    tg_sanlist_add(&sans, TG_SAN_DNS, "www.example.com", 15);
    tg_sanlist_add(&sans, TG_SAN_DNS, "example.com", 11);
    double t0 = now_us();
    tg_spki *spki = NULL;
    tg_err err = {0};
    if (tg_spki_new(leaf, &spki, &err) != 0) {
        fprintf(stderr, "spki: %s\n", err.msg);
        return 1;
    }
    printf("tg_spki_new (once per leaf key): %.1f us\n", now_us() - t0);
    for (size_t i = 0; i < 2; i++) {
        tg_key *cakey = gen(cas[i]);
        tg_subject s = {.cn = "Bench CA"};
        tg_strlist none = {0};
        tg_cert *ca = NULL;
        if (tg_cert_selfsign(cakey, &s, &none, 365, 1, &ca, NULL) != 0) return 1;
        double key = mint(ca, cakey, leaf, NULL, &sans, n);
        double fast = mint(ca, cakey, leaf, spki, &sans, n);
        printf("EC P-256 leaf, %-8s CA: %7.1f us per mint with the key, %7.1f us with the "
               "prepared SPKI (n=%d)\n",
               cas[i], key, fast, n);
        tg_cert_free(ca);
        tg_key_free(cakey);
    }
    tg_spki_free(spki);
    tg_sanlist_free(&sans);
    tg_key_free(leaf);
    return 0;
}
