/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* BPF side only: constants and small parsing helpers shared by tc and XDP. */
#ifndef IPVS_BPF_PARSE_H
#define IPVS_BPF_PARSE_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "ipvs_bpf_abi.h"

#ifndef IPPROTO_SCTP
#define IPPROTO_SCTP 132
#endif
/* ICMP error types (linux/icmp.h drags in libc headers) */
#define ICMP_DEST_UNREACH 3
#define ICMP_SOURCE_QUENCH 4
#define ICMP_TIME_EXCEEDED 11
#define ICMP_PARAMETERPROB 12
#define ICMPV6_DEST_UNREACH 1
#define ICMPV6_PKT_TOOBIG 2
#define ICMPV6_TIME_EXCEED 3
#define ICMPV6_PARAMPROB 4
#define IPVS_IP_MF 0x2000
#define IPVS_IP_OFFSET 0x1fff
#define IPVS_TCP_CTRL_FLAGS 0x07 /* FIN | SYN | RST in byte 13 of the TCP header */
#define IPVS_SCTP_HLEN 12

/* Bytes of L4 header the programs need to see for a protocol, 0 if unsupported. */
static __always_inline int l4_hdr_len(__u8 proto)
{
	switch (proto) {
	case IPPROTO_TCP:
		return sizeof(struct tcphdr);
	case IPPROTO_UDP:
		return sizeof(struct udphdr);
	case IPPROTO_SCTP:
		return IPVS_SCTP_HLEN;
	}
	return 0;
}

/* Offset of the L4 checksum in the header, -1 if it does not cover addresses/ports (SCTP: CRC32c). */
static __always_inline int l4_csum_off(__u8 proto)
{
	if (proto == IPPROTO_TCP)
		return 16;
	if (proto == IPPROTO_UDP)
		return 6;
	return -1;
}

static __always_inline int is_icmp4_error(__u8 type)
{
	return type == ICMP_DEST_UNREACH || type == ICMP_TIME_EXCEEDED ||
	       type == ICMP_PARAMETERPROB || type == ICMP_SOURCE_QUENCH;
}

static __always_inline int is_icmp6_error(__u8 type)
{
	return type == ICMPV6_DEST_UNREACH || type == ICMPV6_PKT_TOOBIG ||
	       type == ICMPV6_TIME_EXCEED || type == ICMPV6_PARAMPROB;
}

#endif
