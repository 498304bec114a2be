/* slurm: what charnn asks of the Slurm job it runs in. Only the time limit
 * for now: train stops with a checkpoint before the job's end (train.h). */
#ifndef CHARNN_SLURM_H
#define CHARNN_SLURM_H

/* The end of the Slurm job this process runs in, in Unix seconds:
 * SLURM_JOB_END_TIME when set, else `squeue -h -j $SLURM_JOB_ID -o %e` when
 * SLURM_JOB_ID is set and squeue is on the PATH. 1 with *end set; 0 when
 * there is no job, no squeue or no end (an unlimited job); -1 with a message
 * when a value is there but cannot be read. */
int slurm_job_end_time(double *end);

/* A duration: "3h50m", "45m", "90s", "1h2m3s" (h, m, s in that order, each
 * at most once, decimals allowed) or plain seconds ("5400"); above 0. 0, or
 * -1 with a message naming `what` (a flag). */
int slurm_parse_duration(const char *s, const char *what, double *seconds);

#endif
