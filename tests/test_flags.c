/* Tests for the flag parser: values of every kind, the exact usage-error line
 * for each way a flag can be wrong, choices naming their accepted values, a
 * parse callback seeing every occurrence, positional arguments, --help. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "charnn/common.h"
#include "charnn/config.h"
#include "charnn/flags.h"
#include "testlib.h"

/* The command every test parses for: "charnn t". */
typedef struct {
    int n;
    int64_t big;
    double x;
    const char *s;
    char path[CONFIG_PATH_MAX];
    int on;
    int color;
    int sum; /* the callback adds every --add */
    const char *pos[2];
    int n_pos;
} opts;

enum { GIVEN_N = 1u << 0, GIVEN_COLOR = 1u << 1 };

static const flag_choice colors[] = {{"red", 10}, {"green", 20}, {"blue", 30}, {NULL, 0}};

static int parse_add(const char *value, void *dst)
{
    if (strcmp(value, "one") == 0)
        *(int *)dst += 1;
    else if (strcmp(value, "two") == 0)
        *(int *)dst += 2;
    else
        return cn_err("--add '%s' is neither one nor two", value);
    return 0;
}

/* Parse the words of `args` for "charnn t"; returns flags_parse_or_exit's
 * status; the first line of stderr goes into first (empty when nothing was
 * printed); stderr and stdout stay in flags_err.txt and flags_out.txt. */
static int parse(opts *o, unsigned *given, const char *args, char *first, size_t n)
{
    memset(o, 0, sizeof *o);
    o->n = 5;
    const flag_spec flags[] = {
        FLAG("n", F_INT, &o->n, GIVEN_N, "a count", 1, 10),
        FLAG("big", F_I64, &o->big, 0, "a big count", RANGE_NONNEG),
        FLAG("x", F_DOUBLE, &o->x, 0, "a number", -1, 1),
        FLAG("s", F_STR, &o->s, 0, "a string", 0, 0),
        FLAG("path", F_PATH, o->path, 0, "a path", 0, 0),
        FLAG("on", F_BOOL, &o->on, 0, "a switch", 0, 0),
        FLAG_CHOICE("color", &o->color, GIVEN_COLOR, "red | green | blue", colors),
        FLAG_CUSTOM("add", &o->sum, 0, "one | two, repeatable", parse_add),
    };
    flag_table t = {"t", "[A [B]] [flags]", flags, (int)(sizeof flags / sizeof flags[0]),
                    o->pos, 2, &o->n_pos};
    static char line[4096];
    char *argv[32];
    int argc = 0;
    snprintf(line, sizeof line, "%s", args);
    for (char *tok = strtok(line, " "); tok && argc < 31; tok = strtok(NULL, " "))
        argv[argc++] = tok;
    fflush(stderr);
    fflush(stdout);
    int saved_err = dup(STDERR_FILENO), saved_out = dup(STDOUT_FILENO);
    int fd = open("flags_err.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int fo = open("flags_out.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, STDERR_FILENO);
    dup2(fo, STDOUT_FILENO);
    close(fd);
    close(fo);
    int status = 0;
    int stop = flags_parse_or_exit(&t, argc, argv, given, &status);
    fflush(stderr);
    fflush(stdout);
    dup2(saved_err, STDERR_FILENO);
    dup2(saved_out, STDOUT_FILENO);
    close(saved_err);
    close(saved_out);
    first[0] = '\0';
    FILE *f = fopen("flags_err.txt", "r");
    if (f) {
        if (fgets(first, (int)n, f))
            first[strcspn(first, "\n")] = '\0';
        fclose(f);
    }
    CU_ASSERT_EQUAL(stop, status != 0 || strstr(args, "--help") != NULL);
    return status;
}

static int first_is(const char *got, const char *want)
{
    if (strcmp(got, want) == 0)
        return 1;
    printf("\n    first line '%s', want '%s'", got, want);
    return 0;
}

static void test_values(void)
{
    opts o;
    unsigned given = 0;
    char first[512];
    CU_ASSERT_EQUAL(parse(&o, &given, "--n 7 --big=123456789012 --x -0.5 --s hello --path a/b "
                                      "--on --color green A B",
                          first, sizeof first),
                    0);
    CU_ASSERT(first_is(first, ""));
    CU_ASSERT_EQUAL(o.n, 7);
    CU_ASSERT_EQUAL(o.big, 123456789012LL);
    CU_ASSERT_DOUBLE_EQUAL(o.x, -0.5, 0);
    CU_ASSERT_STRING_EQUAL(o.s, "hello");
    CU_ASSERT_STRING_EQUAL(o.path, "a/b");
    CU_ASSERT_EQUAL(o.on, 1);
    CU_ASSERT_EQUAL(o.color, 20);
    CU_ASSERT_EQUAL(given, GIVEN_N | GIVEN_COLOR);
    CU_ASSERT_EQUAL(o.n_pos, 2);
    CU_ASSERT_STRING_EQUAL(o.pos[0], "A");
    CU_ASSERT_STRING_EQUAL(o.pos[1], "B");
    /* defaults stay when a flag is not given; no given bits */
    given = 0;
    CU_ASSERT_EQUAL(parse(&o, &given, "", first, sizeof first), 0);
    CU_ASSERT_EQUAL(o.n, 5);
    CU_ASSERT_EQUAL(o.n_pos, 0);
    CU_ASSERT_EQUAL(given, 0u);
}

static void test_callback_repeats(void)
{
    opts o;
    unsigned given = 0;
    char first[512];
    CU_ASSERT_EQUAL(parse(&o, &given, "--add one --add two --add=two", first, sizeof first), 0);
    CU_ASSERT_EQUAL(o.sum, 5);
    CU_ASSERT_EQUAL(parse(&o, &given, "--add one --add three", first, sizeof first), 2);
    CU_ASSERT(first_is(first, "charnn t: --add 'three' is neither one nor two"));
}

static void test_errors(void)
{
    static const struct {
        const char *args, *want;
    } cases[] = {
        {"--n 0", "charnn t: bad value '0' for --n: must be between 1 and 10"},
        {"--n 11", "charnn t: bad value '11' for --n: must be between 1 and 10"},
        {"--n 2.5", "charnn t: bad value '2.5' for --n: expected an integer"},
        {"--n abc", "charnn t: bad value 'abc' for --n: expected an integer"},
        {"--big -1", "charnn t: bad value '-1' for --big: must be at least 0"},
        {"--x 1.5", "charnn t: bad value '1.5' for --x: must be between -1 and 1"},
        {"--x nan", "charnn t: bad value 'nan' for --x: expected a number"},
        {"--path=", "charnn t: bad value '' for --path: expected a path"},
        {"--color pink", "charnn t: bad value 'pink' for --color: expected red, green or blue"},
        {"--on=1", "charnn t: flag '--on' takes no value"},
        {"--n", "charnn t: flag '--n' needs a value"},
        {"--nope 1", "charnn t: unknown flag '--nope'"},
        {"A B C", "charnn t: unexpected argument 'C'"},
        {"-n 3", "charnn t: unexpected argument '-n'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        opts o;
        unsigned given = 0;
        char first[512];
        CU_ASSERT_EQUAL(parse(&o, &given, cases[i].args, first, sizeof first), FLAGS_EXIT_USAGE);
        CU_ASSERT(first_is(first, cases[i].want));
        /* the usage follows the line */
        CU_ASSERT(testlib_system("sed -n 2p flags_err.txt | grep -qxF 'usage: charnn t [A [B]] "
                                 "[flags]'") == 0);
    }
}

static void test_help(void)
{
    opts o;
    unsigned given = 0;
    char first[512];
    /* --help wins over what follows it, even a bad flag */
    CU_ASSERT_EQUAL(parse(&o, &given, "--n 3 --help --nope", first, sizeof first), 0);
    CU_ASSERT(first_is(first, ""));
    CU_ASSERT(testlib_system("head -n 1 flags_out.txt | grep -qxF 'usage: charnn t [A [B]] "
                             "[flags]'") == 0);
    CU_ASSERT(testlib_system("grep -qE '^  --color +red \\| green \\| blue$' flags_out.txt") ==
              0);
    CU_ASSERT(testlib_system("grep -qE '^  --help +show this screen$' flags_out.txt") == 0);
}

static void test_usage_error_format(void)
{
    const flag_table t = {"t", "", NULL, 0, NULL, 0, NULL};
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    int fd = open("flags_err.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, STDERR_FILENO);
    close(fd);
    int rc = flags_usage_error(&t, "%d of '%s' at %.1f", 3, "x", 0.5);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    CU_ASSERT_EQUAL(rc, FLAGS_EXIT_USAGE);
    CU_ASSERT(testlib_system("head -n 1 flags_err.txt | grep -qxF \"charnn t: 3 of 'x' at 0.5\"") ==
              0);
    CU_ASSERT(testlib_system("sed -n 2p flags_err.txt | grep -qxF 'usage: charnn t'") == 0);
}

int main(int argc, char **argv)
{
    CU_pSuite s = testlib_suite("flags");
    testlib_add(s, "values of every kind, given bits, positionals", test_values);
    testlib_add(s, "a parse callback sees every occurrence", test_callback_repeats);
    testlib_add(s, "one exact line per error, then the usage", test_errors);
    testlib_add(s, "--help prints the usage to stdout and stops", test_help);
    testlib_add(s, "flags_usage_error formats like printf", test_usage_error_format);
    return testlib_run(argc, argv);
}
