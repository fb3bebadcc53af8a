/* tokenizer_driver.c - line-oriented front end to the tokenizer, used by
 * tests/tokenizer_compare.py to compare lode with Hugging Face over
 * millions of strings.  Not a unit test (no test_ prefix, so `make test`
 * does not build it); build it by hand:
 *
 *   make BUILD=build-tok build-tok/liblode.a
 *   cc -O2 -Isrc -o build-tok/tokenizer_driver tests/tokenizer_driver.c \
 *      build-tok/liblode.a $(pkg-config --libs jansson libutf8proc) -pthread -lm
 *
 * Usage: tokenizer_driver VOCAB LOWER STRIP CJK CLEAN MAX_TOKENS MODE
 *   VOCAB       vocab.txt, or a tokenizer.json (by its name)
 *   STRIP       1, 0, or -1 (follow LOWER)
 *   MODE        ids: print "ids;offsets;n_full" per line
 *               words: print the pre-tokenized words, hex, space separated
 * Each stdin line is one text, hex-encoded (so any bytes fit).  An error
 * prints "ERR <code> <message>".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer.h"

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int print_word(void *ctx, const char *w, size_t len, size_t start,
                      size_t end)
{
    int *first = ctx;
    if (!*first)
        putchar(' ');
    *first = 0;
    if (!w)
        fputs("LONG", stdout);
    for (size_t i = 0; i < len; i++)
        printf("%02x", (unsigned char)w[i]);
    printf("@%zu-%zu", start, end);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 8) {
        fprintf(stderr, "usage: %s VOCAB LOWER STRIP CJK CLEAN MAX MODE\n",
                argv[0]);
        return 2;
    }
    tok_options o = {atoi(argv[2]), atoi(argv[3]), atoi(argv[4]),
                     atoi(argv[5])};
    int max_tokens = atoi(argv[6]);
    int words = strcmp(argv[7], "words") == 0;
    lode_error err;
    tok_tokenizer *tok;
    size_t plen = strlen(argv[1]);
    int rc = plen >= 5 && strcmp(argv[1] + plen - 5, ".json") == 0
                 ? tok_load_tokenizer_json(argv[1], &o, &tok, &err)
                 : tok_load_vocab_txt(argv[1], &o, &tok, &err);
    if (rc) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    size_t cap = 1 << 20;
    char *line = malloc(cap), *text = malloc(cap);
    int32_t *ids = malloc(sizeof *ids * (size_t)max_tokens);
    int32_t *offs = malloc(sizeof *offs * 2 * (size_t)max_tokens);
    ssize_t n;
    while ((n = getline(&line, &cap, stdin)) >= 0) {
        text = realloc(text, cap);
        size_t len = 0;
        for (ssize_t i = 0; i + 1 < n && line[i] != '\n'; i += 2)
            text[len++] = (char)(hexval(line[i]) * 16 + hexval(line[i + 1]));
        if (words) {
            int first = 1;
            rc = tok_words(tok, text, len, print_word, &first, &err);
        } else {
            int n_ids, n_full;
            rc = tok_encode(tok, text, len, max_tokens, ids, &n_ids, &n_full,
                            offs, &err);
            if (!rc) {
                for (int i = 0; i < n_ids; i++)
                    printf("%s%d", i ? " " : "", ids[i]);
                putchar(';');
                for (int i = 0; i < n_ids; i++)
                    printf("%s%d,%d", i ? " " : "", offs[2 * i],
                           offs[2 * i + 1]);
                printf(";%d", n_full);
            }
        }
        if (rc)
            printf("ERR %d %s", rc, err.message);
        putchar('\n');
    }
    tok_free(tok);
    free(line);
    free(text);
    free(ids);
    free(offs);
    return 0;
}
