/* examples_open with a model's vocabulary: ids of a file prepared on its own
 * are mapped symbol by symbol, so its examples decode to the same text and
 * batches hold the model's ids; a symbol the model lacks is an error naming
 * the symbol and the first example holding it. */
#include <stdio.h>
#include <string.h>

#include "charnn/common.h"
#include "charnn/examples.h"
#include "testlib.h"

static const char *prepare(const char *dir, const char *name, const char *jsonl, char *out,
                           size_t cap)
{
    char in[512];
    snprintf(in, sizeof in, "%s/%s.jsonl", dir, name);
    snprintf(out, cap, "%s/%s.h5", dir, name);
    testlib_write_file(in, jsonl, strlen(jsonl));
    examples_prepare_options o;
    examples_prepare_options_init(&o);
    const char *inputs[1] = {in};
    o.inputs = inputs;
    o.n_inputs = 1;
    o.out_path = out;
    CU_ASSERT_FATAL(examples_prepare(&o) == 0);
    return out;
}

static void decode(const examples_file *ex, const vocab *v, const int32_t *ids, size_t n,
                   char *text)
{
    (void)ex;
    size_t at = 0;
    for (size_t k = 0; k < n; k++)
        at += (size_t)vocab_decode(v, ids[k], text + at);
    text[at] = '\0';
}

static void test_mapped(void)
{
    const char *dir = testlib_scratch_dir("examples_vocab.d");
    char big[512], small[512];
    /* the model's data has more symbols than the file read with its vocabulary */
    prepare(dir, "big", "{\"text\":\"abcxyz\",\"label\":\"p\"}\n{\"text\":\"zzz\",\"label\":\"n\"}\n",
            big, sizeof big);
    prepare(dir, "small", "{\"text\":\"zax\",\"label\":\"n\"}\n{\"text\":\"cab\",\"label\":\"p\"}\n",
            small, sizeof small);
    examples_file a, b;
    vocab v = {0};
    CU_ASSERT_FATAL(examples_open(&a, big, &v) == 0);
    CU_ASSERT_EQUAL(v.size, 6);
    CU_ASSERT_FATAL(examples_open(&b, small, &v) == 0);
    int32_t ids[8];
    char text[64];
    CU_ASSERT_FATAL(examples_read_tokens(&b, 0, ids) == 0);
    decode(&b, &v, ids, examples_length(&b, 0), text);
    CU_ASSERT_STRING_EQUAL(text, "zax");
    CU_ASSERT_EQUAL(ids[0], vocab_id(&v, 'z'));
    /* a batch holds the model's ids too */
    size_t idx[2] = {1, 0};
    int32_t x[2 * 3], len[2], y[2];
    CU_ASSERT_FATAL(examples_fill_batch(&b, idx, 2, 3, 0, x, len, y, NULL) == 0);
    CU_ASSERT_EQUAL(x[0], vocab_id(&v, 'c'));
    CU_ASSERT_EQUAL(x[1], vocab_id(&v, 'z'));
    CU_ASSERT_EQUAL(x[4], vocab_id(&v, 'b'));
    examples_close(&b);
    examples_close(&a);

    /* the other way round: the model lacks 'b' ... of "cab" */
    vocab w = {0};
    prepare(dir, "tiny", "{\"text\":\"zac\",\"label\":\"n\"}\n{\"text\":\"xyz\",\"label\":\"p\"}\n",
            small, sizeof small);
    CU_ASSERT_FATAL(examples_open(&a, small, &w) == 0);
    examples_close(&a);
    char want[1024];
    snprintf(want, sizeof want,
             "'%s/big.h5' example 0 (train split), character 2: character 'b' (U+0062) is not "
             "in the model's vocabulary",
             dir);
    CU_ASSERT_EQUAL(examples_open(&a, big, &w), -1);
    CU_ASSERT_STRING_EQUAL(cn_errmsg(), want);
    vocab_free(&w);
    vocab_free(&v);
}

int main(int argc, char **argv)
{
    CU_pSuite s = testlib_suite("examples_vocab");
    testlib_add(s, "a file read with a model's vocabulary", test_mapped);
    return testlib_run(argc, argv);
}
