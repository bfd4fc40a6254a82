/*
 * clientcert.c: an LD_PRELOAD shim that lets load generators which cannot present a client
 * certificate (wrk, h2load) take part in mutual TLS benchmarks.
 *
 * It wraps SSL_CTX_new() (wrk, h2load) and OpenSSL 3's SSL_CTX_new_ex() (the openssl command-line tools):
 * the real functions are found with dlsym(RTLD_NEXT), and every context they return is given the
 * certificate chain and key named by the environment:
 *   MESHWARD_BENCH_CERT       PEM file: the client certificate, then its intermediates
 *   MESHWARD_BENCH_KEY        PEM file: the matching private key
 *   MESHWARD_BENCH_NO_RESUME  "1": no session resumption (SSL_OP_NO_TICKET, client session cache off,
 *                             and no session kept across SSL_clear), so every connection is a full handshake
 * A certificate that does not load makes SSL_CTX_new fail (NULL) after saying why on stderr: a
 * benchmark that silently ran without a client certificate would measure rejected handshakes.
 *
 * Build (bench/proxy.sh does it): gcc -shared -fPIC -O2 -o clientcert.so clientcert.c -ldl -lssl -lcrypto
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

typedef SSL_CTX *(*ssl_ctx_new_fn)(const SSL_METHOD *method);
typedef SSL_CTX *(*ssl_ctx_new_ex_fn)(OSSL_LIB_CTX *libctx, const char *propq, const SSL_METHOD *method);
typedef int (*ssl_handshake_fn)(SSL *ssl);

static ssl_ctx_new_fn real_ssl_ctx_new;
static ssl_ctx_new_ex_fn real_ssl_ctx_new_ex;
static ssl_handshake_fn real_ssl_connect;
static ssl_handshake_fn real_ssl_do_handshake;
/* Set when MESHWARD_BENCH_NO_RESUME=1 configured a context: every handshake starts without a session. */
static int no_resume_wanted;
static pthread_once_t resolve_once = PTHREAD_ONCE_INIT;

/* libssl's SSL_CTX_new calls SSL_CTX_new_ex, which may come back through this library: configure once. */
static __thread int inside_ssl_ctx_new;

static void resolve_real_functions(void) {
    real_ssl_ctx_new = (ssl_ctx_new_fn)dlsym(RTLD_NEXT, "SSL_CTX_new");
    real_ssl_ctx_new_ex = (ssl_ctx_new_ex_fn)dlsym(RTLD_NEXT, "SSL_CTX_new_ex");
    real_ssl_connect = (ssl_handshake_fn)dlsym(RTLD_NEXT, "SSL_connect");
    real_ssl_do_handshake = (ssl_handshake_fn)dlsym(RTLD_NEXT, "SSL_do_handshake");
}

static void report_failure(const char *what, const char *file) {
    fprintf(stderr, "clientcert.so: cannot %s %s:\n", what, file);
    ERR_print_errors_fp(stderr);
}

/* Returns 1 when the context is ready, 0 when the configured certificate could not be used. */
static int configure_context(SSL_CTX *ctx) {
    const char *cert = getenv("MESHWARD_BENCH_CERT");
    const char *key = getenv("MESHWARD_BENCH_KEY");
    const char *no_resume = getenv("MESHWARD_BENCH_NO_RESUME");

    if (cert != NULL && *cert != '\0') {
        if (key == NULL || *key == '\0') key = cert; /* a combined PEM holds both */
        if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
            report_failure("load the certificate chain", cert);
            return 0;
        }
        if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
            report_failure("load the private key", key);
            return 0;
        }
        if (SSL_CTX_check_private_key(ctx) != 1) {
            report_failure("use the key: it does not match the certificate in", cert);
            return 0;
        }
    }
    if (no_resume != NULL && strcmp(no_resume, "1") == 0) {
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
        no_resume_wanted = 1;
    }
    return 1;
}

static SSL_CTX *configured(SSL_CTX *ctx) {
    if (ctx != NULL && !configure_context(ctx)) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

SSL_CTX *SSL_CTX_new(const SSL_METHOD *method) {
    pthread_once(&resolve_once, resolve_real_functions);
    if (real_ssl_ctx_new == NULL) {
        fprintf(stderr, "clientcert.so: the real SSL_CTX_new was not found (is libssl loaded?)\n");
        return NULL;
    }
    inside_ssl_ctx_new = 1;
    SSL_CTX *ctx = real_ssl_ctx_new(method);
    inside_ssl_ctx_new = 0;
    return configured(ctx);
}

SSL_CTX *SSL_CTX_new_ex(OSSL_LIB_CTX *libctx, const char *propq, const SSL_METHOD *method) {
    pthread_once(&resolve_once, resolve_real_functions);
    if (real_ssl_ctx_new_ex == NULL) {
        fprintf(stderr, "clientcert.so: the real SSL_CTX_new_ex was not found (is libssl loaded?)\n");
        return NULL;
    }
    SSL_CTX *ctx = real_ssl_ctx_new_ex(libctx, propq, method);
    return inside_ssl_ctx_new ? ctx : configured(ctx);
}

/*
 * wrk reuses one SSL object per connection slot: after a close it calls SSL_clear(), which keeps the last
 * session, so the next SSL_connect() offers its ticket and the server resumes (measured: half of wrk's
 * "Connection: close" handshakes against a Node server were resumed with only the context options above).
 * With NO_RESUME the session is dropped before a handshake starts (SSL_in_before: not mid-handshake).
 */
static void forget_session(SSL *ssl) {
    if (no_resume_wanted && ssl != NULL && SSL_in_before(ssl)) SSL_set_session(ssl, NULL);
}

int SSL_connect(SSL *ssl) {
    pthread_once(&resolve_once, resolve_real_functions);
    forget_session(ssl);
    return real_ssl_connect(ssl);
}

int SSL_do_handshake(SSL *ssl) {
    pthread_once(&resolve_once, resolve_real_functions);
    forget_session(ssl);
    return real_ssl_do_handshake(ssl);
}
