/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Load-time configuration of the programs: one __u32 of flags that the
 * loader writes into the object's ".rodata.cfg" section before load (the
 * verifier then removes the dead branches).  Shared by BPF and the addon.
 */
#ifndef IPVS_BPF_CFG_H
#define IPVS_BPF_CFG_H

#define IPVS_BPF_CFG_SECTION ".rodata.cfg"
/* XDP fast path decrements TTL / hop limit like a router (and IPVS) does. */
#define IPVS_BPF_CFG_DEC_TTL (1u << 0)
#define IPVS_BPF_CFG_DEFAULT IPVS_BPF_CFG_DEC_TTL

#endif
