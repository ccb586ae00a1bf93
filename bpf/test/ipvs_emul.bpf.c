// SPDX-License-Identifier: GPL-2.0-only
/*
 * TEST FIXTURE, not shipped: stands in for the patched IPVS in host netns
 * tests (the host kernel has no IPVS).  On tc ingress, after ipvs_tc_reply,
 * it does what IPVS does for packets that reach the stack: DNAT client->VIP
 * to the real server, or un-DNAT real server->client back to the VIP, using
 * its own connection table (as IPVS has its own), then hands the packet to
 * the output path with bpf_redirect_neigh, the way the patched IPVS calls
 * ip_finish_output: netfilter (FORWARD/POSTROUTING, conntrack) never sees it,
 * while tc egress (ipvs_tc_snat) does.
 * Table: key kind EMUL_IN  = cip:cport -> vip:vport, value.daddr:dport = rsip:rsport
 *        key kind EMUL_OUT = rsip:rsport -> cip:cport, value.saddr:sport = vip:vport
 */
#include <linux/pkt_cls.h>
#include "ipvs_bpf_parse.h"

#define AF_INET 2
#define AF_INET6 10
#define EMUL_IN 0x40
#define EMUL_OUT 0x41

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct ipvs_bpf_ct_key);
	__type(value, struct ipvs_bpf_ct_value);
} emul_conns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} emul_stats SEC(".maps"); /* 0: translated, 1: redirect failures */

static __always_inline void emul_stat(__u32 i)
{
	__u64 *c = bpf_map_lookup_elem(&emul_stats, &i);

	if (c)
		__sync_fetch_and_add(c, 1);
}

SEC("tc")
int ipvs_emul_ingress(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct ipvs_bpf_ct_key key = {};
	struct ipvs_bpf_ct_value *v;
	struct bpf_fib_lookup fib = {};
	__u32 l3off = sizeof(*eth), l4off, aoff, poff, csoff;
	__u32 naddr[4];
	__u16 nport, oport;
	__u32 oaddr[4];
	__u64 fl;
	int v6, out, i, rc;
	__u8 proto;

	if ((void *)(eth + 1) > end)
		return TC_ACT_OK;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > end || ip->ihl != 5)
			return TC_ACT_OK;
		proto = ip->protocol;
		key.family = AF_INET;
		key.saddr[0] = ip->saddr;
		key.daddr[0] = ip->daddr;
		l4off = l3off + 20;
		v6 = 0;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > end)
			return TC_ACT_OK;
		proto = ip->nexthdr;
		key.family = AF_INET6;
		__builtin_memcpy(key.saddr, &ip->saddr, 16);
		__builtin_memcpy(key.daddr, &ip->daddr, 16);
		l4off = l3off + 40;
		v6 = 1;
	} else {
		return TC_ACT_OK;
	}
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return TC_ACT_OK;
	if (data + l4off + 4 > end)
		return TC_ACT_OK;
	key.proto = proto;
	*(__u32 *)&key.sport = *(__u32 *)(data + l4off);
	key.kind = EMUL_IN;
	out = 0;
	v = bpf_map_lookup_elem(&emul_conns, &key);
	if (!v) {
		key.kind = EMUL_OUT;
		out = 1;
		v = bpf_map_lookup_elem(&emul_conns, &key);
		if (!v)
			return TC_ACT_OK;
	}
	/* IN rewrites the destination, OUT the source */

	aoff = l3off + (v6 ? (out ? 8 : 24) : (out ? 12 : 16));
	poff = l4off + (out ? 0 : 2);
	__builtin_memcpy(naddr, out ? v->saddr : v->daddr, 16);
	nport = out ? v->sport : v->dport;
	oport = out ? key.sport : key.dport;
	__builtin_memcpy(oaddr, out ? key.saddr : key.daddr, 16);
	csoff = l4off + (proto == IPPROTO_TCP ? 16 : 6);
	fl = proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;

	for (i = 0; i < 4; i++) {
		if (i && !v6)
			break;
		if (bpf_l4_csum_replace(skb, csoff, oaddr[i], naddr[i], fl | BPF_F_PSEUDO_HDR | 4 | (v6 ? BPF_F_IPV6 : 0)))
			goto err;
		if (!v6 && bpf_l3_csum_replace(skb, l3off + 10, oaddr[i], naddr[i], 4))
			goto err;
	}
	if (bpf_skb_store_bytes(skb, aoff, naddr, v6 ? 16 : 4, 0))
		goto err;
	if (bpf_l4_csum_replace(skb, csoff, oport, nport, fl | 2))
		goto err;
	if (bpf_skb_store_bytes(skb, poff, &nport, 2, 0))
		goto err;

	/* route the translated packet like ip_finish_output would, skipping netfilter */
	data = (void *)(long)skb->data;
	end = (void *)(long)skb->data_end;
	if (v6) {
		struct ipv6hdr *ip = data + l3off;

		if ((void *)(ip + 1) > end)
			goto err;
		fib.family = AF_INET6;
		__builtin_memcpy(fib.ipv6_src, &ip->saddr, 16);
		__builtin_memcpy(fib.ipv6_dst, &ip->daddr, 16);
	} else {
		struct iphdr *ip = data + l3off;

		if ((void *)(ip + 1) > end)
			goto err;
		fib.family = AF_INET;
		fib.ipv4_src = ip->saddr;
		fib.ipv4_dst = ip->daddr;
	}
	fib.ifindex = skb->ingress_ifindex;
	rc = bpf_fib_lookup(skb, &fib, sizeof(fib), BPF_FIB_LOOKUP_SKIP_NEIGH);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS && rc != BPF_FIB_LKUP_RET_NO_NEIGH)
		goto err;
	emul_stat(0);

	return bpf_redirect_neigh(fib.ifindex, 0, 0, 0);
err:
	emul_stat(1);
	return TC_ACT_SHOT;
}

char _license[] SEC("license") = "GPL";
