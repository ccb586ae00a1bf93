// SPDX-License-Identifier: GPL-2.0-only
/*
 * tc clsact programs (direct action):
 *  - ipvs_tc_snat  (egress):  packets IPVS sent after DNAT, cip:cport -> rsip:rsport,
 *                             found by their own tuple (SNAT entry); the source
 *                             becomes lip:lport.
 *  - ipvs_tc_reply (ingress): replies rsip:rsport -> lip:lport (REPLY entry); only
 *                             the destination is rewritten, to cip:cport, so IPVS
 *                             still sees the reply and un-DNATs it.
 * ICMP errors about a flow (v4 and v6) are translated inside (embedded header,
 * its checksums) and outside.  IP fragments and IPv4 packets with options are
 * left untouched and counted: the patched IPVS translates those itself (it sees
 * them reassembled).  SCTP connections keep the client's port as their SNAT
 * port, so only addresses change (its CRC32c does not cover them).
 * The L4 checksum must stay right for CHECKSUM_PARTIAL skbs (local senders,
 * veth: the field holds the pseudo-header sum) and CHECKSUM_COMPLETE ones
 * (skb->csum): the kctx build reads skb->ip_summed and writes the field
 * directly (helper only for COMPLETE); the portable build makes one
 * bpf_l4_csum_replace call for the address change and infers the state from
 * its result (l4_csum_fix).  Everything else is written directly.
 *
 * Verdict: TC_ACT_UNSPEC ("no opinion") for translated and untouched packets
 * alike, so filters of lower priority on the same hook (another tool's, or a
 * test's IPVS stand-in) still run and the packet continues when none decides;
 * TC_ACT_SHOT only when a checksum helper fails after a rewrite.
 */
#include <linux/pkt_cls.h>
#include <bpf/bpf_core_read.h>
#include "ipvs_bpf_parse.h"
#include "ipvs_bpf_maps.h"
#include "ipvs_bpf_csum.h"
#include "ipvs_bpf_ablate.h"

#define AF_INET 2
#define AF_INET6 10
#define ETH_HLEN_ 14
/* eth + IPv6 + ICMPv6 + IPv6 + 20 bytes of L4: the most any path needs linear */
#define TC_PULL_LEN (ETH_HLEN_ + 40 + 8 + 40 + 20)

static __always_inline int tc_pass(__u32 why)
{
	stat_inc(why);
	return TC_ACT_UNSPEC;
}

/*
 * IPVS_TC_KCTX builds (ipvs_tc_kctx.bpf.o, kernels >= 6.3; the loader falls
 * back to ipvs_tc.bpf.o where it does not load, e.g. Debian's 6.1): read
 * skb->ip_summed through bpf_cast_to_kern_ctx (the verifier turns that kfunc
 * into a register move, no call) and CO-RE, so the checksum needs no helper
 * call at all unless the skb is CHECKSUM_COMPLETE.
 */
#ifndef IPVS_TC_KCTX
#define IPVS_TC_KCTX 0
#endif
/*
 * Test build only (build/bpf-oldcsum, never loaded by the daemon): behave as
 * on a kernel whose bpf_l4_csum_replace() rejects BPF_F_IPV6 (before Linux
 * 6.16 and its stable backports), so that the host's BPF_PROG_TEST_RUN
 * tests can check that fallback.
 */
#ifndef IPVS_TC_TEST_NO_F_IPV6
#define IPVS_TC_TEST_NO_F_IPV6 0
#endif

#if IPVS_TC_KCTX
struct sk_buff___ipvs {
	__u8 ip_summed:2;
} __attribute__((preserve_access_index));
extern void *bpf_cast_to_kern_ctx(void *) __ksym;
#define IPVS_CHECKSUM_NONE 0
#define IPVS_CHECKSUM_UNNECESSARY 1
#define IPVS_CHECKSUM_COMPLETE 2
#define IPVS_CHECKSUM_PARTIAL 3
#endif

/* The 16-bit L4 checksum field at off, or -1 if it is not in the linear data. */
static __always_inline int l4_csum_read(struct __sk_buff *skb, __u32 off)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	__u16 *p;

	if (off > TC_PULL_LEN)
		return -1;
	p = data + off;
	if ((void *)(p + 1) > end)
		return -1;
	return *p;
}

/* one's complement residue mod 0xffff of a folded sum (0xffff and 0 are the same number) */
static __always_inline __u32 csum_res(__u32 x)
{
	x = csum_fold32(x);
	return x == 0xffff ? 0 : x;
}

/*
 * L4 checksum after the NAT: d_pseudo is the change of the pseudo header
 * (addresses), d_plain the change inside the L4 header (ports).
 *
 * The pseudo-header change must go through bpf_l4_csum_replace: only the
 * kernel knows whether the skb is CHECKSUM_PARTIAL (local senders, veth: the
 * field holds the pseudo-header sum, hardware adds the rest later) or carries
 * a complete checksum (and, if CHECKSUM_COMPLETE, skb->csum to fix).  The port
 * change would be a second helper call, which costs about 20 ns here (every
 * call and return pays the CPU's return-stack mitigation).  Instead the result
 * of the first call tells the two cases apart: a complete checksum moved by
 * -d_pseudo, a partial one by +d_pseudo, and these differ whenever d_pseudo is
 * not 0 mod 0xffff.  Complete: apply the port change by hand (what the helper
 * would do, and skb->csum is not touched for an L4-header change); partial:
 * nothing to do (the ports are summed by whoever completes the checksum).
 * If d_pseudo is 0 mod 0xffff (e.g. 10.1.0.2 -> 10.2.0.1) the addresses leave
 * every checksum as it is and only the port change is made, by the helper.
 * Anything else (no visible field, an unexpected value) takes the helper for
 * the ports as before.  Either way: one helper call per packet, not two.
 */
static __always_inline int l4_csum_fix(struct __sk_buff *skb, __u32 off, __u32 d_pseudo, __u32 d_plain,
				       __u8 proto, int v6)
{
	__u64 fl = proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;
	int rc, before, after;
	__u32 dp;

	dp = csum_res(d_pseudo);
#if IPVS_TC_KCTX
	{
		struct sk_buff___ipvs *k = bpf_cast_to_kern_ctx(skb);
		__u32 summed = BPF_CORE_READ_BITFIELD(k, ip_summed);
		void *data = (void *)(long)skb->data;
		void *end = (void *)(long)skb->data_end;
		__u16 *p = data + off;
		__u16 c;

		if (off <= TC_PULL_LEN && (void *)(p + 1) <= end && (summed != IPVS_CHECKSUM_COMPLETE ||
								     (proto == IPPROTO_UDP && *p == 0))) {
			c = *p;
			/* what bpf_l4_csum_replace does, per state (incl. BPF_F_MARK_MANGLED_0) */
			if (proto == IPPROTO_UDP && c == 0) {
				/* UDP without checksum: only skb->csum covers the ports */
				if (summed == IPVS_CHECKSUM_COMPLETE && d_plain)
					bpf_csum_update(skb, d_plain);
				return 0;
			}
			if (summed == IPVS_CHECKSUM_PARTIAL) {
				/* the field holds the pseudo-header sum, uncomplemented */
				if (!dp)
					return 0;
				c = csum_fold32(csum_add32(d_pseudo, c));
			} else {
				c = csum_apply(c, csum_add32(d_pseudo, d_plain));
			}
			if (proto == IPPROTO_UDP && c == 0)
				c = 0xffff;
			*p = c;
			return 0;
		}
	}
#endif
	if (proto == IPPROTO_UDP && l4_csum_read(skb, off) == 0) {
		/*
		 * UDP without checksum: nothing in the packet covers the ports, but a
		 * CHECKSUM_COMPLETE skb's csum does (bpf_csum_update changes only
		 * those; -ENOTSUPP otherwise, which is right).
		 */
		if (d_plain)
			bpf_csum_update(skb, d_plain);
		return 0;
	}
	if (dp || IPVS_ABL_CSUM_HELPERS) {
		before = l4_csum_read(skb, off);
		rc = IPVS_TC_TEST_NO_F_IPV6 && v6 ? -22 :
		     bpf_l4_csum_replace(skb, off, 0, d_pseudo, fl | BPF_F_PSEUDO_HDR | (v6 ? BPF_F_IPV6 : 0));
		if (rc == -22 && v6) {
			/*
			 * Kernel without BPF_F_IPV6: the helper moves a
			 * CHECKSUM_COMPLETE skb->csum by -d_pseudo, as for IPv4,
			 * where the IP header checksum makes up for the address
			 * change.  IPv6 has none: the addresses written above
			 * and the new L4 field cancel out, so skb->csum must not
			 * move.  Put it back (-ENOTSUPP unless COMPLETE: fine).
			 */
			rc = bpf_l4_csum_replace(skb, off, 0, d_pseudo, fl | BPF_F_PSEUDO_HDR);
			if (rc)
				return rc;
			bpf_csum_update(skb, d_pseudo);
		}
		if (rc)
			return rc;
		if (d_plain && before >= 0 && !IPVS_ABL_CSUM_HELPERS) {
			after = l4_csum_read(skb, off);
			if (after >= 0) {
				__u32 r_after = csum_res((__u32)after);

				if (r_after == csum_res((__u32)before + dp))
					return 0; /* CHECKSUM_PARTIAL */
				if (r_after == csum_res((__u32)before + (0xffff - dp))) {
					void *data = (void *)(long)skb->data;
					void *end = (void *)(long)skb->data_end;
					__u16 *p = data + off;
					__u16 c;

					if (off > TC_PULL_LEN || (void *)(p + 1) > end)
						return -1;
					c = csum_apply((__u16)after, d_plain);
					if (proto == IPPROTO_UDP && c == 0)
						c = 0xffff;
					*p = c;
					return 0;
				}
			}
		}
	}
	if (d_plain)
		return bpf_l4_csum_replace(skb, off, 0, d_plain, fl);
	return 0;
}

/*
 * ICMP error about a translated flow.  l4off: offset of the ICMP header.
 * egress: the embedded packet is rsip:rsport -> cip:cport (IPVS translated the
 *         error about its reply back towards the real server); key = reversed =
 *         SNAT; outer saddr and embedded daddr:dport become lip:lport.
 * ingress: embedded packet is lip:lport -> rsip:rsport; key = reversed = REPLY;
 *         outer daddr and embedded saddr:sport become cip:cport.
 */
static __always_inline int tc_icmp(struct __sk_buff *skb, const int egress, const int v6, __u32 l4off)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	const __u32 ihl = v6 ? 40 : 20;
	__u32 in_l3 = l4off + 8;
	struct ipvs_bpf_ct_key key;
	struct ipvs_bpf_ct_value *v;
	__u32 *o_addr, *i_addr, *new_addr;
	__u16 *i_port, new_port, *icsum;
	__u32 d_outer, d_inner_addr, d_icmp;
	__u8 *icmp, *inner, in_proto;
	int csoff;

	icmp = data + l4off;
	inner = data + in_l3;
	if ((void *)(inner + ihl + 8) > end)
		return tc_pass(IPVS_BPF_STAT_TC_PASS_OTHER);
	if (v6 ? !is_icmp6_error(icmp[0]) : !is_icmp4_error(icmp[0]))
		return tc_pass(IPVS_BPF_STAT_TC_PASS_OTHER);
	__builtin_memset(&key, 0, sizeof(key));
	if (v6) {
		struct ipv6hdr *ih = (void *)inner;

		in_proto = ih->nexthdr;
		key.family = AF_INET6;
		__builtin_memcpy(key.saddr, &ih->daddr, 16);
		__builtin_memcpy(key.daddr, &ih->saddr, 16);
	} else {
		struct iphdr *ih = (void *)inner;

		if (ih->ihl != 5 || (ih->frag_off & bpf_htons(IPVS_IP_OFFSET)))
			return tc_pass(IPVS_BPF_STAT_TC_PASS_OTHER);
		in_proto = ih->protocol;
		key.family = AF_INET;
		key.saddr[0] = ih->daddr;
		key.daddr[0] = ih->saddr;
	}
	if (!l4_hdr_len(in_proto))
		return tc_pass(IPVS_BPF_STAT_TC_PASS_OTHER);
	key.proto = in_proto;
	key.kind = egress ? IPVS_BPF_KIND_SNAT : IPVS_BPF_KIND_REPLY;
	key.sport = ((__u16 *)(inner + ihl))[1];
	key.dport = ((__u16 *)(inner + ihl))[0];
	v = bpf_map_lookup_elem(&IPVS_BPF_CT_MAP, &key);
	if (!v)
		return tc_pass(egress ? IPVS_BPF_STAT_TC_SNAT_MISS : IPVS_BPF_STAT_TC_REPLY_MISS);
	new_port = egress ? v->sport : v->dport;
	new_addr = egress ? v->saddr : v->daddr;

	/* outer header: egress rewrites the source, ingress the destination */
	if (v6) {
		struct ipv6hdr *oh = data + ETH_HLEN_;
		struct ipv6hdr *ih = (void *)inner;

		if ((void *)(oh + 1) > end)
			return tc_pass(IPVS_BPF_STAT_TC_PASS_OTHER);
		o_addr = egress ? (__u32 *)&oh->saddr : (__u32 *)&oh->daddr;
		i_addr = egress ? (__u32 *)&ih->daddr : (__u32 *)&ih->saddr;
		d_outer = csum_diff_addr(0, o_addr, new_addr, 1);
		d_inner_addr = csum_diff_addr(0, i_addr, new_addr, 1);
		__builtin_memcpy(o_addr, new_addr, 16);
		__builtin_memcpy(i_addr, new_addr, 16);
		d_icmp = d_inner_addr;
	} else {
		struct iphdr *oh = data + ETH_HLEN_;
		struct iphdr *ih = (void *)inner;
		__u16 old_ck;

		if ((void *)(oh + 1) > end)
			return tc_pass(IPVS_BPF_STAT_TC_PASS_OTHER);
		o_addr = egress ? &oh->saddr : &oh->daddr;
		i_addr = egress ? &ih->daddr : &ih->saddr;
		d_outer = csum_diff32(0, *o_addr, new_addr[0]);
		d_inner_addr = csum_diff32(0, *i_addr, new_addr[0]);
		*o_addr = new_addr[0];
		*i_addr = new_addr[0];
		oh->check = csum_apply(oh->check, d_outer);
		old_ck = ih->check;
		ih->check = csum_apply(old_ck, d_inner_addr);
		d_icmp = csum_diff16(d_inner_addr, old_ck, ih->check);
		d_outer = 0; /* ICMPv4 has no pseudo header */
	}
	/* embedded ports, and the embedded L4 checksum if it is in the packet */
	i_port = (__u16 *)(inner + ihl) + (egress ? 1 : 0);
	if (in_proto == IPPROTO_SCTP && *i_port != new_port)
		return tc_pass(IPVS_BPF_STAT_TC_PASS_OTHER);
	d_icmp = csum_diff16(d_icmp, *i_port, new_port);
	csoff = l4_csum_off(in_proto);
	if (csoff >= 0 && (void *)(inner + ihl + csoff + 2) <= end) {
		__u16 *ick = (__u16 *)(inner + ihl + csoff);
		__u16 old = *ick;

		if (!(in_proto == IPPROTO_UDP && old == 0)) {
			__u16 c = csum_apply(old, csum_diff16(d_inner_addr, *i_port, new_port));

			if (in_proto == IPPROTO_UDP && c == 0)
				c = 0xffff;
			*ick = c;
			d_icmp = csum_diff16(d_icmp, old, c);
		}
	}
	*i_port = new_port;
	icsum = (__u16 *)(icmp + 2);
	*icsum = csum_apply(*icsum, d_icmp);
	ct_touch(v, skb->len - ETH_HLEN_);
	stat_inc(IPVS_BPF_STAT_TC_ICMP_HIT);
	if (v6 && d_outer) {
		/* ICMPv6 pseudo header: outer address change, via the helper for skb csum state */
		if (l4_csum_fix(skb, l4off + 2, d_outer, 0, IPPROTO_ICMPV6, 1)) {
			stat_inc(IPVS_BPF_STAT_ERROR);
			return TC_ACT_SHOT;
		}
	}
	return TC_ACT_UNSPEC;
}

static __always_inline int tc_nat(struct __sk_buff *skb, const int egress)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ipvs_bpf_ct_key key;
	struct ipvs_bpf_ct_value *v;
	struct ethhdr *eth;
	__u32 l4off, d_addr, d_port, old_ports, new_ports;
	__u32 *addr, *new_addr;
	int v6, csoff;
	__u8 proto;

	if (data + TC_PULL_LEN > end && skb->len > (__u32)(end - data)) {
		bpf_skb_pull_data(skb, skb->len < TC_PULL_LEN ? skb->len : TC_PULL_LEN);
		data = (void *)(long)skb->data;
		end = (void *)(long)skb->data_end;
	}
	eth = data;
	if ((void *)(eth + 1) > end)
		return tc_pass(IPVS_BPF_STAT_TC_PASS_OTHER);
	__builtin_memset(&key, 0, sizeof(key));
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip4 = (void *)(eth + 1);

		if ((void *)(ip4 + 1) > end || ip4->ihl != 5)
			return tc_pass(IPVS_BPF_STAT_TC_PASS_OTHER);
		if (ip4->frag_off & bpf_htons(IPVS_IP_MF | IPVS_IP_OFFSET))
			return tc_pass(IPVS_BPF_STAT_TC_PASS_FRAG);
		proto = ip4->protocol;
		key.family = AF_INET;
		key.saddr[0] = ip4->saddr;
		key.daddr[0] = ip4->daddr;
		v6 = 0;
		l4off = ETH_HLEN_ + 20;
		if (proto == IPPROTO_ICMP)
			return tc_icmp(skb, egress, 0, l4off);
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > end)
			return tc_pass(IPVS_BPF_STAT_TC_PASS_OTHER);
		proto = ip6->nexthdr;
		if (proto == IPPROTO_FRAGMENT)
			return tc_pass(IPVS_BPF_STAT_TC_PASS_FRAG);
		key.family = AF_INET6;
		__builtin_memcpy(key.saddr, &ip6->saddr, 16);
		__builtin_memcpy(key.daddr, &ip6->daddr, 16);
		v6 = 1;
		l4off = ETH_HLEN_ + 40;
		if (proto == IPPROTO_ICMPV6)
			return tc_icmp(skb, egress, 1, l4off);
	} else {
		return tc_pass(IPVS_BPF_STAT_TC_PASS_OTHER);
	}
	if (!l4_hdr_len(proto))
		return tc_pass(IPVS_BPF_STAT_TC_PASS_OTHER);
	if (data + l4off + 4 > end)
		return tc_pass(IPVS_BPF_STAT_TC_PASS_OTHER);
	old_ports = *(__u32 *)(data + l4off);
	key.proto = proto;
	*(__u32 *)&key.sport = old_ports;
	key.kind = egress ? IPVS_BPF_KIND_SNAT : IPVS_BPF_KIND_REPLY;
	if (IPVS_ABL_STOP_AT(1))
		return TC_ACT_UNSPEC;
	v = bpf_map_lookup_elem(&IPVS_BPF_CT_MAP, &key);
	if (!v)
		return tc_pass(egress ? IPVS_BPF_STAT_TC_SNAT_MISS : IPVS_BPF_STAT_TC_REPLY_MISS);
	if (IPVS_ABL_STOP_AT(2))
		return TC_ACT_UNSPEC;

	/* egress: source := value.saddr:sport; ingress: destination := value.daddr:dport */
	new_ports = egress ? ((old_ports & 0xffff0000) | v->sport)
			   : ((old_ports & 0x0000ffff) | ((__u32)v->dport << 16));
	if (proto == IPPROTO_SCTP && new_ports != old_ports)
		return tc_pass(IPVS_BPF_STAT_TC_PASS_OTHER);
	new_addr = egress ? v->saddr : v->daddr;
	if (v6) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		addr = egress ? (__u32 *)&ip6->saddr : (__u32 *)&ip6->daddr;
		d_addr = csum_diff_addr(0, addr, new_addr, 1);
		__builtin_memcpy(addr, new_addr, 16);
	} else {
		struct iphdr *ip4 = (void *)(eth + 1);

		addr = egress ? &ip4->saddr : &ip4->daddr;
		d_addr = csum_diff32(0, *addr, new_addr[0]);
		*addr = new_addr[0];
		ip4->check = csum_apply(ip4->check, d_addr);
	}
	*(__u32 *)(data + l4off) = new_ports;
	d_port = new_ports != old_ports ? csum_diff32(0, old_ports, new_ports) : 0;
	if (!IPVS_ABL_NO_TOUCH)
		ct_touch(v, skb->len - ETH_HLEN_);
	stat_inc(egress ? IPVS_BPF_STAT_TC_SNAT_HIT : IPVS_BPF_STAT_TC_REPLY_HIT);
	csoff = l4_csum_off(proto);
	if (csoff >= 0 && !IPVS_ABL_NO_CSUM && l4_csum_fix(skb, l4off + csoff, d_addr, d_port, proto, v6)) {
		stat_inc(IPVS_BPF_STAT_ERROR);
		return TC_ACT_SHOT;
	}
	return TC_ACT_UNSPEC;
}

SEC("tc")
int ipvs_tc_snat(struct __sk_buff *skb)
{
	return tc_nat(skb, 1);
}

SEC("tc")
int ipvs_tc_reply(struct __sk_buff *skb)
{
	return tc_nat(skb, 0);
}

char _license[] SEC("license") = "GPL";
