/* sv_int.h — internals shared by the files of the Sieve engine.
 *
 * Pipeline: sv_lexer.c (tokens) → sv_parser.c (syntax tree of sv_node) →
 * sv_validate.c (resolves each node against the command tables of the
 * cmd_*.c / tst_*.c / ext_*.c files, checks arguments and require) →
 * sv_interp.c (walks the validated tree, collecting actions into a result).
 * The parser finds definitions in the registry (sv_registry.c), the one
 * core file that names extensions; the core calls extensions only through
 * the function pointers there.  Files depend on each other one way only
 * (tools/sieve-layers; layers in docs/sieve.md).
 * Every allocation belongs to the script (freed by sieve_script_free) or to
 * one run (freed with the run); nothing is static except constant tables.
 */
#ifndef SV_INT_H
#define SV_INT_H
#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hm_arena.h"
#include "hm_buf.h"
#include "sieve.h"

/* ---- extensions ---------------------------------------------------- */
enum sv_ext {
	EXT_NONE = 0,   /* core language: zero so that tables may omit .ext */
	EXT_FILEINTO, EXT_ENVELOPE, EXT_COPY, EXT_IMAP4FLAGS, EXT_VACATION,
	EXT_VACATION_SECONDS, EXT_REJECT, EXT_EREJECT, EXT_RELATIONAL,
	EXT_CMP_NUMERIC, EXT_SUBADDRESS, EXT_BODY, EXT_VARIABLES, EXT_MAILBOX,
	EXT_DATE, EXT_INDEX, EXT_REGEX, EXT_INCLUDE, EXT_DUPLICATE,
	EXT_ENCODED_CHARACTER, EXT_CMP_CASEMAP, EXT_CMP_OCTET,
	EXT_COUNT
};
extern const char *const sv_ext_names[EXT_COUNT];
int sv_ext_lookup(const char *name);

/* ---- syntax tree ------------------------------------------------------
 * Every node, argument and string of a script lives in the script's arena
 * (struct sieve_script.arena) and is freed with it at once; the structures
 * are kept small because a 1,000-rule script has ~5,000 nodes and the
 * pages they touch are a good part of a fresh process's cost. */
struct sv_str {
	char *s;          /* NUL-terminated; may contain NULs via encodings;
			   * in the script text itself or in the arena */
	uint32_t len;     /* <= script length + 1; scripts are below 2 GB
			   * (compile_text in sv_compile.c) */
	int line, col;
	bool var;         /* contains "${" and variables is required */
};

enum sv_arg_type { SV_ARG_NUM, SV_ARG_STR, SV_ARG_LIST, SV_ARG_TAG };

struct sv_arg {
	uint8_t type;         /* enum sv_arg_type */
	uint8_t tagid;        /* TAG: enum sv_tag, set by the validator */
	int line, col;
	uint32_t n;           /* STR: 1, LIST: count, else 0 */
	union {
		uint64_t num;     /* NUM */
		struct sv_str *v; /* STR: one, LIST: n */
		char *tag;        /* TAG: name without ':' */
	};
};

/* Tags (tagged arguments), one id per meaning. */
enum sv_tag {
	TG_COMPARATOR, TG_IS, TG_CONTAINS, TG_MATCHES, TG_REGEX, TG_VALUE, TG_COUNT,
	TG_ALL, TG_LOCALPART, TG_DOMAIN, TG_USER, TG_DETAIL,
	TG_INDEX, TG_LAST, TG_OVER, TG_UNDER, TG_COPY, TG_FLAGS, TG_CREATE,
	TG_DAYS, TG_SECONDS, TG_SUBJECT, TG_FROM, TG_ADDRESSES, TG_MIME, TG_HANDLE,
	TG_RAW, TG_CONTENT, TG_TEXT, TG_ZONE, TG_ORIGINALZONE,
	TG_PERSONAL, TG_GLOBAL, TG_ONCE, TG_OPTIONAL,
	TG_DUP_HEADER, TG_DUP_UNIQUEID, TG_DUP_SECONDS, TG_DUP_LAST, TG_DUP_HANDLE,
	TG_LOWER, TG_UPPER, TG_LOWERFIRST, TG_UPPERFIRST, TG_QUOTEWILDCARD,
	TG_QUOTEREGEX, TG_LENGTH,
	TG_COUNT_ALL
};
_Static_assert(TG_COUNT_ALL <= 64, "the tags given to a node are a 64-bit set");

enum sv_tagarg { TA_NONE, TA_NUM, TA_STR, TA_LIST };

struct sv_tagdef {
	const char *name;
	enum sv_tag id;
	enum sv_ext ext;      /* extension that must be required, or EXT_NONE */
	enum sv_tagarg arg;
	int group;            /* tags of one group exclude each other (0: none) */
};
/* the tag table and its lookups (sv_tags.c) */
const struct sv_tagdef *sv_tagdef(enum sv_tag id);
struct sv_def;
/* sv_tag_find - the tag called name (any case) allowed for def, or NULL */
const struct sv_tagdef *sv_tag_find(const struct sv_def *def, const char *name);
/* sv_lc - ASCII lower case of ch */
int sv_lc(int ch);
/* sv_cmp_lower - strcmp of ASCII-lower-cased a[0..alen) against b (lower case) */
int sv_cmp_lower(const char *a, size_t alen, const char *b);

enum sv_mt { MT_IS, MT_CONTAINS, MT_MATCHES, MT_REGEX, MT_VALUE, MT_COUNT };
enum sv_cmp { CMP_OCTET, CMP_CASEMAP, CMP_NUMERIC };
enum sv_rel { REL_GT, REL_GE, REL_LT, REL_LE, REL_EQ, REL_NE };
enum sv_ap { AP_ALL, AP_LOCALPART, AP_DOMAIN, AP_USER, AP_DETAIL };

struct sv_node;
struct sv_script_int;

/* Options resolved from tags by the validator. */
struct sv_opts {
	uint64_t tags;        /* bit (1 << id) for each tag given */
	uint8_t mt;           /* enum sv_mt */
	uint8_t cmp;          /* enum sv_cmp */
	uint8_t rel;          /* enum sv_rel */
	uint8_t ap;           /* enum sv_ap */
};
/* sv_has - tag id is in the set */
#define sv_has(set, id) ((((set) >> (id)) & 1u) != 0)

struct sv_node {
	const char *name;         /* as written (a definition's name when it is
				   * spelt the same, else in the arena) */
	const struct sv_def *def; /* the parser's guess by name (any kind);
				   * checked and kept by the validator */
	struct sv_arg *args;
	struct sv_node *tests;    /* first test (then ->next): test or test-list */
	union {
		struct sv_node *block;  /* first command of the block (then ->next) */
		void *priv;       /* a command without block (has_block false):
				   * its data, not owned by the node (include:
				   * the compiled script), set by its validate */
	};
	struct sv_node *next;     /* next command of the block / test of the list */
	int line, col;
	int end_line, end_col;    /* the token after the arguments and tests */
	uint32_t nargs, ntests;
	bool test_list;           /* tests came as "( ... )" */
	bool has_block;
	/* filled by the validator */
	uint8_t npos;
	uint8_t pos_i[4];         /* indexes into args of the positional ones */
	struct sv_opts o;
};

/* sv_pos - positional argument i (i < npos) */
#define sv_pos(n, i) (&(n)->args[(n)->pos_i[i]])
/* sv_tagarg - the argument of tag id, or NULL (tag absent or takes none) */
const struct sv_arg *sv_tagarg(const struct sv_node *n, enum sv_tag id);
/* sv_tagpos - the tag id itself (for error positions), or NULL */
const struct sv_arg *sv_tagpos(const struct sv_node *n, enum sv_tag id);
#define SV_MAX_ARGS 250          /* arguments of one command (indexes are bytes) */

/* ---- command / test definitions ------------------------------------ */
struct sv_comp;
struct sv_run;

enum { SV_OK = 0, SV_STOP = 1, SV_ERR = -1, SV_RETURN = 2 };

#define SV_MATCHING   0x01  /* :comparator + match types (+ relational) */
#define SV_ADDRPART   0x02  /* :all :localpart :domain (+ subaddress) */
#define SV_INDEXED    0x04  /* :index :last (index extension) */

struct sv_def {
	const char *name;
	enum sv_ext ext;          /* needed extension or EXT_NONE */
	bool is_test;
	unsigned groups;          /* SV_MATCHING | SV_ADDRPART | SV_INDEXED */
	const enum sv_tag *tags;  /* further allowed tags, ended by TG_COUNT_ALL */
	const char *pos;          /* positional args: s string, l list, n number,
				   * lowercase letter after '?' = optional */
	int block;                /* 0 none, 1 required */
	int subtests;             /* 0 none, 1 one test, 2 test-list */
	/* validate - extra checks; returns 0 ok, -1 error reported */
	int (*validate)(struct sv_comp *c, struct sv_node *n);
	/* exec - command: SV_OK/SV_STOP/SV_RETURN/SV_ERR; test: 1/0/-1 */
	int (*exec)(struct sv_run *r, struct sv_node *n);
};

/* the registry (sv_registry.c): every definition, sorted by name */
extern const struct sv_def *const sv_defs[];
/* sv_def_find - the command or test called name[0..len) (any case), or NULL */
const struct sv_def *sv_def_find(const char *name, size_t len);

/* command families (one file each) */
extern const struct sv_def sv_def_require, sv_def_if, sv_def_elsif, sv_def_else,
	sv_def_stop, sv_def_keep, sv_def_discard, sv_def_redirect, sv_def_fileinto,
	sv_def_true, sv_def_false, sv_def_not, sv_def_allof, sv_def_anyof,
	sv_def_exists, sv_def_size, sv_def_header, sv_def_address,
	sv_def_envelope, sv_def_body, sv_def_set, sv_def_string,
	sv_def_setflag, sv_def_addflag, sv_def_removeflag, sv_def_hasflag,
	sv_def_vacation, sv_def_reject, sv_def_ereject, sv_def_include,
	sv_def_return, sv_def_global, sv_def_duplicate, sv_def_date,
	sv_def_currentdate, sv_def_mailboxexists;

/* ---- script ----------------------------------------------------------- */
struct sv_script_int;
struct sieve_script {
	char *name;               /* path or name used in messages */
	char *dir;                /* directory of the file (personal includes) */
	char *text;
	size_t len;
	struct hm_arena arena;    /* the tree: nodes, arguments, strings */
	struct sv_node *cmds;     /* first command (then ->next) */
	bool ext[EXT_COUNT];
	struct sieve_limits lim;
	char *personal_dir, *global_dir;
	/* included scripts, compiled at compile time */
	struct sieve_script **incs;
	size_t nincs;
	struct sieve_script *root; /* top-level script (owner of the incs) */
	unsigned inc_depth;
	char **globals;           /* names declared "global" */
	size_t nglobals;
	int refs;
};

/* ---- compiler ------------------------------------------------------- */
struct sv_comp {
	struct sieve_script *s;
	struct sv_comp *parent;   /* the including script's compiler */
	struct hm_buf err;
	int nerr;
	unsigned depth;
	bool require_allowed;
	/* compile (or find) an included script: sv_compile_include, set by
	 * sv_compile.c, so that ext_include.c need not depend on the compiler
	 * (the compiler reaches every extension through the registry) */
	struct sieve_script *(*compile_include)(struct sv_comp *c, const char *path,
						const char *name, int line, int col,
						bool optional, bool *missing_r);
};
#define SV_MAX_ERRORS 10
/* sv_error - record "NAME:LINE:COL: error: MSG" (sv_error.c; the first
 * SV_MAX_ERRORS are kept, all are counted) */
void sv_error(struct sv_comp *c, int line, int col, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* lexer + parser: fill s->cmds; returns 0, -1 with error recorded */
int sv_parse(struct sv_comp *c);
/* validator: returns 0, -1 with errors recorded */
int sv_validate(struct sv_comp *c);
/* sv_validate_index - :index N (N >= 1) and :last only with :index */
int sv_validate_index(struct sv_comp *c, struct sv_node *n);
/* sv_validate_node - one command (is_test false) or test and what it holds */
int sv_validate_node(struct sv_comp *c, struct sv_node *n, bool is_test);
/* sv_compile_include - compile (or find) an included script */
struct sieve_script *sv_compile_include(struct sv_comp *c, const char *path,
					const char *name, int line, int col, bool optional,
					bool *missing_r);

/* encoded-character (RFC 5228 2.4.2.4): decode in place; -1 on bad encoding */
int sv_decode_encoded_chars(struct sv_comp *c, struct sv_str *s);
/* the extensions' string hooks of the validator, indexed by extension
 * (sv_registry.c); the validator calls ext_encoded.c only through them */
extern int (*const sv_ext_string_hook[EXT_COUNT])(struct sv_comp *c, struct sv_str *s);

/* ---- message access (sv_message.c) -------------------------------- */
struct hm_header;
struct hm_addr_list;
struct sv_bodypart {
	char *ctype;          /* lower-case "type/subtype" ("multipart/x" for the
			       * preamble and epilogue of a multipart) */
	char *text;           /* decoded (transfer + charset → UTF-8) */
	size_t len;
};

struct sv_msg {
	const struct sieve_message *m;
	struct hm_header *hdr;
	char **dec;           /* decoded value per field, on demand */
	char **unf;           /* Pigeonhole-style unfolded value of folded fields */
	size_t *unflen;
	size_t *declen;
	struct hm_addr_list **addrs; /* parsed address list per field, on demand */
	const char *body;
	size_t blen;
	struct sv_bodypart *parts;
	size_t nparts, pcap;
	bool parts_done;
	bool parts_cut;       /* more parts or deeper nesting than the limits */
	int parts_rc;         /* what sv_msg_parts returned the first time */
};
/* sv_msg_init - 0 ok, -1 ENOMEM, -2 the header is past hm_header's limits
 * (fields there would go unseen: the caller does not filter the message) */
int sv_msg_init(struct sv_msg *mm, const struct sieve_message *m);
void sv_msg_free(struct sv_msg *mm);
size_t sv_msg_nfields(const struct sv_msg *mm);
/* sv_hdr_is - field i is called name[0..nlen) (case-insensitive) */
bool sv_hdr_is(const struct sv_msg *mm, size_t i, const char *name, size_t nlen);
/* sv_hdr_value - unfolded, trimmed, RFC 2047-decoded value (cached);
 * NULL on ENOMEM */
const char *sv_hdr_value(struct sv_msg *mm, size_t i, size_t *len_r);
/* sv_hdr_uvalue - unfolded, trimmed, undecoded value (for addresses) */
const char *sv_hdr_uvalue(struct sv_msg *mm, size_t i, size_t *len_r);
#define SV_MAX_ADDRS_PER_FIELD 1000
/* sv_hdr_addresses - the addresses of field i (parsed once, at most
 * SV_MAX_ADDRS_PER_FIELD; ->truncated when there were more, which callers
 * must not ignore); NULL on ENOMEM */
const struct hm_addr_list *sv_hdr_addresses(struct sv_msg *mm, size_t i);
/* sv_msg_header1 - decoded value of the first field called name, or NULL */
const char *sv_msg_header1(struct sv_msg *mm, const char *name, size_t *len_r);
/* sv_msg_parts - split the body into MIME parts (once); -1 on ENOMEM, -2
 * when the message has more parts or deeper nesting than the limits */
int sv_msg_parts(struct sv_msg *mm, size_t max_bytes);

/* ---- runtime ---------------------------------------------------------- */
#define SV_MAX_MATCHVARS 64     /* ${0}..${63}: Pigeonhole goes past ${9} */

struct sv_var {
	char *name;           /* lower-case */
	char *val;
	size_t len;
};
struct sv_varstore {
	struct sv_var *v;
	size_t n, cap;
};

struct sv_frame {
	struct sieve_script *s;
	struct sv_varstore local;
};

struct sv_run {
	const struct sieve_message *m;
	const struct sieve_callbacks *cb;
	struct sv_msg msg;
	struct sieve_result *res;
	struct sieve_limits lim;
	uint64_t steps;
	bool keep;                /* implicit keep still in effect */
	bool stopped;
	bool mvars_set;
	bool failed;
	struct sv_frame *frame;   /* current script */
	struct sv_varstore globals;
	char *mvars[SV_MAX_MATCHVARS];
	size_t mlens[SV_MAX_MATCHVARS];
	char **flags;             /* imap4flags internal variable */
	size_t nflags;
	unsigned inc_depth;
	struct sieve_script **once_done;
	size_t nonce;
	struct sieve_script **inc_stack;
	size_t ninc_stack;
	unsigned redirects;
	unsigned script;          /* the current script's index in scripts[] */
	int err_line, err_col;
	struct hm_buf errbuf;
};

/* sv_rt_error - runtime error at the node: sets r->failed; returns SV_ERR */
int sv_rt_error(struct sv_run *r, const struct sv_node *n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void sv_rt_warn(struct sv_run *r, const struct sv_node *n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* sv_step - charge CPU steps; -1 (error set) when over budget */
int sv_step(struct sv_run *r, const struct sv_node *n, uint64_t cost);
/* sv_exec_block - run the commands from cmds on (->next) */
int sv_exec_block(struct sv_run *r, struct sv_node *cmds);
int sv_exec_test(struct sv_run *r, struct sv_node *t);

/* sv_expand - string with variables expanded (malloc'd, always NUL-ended);
 * returns NULL on error (reported) */
char *sv_expand(struct sv_run *r, const struct sv_node *n, const struct sv_str *s,
		size_t *len_r);
/* sv_expand_ref - the same without a copy when s has no variables: returns
 * s->s itself (*own_r = NULL) or the malloc'd expansion (*own_r, which the
 * caller frees); NULL on error (reported) */
const char *sv_expand_ref(struct sv_run *r, const struct sv_node *n, const struct sv_str *s,
			  size_t *len_r, char **own_r);
/* sv_test_all - 1 when holds() is true (> 0) for every expanded string of a,
 * 0 at the first for which it is not, -1 on error (reported); each call's
 * *cost_r is charged with sv_step */
int sv_test_all(struct sv_run *r, struct sv_node *n, const struct sv_arg *a,
		int (*holds)(struct sv_run *r, const char *s, size_t len, uint64_t *cost_r));
/* variables */
int sv_var_set(struct sv_run *r, const struct sv_node *n, const char *name,
	       const char *val, size_t len);
const struct sv_var *sv_var_get(struct sv_run *r, const char *name);
bool sv_var_name_ok(const char *name);
void sv_set_matchvars(struct sv_run *r, char **vals, size_t *lens, size_t n);
void sv_varstore_free(struct sv_varstore *vs);

/* actions (sv_result.c) */
int sv_add_store(struct sv_run *r, const struct sv_node *n, const char *folder,
		 char **flags, size_t nflags, bool create, bool copy);
int sv_add_action(struct sv_run *r, const struct sv_node *n, struct sieve_action *a);
void sv_action_free(struct sieve_action *a);
char **sv_strv_dup(char *const *v, size_t n);
void sv_strv_free(char **v);

/* flag sets (sv_flags.c; the commands are ext_imap4flags.c) */
#define SV_MAX_FLAGS 128
int sv_flags_from_list(struct sv_run *r, const struct sv_node *n, const struct sv_arg *a,
		       char ***out_r, size_t *nout_r);
int sv_flags_current(struct sv_run *r, char ***out_r, size_t *nout_r);
/* sv_flag_has - f is in v[0..n) (compared without regard to case) */
bool sv_flag_has(char **v, size_t n, const char *f);
/* sv_flags_add - add the valid flags of s (space separated) to the set
 * *v of *nv (invalid ones and those past SV_MAX_FLAGS: a warning);
 * -1 when out of memory */
int sv_flags_add(struct sv_run *r, const struct sv_node *n, const char *s,
		 char ***v, size_t *nv);
void sv_flags_free(char **v, size_t n);

/* ---- matching (sv_match.c) -------------------------------------------- */
#define SV_MATCH_INLINE_KEYS 8  /* keys held without a malloc */
struct sv_match {
	struct sv_run *r;
	const struct sv_node *n;
	const char **keys;    /* the script's strings, or expansions (own) */
	size_t *klen;
	char **own;           /* per key: malloc'd expansion to free, or NULL */
	size_t nkeys;
	regex_t *rx;          /* per key, MT_REGEX */
	bool *rx_ok;
	uint64_t count;
	int result;           /* 1 matched */
	bool no_vars;         /* this test sets no match variables (body) */
	struct hm_buf part;   /* work space for the address part being matched */
	const char *keys_in[SV_MATCH_INLINE_KEYS];
	size_t klen_in[SV_MATCH_INLINE_KEYS];
	char *own_in[SV_MATCH_INLINE_KEYS];
};
/* sv_match_begin - expand the keys of arg (and compile regexes); -1 error */
int sv_match_begin(struct sv_match *m, struct sv_run *r, const struct sv_node *n,
		   const struct sv_arg *keys);
/* sv_match_value - test one value; 1 matched (stop), 0 continue, -1 error */
int sv_match_value(struct sv_match *m, const char *v, size_t len);
/* sv_match_end - final result (1/0/-1, :count evaluated) and frees */
int sv_match_end(struct sv_match *m);
void sv_match_abort(struct sv_match *m);
/* validation of comparator/match-type combinations, regex keys */
int sv_match_validate(struct sv_comp *c, struct sv_node *n, const struct sv_arg *keys);
int sv_rel_parse(const char *s, enum sv_rel *rel_r);
int sv_cmp_numeric(const char *a, size_t al, const char *b, size_t bl);
int sv_cmp_order(enum sv_cmp cmp, const char *a, size_t al, const char *b, size_t bl);
/* glob match with captures; returns 1/0 */
int sv_glob(const char *p, size_t pl, const char *v, size_t vl, bool icase,
	    char **caps, size_t *caplens, size_t maxcaps, size_t *ncaps_r, uint64_t *steps);

/* address helpers (tst_header.c) */
/* sv_addr_part - the address part ap of local@domain: *v_r points into
 * local/domain or, for :all, into b (reset first); returns 1, 0 when the
 * part does not exist (:detail without "+"), -1 on ENOMEM */
int sv_addr_part(enum sv_ap ap, const char *local, const char *domain, struct hm_buf *b,
		 const char **v_r, size_t *len_r);

/* misc */
char *sv_strndup(const char *s, size_t n);
bool sv_streq_ci(const char *a, const char *b);
/* date helpers (ext_date.c) */
int sv_parse_date(const char *s, time_t *t_r, int *off_r);

#endif
