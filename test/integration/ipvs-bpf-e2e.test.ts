/**
 * The BPF-mode end-to-end suite (ipvs-bpf-e2e.suite.ts) on the lab kernel LAB_KERNEL picks: 6.1 by default.
 * ipvs-bpf-e2e-other-kernel.test.ts runs it on the other series, so `npm test` covers both.
 */
import { e2eSuite } from './ipvs-bpf-e2e.suite';
import { labKernelSeries } from '../lab/vm';

e2eSuite(labKernelSeries());
