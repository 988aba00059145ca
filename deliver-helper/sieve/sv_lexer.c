/* sv_lexer.c — Sieve lexer (RFC 5228 section 8.1).
 *
 * What for: turns script text into tokens with line:column positions, so
 * every error names the exact place.  Accepts CRLF and bare LF line ends.
 * Relies on: its own copy of the script text, which it writes into: a
 * quoted string whose value is not longer than its text (no bare LF to
 * turn into CRLF) is decoded in place and ended with a NUL over its closing
 * quote, so most strings cost no copy and no memory; the others are
 * measured in one pass and written into the script's arena in a second;
 * hm_buf for multi-line strings.  A string value is bounded by
 * the script size + 1 (a bare LF becoming CRLF can only grow it that far
 * before "string too long").
 * How it fails: reports "unexpected character", unterminated strings and
 * comments, numbers that overflow 64 bits, NUL bytes, and returns TK_ERROR.
 */
#include <string.h>
#include <strings.h>

#include "sv_lexer.h"

const char *sv_tok_name(enum sv_tok t)
{
	static const char *const names[] = {
		"end of script", "identifier", "tag", "number", "string", "'['", "']'",
		"'('", "')'", "'{'", "'}'", "','", "';'", "error"
	};
	return names[t];
}

void sv_lex_init(struct sv_lexer *lx, struct sv_comp *c, struct hm_arena *ar,
		 char *p, size_t len)
{
	memset(lx, 0, sizeof *lx);
	lx->c = c;
	lx->ar = ar;
	lx->p = p;
	lx->len = len;
	lx->line = 1;
	lx->col = 1;
	hm_buf_init(&lx->ml, len + 1);
}

void sv_lex_free(struct sv_lexer *lx)
{
	hm_buf_free(&lx->ml);
}

static int cur(const struct sv_lexer *lx)
{
	return lx->pos < lx->len ? (unsigned char)lx->p[lx->pos] : -1;
}

static int peek(const struct sv_lexer *lx, size_t k)
{
	return lx->pos + k < lx->len ? (unsigned char)lx->p[lx->pos + k] : -1;
}

/* adv - consume one byte, tracking line and column */
static void adv(struct sv_lexer *lx)
{
	unsigned char ch = (unsigned char)lx->p[lx->pos++];
	if (ch == '\n') {
		lx->line++;
		lx->col = 1;
	} else {
		lx->col++;      /* columns count bytes (tests/sieve-errors/EXPECTED) */
	}
}

/* Character classes: bit 1 ALPHA / "_", bit 2 DIGIT (RFC 5228 8.1) */
#define C_ALPHA 1
#define C_DIGIT 2
#define A4(x) x, x, x, x
#define A8(x) A4(x), A4(x)
static const unsigned char cclass[256] = {
	['0'] = A8(C_DIGIT), C_DIGIT, C_DIGIT,
	['A'] = A8(C_ALPHA), A8(C_ALPHA), A8(C_ALPHA), C_ALPHA, C_ALPHA,
	['_'] = C_ALPHA,
	['a'] = A8(C_ALPHA), A8(C_ALPHA), A8(C_ALPHA), C_ALPHA, C_ALPHA,
};

static bool is_alpha(int ch)
{
	return ch >= 0 && (cclass[ch] & C_ALPHA);
}

static bool is_digit(int ch)
{
	return ch >= '0' && ch <= '9';
}

/* skip_ws - white-space = 1*(SP / CRLF / HTAB) / comment
 * hash-comment = "#" *octet-not-crlf CRLF
 * bracket-comment = "/" "*" *not-star 1*STAR *(not-star-slash *not-star 1*STAR) "/"
 * Returns 0, -1 on an unterminated comment. */
static int skip_ws(struct sv_lexer *lx)
{
	for (;;) {
		/* the common case, blanks and line ends, in one tight loop */
		size_t i = lx->pos;
		int line = lx->line, col = lx->col;
		while (i < lx->len) {
			char ch = lx->p[i];
			if (ch == ' ' || ch == '\t' || ch == '\r') {
				col++;
			} else if (ch == '\n') {
				line++;
				col = 1;
			} else {
				break;
			}
			i++;
		}
		lx->pos = i;
		lx->line = line;
		lx->col = col;
		int ch = cur(lx);
		if (ch == '#') {
			/* to the line end (or the end); columns count bytes */
			const char *nl = memchr(lx->p + lx->pos, '\n', lx->len - lx->pos);
			size_t end = nl ? (size_t)(nl - lx->p) : lx->len;
			lx->col += (int)(end - lx->pos);
			lx->pos = end;
		} else if (ch == '/' && peek(lx, 1) == '*') {
			int l = lx->line, c = lx->col;
			adv(lx);
			adv(lx);
			for (;;) {
				if (cur(lx) == -1) {
					sv_error(lx->c, l, c, "unterminated comment");
					return -1;
				}
				if (cur(lx) == '*' && peek(lx, 1) == '/') {
					adv(lx);
					adv(lx);
					break;
				}
				adv(lx);
			}
		} else {
			return 0;
		}
	}
}

/* lex_quoted - quoted-string = DQUOTE quoted-text DQUOTE
 * quoted-text = *(quoted-safe / quoted-special / quoted-other)
 * "\" followed by any character stands for that character (RFC 5228 2.4.2);
 * a bare LF stands for CRLF, as in Pigeonhole.  Pass 1 finds the end and
 * the length of the value, pass 2 writes it: in place when no CR is added
 * (each byte written then comes from at or after where it goes), else into
 * the arena.  Nothing reads the text between the quotes again. */
static enum sv_tok lex_quoted(struct sv_lexer *lx)
{
	char *p = lx->p;
	size_t n = lx->len, i = lx->pos + 1, olen = 0, max = lx->len + 1;
	int line = lx->line, col = lx->col + 1, last = -1;
	bool plain = true;        /* no escape, no LF: the value is the text */
	bool grows = false;       /* a CR is added before a bare LF */
	for (;;) {
		if (i >= n) {
			sv_error(lx->c, lx->tline, lx->tcol, "unterminated string");
			return lx->t = TK_ERROR;
		}
		unsigned char ch = (unsigned char)p[i];
		if (ch == '"')
			break;
		if (ch == '\\') {
			plain = false;
			i++;
			col++;
			if (i >= n)
				continue;
			ch = (unsigned char)p[i];
		}
		if (ch == '\n') {
			plain = false;
			if (last != '\r') {
				olen++;
				grows = true;
			}
			line++;
			col = 1;
		} else {
			col++;
		}
		olen++;
		last = ch;
		i++;
		if (olen > max) {
			sv_error(lx->c, lx->tline, lx->tcol, "string too long");
			return lx->t = TK_ERROR;
		}
	}
	size_t start = lx->pos + 1, end = i;
	char *out = grows ? hm_arena_bytes(lx->ar, olen + 1) : p + start;
	if (!out) {
		sv_error(lx->c, lx->tline, lx->tcol, "out of memory");
		return lx->t = TK_ERROR;
	}
	if (!plain) {
		size_t o = 0;
		last = -1;
		for (size_t k = start; k < end; k++) {
			unsigned char ch = (unsigned char)p[k];
			if (ch == '\\')
				ch = (unsigned char)p[++k];   /* k < end: pass 1 saw it */
			if (ch == '\n' && last != '\r')
				out[o++] = '\r';
			out[o++] = (char)ch;
			last = ch;
		}
	}
	out[olen] = 0;            /* in place: at or before the closing quote */
	lx->s = out;
	lx->slen = olen;
	lx->pos = end + 1;        /* after the closing quote */
	lx->line = line;
	lx->col = col + 1;
	return lx->t = TK_STR;
}

/* lex_multiline - multi-line = "text:" *(SP / HTAB) (hash-comment / CRLF)
 *   *(multiline-literal / multiline-dotstart) "." CRLF
 * A line starting with ".." stands for one starting with "." (dot-stuffing). */
static enum sv_tok lex_multiline(struct sv_lexer *lx)
{
	for (int i = 0; i < 5; i++)
		adv(lx);
	while (cur(lx) == ' ' || cur(lx) == '\t')
		adv(lx);
	if (cur(lx) == '#') {
		while (cur(lx) != -1 && cur(lx) != '\n')
			adv(lx);
	} else if (cur(lx) == '\r' && peek(lx, 1) == '\n') {
		adv(lx);
	}
	if (cur(lx) != '\n') {
		sv_error(lx->c, lx->line, lx->col,
			 "invalid character after 'text:' (expected a line break)");
		return lx->t = TK_ERROR;
	}
	adv(lx);
	hm_buf_reset(&lx->ml);
	for (;;) {
		if (cur(lx) == -1) {
			sv_error(lx->c, lx->tline, lx->tcol, "unterminated multi-line string");
			return lx->t = TK_ERROR;
		}
		/* at the start of a line */
		if (cur(lx) == '.') {
			int n1 = peek(lx, 1);
			if (n1 == '\n' || (n1 == '\r' && peek(lx, 2) == '\n') || n1 == -1) {
				adv(lx);
				if (cur(lx) == '\r')
					adv(lx);
				if (cur(lx) == '\n')
					adv(lx);
				break;
			}
			if (n1 == '.')
				adv(lx);
		}
		while (cur(lx) != -1 && cur(lx) != '\n') {
			if (hm_buf_putc(&lx->ml, (char)cur(lx)) < 0)
				goto toolong;
			adv(lx);
		}
		if (cur(lx) == '\n') {
			if ((lx->ml.len == 0 || lx->ml.data[lx->ml.len - 1] != '\r') &&
			    hm_buf_putc(&lx->ml, '\r') < 0)
				goto toolong;
			if (hm_buf_putc(&lx->ml, '\n') < 0)
				goto toolong;
			adv(lx);
		}
	}
	lx->slen = lx->ml.len;
	lx->s = hm_arena_strndup(lx->ar, hm_buf_cstr(&lx->ml), lx->ml.len);
	if (!lx->s) {
		sv_error(lx->c, lx->tline, lx->tcol, "out of memory");
		return lx->t = TK_ERROR;
	}
	return lx->t = TK_STR;
toolong:
	sv_error(lx->c, lx->tline, lx->tcol, "string too long");
	return lx->t = TK_ERROR;
}

/* lex_number - number = 1*DIGIT [ QUANTIFIER ], QUANTIFIER = "K" / "M" / "G" */
static enum sv_tok lex_number(struct sv_lexer *lx)
{
	uint64_t v = 0;
	bool over = false;
	while (is_digit(cur(lx))) {
		if (__builtin_mul_overflow(v, 10, &v) ||
		    __builtin_add_overflow(v, (uint64_t)(cur(lx) - '0'), &v))
			over = true;
		adv(lx);
	}
	int q = cur(lx);
	uint64_t mul = 1;
	if (q == 'K' || q == 'k')
		mul = 1024;
	else if (q == 'M' || q == 'm')
		mul = 1024 * 1024;
	else if (q == 'G' || q == 'g')
		mul = 1024ULL * 1024 * 1024;
	if (mul > 1) {
		adv(lx);
		if (__builtin_mul_overflow(v, mul, &v))
			over = true;
	}
	if (over) {
		sv_error(lx->c, lx->tline, lx->tcol, "number exceeds integer limits");
		return lx->t = TK_ERROR;
	}
	if (is_alpha(cur(lx))) {
		sv_error(lx->c, lx->line, lx->col, "invalid character after number");
		return lx->t = TK_ERROR;
	}
	lx->num = v;
	return lx->t = TK_NUM;
}

/* lex_ident - identifier = (ALPHA / "_") *(ALPHA / DIGIT / "_"); sets id
 * and idlen to the name in the text */
static int lex_ident(struct sv_lexer *lx)
{
	size_t start = lx->pos, i = start;
	while (i < lx->len && cclass[(unsigned char)lx->p[i]]) {
		if (i - start >= SV_MAX_IDENT) {
			sv_error(lx->c, lx->tline, lx->tcol, "identifier too long");
			return -1;
		}
		i++;
	}
	lx->id = lx->p + start;
	lx->idlen = i - start;
	lx->col += (int)(i - start);   /* identifiers hold no line end */
	lx->pos = i;
	return 0;
}

enum sv_tok sv_lex_next(struct sv_lexer *lx)
{
	if (skip_ws(lx) < 0)
		return lx->t = TK_ERROR;
	lx->tline = lx->line;
	lx->tcol = lx->col;
	int ch = cur(lx);
	switch (ch) {
	case -1: return lx->t = TK_EOF;
	case '[': adv(lx); return lx->t = TK_LBRACKET;
	case ']': adv(lx); return lx->t = TK_RBRACKET;
	case '(': adv(lx); return lx->t = TK_LPAREN;
	case ')': adv(lx); return lx->t = TK_RPAREN;
	case '{': adv(lx); return lx->t = TK_LBRACE;
	case '}': adv(lx); return lx->t = TK_RBRACE;
	case ',': adv(lx); return lx->t = TK_COMMA;
	case ';': adv(lx); return lx->t = TK_SEMI;
	case '"': return lex_quoted(lx);
	case ':':
		adv(lx);
		if (!is_alpha(cur(lx))) {
			sv_error(lx->c, lx->tline, lx->tcol, "tag without an identifier after ':'");
			return lx->t = TK_ERROR;
		}
		if (lex_ident(lx) < 0)
			return lx->t = TK_ERROR;
		return lx->t = TK_TAG;
	default:
		break;
	}
	if (is_digit(ch))
		return lex_number(lx);
	if (is_alpha(ch)) {
		if ((ch == 't' || ch == 'T') && lx->pos + 5 <= lx->len &&
		    strncasecmp(lx->p + lx->pos, "text:", 5) == 0)
			return lex_multiline(lx);
		if (lex_ident(lx) < 0)
			return lx->t = TK_ERROR;
		return lx->t = TK_IDENT;
	}
	if (ch == 0)
		sv_error(lx->c, lx->tline, lx->tcol, "NUL character in script");
	else if (ch >= 0x20 && ch < 0x7f)
		sv_error(lx->c, lx->tline, lx->tcol, "unexpected character '%c'", ch);
	else
		sv_error(lx->c, lx->tline, lx->tcol, "unexpected character 0x%02x", ch);
	return lx->t = TK_ERROR;
}
