/* error: the string table of cairn's error codes. */
#include "cairn.h"

static const char *const messages[CAIRN_ERROR_MAX] = {
	[CAIRN_OK] = "success",
#define CAIRN__ERR_TEXT(name, code, text) [code] = text,
	CAIRN_ERRORS(CAIRN__ERR_TEXT)
#undef CAIRN__ERR_TEXT
};

const char *cairn_strerror(int code)
{
	if (code < 0 || code >= CAIRN_ERROR_MAX)
		return "unknown error";
	return messages[code];
}
