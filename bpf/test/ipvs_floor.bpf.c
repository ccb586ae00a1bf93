// SPDX-License-Identifier: GPL-2.0-only
/*
 * BENCHMARK FIXTURES (scripts/bench-datapath-testrun.js): the floors of the
 * fast paths, i.e. what no implementation of them can skip, timed in the same
 * run as the shipped programs so that their ratio means the same on any
 * machine.  Loaded with the benchmark's pin root, so they look up the very
 * conntrack map (and redirect through the device map) the shipped programs
 * use.  Never loaded by the daemon.
 *
 *  floor_xdp_lookup:  parse Ethernet/IPv4/TCP-UDP, build our key, one
 *                     conntrack lookup; XDP_PASS.
 *  floor_xdp:         the same, then bpf_redirect_map to the egress device
 *                     (floor_cfg.ifindex): xdp_floor_ns.
 *  floor_tc_lookup:   parse, key (SNAT), one conntrack lookup: tc_floor_ns
 *                     for the kctx build, which needs no checksum helper.
 *  floor_tc_csum:     the same plus one bpf_l4_csum_replace (a zero change):
 *                     tc_floor_ns for the portable build, which cannot avoid it.
 * A miss returns XDP_ABORTED / TC_ACT_SHOT, which the benchmark refuses.
 */
#include <linux/pkt_cls.h>
#include "ipvs_bpf_parse.h"
#include "ipvs_bpf_maps.h"

#define AF_INET 2

struct floor_cfg {
	__u32 ifindex;
};
const volatile struct floor_cfg floor_cfg SEC(".rodata.floor") = { 0 };

/* Our key from an IPv4 TCP/UDP frame at data; the L4 offset, or 0 if it is not one. */
static __always_inline int floor_key(void *data, void *end, struct ipvs_bpf_ct_key *key, __u8 kind)
{
	struct ethhdr *eth = data;
	struct iphdr *ip4 = (void *)(eth + 1);
	void *l4 = ip4 + 1;

	if (l4 + 8 > end || eth->h_proto != bpf_htons(ETH_P_IP) || ip4->ihl != 5)
		return 0;
	if (ip4->protocol != IPPROTO_TCP && ip4->protocol != IPPROTO_UDP)
		return 0;
	__builtin_memset(key, 0, sizeof(*key));
	key->family = AF_INET;
	key->saddr[0] = ip4->saddr;
	key->daddr[0] = ip4->daddr;
	key->proto = ip4->protocol;
	*(__u32 *)&key->sport = *(__u32 *)l4;
	key->kind = kind;
	return sizeof(*eth) + sizeof(*ip4);
}

static __always_inline int xdp_lookup(struct xdp_md *ctx)
{
	struct ipvs_bpf_ct_key key;

	if (!floor_key((void *)(long)ctx->data, (void *)(long)ctx->data_end, &key, IPVS_BPF_KIND_FWD))
		return 0;
	return bpf_map_lookup_elem(&IPVS_BPF_CT_MAP, &key) != 0;
}

SEC("xdp")
int floor_xdp_lookup(struct xdp_md *ctx)
{
	return xdp_lookup(ctx) ? XDP_PASS : XDP_ABORTED;
}

SEC("xdp")
int floor_xdp(struct xdp_md *ctx)
{
	if (!xdp_lookup(ctx))
		return XDP_ABORTED;
	return bpf_redirect_map(&IPVS_BPF_DEV_MAP, floor_cfg.ifindex, XDP_ABORTED);
}

static __always_inline int tc_lookup(struct __sk_buff *skb)
{
	struct ipvs_bpf_ct_key key;
	int l4off = floor_key((void *)(long)skb->data, (void *)(long)skb->data_end, &key, IPVS_BPF_KIND_SNAT);

	if (!l4off || !bpf_map_lookup_elem(&IPVS_BPF_CT_MAP, &key))
		return 0;
	return l4off;
}

SEC("tc")
int floor_tc_lookup(struct __sk_buff *skb)
{
	return tc_lookup(skb) ? TC_ACT_UNSPEC : TC_ACT_SHOT;
}

SEC("tc")
int floor_tc_csum(struct __sk_buff *skb)
{
	int l4off = tc_lookup(skb);

	if (!l4off)
		return TC_ACT_SHOT;
	if (bpf_l4_csum_replace(skb, l4off + l4_csum_off(IPPROTO_TCP), 0, 0, BPF_F_PSEUDO_HDR))
		return TC_ACT_SHOT;
	return TC_ACT_UNSPEC;
}

char _license[] SEC("license") = "GPL";
