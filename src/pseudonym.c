/*-------------------------------------------------------------------------
 *
 * src/pseudonym.c
 *	  Keyed pseudonymisation of identifiers: HMAC-SHA256 under versioned
 *	  keys read by the server from a keyring file that no SQL role can
 *	  read. Holds the keyring (loading, checks, status), the hash (with the
 *	  keyed inner and outer SHA-256 states computed once per key, so a call
 *	  costs two compressions of its own data), the SQL functions, and the
 *	  BEFORE INSERT OR UPDATE trigger that replaces plaintext by pseudonyms.
 *
 *	  A pseudonym reads "v<version>:" followed by the unpadded base64url
 *	  encoding of the 32-byte MAC, so a reader knows which key made it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/stat.h>
#include <unistd.h>

/* the low-level SHA256_* calls let us keep and copy precomputed states */
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "clinical.h"

#define PSEUD_MAC_LEN		32
#define PSEUD_B64_LEN		43		/* unpadded base64url of 32 bytes */
#define PSEUD_MIN_KEY_LEN	32
#define PSEUD_MAX_KEY_LEN	1024
#define PSEUD_MAX_KEYS		64
#define PSEUD_BLOCK			64		/* SHA-256 block size */

typedef struct PseudKey
{
	int			version;
	int			keylen;
	SHA256_CTX	inner;			/* state after (K0 xor ipad) */
	SHA256_CTX	outer;			/* state after (K0 xor opad) */
	char		fingerprint[17];	/* 8 bytes of HMAC(K, label), hex */
} PseudKey;

typedef struct PseudKeyring
{
	int			nkeys;
	int			highest;		/* highest version in the file */
	PseudKey	keys[PSEUD_MAX_KEYS];
} PseudKeyring;

/* settings */
static char *pseud_keyring_file = NULL;
static int	pseud_key_version = 0;

/*
 * The loaded keyring of this backend, and what it was loaded from: it is
 * reloaded when the setting or the file (inode, size, mtime) changes,
 * checked at most once per statement.
 */
static PseudKeyring *pseud_ring = NULL;
static char *pseud_ring_path = NULL;
static struct stat pseud_ring_stat;
static TimestampTz pseud_checked_at = 0;

void
pseud_define_gucs(void)
{
	DefineCustomStringVariable("clinical.keyring_file",
							   "File holding the pseudonymisation keys, one \"version:hex\" a line.",
							   "Must be owned by the server's user and not readable by group or others.",
							   &pseud_keyring_file,
							   "",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("clinical.key_version",
							"Key version used for new pseudonyms; 0 uses the highest in the keyring.",
							NULL,
							&pseud_key_version,
							0, 0, INT_MAX,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);
}

/* Forget the loaded keys, wiping the key-derived states. */
static void
pseud_ring_free(void)
{
	if (pseud_ring)
	{
		OPENSSL_cleanse(pseud_ring, sizeof(PseudKeyring));
		pfree(pseud_ring);
		pseud_ring = NULL;
	}
	if (pseud_ring_path)
	{
		pfree(pseud_ring_path);
		pseud_ring_path = NULL;
	}
}

static int
pseud_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Raw HMAC with a prepared key. */
static void
pseud_hmac(const PseudKey *key, const unsigned char *data, size_t len,
		   unsigned char *mac)
{
	SHA256_CTX	ctx;
	unsigned char ihash[PSEUD_MAC_LEN];

	memcpy(&ctx, &key->inner, sizeof(ctx));
	SHA256_Update(&ctx, data, len);
	SHA256_Final(ihash, &ctx);
	memcpy(&ctx, &key->outer, sizeof(ctx));
	SHA256_Update(&ctx, ihash, PSEUD_MAC_LEN);
	SHA256_Final(mac, &ctx);
}

/* Prepare the inner and outer states of a key (RFC 2104). */
static void
pseud_prepare_key(PseudKey *key, const unsigned char *raw, int rawlen)
{
	unsigned char k0[PSEUD_BLOCK];
	unsigned char pad[PSEUD_BLOCK];
	unsigned char mac[PSEUD_MAC_LEN];
	static const char label[] = "clinical keyring fingerprint";
	int			i;

	memset(k0, 0, sizeof(k0));
	if (rawlen > PSEUD_BLOCK)
		SHA256(raw, rawlen, k0);
	else
		memcpy(k0, raw, rawlen);

	for (i = 0; i < PSEUD_BLOCK; i++)
		pad[i] = k0[i] ^ 0x36;
	SHA256_Init(&key->inner);
	SHA256_Update(&key->inner, pad, PSEUD_BLOCK);
	for (i = 0; i < PSEUD_BLOCK; i++)
		pad[i] = k0[i] ^ 0x5c;
	SHA256_Init(&key->outer);
	SHA256_Update(&key->outer, pad, PSEUD_BLOCK);
	key->keylen = rawlen;

	pseud_hmac(key, (const unsigned char *) label, strlen(label), mac);
	for (i = 0; i < 8; i++)
		snprintf(key->fingerprint + 2 * i, 3, "%02x", mac[i]);

	OPENSSL_cleanse(k0, sizeof(k0));
	OPENSSL_cleanse(pad, sizeof(pad));
}

/*
 * Complain about the keyring file. Messages name the file and line, never
 * the line's content.
 */
#define pseud_file_error(hint, ...) \
	ereport(ERROR, \
			(errcode(ERRCODE_CONFIG_FILE_ERROR), \
			 errmsg(__VA_ARGS__), \
			 errhint(hint)))

/*
 * Read and check the keyring file into a new keyring. All buffers that
 * held key bytes are wiped, also on error.
 */
static PseudKeyring *
pseud_load(const char *path, struct stat *st)
{
	PseudKeyring *ring = NULL;
	FILE	   *f;
	char	   *buf = NULL;
	unsigned char *raw = NULL;
	volatile int lineno = 0;
	char		iobuf[8192];	/* stdio's buffer: wiped once the file is closed */

	f = AllocateFile(path, "r");
	if (f == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("could not open keyring file \"%s\": %m", path),
				 errhint("Check clinical.keyring_file; the file must exist and be readable by the server.")));

	/* check the file that was opened, not what the path names by now */
	if (fstat(fileno(f), st) != 0)
	{
		int			save_errno = errno;

		FreeFile(f);
		errno = save_errno;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not stat keyring file \"%s\": %m", path)));
	}
	if (!S_ISREG(st->st_mode))
	{
		FreeFile(f);
		pseud_file_error("Point clinical.keyring_file at a regular file.",
						 "keyring file \"%s\" is not a regular file", path);
	}
	if (st->st_uid != geteuid())
	{
		FreeFile(f);
		pseud_file_error("Make the server's operating-system user the owner of the file (chown).",
						 "keyring file \"%s\" is not owned by the database server's user", path);
	}
	if (st->st_mode & (S_IRWXG | S_IRWXO))
	{
		FreeFile(f);
		pseud_file_error("Allow access only to its owner: chmod 600 on the file.",
						 "keyring file \"%s\" is accessible to group or others", path);
	}
	setvbuf(f, iobuf, _IOFBF, sizeof(iobuf));

	PG_TRY();
	{
		size_t		bufsize = 2 * PSEUD_MAX_KEY_LEN + 64;

		buf = palloc(bufsize);
		raw = palloc(PSEUD_MAX_KEY_LEN);
		ring = palloc0(sizeof(PseudKeyring));

		while (fgets(buf, bufsize, f) != NULL)
		{
			char	   *p = buf;
			char	   *end;
			long		version;
			int			nhex = 0;
			int			i;

			lineno++;
			if (strchr(buf, '\n') == NULL && !feof(f))
				pseud_file_error("Keys are at most 1024 bytes (2048 hex digits).",
								 "keyring file \"%s\" line %d is too long", path, lineno);
			while (*p == ' ' || *p == '\t')
				p++;
			if (*p == '#' || *p == '\n' || *p == '\r' || *p == '\0')
				continue;

			errno = 0;
			version = strtol(p, &end, 10);
			if (end == p || *end != ':' || errno != 0 || version < 1 || version > INT_MAX)
				pseud_file_error("Each line is \"version:hex\", the version a positive integer, e.g. 1:<64 or more hex digits>.",
								 "keyring file \"%s\" line %d is malformed", path, lineno);
			p = end + 1;
			while (pseud_hexval(p[nhex]) >= 0)
				nhex++;
			for (i = nhex; p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n'; i++)
				;
			if (p[i] != '\0' || nhex % 2 != 0)
				pseud_file_error("Each line is \"version:hex\" with an even number of hex digits and nothing after them.",
								 "keyring file \"%s\" line %d is malformed", path, lineno);
			if (nhex / 2 < PSEUD_MIN_KEY_LEN)
				pseud_file_error("Generate keys of 32 bytes or more, e.g. with: openssl rand -hex 32",
								 "keyring file \"%s\" line %d: key is shorter than %d bytes",
								 path, lineno, PSEUD_MIN_KEY_LEN);
			if (nhex / 2 > PSEUD_MAX_KEY_LEN)
				pseud_file_error("Keys are at most 1024 bytes.",
								 "keyring file \"%s\" line %d: key is longer than %d bytes",
								 path, lineno, PSEUD_MAX_KEY_LEN);
			for (i = 0; i < ring->nkeys; i++)
				if (ring->keys[i].version == version)
					pseud_file_error("Each key version may appear once.",
									 "keyring file \"%s\" line %d repeats key version %ld",
									 path, lineno, version);
			if (ring->nkeys >= PSEUD_MAX_KEYS)
				pseud_file_error("Remove retired keys from the file.",
								 "keyring file \"%s\" holds more than %d keys", path, PSEUD_MAX_KEYS);

			for (i = 0; i < nhex / 2; i++)
				raw[i] = (pseud_hexval(p[2 * i]) << 4) | pseud_hexval(p[2 * i + 1]);
			ring->keys[ring->nkeys].version = (int) version;
			pseud_prepare_key(&ring->keys[ring->nkeys], raw, nhex / 2);
			ring->nkeys++;
			if (version > ring->highest)
				ring->highest = (int) version;
			OPENSSL_cleanse(buf, bufsize);
		}
		if (ferror(f))
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not read keyring file \"%s\": %m", path)));
		if (ring->nkeys == 0)
			pseud_file_error("Add a line \"1:<hex>\", e.g. from: openssl rand -hex 32",
							 "keyring file \"%s\" holds no keys", path);
		OPENSSL_cleanse(buf, bufsize);
		OPENSSL_cleanse(raw, PSEUD_MAX_KEY_LEN);
	}
	PG_CATCH();
	{
		FreeFile(f);
		OPENSSL_cleanse(iobuf, sizeof(iobuf));
		if (buf)
			OPENSSL_cleanse(buf, 2 * PSEUD_MAX_KEY_LEN + 64);
		if (raw)
			OPENSSL_cleanse(raw, PSEUD_MAX_KEY_LEN);
		if (ring)
			OPENSSL_cleanse(ring, sizeof(PseudKeyring));
		PG_RE_THROW();
	}
	PG_END_TRY();

	FreeFile(f);
	OPENSSL_cleanse(iobuf, sizeof(iobuf));
	pfree(buf);
	pfree(raw);
	return ring;
}

/*
 * The keyring, loaded or reloaded as needed. The file is looked at (stat)
 * at most once per statement, so a new file takes effect at the next
 * statement after a reload; calls within a statement cost nothing extra.
 */
static PseudKeyring *
pseud_keyring(void)
{
	TimestampTz stmt = GetCurrentStatementStartTimestamp();
	struct stat st;
	MemoryContext old;
	PseudKeyring *ring;

	if (pseud_ring != NULL && stmt == pseud_checked_at &&
		strcmp(pseud_ring_path, pseud_keyring_file) == 0)
		return pseud_ring;

	if (pseud_keyring_file == NULL || pseud_keyring_file[0] == '\0')
	{
		pseud_ring_free();
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("no keyring is configured for pseudonymisation"),
				 errhint("Set clinical.keyring_file in postgresql.conf to a file of \"version:hex\" lines and reload the configuration.")));
	}

	if (pseud_ring != NULL && strcmp(pseud_ring_path, pseud_keyring_file) == 0 &&
		stat(pseud_keyring_file, &st) == 0 &&
		st.st_ino == pseud_ring_stat.st_ino && st.st_dev == pseud_ring_stat.st_dev &&
		st.st_size == pseud_ring_stat.st_size &&
		st.st_mtime == pseud_ring_stat.st_mtime &&
		st.st_mode == pseud_ring_stat.st_mode && st.st_uid == pseud_ring_stat.st_uid)
	{
		pseud_checked_at = stmt;
		return pseud_ring;
	}

	pseud_ring_free();
	ring = pseud_load(pseud_keyring_file, &st);

	old = MemoryContextSwitchTo(TopMemoryContext);
	pseud_ring = palloc(sizeof(PseudKeyring));
	memcpy(pseud_ring, ring, sizeof(PseudKeyring));
	pseud_ring_path = pstrdup(pseud_keyring_file);
	MemoryContextSwitchTo(old);
	OPENSSL_cleanse(ring, sizeof(PseudKeyring));
	pfree(ring);

	pseud_ring_stat = st;
	pseud_checked_at = stmt;
	return pseud_ring;
}

/* The key of a version; 0 means clinical.key_version, or the highest. */
static const PseudKey *
pseud_key(int version)
{
	PseudKeyring *ring = pseud_keyring();
	int			i;

	if (version == 0)
		version = pseud_key_version > 0 ? pseud_key_version : ring->highest;
	for (i = 0; i < ring->nkeys; i++)
		if (ring->keys[i].version == version)
			return &ring->keys[i];

	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("key version %d is not in the keyring", version),
			 errhint("Use a version listed by clinical.keyring_status(), or add the key to the keyring file and reload.")));
	return NULL;				/* keep compiler quiet */
}

/* Is there a key of this version? Never raises for a missing version. */
static bool
pseud_known_version(int version)
{
	PseudKeyring *ring = pseud_keyring();
	int			i;

	for (i = 0; i < ring->nkeys; i++)
		if (ring->keys[i].version == version)
			return true;
	return false;
}

static const char pseud_b64url[] =
"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Unpadded base64url of 32 bytes into dst (43 chars, no terminator). */
static void
pseud_b64url_encode(const unsigned char *src, char *dst)
{
	int			i,
				o = 0;

	for (i = 0; i + 2 < PSEUD_MAC_LEN; i += 3)
	{
		uint32		v = (src[i] << 16) | (src[i + 1] << 8) | src[i + 2];

		dst[o++] = pseud_b64url[(v >> 18) & 63];
		dst[o++] = pseud_b64url[(v >> 12) & 63];
		dst[o++] = pseud_b64url[(v >> 6) & 63];
		dst[o++] = pseud_b64url[v & 63];
	}
	/* 32 = 30 + 2 remaining bytes */
	{
		uint32		v = (src[30] << 16) | (src[31] << 8);

		dst[o++] = pseud_b64url[(v >> 18) & 63];
		dst[o++] = pseud_b64url[(v >> 12) & 63];
		dst[o++] = pseud_b64url[(v >> 6) & 63];
	}
}

/*
 * If s (length len) has the form of a pseudonym, "v<digits>:" + 43
 * base64url characters, return its version, else 0.
 */
static int
pseud_parse_version(const char *s, int len)
{
	int			i = 1;
	long		version = 0;

	if (len < 2 + 1 + PSEUD_B64_LEN || s[0] != 'v' || s[1] == '0')
		return 0;				/* no leading zeros: one spelling per version */
	while (i < len && s[i] >= '0' && s[i] <= '9' && i < 11)
		version = version * 10 + (s[i++] - '0');
	if (i == 1 || i >= len || s[i] != ':' || version < 1 || version > INT_MAX)
		return 0;
	if (len - i - 1 != PSEUD_B64_LEN)
		return 0;
	for (i = i + 1; i < len; i++)
		if (strchr(pseud_b64url, s[i]) == NULL || s[i] == '\0')
			return 0;
	/* 32 bytes fill 42 characters and 4 bits of the last: its 2 low bits are 0 */
	if ((strchr(pseud_b64url, s[len - 1]) - pseud_b64url) % 4 != 0)
		return 0;
	return (int) version;
}

/* Normalisation modes, applied to the value before hashing. */
typedef enum PseudNormalize
{
	PSEUD_NORM_NONE,
	PSEUD_NORM_TRIM,
	PSEUD_NORM_UPPER,
	PSEUD_NORM_LOWER,
	PSEUD_NORM_TRIM_UPPER,
	PSEUD_NORM_TRIM_LOWER,
	PSEUD_NORM_ALNUM_UPPER
} PseudNormalize;

static const char *const pseud_norm_names[] = {
	"none", "trim", "upper", "lower", "trim_upper", "trim_lower", "alnum_upper", NULL
};

static PseudNormalize
pseud_parse_normalize(const char *name)
{
	int			i;

	if (name == NULL || name[0] == '\0')
		return PSEUD_NORM_NONE;
	for (i = 0; pseud_norm_names[i] != NULL; i++)
		if (strcmp(name, pseud_norm_names[i]) == 0)
			return (PseudNormalize) i;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown normalisation \"%s\"", name),
			 errhint("Use one of: none, trim, upper, lower, trim_upper, trim_lower, alnum_upper.")));
	return PSEUD_NORM_NONE;		/* keep compiler quiet */
}

/*
 * Normalise data (ASCII rules only, the same in every locale). Returns
 * data itself for "none", else a palloc'd copy; *len is updated.
 */
static const char *
pseud_normalize(const char *data, size_t *len, PseudNormalize mode)
{
	size_t		start = 0,
				end = *len,
				i,
				o = 0;
	char	   *out;

	if (mode == PSEUD_NORM_NONE)
		return data;

	if (mode == PSEUD_NORM_TRIM || mode == PSEUD_NORM_TRIM_UPPER || mode == PSEUD_NORM_TRIM_LOWER)
	{
		while (start < end && (data[start] == ' ' || data[start] == '\t' ||
							   data[start] == '\n' || data[start] == '\r'))
			start++;
		while (end > start && (data[end - 1] == ' ' || data[end - 1] == '\t' ||
							   data[end - 1] == '\n' || data[end - 1] == '\r'))
			end--;
	}
	out = palloc(end - start + 1);
	for (i = start; i < end; i++)
	{
		char		c = data[i];

		switch (mode)
		{
			case PSEUD_NORM_UPPER:
			case PSEUD_NORM_TRIM_UPPER:
				if (c >= 'a' && c <= 'z')
					c -= 'a' - 'A';
				break;
			case PSEUD_NORM_LOWER:
			case PSEUD_NORM_TRIM_LOWER:
				if (c >= 'A' && c <= 'Z')
					c += 'a' - 'A';
				break;
			case PSEUD_NORM_ALNUM_UPPER:
				if (c >= 'a' && c <= 'z')
					c -= 'a' - 'A';
				else if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
					continue;
				break;
			default:
				break;
		}
		out[o++] = c;
	}
	out[o] = '\0';
	*len = o;
	return out;
}

/*
 * Write the pseudonym of data under key into dst, which has room for
 * "v" + 10 digits + ":" + 43 + NUL. Returns the length written.
 */
static int
pseud_format(const PseudKey *key, const char *data, size_t len, char *dst)
{
	unsigned char mac[PSEUD_MAC_LEN];
	int			n;

	pseud_hmac(key, (const unsigned char *) data, len, mac);
	dst[0] = 'v';
	n = 1 + pg_ultoa_n((uint32) key->version, dst + 1);
	dst[n++] = ':';
	pseud_b64url_encode(mac, dst + n);
	dst[n + PSEUD_B64_LEN] = '\0';
	return n + PSEUD_B64_LEN;
}

#define PSEUD_MAX_OUT (1 + 10 + 1 + PSEUD_B64_LEN + 1)

/*
 * The pseudonym of data (len bytes) under key_version (0 = current), as a
 * palloc'd "vN:..." string. Exported for the audit part.
 */
char *
clinical_pseudonym_cstring(const char *data, size_t len, int key_version)
{
	char	   *out = palloc(PSEUD_MAX_OUT);

	pseud_format(pseud_key(key_version), data, len, out);
	return out;
}

/*
 * Exported for the audit part's seals: is a keyring configured? Does not
 * load or check the file (clinical_hmac does, and raises on errors).
 */
bool
clinical_keyring_configured(void)
{
	return pseud_keyring_file != NULL && pseud_keyring_file[0] != '\0';
}

/*
 * Exported for the audit part's seals: the raw 32-byte HMAC-SHA256 of data
 * under key_version (0 = current). Returns the version used.
 */
int
clinical_hmac(int key_version, const void *data, size_t len, unsigned char *mac)
{
	const PseudKey *key = pseud_key(key_version);

	pseud_hmac(key, (const unsigned char *) data, len, mac);
	return key->version;
}

/* Exported for audit_verify: is a key of this version in the keyring? */
bool
clinical_hmac_has_version(int key_version)
{
	return pseud_known_version(key_version);
}

/* text result of pseud_format */
static text *
pseud_text(const PseudKey *key, const char *data, size_t len)
{
	text	   *result = palloc(VARHDRSZ + PSEUD_MAX_OUT);
	int			n = pseud_format(key, data, len, VARDATA(result));

	SET_VARSIZE(result, VARHDRSZ + n);
	return result;
}

PG_FUNCTION_INFO_V1(clinical_pseudonym);

/*
 * clinical.pseudonym(value text, key_version int DEFAULT NULL,
 *                    normalize text DEFAULT NULL, to_version int DEFAULT NULL)
 *		RETURNS text
 * Not STRICT in C terms: a NULL value gives NULL, NULL options mean defaults.
 */
Datum
clinical_pseudonym(PG_FUNCTION_ARGS)
{
	text	   *value;
	int			version;
	PseudNormalize mode = PSEUD_NORM_NONE;
	const char *data;
	size_t		len;
	text	   *result;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	value = PG_GETARG_TEXT_PP(0);
	version = PG_ARGISNULL(1) ? 0 : PG_GETARG_INT32(1);
	if (!PG_ARGISNULL(1) && version <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("key version must be a positive integer"),
				 errhint("Use a version listed by clinical.keyring_status(), or NULL for the current key.")));
	if (!PG_ARGISNULL(2))
		mode = pseud_parse_normalize(text_to_cstring(PG_GETARG_TEXT_PP(2)));

	len = VARSIZE_ANY_EXHDR(value);
	data = pseud_normalize(VARDATA_ANY(value), &len, mode);
	result = pseud_text(pseud_key(version), data, len);

	/* the onion of a rotation: wrap the pseudonym once under to_version */
	if (PG_NARGS() > 3 && !PG_ARGISNULL(3))
	{
		int			to = PG_GETARG_INT32(3);

		if (to <= 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("key version must be a positive integer"),
					 errhint("Pass the version the column was re-pseudonymised to.")));
		result = pseud_text(pseud_key(to), VARDATA_ANY(result), VARSIZE_ANY_EXHDR(result));
	}
	PG_RETURN_TEXT_P(result);
}

PG_FUNCTION_INFO_V1(clinical_repseudonym);

/*
 * clinical.repseudonym(pseudonym text, to_version int) RETURNS text
 * One rotation step: "vA:x" becomes "v<to>:" + HMAC(k_to, "vA:x"). A value
 * already under to_version is returned as it is.
 */
Datum
clinical_repseudonym(PG_FUNCTION_ARGS)
{
	text	   *value = PG_GETARG_TEXT_PP(0);
	int			to = PG_GETARG_INT32(1);
	int			len = VARSIZE_ANY_EXHDR(value);
	int			from = pseud_parse_version(VARDATA_ANY(value), len);

	if (to <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("key version must be a positive integer"),
				 errhint("Use a version listed by clinical.keyring_status().")));
	if (from == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("value is not a pseudonym"),
				 errdetail("A pseudonym is \"v<version>:\" followed by 43 base64url characters."),
				 errhint("Only values made by clinical.pseudonym() can be re-pseudonymised.")));
	if (from == to)
		PG_RETURN_TEXT_P(value);
	PG_RETURN_TEXT_P(pseud_text(pseud_key(to), VARDATA_ANY(value), len));
}

PG_FUNCTION_INFO_V1(clinical_pseudonym_bytea);

/* clinical.pseudonym_bytea(value bytea, key_version int DEFAULT NULL) RETURNS bytea */
Datum
clinical_pseudonym_bytea(PG_FUNCTION_ARGS)
{
	bytea	   *value;
	int			version;
	bytea	   *result;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	value = PG_GETARG_BYTEA_PP(0);
	version = PG_ARGISNULL(1) ? 0 : PG_GETARG_INT32(1);
	if (!PG_ARGISNULL(1) && version <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("key version must be a positive integer"),
				 errhint("Use a version listed by clinical.keyring_status(), or NULL for the current key.")));

	result = palloc(VARHDRSZ + PSEUD_MAC_LEN);
	SET_VARSIZE(result, VARHDRSZ + PSEUD_MAC_LEN);
	pseud_hmac(pseud_key(version), (const unsigned char *) VARDATA_ANY(value),
			   VARSIZE_ANY_EXHDR(value), (unsigned char *) VARDATA(result));
	PG_RETURN_BYTEA_P(result);
}

PG_FUNCTION_INFO_V1(clinical_pseudonym_version);

/* clinical.pseudonym_version(value text) RETURNS int: NULL unless a pseudonym */
Datum
clinical_pseudonym_version(PG_FUNCTION_ARGS)
{
	text	   *value = PG_GETARG_TEXT_PP(0);
	int			v = pseud_parse_version(VARDATA_ANY(value), VARSIZE_ANY_EXHDR(value));

	if (v == 0)
		PG_RETURN_NULL();
	PG_RETURN_INT32(v);
}

PG_FUNCTION_INFO_V1(clinical_keyring_status);

/*
 * clinical.keyring_status() RETURNS TABLE(version int, is_current bool,
 *		key_bytes int, fingerprint text)
 */
Datum
clinical_keyring_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	PseudKeyring *ring;
	int			current;
	int			i;

#if PG_VERSION_NUM >= 150000
	InitMaterializedSRF(fcinfo, 0);
#else
	SetSingleFuncCall(fcinfo, 0);
#endif
	ring = pseud_keyring();
	/*
	 * The current key: clinical.key_version, else the highest. A
	 * key_version the keyring lacks marks none current (and is said in a
	 * WARNING) instead of failing the one function that lists the keys.
	 */
	current = pseud_key_version > 0 ? pseud_key_version : ring->highest;
	if (!pseud_known_version(current))
		ereport(WARNING,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("clinical.key_version = %d is not in the keyring", current),
				 errhint("Set clinical.key_version to a version listed here, or add that key to the keyring file and reload.")));

	for (i = 0; i < ring->nkeys; i++)
	{
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};

		values[0] = Int32GetDatum(ring->keys[i].version);
		values[1] = BoolGetDatum(ring->keys[i].version == current);
		values[2] = Int32GetDatum(ring->keys[i].keylen);
		values[3] = CStringGetTextDatum(ring->keys[i].fingerprint);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * The trigger. Its arguments, written by clinical.enable_pseudonymization():
 * key version ("" = current), normalisation ("" = none), then the columns.
 */
typedef struct PseudTrigEntry
{
	ClinicalTrigCacheEntry head;
	int			key_version;
	PseudNormalize mode;
	int			ncols;
	int		   *attnums;
} PseudTrigEntry;

static ClinicalTrigCache *pseud_cache = NULL;

/* Read and check the trigger's arguments once per trigger and relation. */
static PseudTrigEntry *
pseud_trigger_entry(TriggerData *trigdata)
{
	Relation	rel = trigdata->tg_relation;
	Trigger    *trigger = trigdata->tg_trigger;
	TupleDesc	tupdesc = RelationGetDescr(rel);
	PseudTrigEntry *entry;
	bool		valid;
	int			i;

	if (pseud_cache == NULL)
		pseud_cache = clinical_trigcache_create("clinical pseudonymise cache",
												sizeof(PseudTrigEntry));
	entry = (PseudTrigEntry *) clinical_trigcache_lookup(pseud_cache, trigger->tgoid,
														 RelationGetRelid(rel), &valid);
	if (valid)
		return entry;

	if (trigger->tgnargs < 3)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("trigger \"%s\" on \"%s\" has too few arguments for clinical.pseudonymize_trigger()",
						trigger->tgname, RelationGetRelationName(rel)),
				 errhint("Attach the trigger with clinical.enable_pseudonymization().")));

	entry->key_version = trigger->tgargs[0][0] ? pg_strtoint32(trigger->tgargs[0]) : 0;
	entry->mode = pseud_parse_normalize(trigger->tgargs[1]);
	entry->ncols = trigger->tgnargs - 2;
	entry->attnums = MemoryContextAlloc(entry->head.cxt, sizeof(int) * entry->ncols);
	for (i = 0; i < entry->ncols; i++)
	{
		const char *col = trigger->tgargs[i + 2];
		int			attnum = SPI_fnumber(tupdesc, col);
		Oid			typid;

		if (attnum <= 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("column \"%s\" of relation \"%s\" does not exist", col,
							RelationGetRelationName(rel)),
					 errhint("Run clinical.enable_pseudonymization() again with the table's current columns.")));
		typid = TupleDescAttr(tupdesc, attnum - 1)->atttypid;
		if (typid != TEXTOID && typid != VARCHAROID)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("column \"%s\" of relation \"%s\" is of type %s, not text or varchar",
							col, RelationGetRelationName(rel), format_type_be(typid)),
					 errhint("Only text and varchar columns can hold pseudonyms.")));
		entry->attnums[i] = attnum;
	}
	entry->head.valid = true;
	return entry;
}

PG_FUNCTION_INFO_V1(clinical_pseudonymize_trigger);

/* clinical.pseudonymize_trigger() RETURNS trigger */
Datum
clinical_pseudonymize_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TupleDesc	tupdesc;
	HeapTuple	newtuple,
				oldtuple = NULL;
	PseudTrigEntry *entry;
	const PseudKey *key;
	Datum	   *values;
	bool	   *nulls;
	int		   *cols;
	int			nchanged = 0;
	int			i;

	clinical_check_row_trigger(fcinfo, "clinical.pseudonymize_trigger",
							   true, CLINICAL_ON_INSERT | CLINICAL_ON_UPDATE);

	tupdesc = RelationGetDescr(trigdata->tg_relation);
	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
	{
		newtuple = trigdata->tg_newtuple;
		oldtuple = trigdata->tg_trigtuple;
	}
	else
		newtuple = trigdata->tg_trigtuple;

	entry = pseud_trigger_entry(trigdata);
	key = pseud_key(entry->key_version);

	values = palloc(sizeof(Datum) * entry->ncols);
	nulls = palloc(sizeof(bool) * entry->ncols);
	cols = palloc(sizeof(int) * entry->ncols);

	for (i = 0; i < entry->ncols; i++)
	{
		int			attnum = entry->attnums[i];
		bool		isnull;
		Datum		d = heap_getattr(newtuple, attnum, tupdesc, &isnull);
		text	   *t;
		const char *data;
		size_t		len;
		int			v;

		if (isnull)
			continue;
		if (oldtuple != NULL)
		{
			bool		oldnull;
			Datum		od = heap_getattr(oldtuple, attnum, tupdesc, &oldnull);

			if (!oldnull && datumIsEqual(d, od, false, -1))
				continue;		/* unchanged by this UPDATE */
		}
		t = DatumGetTextPP(d);
		len = VARSIZE_ANY_EXHDR(t);
		v = pseud_parse_version(VARDATA_ANY(t), len);
		if (v != 0 && pseud_known_version(v))
			continue;			/* already a pseudonym */

		data = pseud_normalize(VARDATA_ANY(t), &len, entry->mode);
		values[nchanged] = PointerGetDatum(pseud_text(key, data, len));
		nulls[nchanged] = false;
		cols[nchanged] = attnum;
		nchanged++;
	}

	if (nchanged > 0)
		newtuple = heap_modify_tuple_by_cols(newtuple, tupdesc, nchanged, cols, values, nulls);
	return PointerGetDatum(newtuple);
}
