/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * XDP side only: a per-CPU, direct-mapped cache of bpf_fib_lookup results,
 * one slot per flow, indexed by a hash of the packet's tuple (before the NAT).
 *
 * Why: bpf_fib_lookup is by far the dearest part of the fast path (about
 * 100 ns of the 180 ns a hit cost on the benchmark machine; see
 * scripts/bench-datapath-parts.js), and its answer for a flow does not change
 * from packet to packet.
 *
 * What a slot holds: the complete input of the lookup that matters (family,
 * protocol, post-NAT addresses and ports, ingress ifindex, TOS / flow label),
 * its output (egress ifindex, MACs), the largest L3 length the lookup passed
 * (so the MTU check still happens: a longer packet takes a fresh lookup), and
 * the jiffy in which it was resolved.
 *
 * Staleness bound: a slot is used only during the jiffy it was filled in
 * ((u32)jiffies equal; bpf_jiffies64() is inlined by the verifier, no clock
 * read), so a route or neighbour change reaches the fast path at most one
 * tick later (1/HZ: 4 ms with Debian's HZ=250), the same order as the RCU
 * grace period the kernel's own FIB changes take.  A lookup that does not
 * succeed never fills a slot: the packet goes to the stack as before.
 *
 * The slot also remembers which kind of entry (FWD or REPLY) the flow's
 * packets found last, so a reply costs one conntrack lookup, not a FWD miss
 * first.  That is only a hint: the conntrack map is still looked up for every
 * packet (a wrong hint costs the second lookup, as without it), so counters,
 * last-seen and IPVS's removals stay exact.
 *
 * Per-CPU: no locking and no torn slots (XDP runs with migration disabled);
 * each CPU resolves a flow once per tick.  Collisions just cost a lookup.
 * Not pinned: a cache, private to the loaded XDP object.
 */
#ifndef IPVS_BPF_NEXTHOP_H
#define IPVS_BPF_NEXTHOP_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "ipvs_bpf_abi.h"

#define IPVS_NH_SLOTS 4096 /* per CPU; a power of two */

struct ipvs_nh {
	__be32 saddr[4];   /* tuple after the NAT (the lookup's input) */
	__be32 daddr[4];
	__u32 ports;       /* sport, dport as in the packet */
	__u32 ifindex_in;  /* ingress device (routing rules may use it) */
	__u32 tos;         /* IPv4 TOS or IPv6 flow info word, as looked up */
	__u32 tick;        /* (u32)jiffies of the lookup; valid in that jiffy only */
	__u32 ifindex;     /* egress device */
	__u16 ok_len;      /* largest L3 length the lookup accepted (MTU) */
	__u8 family;
	__u8 proto;
	__u8 dmac[6];
	__u8 smac[6];
	__u8 kind_hint;    /* enum ipvs_bpf_kind the last packet of this slot found */
	__u8 pad[3];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, IPVS_NH_SLOTS);
	__type(key, __u32);
	__type(value, struct ipvs_nh);
} ipvs_nh_cache SEC(".maps");

/* Slot of a packet's tuple (a conntrack key; kind is not part of the hash). */
static __always_inline __u32 nh_slot(const struct ipvs_bpf_ct_key *k, int v6)
{
	__u32 h = k->saddr[0] ^ k->daddr[0] ^ (*(const __u32 *)&k->sport * 0x85ebca6bu);

	if (v6)
		h ^= k->saddr[1] ^ k->saddr[2] ^ k->saddr[3] ^ k->daddr[1] ^ k->daddr[2] ^ k->daddr[3];
	return (h * 0x9e3779b1u) >> (32 - 12); /* 12 = log2(IPVS_NH_SLOTS) */
}

/* Does slot e answer the lookup for this packet now? */
static __always_inline int nh_valid(const struct ipvs_nh *e, const struct ipvs_bpf_ct_value *v, int v6, __u8 proto,
				    __u32 ifindex_in, __u32 tos, __u16 l3len, __u32 now)
{
	if (e->tick != now || e->ifindex_in != ifindex_in || e->tos != tos || l3len > e->ok_len ||
	    e->proto != proto || e->family != (v6 ? IPVS_BPF_AF_INET6 : IPVS_BPF_AF_INET) ||
	    e->ports != *(const __u32 *)&v->sport || e->saddr[0] != v->saddr[0] || e->daddr[0] != v->daddr[0])
		return 0;
	if (v6 && (e->saddr[1] != v->saddr[1] || e->saddr[2] != v->saddr[2] || e->saddr[3] != v->saddr[3] ||
		   e->daddr[1] != v->daddr[1] || e->daddr[2] != v->daddr[2] || e->daddr[3] != v->daddr[3]))
		return 0;
	return 1;
}

static __always_inline void nh_fill(struct ipvs_nh *e, const struct ipvs_bpf_ct_value *v, int v6, __u8 proto,
				    __u32 ifindex_in, __u32 tos, __u16 l3len, __u32 now,
				    const struct bpf_fib_lookup *fib)
{
	/* a longer packet of the same flow raised the accepted length */
	if (e->tick == now && e->ifindex == fib->ifindex && nh_valid(e, v, v6, proto, ifindex_in, tos, 0, now) &&
	    e->ok_len > l3len)
		l3len = e->ok_len;
	__builtin_memcpy(e->saddr, v->saddr, 16);
	__builtin_memcpy(e->daddr, v->daddr, 16);
	e->ports = *(const __u32 *)&v->sport;
	e->ifindex_in = ifindex_in;
	e->tos = tos;
	e->tick = now;
	e->ifindex = fib->ifindex;
	e->ok_len = l3len;
	e->family = v6 ? IPVS_BPF_AF_INET6 : IPVS_BPF_AF_INET;
	e->proto = proto;
	__builtin_memcpy(e->dmac, fib->dmac, 6);
	__builtin_memcpy(e->smac, fib->smac, 6);
}

#endif
