/**
 * The BPF-mode end-to-end suite (ipvs-bpf-e2e.suite.ts) on the lab kernel series LAB_KERNEL does not pick:
 * 6.12 by default (Debian's linux-image-6.12-amd64, where the tc build that needs >= 6.3 loads), 6.1 with
 * LAB_KERNEL=6.12. With ipvs-bpf-e2e.test.ts, `npm test` runs the suite on both kernels, one boot each.
 * Here the patched modules are the ones Debian's dkms builds (kernel-patch/dkms.sh build), so the DKMS
 * packaging is proven by the same checks as the direct build.
 */
import { e2eSuite } from './ipvs-bpf-e2e.suite';
import { labKernelSeries } from '../lab/vm';

e2eSuite(labKernelSeries() === '6.1' ? '6.12' : '6.1', 'dkms');
