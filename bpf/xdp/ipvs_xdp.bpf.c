// SPDX-License-Identifier: GPL-2.0-only
/*
 * XDP fast path: packets of flows IPVS already scheduled (FWD or REPLY entry
 * in the conntrack map) get the whole NAT here (both addresses, both ports,
 * checksums, TTL), are routed with bpf_fib_lookup (its answer cached per flow
 * and CPU for one jiffy, see ipvs_bpf_nexthop.h) and sent with XDP_TX or
 * XDP_REDIRECT through the device map; they never reach tc or netfilter.
 * Everything else goes to the stack untouched: misses, TCP SYN/FIN/RST (so
 * IPVS sees every state change), fragments, IP options / extension headers,
 * ICMP, no route or neighbour yet, expiring TTL, and a next hop behind a
 * device that is not in the device map (it may not transmit XDP frames).
 *
 * Cost (scripts/bench-datapath-parts.js): per packet one conntrack lookup
 * (the kind-hint in the next-hop slot makes replies skip the FWD miss), no
 * helper call on the TX path, bpf_redirect_map when the egress device differs
 * (its device-map lookup is the membership test, made before the rewrite).
 * The conntrack lookup stays per packet: per-flow counters and last-seen are
 * exact, and IPVS's removals take effect at once.
 *
 * Checksums are updated incrementally, assuming the frame's checksums are
 * complete, which holds for frames from a NIC.  A veth peer that sends
 * CHECKSUM_PARTIAL skbs must have tx checksumming off (see docs in
 * src/bpf/attach.ts).
 */
#include "ipvs_bpf_parse.h"
#include "ipvs_bpf_maps.h"
#include "ipvs_bpf_csum.h"
#include "ipvs_bpf_cfg.h"
#include "ipvs_bpf_ablate.h"
#include "ipvs_bpf_nexthop.h"

#define AF_INET 2
#define AF_INET6 10

const volatile __u32 ipvs_cfg SEC(IPVS_BPF_CFG_SECTION) = IPVS_BPF_CFG_DEFAULT;

static __always_inline int pass(__u32 why)
{
	stat_inc(why);
	return XDP_PASS;
}

SEC("xdp")
int ipvs_xdp_fastpath(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct ipvs_bpf_ct_key key;
	struct ipvs_bpf_ct_value *v;
	struct bpf_fib_lookup fib;
	struct iphdr *ip4;
	struct ipv6hdr *ip6;
	int v6;
	__u32 hit = IPVS_BPF_STAT_XDP_FWD_HIT;
	__u32 d_addr, d_l4, old_ports, new_ports;
	__u16 *l4csum = 0;
	struct ipvs_nh *nh;
	__u32 now, slot, tos;
	__u16 l3len;
	void *l3, *l4;
	__u8 proto;
	int rc, act = XDP_TX;

	if ((void *)(eth + 1) > end)
		return pass(IPVS_BPF_STAT_XDP_PASS_OTHER);
	__builtin_memset(&key, 0, sizeof(key));
	l3 = eth + 1;
	ip4 = l3;
	ip6 = l3;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		v6 = 0;
		if ((void *)(ip4 + 1) > end || ip4->ihl != 5)
			return pass(IPVS_BPF_STAT_XDP_PASS_OTHER);
		if (ip4->frag_off & bpf_htons(IPVS_IP_MF | IPVS_IP_OFFSET))
			return pass(IPVS_BPF_STAT_XDP_PASS_FRAG);
		proto = ip4->protocol;
		l4 = ip4 + 1;
		key.family = AF_INET;
		key.saddr[0] = ip4->saddr;
		key.daddr[0] = ip4->daddr;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		v6 = 1;
		if ((void *)(ip6 + 1) > end)
			return pass(IPVS_BPF_STAT_XDP_PASS_OTHER);
		proto = ip6->nexthdr;
		if (proto == IPPROTO_FRAGMENT)
			return pass(IPVS_BPF_STAT_XDP_PASS_FRAG);
		l4 = ip6 + 1;
		key.family = AF_INET6;
		__builtin_memcpy(key.saddr, &ip6->saddr, 16);
		__builtin_memcpy(key.daddr, &ip6->daddr, 16);
	} else {
		return pass(IPVS_BPF_STAT_XDP_PASS_OTHER);
	}

	if (proto == IPPROTO_TCP) {
		struct tcphdr *th = l4;

		if ((void *)(th + 1) > end)
			return pass(IPVS_BPF_STAT_XDP_PASS_OTHER);
		if (((__u8 *)th)[13] & IPVS_TCP_CTRL_FLAGS)
			return pass(IPVS_BPF_STAT_XDP_PASS_TCP_CTRL);
		l4csum = &th->check;
	} else if (proto == IPPROTO_UDP) {
		struct udphdr *uh = l4;

		if ((void *)(uh + 1) > end)
			return pass(IPVS_BPF_STAT_XDP_PASS_OTHER);
		if (uh->check)
			l4csum = &uh->check;
	} else if (proto == IPPROTO_SCTP) {
		if (l4 + IPVS_SCTP_HLEN > end)
			return pass(IPVS_BPF_STAT_XDP_PASS_OTHER);
	} else {
		return pass(IPVS_BPF_STAT_XDP_PASS_OTHER);
	}
	old_ports = *(__u32 *)l4;
	key.proto = proto;
	*(__u32 *)&key.sport = old_ports;

	if (IPVS_ABL_STOP_AT(1))
		return XDP_PASS;
	slot = nh_slot(&key, v6);
	nh = bpf_map_lookup_elem(&ipvs_nh_cache, &slot);
	if (!nh)
		return pass(IPVS_BPF_STAT_XDP_PASS_OTHER);
	/* FWD or REPLY: try the kind this slot's last packet found first */
	key.kind = nh->kind_hint == IPVS_BPF_KIND_REPLY && !IPVS_ABL_NO_KIND_HINT ? IPVS_BPF_KIND_REPLY
										 : IPVS_BPF_KIND_FWD;
	v = bpf_map_lookup_elem(&IPVS_BPF_CT_MAP, &key);
	if (!v) {
		key.kind ^= IPVS_BPF_KIND_FWD ^ IPVS_BPF_KIND_REPLY;
		v = bpf_map_lookup_elem(&IPVS_BPF_CT_MAP, &key);
		if (!v)
			return pass(IPVS_BPF_STAT_XDP_MISS);
		nh->kind_hint = key.kind;
	}
	if (key.kind == IPVS_BPF_KIND_REPLY)
		hit = IPVS_BPF_STAT_XDP_REPLY_HIT;
	if (v->flags & IPVS_BPF_F_NO_FASTPATH)
		return pass(IPVS_BPF_STAT_XDP_PASS_FLAG);
	if (IPVS_ABL_STOP_AT(2))
		return XDP_PASS;
	new_ports = *(__u32 *)&v->sport;
	/* SCTP's CRC32c covers the ports but not the addresses: ports must not change. */
	if (proto == IPPROTO_SCTP && new_ports != old_ports)
		return pass(IPVS_BPF_STAT_XDP_PASS_OTHER);

	if (!v6) {
		if ((ipvs_cfg & IPVS_BPF_CFG_DEC_TTL) && ip4->ttl <= 1)
			return pass(IPVS_BPF_STAT_XDP_PASS_TTL);
		tos = ip4->tos;
		l3len = bpf_ntohs(ip4->tot_len);
	} else {
		if ((ipvs_cfg & IPVS_BPF_CFG_DEC_TTL) && ip6->hop_limit <= 1)
			return pass(IPVS_BPF_STAT_XDP_PASS_TTL);
		tos = *(__be32 *)ip6 & bpf_htonl(0x0fffffff);
		l3len = bpf_ntohs(ip6->payload_len) + sizeof(*ip6);
	}
	now = (__u32)bpf_jiffies64();
	if (IPVS_ABL_NO_NEXTHOP) {
		nh->ifindex = ctx->ingress_ifindex;
		__builtin_memcpy(nh->dmac, eth->h_source, ETH_ALEN);
		__builtin_memcpy(nh->smac, eth->h_dest, ETH_ALEN);
	} else {
		if (IPVS_ABL_NO_NH_CACHE || !nh_valid(nh, v, v6, proto, ctx->ingress_ifindex, tos, l3len, now)) {
			__builtin_memset(&fib, 0, sizeof(fib));
			fib.l4_protocol = proto;
			fib.sport = v->sport;
			fib.dport = v->dport;
			fib.ifindex = ctx->ingress_ifindex;
			fib.tot_len = l3len;
			if (!v6) {
				fib.family = AF_INET;
				fib.tos = tos;
				fib.ipv4_src = v->saddr[0];
				fib.ipv4_dst = v->daddr[0];
			} else {
				fib.family = AF_INET6;
				fib.flowinfo = tos;
				__builtin_memcpy(fib.ipv6_src, v->saddr, 16);
				__builtin_memcpy(fib.ipv6_dst, v->daddr, 16);
			}
			rc = bpf_fib_lookup(ctx, &fib, sizeof(fib), 0);
			if (rc != BPF_FIB_LKUP_RET_SUCCESS)
				return pass(IPVS_BPF_STAT_XDP_PASS_FIB);
			nh_fill(nh, v, v6, proto, ctx->ingress_ifindex, tos, l3len, now, &fib);
		}
	}
	if (IPVS_ABL_STOP_AT(3))
		return XDP_PASS;
	/*
	 * Out through another device only if it is in the device map; the
	 * lookup (and the redirect target it records) happens here, before the
	 * frame changes, so a device outside it gets the packet unmodified.
	 */
	if (nh->ifindex != ctx->ingress_ifindex) {
		act = bpf_redirect_map(&IPVS_BPF_DEV_MAP, nh->ifindex, XDP_PASS);
		if (act != XDP_REDIRECT)
			return pass(IPVS_BPF_STAT_XDP_PASS_EGRESS);
	}

	/* Point of no return: rewrite the frame. */
	if (IPVS_ABL_NO_CSUM) {
		ip4->saddr = v->saddr[0];
		ip4->daddr = v->daddr[0];
	} else if (!v6) {
		__u32 d_ip;

		d_addr = csum_diff32(0, ip4->saddr, v->saddr[0]);
		d_addr = csum_diff32(d_addr, ip4->daddr, v->daddr[0]);
		d_ip = d_addr;
		if (ipvs_cfg & IPVS_BPF_CFG_DEC_TTL) {
			__u16 old_tp = *(__u16 *)&ip4->ttl;

			ip4->ttl--;
			d_ip = csum_diff16(d_ip, old_tp, *(__u16 *)&ip4->ttl);
		}
		ip4->saddr = v->saddr[0];
		ip4->daddr = v->daddr[0];
		ip4->check = csum_apply(ip4->check, d_ip);
	} else {
		d_addr = csum_diff_addr(0, (__u32 *)&ip6->saddr, v->saddr, 1);
		d_addr = csum_diff_addr(d_addr, (__u32 *)&ip6->daddr, v->daddr, 1);
		if (ipvs_cfg & IPVS_BPF_CFG_DEC_TTL)
			ip6->hop_limit--;
		__builtin_memcpy(&ip6->saddr, v->saddr, 16);
		__builtin_memcpy(&ip6->daddr, v->daddr, 16);
	}
	*(__u32 *)l4 = new_ports;
	if (l4csum && !IPVS_ABL_NO_CSUM) {
		__u16 c;

		d_l4 = csum_diff32(d_addr, old_ports, new_ports);
		c = csum_apply(*l4csum, d_l4);
		if (proto == IPPROTO_UDP && c == 0)
			c = 0xffff;
		*l4csum = c;
	}
	__builtin_memcpy(eth->h_dest, nh->dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, nh->smac, ETH_ALEN);

	if (!IPVS_ABL_NO_TOUCH)
		ct_touch_at(v, (__u32)(end - l3), now);
	stat_inc(hit);
	stat_inc(act == XDP_TX ? IPVS_BPF_STAT_XDP_TX : IPVS_BPF_STAT_XDP_REDIRECT);
	return act;
}

/* For veth peers of an interface that receives XDP_TX/XDP_REDIRECT frames (needs NAPI there). */
SEC("xdp")
int ipvs_xdp_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
