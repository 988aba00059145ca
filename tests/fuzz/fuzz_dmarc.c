/* fuzz_dmarc.c — libFuzzer harness for DMARC evaluation
 * (exim-local-scan/scan_dmarc.c): every byte it reads comes from the
 * message (From:, forged Authentication-Results), from DNS (TXT answers) or
 * from a DKIM result string built from message data.
 *
 * Input: NUL-separated parts: From: value, DKIM result string, the TXT
 * answer for the first lookup, the answer for the second (organisational
 * domain) lookup, an Authentication-Results value; a missing part is empty.
 * A TXT part "TEMP" is a DNS timeout.
 * Checks: no crash or leak; DNS temporary failure is never a pass; the
 * Authentication-Results value and the report line are one field / one
 * line of printable ASCII (tabs and folding aside).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "scan_dmarc.h"

struct answers {
	const char *txt[2];
	int n;
};

static int lookup(void *ctx, const char *name, char **txt_r)
{
	struct answers *a = ctx;
	const char *t = a->n < 2 ? a->txt[a->n++] : "";
	(void)name;
	if (strcmp(t, "TEMP") == 0)
		return -1;
	if (*t == '\0')
		return 0;
	*txt_r = strdup(t);
	return *txt_r ? 1 : -1;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (dmarc_init(DMARC_PSL_DEFAULT) < 0)
		abort();
	return 0;
}

static void printable(const char *s, int allow_nl)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if ((*p < 0x20 && *p != '\t' && !(allow_nl && *p == '\n')) || *p > 0x7e)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1);
	const char *part[5] = {"", "", "", "", ""};
	size_t len[5] = {0};
	int k = 0;

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	part[0] = buf;
	for (size_t i = 0; i < size && k < 4; i++)
		if (buf[i] == '\0') {
			len[k] = (size_t)(buf + i - part[k]);
			part[++k] = buf + i + 1;
		}
	len[k] = strlen(part[k]);

	struct answers a = {{part[2], part[3]}, 0};
	struct dmarc_input in = {.from = part[0], .from_len = len[0], .spf = "pass",
				 .spf_domain = "bounce.example.com", .dkim = part[1],
				 .ip = "198.18.0.1", .pct_roll = (unsigned)(size % 100)};
	struct dmarc_outcome o;
	if (dmarc_evaluate(&in, lookup, &a, &o) == 0) {
		if ((strcmp(part[2], "TEMP") == 0 || strcmp(part[3], "TEMP") == 0) &&
		    o.result == DMARC_PASS && o.policy_domain[0] == '\0')
			abort();
		char *ar = dmarc_authres("mx.example", &in, &o);
		if (ar) {
			/* folded lines only: every '\n' is followed by a tab */
			for (char *p = strchr(ar, '\n'); p; p = strchr(p + 1, '\n'))
				if (p[1] != '\t')
					abort();
			printable(ar, 1);
			free(ar);
		}
		char *line = dmarc_report_line(1, &in, &o);
		if (line) {
			char *nl = strchr(line, '\n');
			if (!nl || nl[1] != '\0')
				abort();
			*nl = '\0';
			printable(line, 0);
			free(line);
		}
	}
	(void)dmarc_authres_is_ours(part[4], len[4], "mx.example");
	free(buf);
	return 0;
}
