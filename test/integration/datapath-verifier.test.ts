/**
 * The BPF programs must pass the verifier of Debian's 6.1 kernel: load every shipped
 * object with the addon inside the lab VM (same checkout, same build).
 */
import { runInVm } from '../lab/vm';

test('XDP and tc objects load on the lab VM kernel (6.1)', async () => {
  const script = `
set -e
uname -r
node -e '
const a = require("./native/build/Release/ipvs_bpf.node");
const pin = "/sys/fs/bpf/ipvs-bpf-lab";
a.ensureBpffs(pin);
for (const o of ["ipvs_xdp", "ipvs_tc"]) {
  const r = a.loadObject("build/bpf/" + o + ".bpf.o", { pinRoot: pin, maxEntries: { ipvs_ct_v1: 1024 } });
  console.log("LOADED", o, Object.keys(r.programs).sort().join(","));
}
'
`;
  const r = await runInVm({ script, timeoutMs: 8 * 60 * 1000 });
  expect(r.error).toBeUndefined();
  expect(r.console).toMatch(/^6\.1\./m);
  expect(r.console).toContain('LOADED ipvs_xdp ipvs_xdp_fastpath,ipvs_xdp_pass');
  expect(r.console).toContain('LOADED ipvs_tc ipvs_tc_reply,ipvs_tc_snat');
  expect(r.exitCode).toBe(0);
}, 10 * 60 * 1000);
