#include "testlib.h"

#include "charnn/dist.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

CU_pSuite testlib_suite(const char *name)
{
    if (CU_get_registry() == NULL && CU_initialize_registry() != CUE_SUCCESS) {
        fprintf(stderr, "testlib: cannot initialise the CUnit registry\n");
        exit(2);
    }
    CU_pSuite s = CU_add_suite(name, NULL, NULL);
    if (!s) {
        fprintf(stderr, "testlib: cannot add suite '%s'\n", name);
        exit(2);
    }
    return s;
}

void testlib_add(CU_pSuite s, const char *name, void (*fn)(void))
{
    if (!CU_add_test(s, name, fn)) {
        fprintf(stderr, "testlib: cannot add test '%s'\n", name);
        exit(2);
    }
}

int testlib_run(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failures = CU_get_number_of_failures();
    unsigned run = CU_get_number_of_tests_run();
    CU_cleanup_registry();
    if (run == 0) {
        fprintf(stderr, "testlib: no test ran\n");
        return 1;
    }
    return failures ? 1 : 0;
}

int testlib_run_mpi(void)
{
    if (dist_rank() == 0) {
        CU_basic_set_mode(CU_BRM_VERBOSE);
        CU_basic_run_tests();
    } else {
        CU_run_all_tests();
    }
    int failures = (int)CU_get_number_of_failures();
    int run = (int)CU_get_number_of_tests_run();
    CU_cleanup_registry();
    failures = dist_allreduce_sum_int(failures + (run == 0));
    return failures;
}

double testlib_max_rel_diff(const float *a, const float *b, size_t n)
{
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        double s = fabs((double)b[i]);
        d /= s > 1.0 ? s : 1.0;
        if (!(d <= worst))
            worst = isnan(d) ? INFINITY : d;
    }
    return worst;
}

void testlib_fill_uniform(float *x, size_t n, float scale, unsigned long long seed)
{
    unsigned long long s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        x[i] = scale * (2.0f * (float)((s >> 40) * (1.0 / 16777216.0)) - 1.0f);
    }
}

const char *testlib_write_file(const char *name, const void *data, size_t len)
{
    static char path[4096];
    snprintf(path, sizeof path, "%s", name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        fprintf(stderr, "testlib: cannot write '%s'\n", path);
        exit(2);
    }
    return path;
}

const char *testlib_scratch_dir(const char *name)
{
    static char path[4096];
    snprintf(path, sizeof path, "%s", name);
    if (testlib_system("rm -rf '%s' && mkdir -p '%s'", path, path) != 0) {
        fprintf(stderr, "testlib: cannot create '%s'\n", path);
        exit(2);
    }
    return path;
}

int testlib_system(const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int st = system(cmd);
    if (st == -1 || !WIFEXITED(st))
        return -1;
    return WEXITSTATUS(st);
}

void *testlib_read_dset(const char *path, const char *name, hid_t type, int *rank, hsize_t *dims)
{
    void *out = NULL;
    H5E_BEGIN_TRY
    {
        hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
        hid_t d = f >= 0 ? H5Dopen2(f, name, H5P_DEFAULT) : -1;
        hid_t sp = d >= 0 ? H5Dget_space(d) : -1;
        if (sp >= 0) {
            *rank = H5Sget_simple_extent_ndims(sp);
            H5Sget_simple_extent_dims(sp, dims, NULL);
            hssize_t n = H5Sget_simple_extent_npoints(sp);
            out = malloc((size_t)(n > 0 ? n : 1) * H5Tget_size(type));
            if (n > 0 && H5Dread(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) < 0) {
                free(out);
                out = NULL;
            }
        }
        H5Sclose(sp);
        H5Dclose(d);
        H5Fclose(f);
    }
    H5E_END_TRY;
    return out;
}
