/* sv_lexer.h — Sieve lexical analysis (RFC 5228 section 8.1).
 * Identifiers and tags point into the script text; a string value is the
 * text itself (its closing quote overwritten with NUL) when decoding
 * cannot make it longer, else it is decoded into the script's arena. */
#ifndef SV_LEXER_H
#define SV_LEXER_H
#include "sv_int.h"

enum sv_tok {
	TK_EOF, TK_IDENT, TK_TAG, TK_NUM, TK_STR, TK_LBRACKET, TK_RBRACKET,
	TK_LPAREN, TK_RPAREN, TK_LBRACE, TK_RBRACE, TK_COMMA, TK_SEMI, TK_ERROR
};

#define SV_MAX_IDENT 128

struct sv_lexer {
	struct sv_comp *c;
	struct hm_arena *ar;      /* where string values go (the script's) */
	char *p;                  /* the script text (its own copy: a plain
				   * quoted string is ended in place) */
	size_t len, pos;
	int line, col;            /* position of p[pos] */
	/* current token */
	enum sv_tok t;
	int tline, tcol;
	const char *id;           /* IDENT, TAG: the name, in the script text */
	size_t idlen;             /* (not NUL-terminated) */
	uint64_t num;             /* NUM */
	char *s;                  /* STR: the value, NUL-terminated, in the
				   * text or in ar; lives as long as both */
	size_t slen;
	struct hm_buf ml;         /* work space of multi-line strings */
};

/* sv_lex_init - lex p[0..len), which the lexer may write into (string
 * values end in place where they can); other values are allocated in ar */
void sv_lex_init(struct sv_lexer *lx, struct sv_comp *c, struct hm_arena *ar,
		 char *p, size_t len);
/* sv_lex_next - advance to the next token; TK_ERROR after reporting */
enum sv_tok sv_lex_next(struct sv_lexer *lx);
void sv_lex_free(struct sv_lexer *lx);
const char *sv_tok_name(enum sv_tok t);

#endif
