/*
 * bench/hmac_loop.c - the cost of one HMAC-SHA256 of a short identifier
 * with OpenSSL and precomputed inner/outer key states, in a bare C loop:
 * what clinical.pseudonym() does per call, without PostgreSQL around it.
 * Prints nanoseconds per HMAC (the best of 5 runs of N calls).
 *
 *	cc -O2 -o hmac_loop bench/hmac_loop.c -lcrypto && ./hmac_loop [N]
 */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double
now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec * 1e-9;
}

int
main(int argc, char **argv)
{
	long		n = argc > 1 ? atol(argv[1]) : 5000000;
	unsigned char key[64] = {0},
				ipad[64],
				opad[64],
				ih[32],
				mac[32];
	SHA256_CTX	inner,
				outer,
				c;
	char		msg[32];
	unsigned	sink = 0;
	double		best = 1e9;
	int			i,
				r;

	for (i = 0; i < 32; i++)
		key[i] = (unsigned char) i;
	for (i = 0; i < 64; i++)
	{
		ipad[i] = key[i] ^ 0x36;
		opad[i] = key[i] ^ 0x5c;
	}
	SHA256_Init(&inner);
	SHA256_Update(&inner, ipad, 64);
	SHA256_Init(&outer);
	SHA256_Update(&outer, opad, 64);

	for (r = 0; r < 5; r++)
	{
		double		t0 = now(),
					ns;
		long		k;

		for (k = 0; k < n; k++)
		{
			int			len = snprintf(msg, sizeof(msg), "MRN%ld", k + 1);

			c = inner;
			SHA256_Update(&c, msg, len);
			SHA256_Final(ih, &c);
			c = outer;
			SHA256_Update(&c, ih, 32);
			SHA256_Final(mac, &c);
			sink += mac[0];
		}
		ns = (now() - t0) / n * 1e9;
		if (ns < best)
			best = ns;
	}
	/* the message formatting alone, to subtract */
	{
		double		t0 = now(),
					fmt;
		long		k;

		for (k = 0; k < n; k++)
			sink += snprintf(msg, sizeof(msg), "MRN%ld", k + 1) + msg[3];
		fmt = (now() - t0) / n * 1e9;
		printf("%.1f %u\n", best - fmt, sink & 1);
	}
	return 0;
}
