/* The lecture's "hello" example: vocabulary [h, e, l, o], one-hot inputs,
 * a vanilla RNN with hidden size 3 and h0 = 0 learns to predict e, l, l, o
 * from h, e, l, l. The second 'l' must be followed by 'o' and the first by
 * 'l', so the prediction at 'l' depends on the hidden state: a model that
 * ignores its recurrence cannot pass. */
#include <math.h>
#include <string.h>

#include "charnn/model.h"
#include "charnn/optim.h"
#include "charnn/vocab.h"
#include "testlib.h"

static int argmax(const float *p, int V)
{
    int best = 0;
    for (int v = 1; v < V; v++)
        if (p[v] > p[best])
            best = v;
    return best;
}

static void test_hello(void)
{
    vocab voc = {0};
    const char *word = "hello";
    CU_ASSERT_EQUAL_FATAL(vocab_build(&voc, (const uint8_t *)word, 5, VOCAB_CODEPOINTS, "hello"), 0);
    CU_ASSERT_EQUAL_FATAL(voc.size, 4);
    int32_t ids[5];
    size_t n = 0;
    CU_ASSERT_EQUAL_FATAL(vocab_encode(&voc, (const uint8_t *)word, 5, ids, &n, "hello"), 0);
    const int32_t *x = ids, *y = ids + 1; /* h e l l -> e l l o */

    model_config cfg = {.cell = CELL_RNN, .vocab = 4, .layers = 1, .hidden = 3};
    model m;
    model_build(&m, &cfg);
    model_init_uniform(&m, 0.5f, 1, NAN);
    model_work w;
    model_work_init(&w, &m, 4, 1);
    model_state s;
    model_state_init(&s, &cfg, 1);
    optim_config oc;
    optim_config_default(&oc, OPTIM_ADAM);
    optim o;
    optim_init(&o, &oc, m.n_params);

    double loss = 0.0;
    for (int step = 0; step < 300; step++) {
        model_state_reset(&s); /* h0 = 0 every time */
        loss = model_forward(&m, &w, &s, x, y, 4, 1, 0) / 4.0;
        model_zero_grads(&m);
        model_backward(&m, &w, x, y, 0.25f, NULL, NULL);
        optim_step(&o, m.params, m.grads, 0.05f, NULL);
    }
    model_state_reset(&s);
    model_forward(&m, &w, &s, x, y, 4, 0, 0);
    char predicted[5] = {0};
    for (int t = 0; t < 4; t++) {
        char buf[4];
        int id = argmax(w.head.prob + (size_t)t * 4, 4);
        CU_ASSERT_EQUAL(vocab_decode(&voc, id, buf), 1);
        predicted[t] = buf[0];
        /* confident, not a coin flip */
        CU_ASSERT(w.head.prob[(size_t)t * 4 + y[t]] > 0.8f);
    }
    CU_ASSERT_STRING_EQUAL(predicted, "ello");
    CU_ASSERT(loss < 0.2);
    optim_free(&o);
    model_state_free(&s);
    model_work_free(&w);
    model_free(&m);
    vocab_free(&voc);
}

int main(int argc, char **argv)
{
    CU_pSuite s = testlib_suite("hello");
    testlib_add(s, "rnn learns hello -> ello", test_hello);
    return testlib_run(argc, argv);
}
