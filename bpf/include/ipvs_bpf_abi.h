/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * ipvs-bpf map ABI: the one definition of the conntrack map shared by
 *   - the BPF programs (bpf/tc, bpf/xdp; compiled with clang -target bpf),
 *   - the patched IPVS module (kernel-patch/, built against 6.1 headers),
 *   - the userspace addon (native/), which exports sizeof/offsetof of every
 *     field listed in the X-macros below to TypeScript (src/bpf/abi.ts).
 * Nothing else may restate this layout.
 *
 * Connection model (Tencent's IPVS-BPF, extended): client cip:cport, service
 * vip:vport, real server rsip:rsport, local SNAT address lip:lport.  IPVS
 * schedules the first packet of a connection and writes three entries, all
 * keyed by the tuple of a packet *as the program that looks it up sees it*:
 *
 *  kind   key (packet as seen)        value (tuple after the full NAT)  used by
 *  -----  --------------------------  --------------------------------  --------------------------
 *  SNAT   cip:cport -> rsip:rsport    lip:lport -> rsip:rsport          tc egress: rewrites the source
 *         (after IPVS DNAT)                                             (destination already right)
 *  REPLY  rsip:rsport -> lip:lport    vip:vport -> cip:cport            tc ingress: rewrites only the
 *                                                                       destination (to cip:cport), so
 *                                                                       IPVS still sees and un-DNATs
 *                                                                       the reply; XDP: both
 *  FWD    cip:cport -> vip:vport      lip:lport -> rsip:rsport          XDP only (full forward NAT)
 *
 * Hand-over IPVS -> tc egress: the SNAT key is the complete post-DNAT tuple,
 * which is unique per connection because IPVS's own connection table is keyed
 * by the same tuple.  The egress program therefore needs no side channel in
 * the skb (no skb->mark, no skb->vlan_proto, which breaks on 6.2+, no
 * tc_index): whatever IPVS transmits after DNAT is found by its headers alone.
 *
 * The value always holds the complete tuple the packet must carry after the
 * NAT; a program rewrites only the half that belongs to it (see table).
 *
 * Addresses: 16 bytes in network order; IPv4 uses word 0, words 1..3 are 0.
 * Ports: network order.  For ICMP errors the programs use the embedded
 * packet's tuple, reversed.  Key padding must be zero (the key is hashed
 * bytewise).  Key and value are of the same family.
 *
 * Liveness: BPF writes last_seen = (u32)jiffies (bpf_jiffies64()) whenever it
 * changed, so the module can compare it with jiffies before expiring a
 * connection carried only by the fast path.  packets/bytes are updated with
 * atomic adds by the program that used the entry.
 *
 * Versioning: the map name embeds IPVS_BPF_ABI_VERSION.  The module checks
 * map type (BPF_MAP_TYPE_HASH), name, key_size and value_size of the map it
 * is handed; the loader refuses to reuse a pinned map that differs.
 *
 * Upgrades: every map below is pinned and outlives the programs.  A daemon
 * start loads the objects on disk against the pinned maps (same fds) and
 * replaces each pinned program whose code differs in place, so the maps and
 * the flows in them survive.  A map whose definition (type, key, value,
 * capacity, flags) changes is an ABI change: the loader refuses it rather than
 * recreate it; give such a map a new name (the _vN suffix) instead.
 */
#ifndef IPVS_BPF_ABI_H
#define IPVS_BPF_ABI_H

#if defined(__KERNEL__)
#include <linux/types.h>
#elif defined(__bpf__)
#include <linux/types.h>
#else
#include <linux/types.h>
#endif

#define IPVS_BPF_ABI_VERSION 1

#define IPVS_BPF_STR_(x) #x
#define IPVS_BPF_STR(x) IPVS_BPF_STR_(x)

/* Pinning: everything the daemon loads lives under this bpffs directory. */
#define IPVS_BPF_PIN_DIR "/sys/fs/bpf/ipvs-bpf"
/* Map (and pin file) names.  BPF_OBJ_NAME_LEN is 16 including the NUL. */
#define IPVS_BPF_CT_MAP ipvs_ct_v1
/* v2: a fixed number of slots (IPVS_BPF_STATS_SLOTS), so appending a counter changes no map */
#define IPVS_BPF_STATS_MAP ipvs_stats_v2
#define IPVS_BPF_DEV_MAP ipvs_dev_v1
#define IPVS_BPF_CT_MAP_NAME IPVS_BPF_STR(IPVS_BPF_CT_MAP)
#define IPVS_BPF_STATS_MAP_NAME IPVS_BPF_STR(IPVS_BPF_STATS_MAP)
#define IPVS_BPF_DEV_MAP_NAME IPVS_BPF_STR(IPVS_BPF_DEV_MAP)
/* Program pin names (files in IPVS_BPF_PIN_DIR). */
#define IPVS_BPF_PIN_XDP "prog_xdp_fastpath"
#define IPVS_BPF_PIN_TC_EGRESS "prog_tc_snat"
#define IPVS_BPF_PIN_TC_INGRESS "prog_tc_reply"
#define IPVS_BPF_PIN_XDP_PASS "prog_xdp_pass" /* for veth peers that receive XDP_TX/REDIRECT */
/* Default capacity (entries) when configuration does not say; 3 per connection. */
#define IPVS_BPF_CT_DEFAULT_ENTRIES (1u << 20)

/*
 * Device map (BPF_MAP_TYPE_DEVMAP_HASH, key and value __u32 ifindex): the
 * devices the XDP fast path may redirect to, i.e. the configured interfaces
 * that run it (the daemon keeps it in step on start and reload; the kernel
 * drops the entry of a device that goes away).  A flow whose next hop leaves
 * through any other device is passed to the stack untouched
 * (IPVS_BPF_STAT_XDP_PASS_EGRESS): a device without XDP support, or a veth
 * whose peer runs no XDP program, would drop redirected frames silently.
 */
#define IPVS_BPF_DEV_MAP_ENTRIES 256

/* Address families as used in the key (the Linux values of AF_INET/AF_INET6). */
#define IPVS_BPF_AF_INET 2
#define IPVS_BPF_AF_INET6 10

enum ipvs_bpf_kind {
	IPVS_BPF_KIND_SNAT = 1,
	IPVS_BPF_KIND_REPLY = 2,
	IPVS_BPF_KIND_FWD = 3,
};

/* value.flags */
#define IPVS_BPF_F_NO_FASTPATH (1u << 0) /* XDP passes every packet of this flow to the stack */

struct ipvs_bpf_ct_key {
	__u8 family;    /* IPVS_BPF_AF_INET or IPVS_BPF_AF_INET6 */
	__u8 proto;     /* IPPROTO_TCP, IPPROTO_UDP or IPPROTO_SCTP */
	__u8 kind;      /* enum ipvs_bpf_kind */
	__u8 pad;       /* zero */
	__be16 sport;
	__be16 dport;
	__be32 saddr[4];
	__be32 daddr[4];
};

struct ipvs_bpf_ct_value {
	__be32 saddr[4];  /* source after the NAT */
	__be32 daddr[4];  /* destination after the NAT */
	__be16 sport;
	__be16 dport;
	__u32 flags;      /* IPVS_BPF_F_* */
	__u32 last_seen;  /* low 32 bits of jiffies of the last packet (BPF writes) */
	__u32 pad;        /* zero */
	__u64 packets;    /* packets that used this entry in BPF */
	__u64 bytes;      /* their L3 bytes */
};

/* Field lists for layout export (addon -> TS). X(struct, field) */
#define IPVS_BPF_CT_KEY_FIELDS(X) \
	X(ipvs_bpf_ct_key, family) X(ipvs_bpf_ct_key, proto) X(ipvs_bpf_ct_key, kind) \
	X(ipvs_bpf_ct_key, pad) X(ipvs_bpf_ct_key, sport) X(ipvs_bpf_ct_key, dport) \
	X(ipvs_bpf_ct_key, saddr) X(ipvs_bpf_ct_key, daddr)
#define IPVS_BPF_CT_VALUE_FIELDS(X) \
	X(ipvs_bpf_ct_value, saddr) X(ipvs_bpf_ct_value, daddr) X(ipvs_bpf_ct_value, sport) \
	X(ipvs_bpf_ct_value, dport) X(ipvs_bpf_ct_value, flags) X(ipvs_bpf_ct_value, last_seen) \
	X(ipvs_bpf_ct_value, pad) X(ipvs_bpf_ct_value, packets) X(ipvs_bpf_ct_value, bytes)

/*
 * Per-CPU counters (BPF_MAP_TYPE_PERCPU_ARRAY of __u64, IPVS_BPF_STATS_SLOTS
 * slots, the first IPVS_BPF_STAT_MAX named here).  The addon exports the
 * names in this order; append only (a new name takes a free slot, the pinned
 * map stays as it is across the upgrade).
 */
#define IPVS_BPF_STATS_SLOTS 64
#define IPVS_BPF_STATS(X) \
	X(XDP_FWD_HIT)        /* XDP: FWD entry, full NAT, sent */            \
	X(XDP_REPLY_HIT)      /* XDP: REPLY entry, full NAT, sent */          \
	X(XDP_MISS)           /* XDP: no entry -> stack */                    \
	X(XDP_PASS_TCP_CTRL)  /* XDP: SYN/FIN/RST -> stack (IPVS state) */    \
	X(XDP_PASS_FRAG)      /* XDP: IP fragment -> stack */                 \
	X(XDP_PASS_OTHER)     /* XDP: not IPv4/6 TCP/UDP/SCTP, options, ICMP */ \
	X(XDP_PASS_FIB)       /* XDP: no route / neighbour -> stack */        \
	X(XDP_PASS_TTL)       /* XDP: TTL/hop limit would expire -> stack */  \
	X(XDP_PASS_FLAG)      /* XDP: entry flagged IPVS_BPF_F_NO_FASTPATH */ \
	X(XDP_TX)             /* XDP: sent back out the ingress device */     \
	X(XDP_REDIRECT)       /* XDP: redirected to another device */        \
	X(TC_SNAT_HIT)        /* tc egress: source rewritten */               \
	X(TC_SNAT_MISS)       /* tc egress: no SNAT entry */                  \
	X(TC_REPLY_HIT)       /* tc ingress: destination rewritten */         \
	X(TC_REPLY_MISS)      /* tc ingress: no REPLY entry */                \
	X(TC_ICMP_HIT)        /* tc: ICMP error about a flow translated */    \
	X(TC_PASS_FRAG)       /* tc: IP fragment left untouched */            \
	X(TC_PASS_OTHER)      /* tc: not a translatable packet */             \
	X(ERROR)              /* malformed or helper failure (packet dropped) */ \
	X(XDP_PASS_EGRESS)    /* XDP: egress device not in the device map -> stack */

enum ipvs_bpf_stat {
#define IPVS_BPF_STAT_ENUM_(name) IPVS_BPF_STAT_##name,
	IPVS_BPF_STATS(IPVS_BPF_STAT_ENUM_)
#undef IPVS_BPF_STAT_ENUM_
	IPVS_BPF_STAT_MAX
};

#ifdef __cplusplus
#define IPVS_BPF_ASSERT_(c, m) static_assert(c, m)
#else
#define IPVS_BPF_ASSERT_(c, m) _Static_assert(c, m)
#endif
IPVS_BPF_ASSERT_(sizeof(struct ipvs_bpf_ct_key) == 40, "ipvs_bpf_ct_key is 40 bytes, no holes");
IPVS_BPF_ASSERT_(sizeof(struct ipvs_bpf_ct_value) == 64, "ipvs_bpf_ct_value is 64 bytes, no holes");
IPVS_BPF_ASSERT_(IPVS_BPF_STAT_MAX <= IPVS_BPF_STATS_SLOTS, "more counters than stats slots");

#endif /* IPVS_BPF_ABI_H */
