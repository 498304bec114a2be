/* The memory plan: its parameter and activation counts equal what model_build
 * and model_work_init allocate; its estimate of a training run is within a
 * factor of 2 of the peak RSS that run really reaches (a small and a medium
 * model, above the peak of a 1-unit model that holds the same libraries and
 * text); a plan beyond the machine is refused with one line; and running out of
 * memory anyway exits 1 with one line instead of aborting. */
#define _DEFAULT_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "charnn/common.h"
#include "charnn/memplan.h"
#include "charnn/model.h"
#include "testlib.h"

static const model_config configs[] = {
    {.cell = CELL_LSTM, .vocab = 65, .layers = 2, .hidden = 128, .embed = 0, .dropout = 0.0f}, {.cell = CELL_GRU, .vocab = 30, .layers = 1, .hidden = 64, .embed = 0, .dropout = 0.0f},
    {.cell = CELL_RNN, .vocab = 100, .layers = 3, .hidden = 48, .embed = 16, .dropout = 0.2f}, {.cell = CELL_RNN, .vocab = 7, .layers = 1, .hidden = 8, .embed = 40, .dropout = 0.0f},
    {.cell = CELL_LSTM, .vocab = 200, .layers = 3, .hidden = 96, .embed = 32, .dropout = 0.5f}, {.cell = CELL_GRU, .vocab = 11, .layers = 2, .hidden = 300, .embed = 500, .dropout = 0.1f},
};

static void test_counts_match_the_model(void)
{
    for (size_t i = 0; i < sizeof configs / sizeof *configs; i++) {
        model m;
        model_build(&m, &configs[i]);
        CU_ASSERT_EQUAL(memplan_params(&configs[i]), m.n_params);
        const int shapes[][2] = {{1, 1}, {50, 50}, {17, 3}};
        for (size_t k = 0; k < 3; k++) {
            model_work w;
            model_work_init(&w, &m, shapes[k][0], shapes[k][1]);
            size_t owned = 0;
            for (int j = 0; j < w.n_owned; j++)
                owned += w.owned[j].n;
            CU_ASSERT_EQUAL(memplan_work_floats(&configs[i], shapes[k][0], shapes[k][1]), owned);
            model_work_free(&w);
        }
        model_free(&m);
    }
}

/* Run argv (the charnn binary) with stdout and stderr to files; its peak RSS in
 * bytes, or -1 when it failed. */
static double run_peak(char *const argv[])
{
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen("memplan_run.out", "w", stdout) || !freopen("memplan_run.err", "w", stderr))
            _exit(127);
        execv(argv[0], argv);
        _exit(127);
    }
    int status;
    struct rusage ru;
    if (pid < 0 || wait4(pid, &status, 0, &ru) != pid || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0)
        return -1.0;
    return (double)ru.ru_maxrss * 1024.0;
}

/* Train LSTM layers x hidden on text.txt (vocabulary V) for 2 steps of (T, B);
 * peak RSS in bytes. */
static double train_peak(int layers, int hidden, int T, int B)
{
    char l[16], h[16], t[16], b[16];
    snprintf(l, sizeof l, "%d", layers);
    snprintf(h, sizeof h, "%d", hidden);
    snprintf(t, sizeof t, "%d", T);
    snprintf(b, sizeof b, "%d", B);
    CU_ASSERT_FATAL(testlib_system("rm -rf memplan_run") == 0);
    char *argv[] = {CHARNN_BIN, "train", "--data", "memplan_text.txt", "--out", "memplan_run",
                    "--cell", "lstm", "--layers", l, "--hidden", h, "--seq", t, "--batch", b,
                    "--steps", "2", "--eval-every", "0", "--threads", "1", "--no-progress",
                    NULL};
    return run_peak(argv);
}

static void test_estimate_against_peak_rss(void)
{
    /* an ASCII text: its vocabulary is its distinct bytes */
    CU_ASSERT_FATAL(testlib_system("'%s' generate --chars 60000 --seed 3 > memplan_text.txt",
                                   CHARNN_BIN) == 0);
    FILE *f = fopen("memplan_text.txt", "rb");
    CU_ASSERT_FATAL(f != NULL);
    int seen[256] = {0}, c, V = 0;
    while ((c = fgetc(f)) != EOF) {
        CU_ASSERT_FATAL(c < 128);
        V += !seen[c];
        seen[c] = 1;
    }
    fclose(f);
    double base = train_peak(1, 1, 1, 1);
    CU_ASSERT_FATAL(base > 0.0);
    const struct {
        int layers, hidden, T, B;
    } runs[] = {{1, 128, 64, 64}, {2, 512, 100, 32}};
    for (size_t i = 0; i < 2; i++) {
        model_config cfg = {.cell = CELL_LSTM, .vocab = V, .layers = runs[i].layers, .hidden = runs[i].hidden, .embed = 0, .dropout = 0.0f};
        double plan = memplan_train_bytes(&cfg, 2, runs[i].T, runs[i].B);
        double peak = train_peak(runs[i].layers, runs[i].hidden, runs[i].T, runs[i].B);
        CU_ASSERT_FATAL(peak > 0.0);
        double grown = peak - base;
        printf("\n    LSTM %d x %d T%d B%d: planned %.1f MiB, measured %.1f MiB above the "
               "%.1f MiB of a 1-unit model (peak %.1f MiB)",
               runs[i].layers, runs[i].hidden, runs[i].T, runs[i].B, plan / 1048576.0,
               grown / 1048576.0, base / 1048576.0, peak / 1048576.0);
        CU_ASSERT(grown > 0.5 * plan);
        CU_ASSERT(grown < 2.0 * plan);
    }
}

static void test_check_refuses_what_does_not_fit(void)
{
    const char *source;
    double limit = memplan_limit_bytes(&source);
    CU_ASSERT(limit > 0.0);
    CU_ASSERT_EQUAL(memplan_check(1e6, 1e6, "a small plan"), 0);
    CU_ASSERT_EQUAL(memplan_check(2.0 * limit, 2.0 * limit, "a large plan"), -1);
    CU_ASSERT(strncmp(cn_errmsg(), "a large plan needs ", 19) == 0);
    CU_ASSERT(strstr(cn_errmsg(), source) != NULL);
    /* the README's --hidden 65536 */
    model_config big = {.cell = CELL_LSTM, .vocab = 65, .layers = 2, .hidden = 65536, .embed = 0, .dropout = 0.0f};
    CU_ASSERT_EQUAL(memplan_check_train(&big, 2, 50, 50), -1);
    CU_ASSERT(memplan_train_bytes(&big, 2, 50, 50) > 800e9);
    CU_ASSERT(strchr(cn_errmsg(), '\n') == NULL);
}

static void test_out_of_memory_exits_1(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen("memplan_oom.err", "w", stderr))
            _exit(127);
        /* more than any address space can hold */
        void *p = cn_xmalloc((size_t)1 << 62);
        free(p);
        _exit(0);
    }
    int status;
    CU_ASSERT_FATAL(waitpid(pid, &status, 0) == pid);
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 1);
    CU_ASSERT(testlib_system("test \"$(wc -l < memplan_oom.err)\" = 1 && "
                             "grep -q '^charnn: out of memory: cannot allocate' memplan_oom.err") ==
              0);
}

int main(int argc, char **argv)
{
    CU_pSuite s = testlib_suite("memplan");
    testlib_add(s, "parameter and activation counts match model_build/model_work_init",
                test_counts_match_the_model);
    testlib_add(s, "a plan beyond the machine is refused with one line",
                test_check_refuses_what_does_not_fit);
    testlib_add(s, "out of memory exits 1 with one line", test_out_of_memory_exits_1);
    testlib_add(s, "the training estimate is within 2x of the measured peak RSS",
                test_estimate_against_peak_rss);
    return testlib_run(argc, argv);
}
