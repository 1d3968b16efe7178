/* C test of the vault's C ABI: every function, the error paths (NULL
 * pointers, bad config, unknown id, another tenant's id, a tampered blob),
 * and puts/gets from 4 threads on one handle. Prints "all C ABI checks
 * passed" and exits 0 on success. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vault.h"

static int failures = 0;

#define CHECK(cond)                                                              \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "%s:%d: check failed: %s (last error: %s)\n",       \
                    __FILE__, __LINE__, #cond, vault_last_error());              \
            failures++;                                                          \
        }                                                                        \
    } while (0)

#define CHECK_STATUS(call, expected) CHECK((call) == (expected))

static char dir[256];

static void write_file(const char *name, const char *text, mode_t mode) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f) { perror("fopen"); exit(2); }
    fputs(text, f);
    fclose(f);
    chmod(path, mode);
}

static const char *KEY =
    "1:5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a\n";

static VaultHandle *h = NULL;
static char *tenant = NULL;

struct job { int n; int ok; };

static void *worker(void *arg) {
    struct job *j = arg;
    j->ok = 1;
    for (int i = 0; i < 20; i++) {
        unsigned char data[3000];
        for (size_t k = 0; k < sizeof data; k++) data[k] = (unsigned char)(k * 7 + (size_t)j->n * 13 + (size_t)i);
        char *id = NULL;
        char applicant[32];
        snprintf(applicant, sizeof applicant, "thread-%d", j->n);
        if (vault_put(h, tenant, applicant, "pay_stub", "t.pdf", "application/pdf", data, sizeof data, &id) != VAULT_OK) { j->ok = 0; continue; }
        uint8_t *out = NULL;
        size_t len = 0;
        if (vault_get(h, tenant, id, &out, &len) != VAULT_OK || len != sizeof data || memcmp(out, data, len) != 0) j->ok = 0;
        vault_buffer_free(out, len);
        vault_string_free(id);
    }
    return NULL;
}

static int find_blob(char *out, size_t cap) {
    char path[512];
    snprintf(path, sizeof path, "%s/data/blobs/blobs", dir);
    DIR *d = opendir(path);
    if (!d) return 0;
    struct dirent *e;
    int found = 0;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        snprintf(out, cap, "%s/%s", path, e->d_name);
        found = 1;
        break;
    }
    closedir(d);
    return found;
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/vault-ffi-test-XXXXXX");
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 2; }
    write_file("root.key", KEY, 0600);
    write_file("vault.toml", "[keys]\nfile = \"root.key\"\n\n[storage]\ndata_dir = \"data\"\n", 0644);
    char config[512];
    snprintf(config, sizeof config, "%s/vault.toml", dir);

    /* Library functions. */
    CHECK(strlen(vault_version()) > 0);
    CHECK(strcmp(vault_status_str(VAULT_NOT_FOUND), "not found") == 0);
    CHECK(strcmp(vault_status_str(12345), "unknown status") == 0);

    /* Opening: errors first. */
    CHECK_STATUS(vault_open(NULL, "ffi-test", &h), VAULT_NULL_POINTER);
    CHECK(strstr(vault_last_error(), "config_path") != NULL);
    CHECK_STATUS(vault_open(config, "ffi-test", NULL), VAULT_NULL_POINTER);
    CHECK_STATUS(vault_open("/nonexistent/vault.toml", "ffi-test", &h), VAULT_CONFIG);
    CHECK_STATUS(vault_open(config, "not a valid actor", &h), VAULT_INVALID_ARGUMENT);
    const char bad_utf8[] = {(char)0xff, (char)0xfe, 0};
    CHECK_STATUS(vault_open(bad_utf8, "ffi-test", &h), VAULT_INVALID_UTF8);
    /* A world-readable key file is refused. */
    write_file("root.key", KEY, 0644);
    CHECK_STATUS(vault_open(config, "ffi-test", &h), VAULT_KEY_PROVIDER);
    write_file("root.key", KEY, 0600);
    CHECK_STATUS(vault_open(config, "ffi-test", &h), VAULT_OK);
    CHECK(h != NULL);
    CHECK(strcmp(vault_last_error(), "") == 0);

    CHECK_STATUS(vault_create_tenant(h, "acme", &tenant), VAULT_OK);
    char *other = NULL;
    CHECK_STATUS(vault_create_tenant(h, "other-co", &other), VAULT_OK);
    char *dup = NULL;
    CHECK_STATUS(vault_create_tenant(h, "acme", &dup), VAULT_ALREADY_EXISTS);

    /* Put, get, range, head. */
    const char *text = "Jane Doe, pay stub for March: $4,200.00";
    char *id = NULL;
    CHECK_STATUS(vault_put(h, tenant, "jane-1985", "pay_stub", "march.pdf", "application/pdf",
                           (const uint8_t *)text, strlen(text), &id), VAULT_OK);
    uint8_t *buf = NULL;
    size_t len = 0;
    CHECK_STATUS(vault_get(h, tenant, id, &buf, &len), VAULT_OK);
    CHECK(len == strlen(text) && memcmp(buf, text, len) == 0);
    vault_buffer_free(buf, len);
    CHECK_STATUS(vault_get_range(h, tenant, id, 10, 19, &buf, &len), VAULT_OK);
    CHECK(len == 9 && memcmp(buf, text + 10, 9) == 0);
    vault_buffer_free(buf, len);
    CHECK_STATUS(vault_get_range(h, tenant, id, 0, 1000, &buf, &len), VAULT_RANGE_OUT_OF_BOUNDS);
    CHECK_STATUS(vault_get_range(h, tenant, id, 5, 2, &buf, &len), VAULT_RANGE_OUT_OF_BOUNDS);
    char *json = NULL;
    CHECK_STATUS(vault_head(h, tenant, id, &json), VAULT_OK);
    CHECK(json && strstr(json, "\"file_name\":\"march.pdf\"") && strstr(json, "\"category\":\"pay_stub\""));
    vault_string_free(json);

    /* Files in and out. */
    char in_path[512], out_path[512];
    snprintf(in_path, sizeof in_path, "%s/input.bin", dir);
    snprintf(out_path, sizeof out_path, "%s/output.bin", dir);
    {
        FILE *f = fopen(in_path, "wb");
        for (int i = 0; i < 300000; i++) fputc(i % 251, f);
        fclose(f);
    }
    char *fid = NULL;
    CHECK_STATUS(vault_put_file(h, tenant, "jane-1985", "bank_statement", NULL, "application/pdf", in_path, &fid), VAULT_OK);
    CHECK_STATUS(vault_get_to_file(h, tenant, fid, out_path), VAULT_OK);
    {
        FILE *f = fopen(out_path, "rb");
        int ok = f != NULL, c, i = 0;
        while (ok && (c = fgetc(f)) != EOF) { if (c != i % 251) ok = 0; i++; }
        if (f) fclose(f);
        CHECK(ok && i == 300000);
    }
    CHECK_STATUS(vault_put_file(h, tenant, "jane-1985", "pay_stub", NULL, "application/pdf", "/nonexistent", &fid), VAULT_IO);

    /* Error paths: NULLs, unknown ids, another tenant's ids, bad input. */
    CHECK_STATUS(vault_get(NULL, tenant, id, &buf, &len), VAULT_NULL_POINTER);
    CHECK_STATUS(vault_get(h, NULL, id, &buf, &len), VAULT_NULL_POINTER);
    CHECK_STATUS(vault_get(h, tenant, id, NULL, &len), VAULT_NULL_POINTER);
    CHECK_STATUS(vault_put(h, tenant, "jane-1985", "pay_stub", NULL, "application/pdf", NULL, 10, &fid), VAULT_NULL_POINTER);
    CHECK_STATUS(vault_put(h, tenant, "jane 1985", "pay_stub", NULL, "application/pdf", (const uint8_t *)"x", 1, &fid), VAULT_INVALID_ARGUMENT);
    CHECK_STATUS(vault_put(h, tenant, "jane-1985", "tax_return", NULL, "application/pdf", (const uint8_t *)"x", 1, &fid), VAULT_INVALID_ARGUMENT);
    CHECK_STATUS(vault_get(h, tenant, "00000000-0000-4000-8000-000000000000", &buf, &len), VAULT_NOT_FOUND);
    CHECK_STATUS(vault_get(h, tenant, "not-a-uuid", &buf, &len), VAULT_INVALID_ARGUMENT);
    CHECK_STATUS(vault_get(h, other, id, &buf, &len), VAULT_NOT_FOUND);
    CHECK_STATUS(vault_delete(h, other, id), VAULT_NOT_FOUND);
    CHECK_STATUS(vault_head(h, other, id, &json), VAULT_NOT_FOUND);

    /* Legal hold and application lifecycle. */
    CHECK_STATUS(vault_set_document_hold(h, tenant, id, true), VAULT_OK);
    CHECK_STATUS(vault_delete(h, tenant, id), VAULT_LEGAL_HOLD);
    CHECK_STATUS(vault_set_document_hold(h, tenant, id, false), VAULT_OK);
    CHECK_STATUS(vault_set_applicant_hold(h, tenant, "jane-1985", true), VAULT_OK);
    char *receipt = NULL;
    CHECK_STATUS(vault_erase_applicant(h, tenant, "jane-1985", &receipt), VAULT_LEGAL_HOLD);
    CHECK_STATUS(vault_set_applicant_hold(h, tenant, "jane-1985", false), VAULT_OK);
    CHECK_STATUS(vault_close_application(h, tenant, "jane-1985"), VAULT_OK);
    CHECK_STATUS(vault_open_application(h, tenant, "jane-1985"), VAULT_OK);
    CHECK_STATUS(vault_close_application(h, tenant, "nobody"), VAULT_NOT_FOUND);

    /* Purge: nothing is due today under the default policy. */
    uint64_t count = 99;
    char *report = NULL;
    CHECK_STATUS(vault_purge(h, tenant, 0, true, &count, &report), VAULT_OK);
    CHECK(count == 0 && report && strstr(report, "\"dry_run\":true"));
    vault_string_free(report);
    CHECK_STATUS(vault_purge(h, NULL, 0, false, &count, &report), VAULT_OK);
    vault_string_free(report);

    /* A tampered blob does not decrypt. */
    char *tid = NULL;
    CHECK_STATUS(vault_put(h, other, "tamper", "lease", NULL, "application/pdf", (const uint8_t *)"0123456789", 10, &tid), VAULT_OK);
    CHECK_STATUS(vault_delete(h, tenant, id), VAULT_OK);
    CHECK_STATUS(vault_delete(h, tenant, fid), VAULT_OK);
    char blob[1024];
    CHECK(find_blob(blob, sizeof blob));
    {
        FILE *f = fopen(blob, "r+b");
        CHECK(f != NULL);
        if (f) { fseek(f, 80, SEEK_SET); int c = fgetc(f); fseek(f, 80, SEEK_SET); fputc(c ^ 1, f); fclose(f); }
    }
    CHECK_STATUS(vault_get(h, other, tid, &buf, &len), VAULT_AUTHENTICATION);
    vault_string_free(tid);

    /* Erasure. */
    char *eid = NULL;
    CHECK_STATUS(vault_put(h, tenant, "erase-me", "id_document", "passport.jpg", "image/jpeg", (const uint8_t *)"face", 4, &eid), VAULT_OK);
    CHECK_STATUS(vault_erase_applicant(h, tenant, "erase-me", &receipt), VAULT_OK);
    CHECK(receipt && strstr(receipt, "\"documents\":1") && !strstr(receipt, "erase-me") && !strstr(receipt, "passport"));
    vault_string_free(receipt);
    CHECK_STATUS(vault_get(h, tenant, eid, &buf, &len), VAULT_NOT_FOUND);
    vault_string_free(eid);

    /* The bare stream format with a caller-held key. */
    uint8_t key[32];
    for (int i = 0; i < 32; i++) key[i] = (uint8_t)i;
    uint8_t *sealed = NULL, *opened = NULL;
    size_t sealed_len = 0, opened_len = 0;
    CHECK_STATUS(vault_stream_seal(key, 32, "t", "a", "d", "c", (const uint8_t *)text, strlen(text), &sealed, &sealed_len), VAULT_OK);
    CHECK(sealed_len == 74 + strlen(text) + 16);
    CHECK_STATUS(vault_stream_open(key, 32, "t", "a", "d", "c", sealed, sealed_len, &opened, &opened_len), VAULT_OK);
    CHECK(opened_len == strlen(text) && memcmp(opened, text, opened_len) == 0);
    vault_buffer_free(opened, opened_len);
    CHECK_STATUS(vault_stream_open(key, 32, "t", "a", "d", "other", sealed, sealed_len, &opened, &opened_len), VAULT_AUTHENTICATION);
    sealed[sealed_len - 1] ^= 1;
    CHECK_STATUS(vault_stream_open(key, 32, "t", "a", "d", "c", sealed, sealed_len, &opened, &opened_len), VAULT_AUTHENTICATION);
    CHECK_STATUS(vault_stream_open(key, 32, "t", "a", "d", "c", sealed, 10, &opened, &opened_len), VAULT_MALFORMED);
    CHECK_STATUS(vault_stream_seal(key, 31, "t", "a", "d", "c", (const uint8_t *)text, 3, &sealed, &sealed_len), VAULT_INVALID_ARGUMENT);
    CHECK_STATUS(vault_stream_seal(NULL, 32, "t", "a", "d", "c", (const uint8_t *)text, 3, &sealed, &sealed_len), VAULT_NULL_POINTER);
    vault_buffer_free(sealed, 74 + strlen(text) + 16);
    char sealed_path[512], opened_path[512];
    snprintf(sealed_path, sizeof sealed_path, "%s/sealed.vlt", dir);
    snprintf(opened_path, sizeof opened_path, "%s/opened.bin", dir);
    CHECK_STATUS(vault_stream_seal_file(key, 32, "t", "a", "d", "c", in_path, sealed_path), VAULT_OK);
    CHECK_STATUS(vault_stream_open_file(key, 32, "t", "a", "d", "c", sealed_path, opened_path), VAULT_OK);
    {
        struct stat st;
        CHECK(stat(opened_path, &st) == 0 && st.st_size == 300000);
    }
    CHECK_STATUS(vault_stream_open_file(key, 32, "t", "a", "d", "x", sealed_path, opened_path), VAULT_AUTHENTICATION);
    CHECK_STATUS(vault_stream_seal_file(key, 32, "t", "a", "d", "c", in_path, in_path), VAULT_INVALID_ARGUMENT);

    /* Four threads on one handle. */
    pthread_t threads[4];
    struct job jobs[4];
    for (int i = 0; i < 4; i++) { jobs[i].n = i; pthread_create(&threads[i], NULL, worker, &jobs[i]); }
    for (int i = 0; i < 4; i++) { pthread_join(threads[i], NULL); CHECK(jobs[i].ok); }

    vault_string_free(id);
    vault_string_free(fid);
    vault_string_free(tenant);
    vault_string_free(other);
    vault_string_free(NULL);
    vault_buffer_free(NULL, 0);
    vault_close(h);
    vault_close(NULL);

    if (failures) {
        fprintf(stderr, "%d C ABI check(s) failed\n", failures);
        return 1;
    }
    printf("all C ABI checks passed\n");
    return 0;
}
