/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Internet checksum arithmetic for incremental NAT updates (RFC 1624).
 * A "diff" is a 32-bit one's-complement sum of (~old + new) over the
 * replaced words; words are raw (network order) loads, which the checksum
 * does not care about as long as all words start at even offsets.
 */
#ifndef IPVS_BPF_CSUM_H
#define IPVS_BPF_CSUM_H

#include <linux/types.h>

static __always_inline __u32 csum_add32(__u32 a, __u32 b)
{
	a += b;
	return a + (a < b);
}

/* diff of replacing the 32-bit word o by n */
static __always_inline __u32 csum_diff32(__u32 acc, __u32 o, __u32 n)
{
	return csum_add32(csum_add32(acc, ~o), n);
}

/* diff of replacing the 16-bit word o by n */
static __always_inline __u32 csum_diff16(__u32 acc, __u16 o, __u16 n)
{
	return csum_add32(csum_add32(acc, (__u16)~o), n);
}

static __always_inline __u16 csum_fold32(__u32 s)
{
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)s;
}

/* New value of a stored (complemented) checksum field after a change of diff. */
static __always_inline __u16 csum_apply(__u16 check, __u32 diff)
{
	return (__u16)~csum_fold32(csum_add32(diff, (__u16)~check));
}

/* diff over 16-byte addresses (only word 0 for IPv4) */
static __always_inline __u32 csum_diff_addr(__u32 acc, const __u32 *o, const __u32 *n, int v6)
{
	acc = csum_diff32(acc, o[0], n[0]);
	if (v6) {
		acc = csum_diff32(acc, o[1], n[1]);
		acc = csum_diff32(acc, o[2], n[2]);
		acc = csum_diff32(acc, o[3], n[3]);
	}
	return acc;
}

#endif
