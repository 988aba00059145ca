/* sv_compile.c — compiling a Sieve script: read, parse, validate, includes.
 *
 * What for: the entry points sieve_compile / sieve_compile_mem and the
 * compilation of scripts named by "include" (RFC 6609), which are compiled
 * together with the script that includes them, once each.
 * Relies on: sv_parser.c, sv_validate.c; ext_include.c reaches
 * sv_compile_include through sv_comp.compile_include.
 * How it fails: returns NULL with "FILE:LINE:COL: error: MSG" lines; a file
 * that is missing, not regular, or larger than max_script_size is an error.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hm_util.h"
#include "sv_int.h"

/* The tree of a script takes about 6 bytes of arena per byte of Roundcube-
 * style text; the densest scripts ("a;a;a;...", "anyof(b,b,b,...)": a
 * 96-byte node per 2 bytes) about 50.  The cap, twice that, is a backstop
 * that no script within max_script_size reaches. */
#define SV_ARENA_MAX(len) ((len) * 96 + 256 * 1024)

static void script_free_one(struct sieve_script *s)
{
	if (!s)
		return;
	hm_arena_free(&s->arena);
	for (size_t i = 0; i < s->nglobals; i++)
		free(s->globals[i]);
	free(s->globals);
	free(s->name);
	free(s->dir);
	free(s->text);
	free(s->personal_dir);
	free(s->global_dir);
	free(s);
}

void sieve_script_free(struct sieve_script **sp)
{
	struct sieve_script *s = *sp;
	if (!s)
		return;
	*sp = NULL;
	for (size_t i = 0; i < s->nincs; i++)
		script_free_one(s->incs[i]);
	free(s->incs);
	script_free_one(s);
}

/* read_file - the whole file, bounded; returns malloc'd text or NULL + errno */
static char *read_file(const char *path, size_t max, size_t *len_r)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return NULL;
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		errno = EISDIR;
		return NULL;
	}
	if ((uint64_t)st.st_size > max) {
		close(fd);
		errno = EFBIG;
		return NULL;
	}
	char *buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		return NULL;
	}
	ssize_t n = hm_read_full(fd, buf, (size_t)st.st_size + 1);
	int e = errno;
	close(fd);
	if (n < 0 || (size_t)n > (size_t)st.st_size) {
		free(buf);
		errno = n < 0 ? e : EFBIG;
		return NULL;
	}
	buf[n] = 0;
	*len_r = (size_t)n;
	return buf;
}

static struct sieve_script *new_script(const char *name, const char *dir,
				       const struct sieve_compile_env *env)
{
	struct sieve_script *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	hm_arena_init(&s->arena, 0);
	s->name = strdup(name);
	s->dir = strdup(dir ? dir : ".");
	if (env && env->limits)
		s->lim = *env->limits;
	else
		sieve_limits_default(&s->lim);
	if (env && env->personal_dir)
		s->personal_dir = strdup(env->personal_dir);
	if (env && env->global_dir)
		s->global_dir = strdup(env->global_dir);
	s->root = s;
	if (!s->name || !s->dir) {
		script_free_one(s);
		return NULL;
	}
	return s;
}

/* compile_text - parse and validate s (text already set; a NUL in it is
 * reported by the lexer with its position) */
static int compile_text(struct sv_comp *c)
{
	/* string lengths in the tree are 32-bit (struct sv_str), lines and
	 * columns int: far above any max_script_size a site would set */
	if (c->s->len > INT32_MAX) {
		sv_error(c, 1, 1, "script too large (%zu bytes)", c->s->len);
		return -1;
	}
	hm_arena_init(&c->s->arena, SV_ARENA_MAX(c->s->len));
	if (sv_parse(c) < 0)
		return -1;
	return sv_validate(c);
}

static struct sieve_script *finish(struct sv_comp *c, char **err_r)
{
	if (c->nerr == 0) {
		hm_buf_free(&c->err);
		return c->s;
	}
	if (err_r)
		*err_r = hm_buf_steal(&c->err, NULL);
	hm_buf_free(&c->err);
	sieve_script_free(&c->s);
	return NULL;
}

struct sieve_script *sieve_compile_mem(const char *name, const char *text, size_t len,
				       const struct sieve_compile_env *env, char **err_r)
{
	struct sv_comp c = { .compile_include = sv_compile_include };
	hm_buf_init(&c.err, 64 * 1024);
	if (err_r)
		*err_r = NULL;
	c.s = new_script(name, NULL, env);
	if (!c.s)
		return NULL;
	if (len > c.s->lim.max_script_size) {
		sv_error(&c, 1, 1, "script too large (%zu bytes, limit %zu)", len,
			 c.s->lim.max_script_size);
		return finish(&c, err_r);
	}
	c.s->text = sv_strndup(text, len);
	c.s->len = len;
	if (!c.s->text) {
		sieve_script_free(&c.s);
		hm_buf_free(&c.err);
		return NULL;
	}
	compile_text(&c);
	return finish(&c, err_r);
}

struct sieve_script *sieve_compile(const char *path, const struct sieve_compile_env *env,
				   char **err_r)
{
	struct sv_comp c = { .compile_include = sv_compile_include };
	hm_buf_init(&c.err, 64 * 1024);
	if (err_r)
		*err_r = NULL;
	char *tmp = strdup(path);
	if (!tmp)
		return NULL;
	c.s = new_script(path, dirname(tmp), env);
	free(tmp);
	if (!c.s)
		return NULL;
	c.s->text = read_file(path, c.s->lim.max_script_size, &c.s->len);
	if (!c.s->text) {
		if (errno == EFBIG)
			sv_error(&c, 1, 1, "script too large (limit %zu bytes)",
				 c.s->lim.max_script_size);
		else
			sv_error(&c, 0, 0, "cannot read script: %s", strerror(errno));
		return finish(&c, err_r);
	}
	compile_text(&c);
	return finish(&c, err_r);
}

struct sieve_script *sv_compile_include(struct sv_comp *c, const char *path,
					const char *name, int line, int col, bool optional,
					bool *missing_r)
{
	struct sieve_script *root = c->s->root;
	*missing_r = false;
	for (size_t i = 0; i < root->nincs; i++)
		if (strcmp(root->incs[i]->name, path) == 0)
			return root->incs[i];
	if (strcmp(root->name, path) == 0)
		return root;
	if (root->nincs >= root->lim.max_includes) {
		sv_error(c, line, col, "too many included scripts (limit %u)",
			 root->lim.max_includes);
		return NULL;
	}
	if (c->s->inc_depth + 1 > root->lim.max_include_depth) {
		sv_error(c, line, col, "includes nested too deeply (limit %u)",
			 root->lim.max_include_depth);
		return NULL;
	}
	struct sieve_script *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	hm_arena_init(&s->arena, 0);
	s->name = strdup(path);
	char *tmp = strdup(path);
	s->dir = tmp ? strdup(dirname(tmp)) : NULL;
	free(tmp);
	s->lim = root->lim;
	s->root = root;
	s->inc_depth = c->s->inc_depth + 1;
	if (!s->name || !s->dir) {
		script_free_one(s);
		return NULL;
	}
	s->text = read_file(path, s->lim.max_script_size, &s->len);
	if (!s->text) {
		int e = errno;
		script_free_one(s);
		if (e == ENOENT) {
			*missing_r = true;
			if (!optional)
				sv_error(c, line, col, "included script '%s' does not exist", name);
		} else {
			sv_error(c, line, col, "cannot read included script '%s': %s", name,
				 strerror(e));
		}
		return NULL;
	}
	/* register before compiling so that recursive includes find it */
	void *nv = realloc(root->incs, (root->nincs + 1) * sizeof(struct sieve_script *));
	if (!nv) {
		script_free_one(s);
		return NULL;
	}
	root->incs = nv;
	root->incs[root->nincs++] = s;
	struct sv_comp sub = { .s = s, .parent = c, .compile_include = c->compile_include };
	hm_buf_init(&sub.err, 64 * 1024);
	compile_text(&sub);
	if (sub.nerr) {
		/* the included script's own errors name its file */
		c->nerr += sub.nerr;
		hm_buf_printf(&c->err, "%s%s", c->err.len ? "\n" : "", hm_buf_cstr(&sub.err));
		sv_error(c, line, col, "failed to compile included script '%s'", name);
		hm_buf_free(&sub.err);
		return NULL;
	}
	hm_buf_free(&sub.err);
	return s;
}
