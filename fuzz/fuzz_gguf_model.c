/* fuzz_gguf_model.c - libFuzzer driver for the GGUF model loader
 * (src/gguf_model.c): the input is a whole .gguf model file.
 *
 * gguf_model_load() takes a path and maps the file itself, so each input is
 * written to a memfd and loaded as /proc/self/fd/N.  When the load
 * succeeds, the model must be usable: its config passes
 * bert_config_check(), every weight pointer is set, and a short text is
 * tokenized and run through bert_forward() (ASan then sees any weight view
 * that is shorter than its shape claims).  The seeds are tiny BERT models
 * (hidden size 4 or 32, one or two layers, F32/F16/BF16/Q8_0, separate and
 * fused QKV) written by fuzz/make_seeds.c, so most mutations get deep into
 * the loader.
 *
 * Seeds: fuzz/corpus/gguf_model/. */
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bert.h"
#include "fuzz.h"
#include "gguf_model.h"
#include "kernels.h"

static int memfd = -1;
static char memfd_path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    memfd = memfd_create("fuzz-gguf-model", MFD_CLOEXEC);
    if (memfd < 0) {
        perror("fuzz_gguf_model: memfd_create");
        exit(1);
    }
    snprintf(memfd_path, sizeof memfd_path, "/proc/self/fd/%d", memfd);
    kern_init();
    return 0;
}

static void write_input(const uint8_t *data, size_t size)
{
    FUZZ_CHECK(ftruncate(memfd, 0) == 0, "ftruncate");
    size_t done = 0;
    while (done < size) {
        ssize_t n = pwrite(memfd, data + done, size - done, (off_t)done);
        FUZZ_CHECK(n > 0, "pwrite");
        done += (size_t)n;
    }
}

static void check_layer(const bert_layer *L, int l)
{
    FUZZ_CHECK(L->q.data && L->k.data && L->v.data && L->o.data &&
                   L->up.data && L->down.data,
               "layer %d: a matrix is missing", l);
    FUZZ_CHECK(L->q_b && L->k_b && L->v_b && L->o_b && L->attn_ln_g &&
                   L->attn_ln_b && L->up_b && L->down_b && L->out_ln_g &&
                   L->out_ln_b,
               "layer %d: a vector is missing", l);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    write_input(data, size);
    bert_config cfg;
    tok_tokenizer *tok = NULL;
    gguf_weights gw;
    bert_weights w;
    lode_error err = {0};
    int rc = gguf_model_load(memfd_path, &cfg, &tok, &gw, &w, &err);
    if (rc) {
        FUZZ_CHECK(tok == NULL && gw.file == NULL && err.code == rc &&
                       err.message[0],
                   "refused (%d) without a message or with leftovers", rc);
        /* A missing key is LODE_ENOTFOUND (gguf_get_int's answer). */
        FUZZ_CHECK(rc == LODE_EFORMAT || rc == LODE_EUNSUPPORTED ||
                       rc == LODE_ENOTFOUND,
                   "unexpected error %d: %s", rc, err.message);
        return 0;
    }
    FUZZ_CHECK(tok != NULL && gw.file != NULL, "loaded without parts");
    FUZZ_CHECK(bert_config_check(&cfg, &err) == 0, "config: %s",
               err.message);
    FUZZ_CHECK(tok_vocab_size(tok) <= cfg.vocab_size,
               "tokenizer has %d ids, the embeddings %d rows",
               tok_vocab_size(tok), cfg.vocab_size);
    FUZZ_CHECK(w.word.data && w.position && w.token_type && w.embd_ln_g &&
                   w.embd_ln_b && w.layers,
               "an embedding tensor is missing");
    for (int l = 0; l < cfg.n_layers; l++)
        check_layer(&w.layers[l], l);

    /* One short sequence through the whole network. */
    static const char text[] = "Hello, world! [SEP] ##ing caf\xc3\xa9";
    int32_t *ids = malloc((size_t)cfg.max_seq_length * sizeof *ids);
    float *out = malloc((size_t)cfg.hidden * sizeof *out);
    FUZZ_CHECK(ids && out, "out of memory");
    int n_ids = 0;
    rc = tok_encode(tok, text, sizeof text - 1, cfg.max_seq_length, ids,
                    &n_ids, NULL, NULL, &err);
    FUZZ_CHECK(rc == 0, "tokenize: %s", err.message);
    bert_scratch scratch = {0};
    rc = bert_forward(&cfg, &w, &scratch, NULL, ids, &n_ids, 1, out, &err);
    FUZZ_CHECK(rc == 0 || rc == LODE_ENOMEM, "forward: %s", err.message);
    if (rc == 0)
        fuzz_touch(out, (size_t)cfg.hidden * sizeof *out);
    bert_scratch_free(&scratch);
    free(ids);
    free(out);
    tok_free(tok);
    gguf_weights_free(&gw);
    return 0;
}
