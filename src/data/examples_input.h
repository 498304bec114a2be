/* examples_input: the record readers behind examples_prepare (TSV, CSV,
 * JSON lines, one file per class). Private to src/data.
 *
 * A reader yields one record at a time: its text and label as bytes (decoded
 * from CSV quoting or JSON escapes), and the line it starts on. It holds one
 * line (or one multi-line CSV record) in memory, never the file. */
#ifndef CHARNN_EXAMPLES_INPUT_H
#define CHARNN_EXAMPLES_INPUT_H

#include <stdio.h>

#include "charnn/examples.h"

/* One file to read: a TSV/CSV/JSON-lines file, or a class file of a folder
 * (then label is the class). */
typedef struct {
    char *path;
    examples_input_format format; /* never AUTO or DIR */
    char *label;                  /* class files only */
} examples_input_file;

/* Expand the paths (files or folders) into files, in order: a folder's files
 * sorted by name. format AUTO tells each by its name. *files is malloc'd. */
int examples_input_expand(const char *const *paths, int n_paths, examples_input_format format,
                          examples_input_file **files, int *n_files);
void examples_input_free(examples_input_file *files, int n_files);

typedef struct {
    const examples_input_file *in;
    const char *text_key, *label_key;
    int check_text_utf8;   /* 0 in byte mode: the text may be any bytes */
    FILE *f;
    char *line;            /* getline buffer */
    size_t line_cap;
    size_t line_no;        /* of the last line read, 1-based */
    size_t next_offset;    /* file offset of the next line */
    char *rec;             /* CSV: the record's raw bytes over its lines */
    size_t rec_cap, rec_len;
    char *dec;             /* decoded fields or strings */
    size_t dec_cap;
    size_t *field_start, *field_len; /* TSV/CSV fields of the record */
    size_t field_cap;
    int n_header;          /* TSV/CSV: columns of the header */
    int text_field, label_field;
    size_t n_records;
    /* the current record */
    const char *text, *label;
    size_t text_len, label_len;
    size_t rec_line;       /* line the record starts on */
} examples_reader;

int examples_reader_open(examples_reader *r, const examples_input_file *in, const char *text_key,
                         const char *label_key, int check_text_utf8);
/* 1: a record; 0: end of file (an error if the file held none); -1: error. */
int examples_reader_next(examples_reader *r);
void examples_reader_close(examples_reader *r);

#endif
