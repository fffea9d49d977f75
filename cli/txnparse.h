/*
 * txnparse: etcdctl's text form of a transaction, parsed into a cairn_txn.
 *
 * The input is three sections separated by blank lines (the last one may end
 * at end of input instead):
 *
 *   value("k") = "v"          compares, one per line: value, version, create,
 *   version("k") > "3"        mod (short forms val, ver, c, m); operators
 *   mod("k") != "0"           = (or ==), !=, <, >; numbers may be unquoted
 *
 *   put k v [--prev-kv] [--lease=ID]            success operations, one per
 *   get k [end] [--prefix|--from-key] [--limit=N] [--rev=N] [--keys-only]
 *       [--count-only]                           line
 *   del k [end] [--prefix|--from-key] [--prev-kv]
 *
 *   put k other                                  failure operations
 *
 * Tokens are bare words, "double-quoted" with Go escapes (\n \t \" \\ \xHH
 * \ooo \uHHHH ...), 'single-quoted' or `backquoted` raw text. Leading and
 * trailing white space of a line is ignored. Lease ids are hex with 0x or with
 * a letter a-f, decimal otherwise.
 *
 * Feed it line by line (txnparse_line) to drive an interactive prompt, or
 * hand it a whole text (txnparse_text). Errors name the line: "line 3: ...".
 * Everything the resulting cairn_txn points to belongs to the parser.
 */
#ifndef CAIRN_CLI_TXNPARSE_H
#define CAIRN_CLI_TXNPARSE_H

#include <stddef.h>

#include "cairn.h"

enum txnparse_section {
	TXNPARSE_COMPARES = 0,
	TXNPARSE_SUCCESS,
	TXNPARSE_FAILURE,
	TXNPARSE_DONE,
};

struct txnparse;

/* NULL when out of memory. */
struct txnparse *txnparse_new(void);
void txnparse_free(struct txnparse *p);

/* Feeds one line, without its line break. A blank line ends the section.
 * Returns 0, or CAIRN_EINVAL / CAIRN_ENOMEM with txnparse_error() set; after
 * an error the parser refuses further input. */
int txnparse_line(struct txnparse *p, const char *line, size_t len);

/* Feeds a whole text ("\n" or "\r\n" line breaks), as txnparse_line. */
int txnparse_text(struct txnparse *p, const char *text, size_t len);

/* The section the next line belongs to. */
enum txnparse_section txnparse_section(const struct txnparse *p);

/* Ends the input and gives the transaction (valid until txnparse_free). */
int txnparse_finish(struct txnparse *p, const struct cairn_txn **out);

/* The message of the last error, "" if none. */
const char *txnparse_error(const struct txnparse *p);

#endif
