/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* BPF side only: the maps shared (by pin name) between the tc and XDP objects. */
#ifndef IPVS_BPF_MAPS_H
#define IPVS_BPF_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "ipvs_bpf_abi.h"
#include "ipvs_bpf_ablate.h"

/*
 * Plain preallocated hash: entries are inserted and removed by IPVS only.
 * max_entries is overwritten by the loader from configuration before load.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, IPVS_BPF_CT_DEFAULT_ENTRIES);
	__type(key, struct ipvs_bpf_ct_key);
	__type(value, struct ipvs_bpf_ct_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} IPVS_BPF_CT_MAP SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, IPVS_BPF_STATS_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} IPVS_BPF_STATS_MAP SEC(".maps");

/* Where XDP may redirect (see ipvs_bpf_abi.h); filled by the daemon. */
struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__uint(max_entries, IPVS_BPF_DEV_MAP_ENTRIES);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} IPVS_BPF_DEV_MAP SEC(".maps");

/*
 * Test builds of the shipped objects (build/bpf-variant/, -DIPVS_BPF_TEST_VARIANT=1):
 * one extra register move per counter update, no change in behaviour, so the
 * kernel's program tag differs and the upgrade tests can install "new" code.
 */
#ifndef IPVS_BPF_TEST_VARIANT
#define IPVS_BPF_TEST_VARIANT 0
#endif

static __always_inline void stat_inc(__u32 idx)
{
	__u64 *c;

	if (IPVS_ABL_NO_STATS)
		return;
	if (IPVS_BPF_TEST_VARIANT)
		asm volatile("%0 = %0" : "+r"(idx));
	c = bpf_map_lookup_elem(&IPVS_BPF_STATS_MAP, &idx);
	if (c)
		*c += 1;
}

/* Liveness and accounting for an entry the program just used. */
static __always_inline void ct_touch_at(struct ipvs_bpf_ct_value *v, __u32 bytes, __u32 now)
{
	/* written only when the jiffy moved: no store to the shared line otherwise */
	if (!IPVS_ABL_NO_CLOCK && v->last_seen != now)
		v->last_seen = now;
	if (IPVS_ABL_PLAIN_ADD) {
		v->packets += 1;
		v->bytes += bytes;
		return;
	}
	__sync_fetch_and_add(&v->packets, 1);
	__sync_fetch_and_add(&v->bytes, bytes);
}

static __always_inline void ct_touch(struct ipvs_bpf_ct_value *v, __u32 bytes)
{
	ct_touch_at(v, bytes, (__u32)bpf_jiffies64());
}

#endif
