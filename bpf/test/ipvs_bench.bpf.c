// SPDX-License-Identifier: GPL-2.0-only
/*
 * BENCHMARK FIXTURES (scripts/bench-datapath): empty programs for the
 * BPF_PROG_TEST_RUN floor, a counting sink, and a live-frames generator.
 */
#include <linux/pkt_cls.h>
#include "ipvs_bpf_parse.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} bench_sink_count SEC(".maps");

SEC("xdp")
int bench_xdp_empty(struct xdp_md *ctx)
{
	return XDP_PASS;
}

SEC("tc")
int bench_tc_empty(struct __sk_buff *skb)
{
	return TC_ACT_OK;
}

/* sink: count and drop everything (ARP included; use permanent neighbours) */
SEC("xdp")
int bench_xdp_sink(struct xdp_md *ctx)
{
	__u32 k = 0;
	__u64 *c = bpf_map_lookup_elem(&bench_sink_count, &k);

	if (c)
		*c += 1;
	return XDP_DROP;
}

/*
 * generator for BPF_F_TEST_XDP_LIVE_FRAMES: pages come back with whatever
 * the last hop wrote, so copy the template (the test-run input) back in.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u8[128]);
} bench_tmpl SEC(".maps");

SEC("xdp")
int bench_xdp_gen(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	__u32 k = 0;
	__u8 *t = bpf_map_lookup_elem(&bench_tmpl, &k);

	if (!t || data + 64 > end)
		return XDP_ABORTED;
	__builtin_memcpy(data, t, 64);
	return XDP_TX;
}

char _license[] SEC("license") = "GPL";
