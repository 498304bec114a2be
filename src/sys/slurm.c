/* The Slurm job's end time and durations. See slurm.h. */
#include "charnn/slurm.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "charnn/common.h"

int slurm_parse_duration(const char *s, const char *what, double *seconds)
{
    static const char units[] = "hms";
    static const double unit_seconds[] = {3600.0, 60.0, 1.0};
    double total = 0.0;
    const char *p = s;
    int next_unit = 0, parts = 0;
    while (*p) {
        /* digits and a point only: no signs, exponents, hex or inf */
        const size_t len = strspn(p, "0123456789.");
        char *end;
        errno = 0;
        double v = len ? strtod(p, &end) : 0.0;
        if (len == 0 || end != p + len || errno != 0 || !isfinite(v))
            goto bad;
        p = end;
        if (*p == '\0') {
            /* a bare number: plain seconds, alone */
            if (parts > 0)
                goto bad;
            total = v;
            parts++;
            break;
        }
        const char *u = strchr(units, *p);
        if (!u || (int)(u - units) < next_unit)
            goto bad;
        next_unit = (int)(u - units) + 1;
        total += v * unit_seconds[u - units];
        parts++;
        p++;
    }
    if (parts == 0 || !(total > 0.0) || total > 1e9)
        goto bad;
    *seconds = total;
    return 0;
bad:
    return cn_err("bad value '%s' for %s: expected a duration above 0 such as 3h50m, 45m, 90s "
                  "or 5400 (seconds)",
                  s, what);
}

/* "2026-11-30T08:45:00", local time (squeue's %e) into Unix seconds; 1, 0
 * for no end (N/A, Unknown, NONE), -1 otherwise. */
static int parse_squeue_time(const char *s, double *end)
{
    if (strcmp(s, "N/A") == 0 || strcmp(s, "Unknown") == 0 || strcmp(s, "NONE") == 0 ||
        strcmp(s, "INVALID") == 0)
        return 0;
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    char tail;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%c", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
               &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &tail) != 6)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    tm.tm_isdst = -1;
    time_t t = mktime(&tm);
    if (t == (time_t)-1)
        return -1;
    *end = (double)t;
    return 1;
}

static int squeue_end_time(const char *job, double *end)
{
    /* a job id is digits, with _ and + for array and heterogeneous jobs */
    if (strspn(job, "0123456789_+") != strlen(job) || strlen(job) > 64)
        return cn_err("SLURM_JOB_ID '%.64s' is not a job id", job);
    char cmd[128], line[128] = "";
    snprintf(cmd, sizeof cmd, "squeue -h -j %s -o %%e 2>/dev/null", job);
    FILE *f = popen(cmd, "r");
    if (!f)
        return 0;
    int got = fgets(line, sizeof line, f) != NULL;
    int status = pclose(f);
    if (!got || status != 0)
        return 0; /* squeue missing, or the job not known to it: no end known */
    line[strcspn(line, "\r\n")] = '\0';
    int rc = parse_squeue_time(line, end);
    if (rc < 0)
        return cn_err("cannot read the end time '%.64s' that squeue gives for job %s", line,
                      job);
    return rc;
}

int slurm_job_end_time(double *end)
{
    const char *env = getenv("SLURM_JOB_END_TIME");
    if (env && *env) {
        char *stop;
        errno = 0;
        long long v = strtoll(env, &stop, 10);
        if (stop == env || *stop != '\0' || errno != 0 || v <= 0)
            return cn_err("SLURM_JOB_END_TIME '%.64s' is not a time in Unix seconds", env);
        *end = (double)v;
        return 1;
    }
    const char *job = getenv("SLURM_JOB_ID");
    if (!job || !*job)
        return 0;
    return squeue_end_time(job, end);
}
