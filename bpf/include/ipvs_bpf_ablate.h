/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Cost-accounting builds (scripts/bench-datapath-parts.js): the production
 * objects define none of these, so every ABL_* test below is a constant 0
 * and clang removes it.  A parts build passes -DIPVS_ABL_<PART>=1 to skip one
 * part of the hot path, or -DIPVS_ABL_STOP=<n> to return right after stage n
 * (1 parse + key, 2 conntrack lookup, 3 next hop), so BPF_PROG_TEST_RUN can
 * time what each part costs on the machine at hand.  Such objects are never
 * loaded by the daemon.
 */
#ifndef IPVS_BPF_ABLATE_H
#define IPVS_BPF_ABLATE_H

#ifndef IPVS_ABL_STOP
#define IPVS_ABL_STOP 0
#endif
#ifndef IPVS_ABL_NO_NEXTHOP /* XDP: no next-hop resolution, MACs swapped, XDP_TX */
#define IPVS_ABL_NO_NEXTHOP 0
#endif
#ifndef IPVS_ABL_NO_NH_CACHE /* XDP: bpf_fib_lookup on every packet (no next-hop cache) */
#define IPVS_ABL_NO_NH_CACHE 0
#endif
#ifndef IPVS_ABL_CSUM_HELPERS /* tc: one bpf_l4_csum_replace per change, as before */
#define IPVS_ABL_CSUM_HELPERS 0
#endif
#ifndef IPVS_ABL_NO_KIND_HINT /* XDP: always FWD first, then REPLY */
#define IPVS_ABL_NO_KIND_HINT 0
#endif
#ifndef IPVS_ABL_NO_TOUCH /* no per-flow liveness/counters */
#define IPVS_ABL_NO_TOUCH 0
#endif
#ifndef IPVS_ABL_PLAIN_ADD /* per-flow counters without atomics */
#define IPVS_ABL_PLAIN_ADD 0
#endif
#ifndef IPVS_ABL_NO_CLOCK /* per-flow counters without the last-seen write */
#define IPVS_ABL_NO_CLOCK 0
#endif
#ifndef IPVS_ABL_NO_STATS /* no per-CPU stats counters */
#define IPVS_ABL_NO_STATS 0
#endif
#ifndef IPVS_ABL_NO_CSUM /* no checksum updates (packets leave with wrong sums) */
#define IPVS_ABL_NO_CSUM 0
#endif

/* true when a parts build asks to stop after stage n */
#define IPVS_ABL_STOP_AT(n) (IPVS_ABL_STOP == (n))

#endif
