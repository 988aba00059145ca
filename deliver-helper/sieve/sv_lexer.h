/* sv_lexer.h — Sieve lexical analysis (RFC 5228 section 8.1). */
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
	const char *p;
	size_t len, pos;
	int line, col;            /* position of p[pos] */
	/* current token */
	enum sv_tok t;
	int tline, tcol;
	char ident[SV_MAX_IDENT + 1];
	uint64_t num;
	struct hm_buf str;
};

void sv_lex_init(struct sv_lexer *lx, struct sv_comp *c, const char *p, size_t len);
/* sv_lex_next - advance to the next token; TK_ERROR after reporting */
enum sv_tok sv_lex_next(struct sv_lexer *lx);
void sv_lex_free(struct sv_lexer *lx);
const char *sv_tok_name(enum sv_tok t);

#endif
