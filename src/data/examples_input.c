/* examples_input: TSV, CSV (RFC 4180), JSON lines and class-folder readers.
 * See examples_input.h.
 *
 * Lines come from getline, so a record costs its own length and nothing
 * more. In code-point mode every line is checked as UTF-8 before it is
 * parsed, so an error gives the byte offset in the file, not in a decoded
 * field. */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "charnn/common.h"
#include "charnn/fsio.h"
#include "charnn/vocab.h"
#include "examples_input.h"

enum { JSON_MAX_DEPTH = 64, HEADER_LIST_CHARS = 200 };

static const unsigned char xz_magic[6] = {0xFD, '7', 'z', 'X', 'Z', 0x00};

/* ---- the file list -------------------------------------------------------- */

static int input_format_from_name(const char *path, examples_input_format *fmt)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    const char *dot = strrchr(base, '.');
    const char *ext = dot ? dot + 1 : "";
    if (strcmp(ext, "tsv") == 0 || strcmp(ext, "tab") == 0)
        *fmt = EXAMPLES_INPUT_TSV;
    else if (strcmp(ext, "csv") == 0)
        *fmt = EXAMPLES_INPUT_CSV;
    else if (strcmp(ext, "jsonl") == 0 || strcmp(ext, "ndjson") == 0 || strcmp(ext, "json") == 0)
        *fmt = EXAMPLES_INPUT_JSONL;
    else if (strcmp(ext, "xz") == 0)
        return cn_err("'%s' is xz-compressed: decompress it first (xz -dk '%s')", path, path);
    else
        return cn_err("cannot tell the format of '%s' from its name (expected .tsv, .csv, .jsonl "
                      "or a folder of class files)",
                      path);
    return 0;
}

static int input_name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void input_push(examples_input_file **files, int *n, int *cap, const char *path,
                       examples_input_format fmt, const char *label)
{
    if (*n == *cap) {
        *cap = *cap ? 2 * *cap : 8;
        *files = cn_xrealloc(*files, (size_t)*cap * sizeof **files);
    }
    examples_input_file *f = &(*files)[(*n)++];
    f->path = cn_xstrdup(path);
    f->format = fmt;
    f->label = label ? cn_xstrdup(label) : NULL;
}

/* A folder's regular, non-hidden files as class files, sorted by name. */
static int input_expand_dir(const char *dir, examples_input_file **files, int *n, int *cap)
{
    DIR *d = opendir(dir);
    if (!d)
        return cn_err("cannot open '%s': %s", dir, strerror(errno));
    char **names = NULL;
    size_t n_names = 0, names_cap = 0;
    struct dirent *e;
    int rc = 0;
    size_t dir_len = strlen(dir);
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        size_t len = dir_len + strlen(e->d_name) + 2;
        char *path = cn_xmalloc(len);
        snprintf(path, len, "%s/%s", dir, e->d_name);
        struct stat st;
        int regular = stat(path, &st) == 0 && S_ISREG(st.st_mode);
        free(path);
        if (!regular)
            continue;
        if (n_names == names_cap) {
            names_cap = names_cap ? 2 * names_cap : 32;
            names = cn_xrealloc(names, names_cap * sizeof *names);
        }
        names[n_names++] = cn_xstrdup(e->d_name);
    }
    closedir(d);
    if (n_names == 0)
        rc = cn_err("'%s' has no class files", dir);
    if (n_names > 1)
        qsort(names, n_names, sizeof *names, input_name_cmp);
    for (size_t i = 0; i < n_names; i++) {
        if (rc == 0) {
            char *label = cn_xstrdup(names[i]);
            char *dot = strrchr(label, '.');
            if (dot && dot != label)
                *dot = '\0';
            size_t len = dir_len + strlen(names[i]) + 2;
            char *path = cn_xmalloc(len);
            snprintf(path, len, "%s/%s", dir, names[i]);
            input_push(files, n, cap, path, EXAMPLES_INPUT_DIR, label);
            free(path);
            free(label);
        }
        free(names[i]);
    }
    free(names);
    return rc;
}

int examples_input_expand(const char *const *paths, int n_paths, examples_input_format format,
                          examples_input_file **files, int *n_files)
{
    *files = NULL;
    *n_files = 0;
    int cap = 0;
    for (int i = 0; i < n_paths; i++) {
        struct stat st;
        if (stat(paths[i], &st) != 0) {
            cn_err("cannot open '%s': %s", paths[i], strerror(errno));
            goto error;
        }
        int is_dir = S_ISDIR(st.st_mode);
        if (format == EXAMPLES_INPUT_DIR && !is_dir) {
            cn_err("'%s' is not a folder of class files", paths[i]);
            goto error;
        }
        if (is_dir && format != EXAMPLES_INPUT_AUTO && format != EXAMPLES_INPUT_DIR) {
            cn_err("'%s' is a folder, not a file", paths[i]);
            goto error;
        }
        if (is_dir) {
            if (input_expand_dir(paths[i], files, n_files, &cap) != 0)
                goto error;
            continue;
        }
        /* Inputs are read twice: a pipe or a device cannot be. */
        if (fsio_check_regular(paths[i], NULL) != 0)
            goto error;
        examples_input_format fmt = format;
        if (fmt == EXAMPLES_INPUT_AUTO && input_format_from_name(paths[i], &fmt) != 0)
            goto error;
        input_push(files, n_files, &cap, paths[i], fmt, NULL);
    }
    return 0;
error:
    examples_input_free(*files, *n_files);
    *files = NULL;
    *n_files = 0;
    return -1;
}

void examples_input_free(examples_input_file *files, int n_files)
{
    for (int i = 0; i < n_files; i++) {
        free(files[i].path);
        free(files[i].label);
    }
    free(files);
}

/* ---- errors --------------------------------------------------------------- */

static int reader_err(const examples_reader *r, size_t line, const char *fmt, ...) CN_PRINTF(3, 4);
static int reader_err(const examples_reader *r, size_t line, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return cn_err("'%s' line %zu: %s", r->in->path, line, msg);
}

static int reader_err_col(const examples_reader *r, size_t line, size_t col, const char *fmt, ...)
    CN_PRINTF(4, 5);
static int reader_err_col(const examples_reader *r, size_t line, size_t col, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return cn_err("'%s' line %zu column %zu: %s", r->in->path, line, col, msg);
}

/* ---- lines ---------------------------------------------------------------- */

/* Offset of the first invalid UTF-8 sequence in s, or len if there is none. */
static size_t utf8_first_invalid(const char *s, size_t len)
{
    const uint8_t *u = (const uint8_t *)s;
    size_t i = 0;
    while (i < len) {
        if (u[i] < 0x80u) {
            i++;
            continue;
        }
        uint32_t cp;
        int n = utf8_decode(u + i, len - i, &cp);
        if (n == 0)
            return i;
        i += (size_t)n;
    }
    return len;
}

/* The next line without its "\n" or "\r\n" into *s, *len: 1, 0 at the end of
 * the file, -1 on a read error or (when check_utf8) invalid UTF-8. */
static int reader_getline(examples_reader *r, char **s, size_t *len, int check_utf8)
{
    errno = 0;
    ssize_t got = getline(&r->line, &r->line_cap, r->f);
    if (got < 0) {
        if (ferror(r->f))
            return cn_err("cannot read '%s': %s", r->in->path, strerror(errno ? errno : EIO));
        return 0;
    }
    size_t offset = r->next_offset, n = (size_t)got;
    r->next_offset += n;
    r->line_no++;
    char *p = r->line;
    if (r->line_no == 1 && n >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0) {
        p += 3; /* a byte-order mark, as spreadsheets write */
        n -= 3;
        offset += 3;
    }
    if (n > 0 && p[n - 1] == '\n')
        n--;
    if (n > 0 && p[n - 1] == '\r')
        n--;
    if (check_utf8) {
        size_t bad = utf8_first_invalid(p, n);
        if (bad < n)
            return reader_err(r, r->line_no,
                              "invalid UTF-8 at byte %zu (use --bytes to train on raw bytes)",
                              offset + bad);
    }
    *s = p;
    *len = n;
    return 1;
}

static void reader_reserve_dec(examples_reader *r, size_t n)
{
    if (r->dec_cap < n + 1) {
        r->dec_cap = n + 1 > 2 * r->dec_cap ? n + 1 : 2 * r->dec_cap;
        r->dec = cn_xrealloc(r->dec, r->dec_cap);
    }
}

static void reader_add_field(examples_reader *r, int *n_fields, size_t start, size_t len)
{
    if ((size_t)*n_fields == r->field_cap) {
        r->field_cap = r->field_cap ? 2 * r->field_cap : 16;
        r->field_start = cn_xrealloc(r->field_start, r->field_cap * sizeof *r->field_start);
        r->field_len = cn_xrealloc(r->field_len, r->field_cap * sizeof *r->field_len);
    }
    r->field_start[*n_fields] = start;
    r->field_len[*n_fields] = len;
    (*n_fields)++;
}

/* ---- TSV ------------------------------------------------------------------ */

/* Fields of a line, as offsets into the line; nothing is copied. */
static int tsv_split(examples_reader *r, const char *s, size_t len)
{
    int n = 0;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || s[i] == '\t') {
            reader_add_field(r, &n, start, i - start);
            start = i + 1;
        }
    }
    return n;
}

/* ---- CSV ------------------------------------------------------------------ */

/* Whether a CSV record is still inside a quoted field after s[0, len):
 * a quote opens a field only at the start of a field, and inside one "" is a
 * quote and a lone " closes it. A stray quote in an unquoted field leaves the
 * state alone, so csv_split reports it on its own line. */
static void csv_scan_quotes(const char *s, size_t len, int *in_quotes, int *field_start)
{
    for (size_t i = 0; i < len; i++) {
        if (*in_quotes) {
            if (s[i] == '"') {
                if (i + 1 < len && s[i + 1] == '"')
                    i++;
                else
                    *in_quotes = 0;
            }
            continue;
        }
        if (s[i] == '"' && *field_start)
            *in_quotes = 1;
        *field_start = s[i] == ',';
    }
}

/* One CSV record: lines are joined (with "\n") while a quoted field is open.
 * 1, 0 or -1. */
static int csv_read_record(examples_reader *r)
{
    char *s;
    size_t len;
    int rc = reader_getline(r, &s, &len, r->check_text_utf8);
    if (rc <= 0)
        return rc;
    r->rec_line = r->line_no;
    r->rec_len = 0;
    int in_quotes = 0, field_start = 1;
    for (;;) {
        size_t need = r->rec_len + len + 2;
        if (r->rec_cap < need) {
            r->rec_cap = need > 2 * r->rec_cap ? need : 2 * r->rec_cap;
            r->rec = cn_xrealloc(r->rec, r->rec_cap);
        }
        memcpy(r->rec + r->rec_len, s, len);
        r->rec_len += len;
        csv_scan_quotes(s, len, &in_quotes, &field_start);
        if (!in_quotes)
            return 1;
        rc = reader_getline(r, &s, &len, r->check_text_utf8);
        if (rc < 0)
            return -1;
        if (rc == 0)
            return reader_err(r, r->rec_line, "a quoted field is not closed by the end of the file");
        r->rec[r->rec_len++] = '\n';
        field_start = 0;
    }
}

/* Line and column (1-based) of byte pos of the record. */
static void csv_where(const examples_reader *r, size_t pos, size_t *line, size_t *col)
{
    size_t l = r->rec_line, c = 1;
    for (size_t i = 0; i < pos; i++) {
        if (r->rec[i] == '\n') {
            l++;
            c = 1;
        } else {
            c++;
        }
    }
    *line = l;
    *col = c;
}

static int csv_err(const examples_reader *r, size_t pos, const char *what)
{
    size_t line, col;
    csv_where(r, pos, &line, &col);
    return reader_err_col(r, line, col, "%s", what);
}

/* Split the record into decoded fields in r->dec. Returns the field count or -1. */
static int csv_split(examples_reader *r)
{
    const char *s = r->rec;
    size_t len = r->rec_len, i = 0, out = 0;
    reader_reserve_dec(r, len);
    int n = 0;
    for (;;) {
        size_t start = out;
        if (i < len && s[i] == '"') {
            size_t open = i++;
            for (;;) {
                if (i == len)
                    return csv_err(r, open, "a quoted field is not closed");
                if (s[i] == '"') {
                    if (i + 1 < len && s[i + 1] == '"') {
                        r->dec[out++] = '"';
                        i += 2;
                        continue;
                    }
                    i++;
                    break;
                }
                r->dec[out++] = s[i++];
            }
            if (i < len && s[i] != ',')
                return csv_err(r, i, "expected ',' after a closing quote");
        } else {
            while (i < len && s[i] != ',') {
                if (s[i] == '"')
                    return csv_err(r, i, "a quote inside an unquoted field (quote the whole field)");
                r->dec[out++] = s[i++];
            }
        }
        reader_add_field(r, &n, start, out - start);
        if (i == len)
            return n;
        i++; /* the comma */
    }
}

/* ---- JSON lines ----------------------------------------------------------- */

typedef struct {
    const char *s;
    size_t len, i;
} json_cursor;

static int json_err(const examples_reader *r, const json_cursor *j, const char *what)
{
    return reader_err_col(r, r->rec_line, j->i + 1, "%s", what);
}

static void json_ws(json_cursor *j)
{
    while (j->i < j->len && (j->s[j->i] == ' ' || j->s[j->i] == '\t' || j->s[j->i] == '\r'))
        j->i++;
}

static int json_hex4(const json_cursor *j, size_t at, uint32_t *v)
{
    if (at + 4 > j->len)
        return -1;
    uint32_t x = 0;
    for (size_t k = at; k < at + 4; k++) {
        char c = j->s[k];
        x <<= 4;
        if (c >= '0' && c <= '9')
            x |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            x |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            x |= (uint32_t)(c - 'A' + 10);
        else
            return -1;
    }
    *v = x;
    return 0;
}

/* Decode the string at the cursor (a '"') into r->dec[*out...]; *start and
 * *n receive where it went. The caller reserved the line's length. */
static int json_string(examples_reader *r, json_cursor *j, size_t *out, size_t *start, size_t *n)
{
    size_t o = *out;
    *start = o;
    j->i++;
    for (;;) {
        if (j->i >= j->len)
            return json_err(r, j, "a string is not closed");
        unsigned char c = (unsigned char)j->s[j->i];
        if (c == '"') {
            j->i++;
            break;
        }
        if (c < 0x20u)
            return json_err(r, j, "a control character inside a string (escape it)");
        if (c != '\\') {
            r->dec[o++] = (char)c;
            j->i++;
            continue;
        }
        if (j->i + 1 >= j->len)
            return json_err(r, j, "a string is not closed");
        char e = j->s[j->i + 1];
        static const char escaped[] = "\"\\/bfnrt", decoded[] = "\"\\/\b\f\n\r\t";
        const char *simple = e != '\0' ? strchr(escaped, e) : NULL;
        if (simple) {
            r->dec[o++] = decoded[simple - escaped];
            j->i += 2;
            continue;
        }
        if (e != 'u')
            return json_err(r, j, "an unknown escape in a string");
        uint32_t cp;
        if (json_hex4(j, j->i + 2, &cp) != 0)
            return json_err(r, j, "\\u needs four hex digits");
        size_t used = 6;
        if (cp >= 0xDC00u && cp <= 0xDFFFu)
            return json_err(r, j, "a low surrogate without a high surrogate before it");
        if (cp >= 0xD800u && cp <= 0xDBFFu) {
            uint32_t lo;
            if (j->i + 12 > j->len || j->s[j->i + 6] != '\\' || j->s[j->i + 7] != 'u' ||
                json_hex4(j, j->i + 8, &lo) != 0 || lo < 0xDC00u || lo > 0xDFFFu)
                return json_err(r, j, "a high surrogate without a low surrogate after it");
            cp = 0x10000u + ((cp - 0xD800u) << 10) + (lo - 0xDC00u);
            used = 12;
        }
        /* A UTF-8 sequence is never longer than the escape it came from. */
        o += (size_t)utf8_encode(cp, r->dec + o);
        j->i += used;
    }
    *n = o - *start;
    *out = o;
    return 0;
}

/* A JSON number; *is_integer says whether it has no fraction or exponent. */
static int json_number(examples_reader *r, json_cursor *j, int *is_integer)
{
    size_t b = j->i;
    if (j->i < j->len && j->s[j->i] == '-')
        j->i++;
    size_t digits = j->i;
    while (j->i < j->len && j->s[j->i] >= '0' && j->s[j->i] <= '9')
        j->i++;
    if (j->i == digits || (j->s[digits] == '0' && j->i - digits > 1)) {
        j->i = b;
        return json_err(r, j, "a malformed number");
    }
    *is_integer = 1;
    if (j->i < j->len && j->s[j->i] == '.') {
        *is_integer = 0;
        size_t f = ++j->i;
        while (j->i < j->len && j->s[j->i] >= '0' && j->s[j->i] <= '9')
            j->i++;
        if (j->i == f)
            return json_err(r, j, "a malformed number");
    }
    if (j->i < j->len && (j->s[j->i] == 'e' || j->s[j->i] == 'E')) {
        *is_integer = 0;
        j->i++;
        if (j->i < j->len && (j->s[j->i] == '+' || j->s[j->i] == '-'))
            j->i++;
        size_t f = j->i;
        while (j->i < j->len && j->s[j->i] >= '0' && j->s[j->i] <= '9')
            j->i++;
        if (j->i == f)
            return json_err(r, j, "a malformed number");
    }
    return 0;
}

static int json_skip_value(examples_reader *r, json_cursor *j, size_t *scratch, int depth)
{
    if (depth > JSON_MAX_DEPTH)
        return json_err(r, j, "values nested too deeply");
    json_ws(j);
    if (j->i >= j->len)
        return json_err(r, j, "a value is missing");
    char c = j->s[j->i];
    size_t start, n, mark = *scratch;
    int is_int;
    switch (c) {
    case '"': {
        int rc = json_string(r, j, scratch, &start, &n);
        *scratch = mark;
        return rc;
    }
    case '{':
    case '[': {
        char close = c == '{' ? '}' : ']';
        j->i++;
        json_ws(j);
        if (j->i < j->len && j->s[j->i] == close) {
            j->i++;
            return 0;
        }
        for (;;) {
            if (c == '{') {
                json_ws(j);
                if (j->i >= j->len || j->s[j->i] != '"')
                    return json_err(r, j, "expected a key");
                int rc = json_string(r, j, scratch, &start, &n);
                *scratch = mark;
                if (rc != 0)
                    return -1;
                json_ws(j);
                if (j->i >= j->len || j->s[j->i] != ':')
                    return json_err(r, j, "expected ':'");
                j->i++;
            }
            if (json_skip_value(r, j, scratch, depth + 1) != 0)
                return -1;
            json_ws(j);
            if (j->i < j->len && j->s[j->i] == ',') {
                j->i++;
                continue;
            }
            if (j->i < j->len && j->s[j->i] == close) {
                j->i++;
                return 0;
            }
            return json_err(r, j, c == '{' ? "expected ',' or '}'" : "expected ',' or ']'");
        }
    }
    default:
        break;
    }
    static const char *const words[] = {"true", "false", "null"};
    for (int w = 0; w < 3; w++) {
        size_t k = strlen(words[w]);
        if (j->i + k <= j->len && memcmp(j->s + j->i, words[w], k) == 0) {
            j->i += k;
            return 0;
        }
    }
    if (c == '-' || (c >= '0' && c <= '9'))
        return json_number(r, j, &is_int);
    return json_err(r, j, "expected a value");
}

static int json_parse_line(examples_reader *r, const char *s, size_t len)
{
    json_cursor j = {s, len, 0};
    reader_reserve_dec(r, len);
    size_t out = 0, text_start = 0, text_n = 0, label_start = 0, label_n = 0;
    int have_text = 0, have_label = 0;
    json_ws(&j);
    if (j.i >= len || s[j.i] != '{')
        return json_err(r, &j, "expected '{' (one JSON object per line)");
    j.i++;
    json_ws(&j);
    if (j.i < len && s[j.i] == '}') {
        j.i++;
    } else {
        for (;;) {
            json_ws(&j);
            if (j.i >= len || s[j.i] != '"')
                return json_err(r, &j, "expected a key");
            size_t key_start, key_n, key_mark = out;
            if (json_string(r, &j, &out, &key_start, &key_n) != 0)
                return -1;
            int is_text = strlen(r->text_key) == key_n &&
                          memcmp(r->dec + key_start, r->text_key, key_n) == 0;
            int is_label = strlen(r->label_key) == key_n &&
                           memcmp(r->dec + key_start, r->label_key, key_n) == 0;
            out = key_mark;
            json_ws(&j);
            if (j.i >= len || s[j.i] != ':')
                return json_err(r, &j, "expected ':'");
            j.i++;
            json_ws(&j);
            if ((is_text && have_text) || (is_label && have_label)) {
                char msg[300];
                snprintf(msg, sizeof msg, "the key \"%s\" occurs twice",
                         is_text ? r->text_key : r->label_key);
                return json_err(r, &j, msg);
            }
            if (is_text) {
                if (j.i >= len || s[j.i] != '"') {
                    char msg[300];
                    snprintf(msg, sizeof msg, "\"%s\" must be a string", r->text_key);
                    return json_err(r, &j, msg);
                }
                if (json_string(r, &j, &out, &text_start, &text_n) != 0)
                    return -1;
                have_text = 1;
            } else if (is_label) {
                if (j.i < len && s[j.i] == '"') {
                    if (json_string(r, &j, &out, &label_start, &label_n) != 0)
                        return -1;
                } else {
                    size_t b = j.i;
                    int is_int = 0;
                    if (j.i >= len || !(s[j.i] == '-' || (s[j.i] >= '0' && s[j.i] <= '9')) ||
                        json_number(r, &j, &is_int) != 0 || !is_int) {
                        char msg[300];
                        j.i = b;
                        snprintf(msg, sizeof msg, "\"%s\" must be a string or an integer",
                                 r->label_key);
                        return json_err(r, &j, msg);
                    }
                    label_start = out;
                    label_n = j.i - b;
                    memcpy(r->dec + out, s + b, label_n);
                    out += label_n;
                }
                have_label = 1;
            } else if (json_skip_value(r, &j, &out, 0) != 0) {
                return -1;
            }
            json_ws(&j);
            if (j.i < len && s[j.i] == ',') {
                j.i++;
                continue;
            }
            if (j.i < len && s[j.i] == '}') {
                j.i++;
                break;
            }
            return json_err(r, &j, "expected ',' or '}'");
        }
    }
    json_ws(&j);
    if (j.i < len)
        return json_err(r, &j, "text after the object (one JSON object per line)");
    if (!have_text || !have_label)
        return reader_err(r, r->rec_line, "no \"%s\" key", have_text ? r->label_key : r->text_key);
    r->text = r->dec + text_start;
    r->text_len = text_n;
    r->label = r->dec + label_start;
    r->label_len = label_n;
    return 0;
}

/* ---- the reader ----------------------------------------------------------- */

static int reader_find_column(examples_reader *r, const char *name, const char *base, int n)
{
    for (int k = 0; k < n; k++)
        if (strlen(name) == r->field_len[k] && memcmp(base + r->field_start[k], name, r->field_len[k]) == 0)
            return k;
    char list[HEADER_LIST_CHARS + 8];
    size_t used = 0;
    for (int k = 0; k < n && used < HEADER_LIST_CHARS; k++) {
        int w = snprintf(list + used, sizeof list - used, "%s%.*s", k ? ", " : "",
                         (int)r->field_len[k], base + r->field_start[k]);
        if (w < 0)
            break;
        used += (size_t)w;
    }
    if (used >= HEADER_LIST_CHARS)
        snprintf(list + HEADER_LIST_CHARS, sizeof list - HEADER_LIST_CHARS, "...");
    return reader_err(r, 1, "no column '%s' (the header has: %s)", name, list);
}

static int reader_read_header(examples_reader *r)
{
    int n;
    const char *base;
    if (r->in->format == EXAMPLES_INPUT_TSV) {
        char *s;
        size_t len;
        int rc = reader_getline(r, &s, &len, 1);
        if (rc < 0)
            return -1;
        if (rc == 0)
            return cn_err("'%s' is empty", r->in->path);
        r->rec_line = r->line_no;
        n = tsv_split(r, s, len);
        base = s;
    } else {
        int rc = csv_read_record(r);
        if (rc < 0)
            return -1;
        if (rc == 0)
            return cn_err("'%s' is empty", r->in->path);
        if ((n = csv_split(r)) < 0)
            return -1;
        base = r->dec;
    }
    r->n_header = n;
    if ((r->text_field = reader_find_column(r, r->text_key, base, n)) < 0 ||
        (r->label_field = reader_find_column(r, r->label_key, base, n)) < 0)
        return -1;
    return 0;
}

int examples_reader_open(examples_reader *r, const examples_input_file *in, const char *text_key,
                         const char *label_key, int check_text_utf8)
{
    memset(r, 0, sizeof *r);
    r->in = in;
    r->text_key = text_key;
    r->label_key = label_key;
    r->check_text_utf8 = check_text_utf8;
    r->f = fopen(in->path, "rb");
    if (!r->f)
        return cn_err("cannot open '%s': %s", in->path, strerror(errno));
    unsigned char magic[sizeof xz_magic];
    size_t got = fread(magic, 1, sizeof magic, r->f);
    if (got == sizeof magic && memcmp(magic, xz_magic, sizeof magic) == 0) {
        examples_reader_close(r);
        return cn_err("'%s' is xz-compressed: decompress it first (xz -dk '%s')", in->path,
                      in->path);
    }
    rewind(r->f);
    if ((in->format == EXAMPLES_INPUT_TSV || in->format == EXAMPLES_INPUT_CSV) &&
        reader_read_header(r) != 0) {
        examples_reader_close(r);
        return -1;
    }
    return 0;
}

static int reader_check_record(examples_reader *r)
{
    if (r->text_len == 0)
        return reader_err(r, r->rec_line, "empty text");
    if (r->label_len == 0)
        return reader_err(r, r->rec_line, "empty label");
    if (memchr(r->label, '\0', r->label_len))
        return reader_err(r, r->rec_line, "the label holds a NUL character");
    if (utf8_first_invalid(r->label, r->label_len) < r->label_len)
        return reader_err(r, r->rec_line, "the label is not valid UTF-8");
    return 0;
}

int examples_reader_next(examples_reader *r)
{
    int rc;
    char *s;
    size_t len;
    switch (r->in->format) {
    case EXAMPLES_INPUT_TSV:
    case EXAMPLES_INPUT_CSV: {
        int n;
        const char *base;
        if (r->in->format == EXAMPLES_INPUT_TSV) {
            rc = reader_getline(r, &s, &len, r->check_text_utf8);
            if (rc <= 0)
                break;
            r->rec_line = r->line_no;
            n = tsv_split(r, s, len);
            base = s;
        } else {
            rc = csv_read_record(r);
            if (rc <= 0)
                break;
            if ((n = csv_split(r)) < 0)
                return -1;
            base = r->dec;
        }
        if (n != r->n_header)
            return reader_err(r, r->rec_line, "%d field%s where the header has %d", n,
                              n == 1 ? "" : "s", r->n_header);
        r->text = base + r->field_start[r->text_field];
        r->text_len = r->field_len[r->text_field];
        r->label = base + r->field_start[r->label_field];
        r->label_len = r->field_len[r->label_field];
        break;
    }
    case EXAMPLES_INPUT_JSONL:
        rc = reader_getline(r, &s, &len, r->check_text_utf8);
        if (rc <= 0)
            break;
        r->rec_line = r->line_no;
        if (json_parse_line(r, s, len) != 0)
            return -1;
        break;
    default:
        rc = reader_getline(r, &s, &len, r->check_text_utf8);
        if (rc <= 0)
            break;
        r->rec_line = r->line_no;
        r->text = s;
        r->text_len = len;
        r->label = r->in->label;
        r->label_len = strlen(r->in->label);
        break;
    }
    if (rc < 0)
        return -1;
    if (rc == 0) {
        if (r->n_records == 0)
            return r->line_no == 0 ? cn_err("'%s' is empty", r->in->path)
                                   : cn_err("'%s' has no examples", r->in->path);
        return 0;
    }
    if (reader_check_record(r) != 0)
        return -1;
    r->n_records++;
    return 1;
}

void examples_reader_close(examples_reader *r)
{
    if (r->f)
        fclose(r->f);
    free(r->line);
    free(r->rec);
    free(r->dec);
    free(r->field_start);
    free(r->field_len);
    memset(r, 0, sizeof *r);
}
