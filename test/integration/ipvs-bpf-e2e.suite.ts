/**
 * Issue 4, end to end in the lab VM: a Debian kernel with the patched IPVS modules, the shared topology
 * (client -> LB with the VIP -> be1, be2, and a real server on the LB itself), IPVS programmed from an
 * ipvsadm rule file and the BPF data path brought up by the daemon (bin/ipvs-bpf, mode bpf). One boot runs
 * test/integration/vm/ipvs-bpf-e2e.sh, which records figures as key=value lines; the judgement is here.
 * Phases, in the order they run: kernel-patch/test/vm-smoke.sh; a control run with plain IPVS NAT and
 * MASQUERADE; N TCP and N UDP flows through the daemon's data path (held open, then closed and expired);
 * a long-lived TCP flow carried by XDP past IPVS's idle timeout; protocol edges (SCTP, fragmented UDP, IPv4
 * options, with be1 routing only the SNAT addresses back); map full; map absent (fallback nat, drop).
 *
 * The same suite runs on both lab kernels (issue 11): ipvs-bpf-e2e.test.ts on the one LAB_KERNEL picks
 * (6.1 by default), ipvs-bpf-e2e-other-kernel.test.ts on the other one.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import type { FlowResult, LongResult } from './vm/ipvs-bpf-traffic';
import { dkmsIpvsModules, patchedIpvsModules } from '../lab/patched-modules';
import { runInVm, type LabKernelSeries } from '../lab/vm';
import { compileForVm } from '../lab/compile';

const ROOT = path.resolve(__dirname, '../..');
/** Flows per protocol; a multiple of the three real servers, so round robin spreads them exactly. */
const N = 45;
const BACKENDS = ['be1', 'be2', 'local'] as const;
const SMOKE_CHECKS = 39;
/** The daemon's SNAT addresses (ipvs-bpf-e2e.sh): TOPO_SNAT and SNAT2. */
const SNAT = ['10.9.0.1', '10.9.0.2'];

/** The whole suite, booting the lab kernel of the given series with the patched modules as kernel-patch/build.sh
 * builds them, or (modules 'dkms') as DKMS builds them from the same tree (kernel-patch/dkms.sh). */
export function e2eSuite(kernel: LabKernelSeries, modules: 'build' | 'dkms' = 'build'): void {
  // ~5 min on a quiet machine; the shared 2-core host under load (5 engineers' VMs) has taken 15.
  jest.setTimeout(25 * 60 * 1000);

  let outDir = '';
  let consoleTail = '';
  let tools = '';
  const kv = new Map<string, string>();

  /** A recorded figure; a missing one fails with where to look. */
  function fig(key: string): number {
    const v = kv.get(key);
    if (v === undefined) throw new Error(`the VM payload recorded no ${key} (it stopped early?); console tail:\n${consoleTail}`);
    const n = Number(v);
    if (!Number.isFinite(n)) throw new Error(`${key}=${v} is not a number`);
    return n;
  }
  /** The change of a figure between two snapshots (e.g. delta('kernel.inserts', 'before', 'held')). */
  const delta = (key: string, from: string, to: string): number => fig(`${to}.${key}`) - fig(`${from}.${key}`);

  /** Fails with every mismatch and its figures, not just the first. */
  function figures(what: string, checks: [label: string, got: number | string, want: number | string | ((v: number) => boolean), wantText?: string][]): void {
    const bad = checks.filter(([, got, want]) => (typeof want === 'function' ? !want(Number(got)) : got !== want))
      .map(([label, got, want, text]) => `${label}: got ${got}, want ${text ?? (typeof want === 'function' ? want.toString() : want)}`);
    if (bad.length) throw new Error(`${what}:\n  ${bad.join('\n  ')}`);
  }

  function flowsOf(phase: string): FlowResult[] {
    const f = path.join(outDir, `${phase}-flows.json`);
    if (!existsSync(f)) throw new Error(`${phase}: no flow results (${f}); console tail:\n${consoleTail}`);
    return JSON.parse(readFileSync(f, 'utf8')) as FlowResult[];
  }
  const failed = (fs: FlowResult[], second = true): string[] => fs.filter((f) => !f.first || (second && !f.second))
    .map((f) => `${f.proto}#${f.index} cport ${f.cport} backend '${f.backend}': ${f.error || 'no second round trip'}`);
  const count = (fs: FlowResult[], proto: string, pred: (f: FlowResult) => boolean = () => true): number =>
    fs.filter((f) => f.proto === proto && pred(f)).length;
  const remote = (f: FlowResult): boolean => f.first && f.backend !== 'local';

  function allOk(phase: string, n: number): FlowResult[] {
    const fs = flowsOf(phase);
    const bad = failed(fs);
    figures(`${phase}: every flow round-trips twice`, [
      ['tcp flows', count(fs, 'tcp'), n], ['udp flows', count(fs, 'udp'), n], ['failed flows', bad.length, 0],
    ]);
    if (bad.length) throw new Error(bad.join('\n'));
    return fs;
  }

  beforeAll(async () => {
    compileForVm('test/integration/vm/ipvs-bpf.tsconfig.json');
    // The smoke test's helper, where the VM sees it (the host's / is its read-only lower layer).
    tools = mkdtempSync('/var/tmp/ipvs-bpf-e2e-');
    const ctl = path.join(tools, 'ipvs-bpf-ctl');
    execFileSync('gcc', ['-O2', '-Wall', '-o', ctl, path.join(ROOT, 'kernel-patch/tools/ipvs-bpf-ctl.c')], { stdio: 'pipe' });
    // clang, not gcc: setup.sh installs clang (gcc may be absent on a fresh machine)
    const edgePeer = path.join(tools, 'edge-peer');
    execFileSync('clang', ['-O2', '-Wall', '-o', edgePeer, path.join(ROOT, 'test/integration/vm/edge-peer.c')], { stdio: 'pipe' });
    const r = await runInVm({
      kernel,
      script: 'bash test/integration/vm/ipvs-bpf-e2e.sh',
      extraModules: modules === 'dkms' ? await dkmsIpvsModules(kernel) : await patchedIpvsModules(kernel),
      env: { E2E_FLOWS: String(N), E2E_SMOKE_CTL: ctl, E2E_EDGE_PEER: edgePeer },
      timeoutMs: 20 * 60 * 1000,
    });
    outDir = r.outDir;
    consoleTail = r.console.slice(-4000);
    const file = path.join(outDir, 'results.kv');
    if (existsSync(file)) {
      for (const line of readFileSync(file, 'utf8').split('\n')) {
        const eq = line.indexOf('=');
        if (eq > 0) kv.set(line.slice(0, eq), line.slice(eq + 1));
      }
    }
    process.stdout.write(`ipvs-bpf-e2e (${kernel}, ${modules} modules): VM ${Math.round(r.durationMs / 1000)} s (boot ${Math.round((r.timing?.bootToPayloadMs ?? 0) / 1000)} s), exit ${r.exitCode}, out ${outDir}\n`);
    if (r.exitCode !== 0) throw new Error(`VM payload failed (exit ${r.exitCode}${r.error ? `, ${r.error}` : ''}); results so far:\n${[...kv].map(([k, v]) => `${k}=${v}`).join('\n').slice(-3000)}\nconsole tail:\n${consoleTail}`);
  });

  afterAll(() => {
    if (tools) rmSync(tools, { recursive: true, force: true });
  });

  test(`the VM ran Debian's ${kernel} kernel, and the daemon loaded the tc build that kernel takes`, () => {
    const release = kv.get('vm.release') ?? '';
    const log = existsSync(path.join(outDir, 'daemon.log')) ? readFileSync(path.join(outDir, 'daemon.log'), 'utf8') : '';
    const objects = /data path under \S+ from ([^:]+):/.exec(log)?.[1]?.split(', ') ?? [];
    // bpf_cast_to_kern_ctx (the kctx build reads the skb's checksum state) came with 6.3 (src/bpf/loader.ts)
    const tc = kernel === '6.1' ? 'ipvs_tc.bpf.o' : 'ipvs_tc_kctx.bpf.o';
    figures('kernel and BPF objects', [
      ['uname -r in the VM', String(release.startsWith(`${kernel}.`)), 'true', `${kernel}.* (got '${release}')`],
      ['tc object the daemon loaded', objects.filter((o) => o.startsWith('ipvs_tc')).join(','), tc],
      ['XDP object', objects.filter((o) => o.startsWith('ipvs_xdp')).join(','), 'ipvs_xdp.bpf.o'],
    ]);
  });

  test('kernel-patch/test/vm-smoke.sh passes every check (hand-over errnos, entries, expiry, detach, fallbacks)', () => {
    const log = existsSync(path.join(outDir, 'smoke.log')) ? readFileSync(path.join(outDir, 'smoke.log'), 'utf8') : '';
    const fails = log.split('\n').filter((l) => l.startsWith('FAIL'));
    figures(`vm-smoke.sh${fails.length ? ` (${fails.join('; ')})` : ''}`, [
      ['exit status', fig('smoke.rc'), 0], ['FAIL lines', fig('smoke.fail'), 0], ['PASS lines', fig('smoke.pass'), SMOKE_CHECKS],
    ]);
  });

  test('the daemon in mode bpf: rules applied, tc + XDP on every LB interface, map registered, IPVS in BPF mode', () => {
    const ifs = (kv.get('topo.lb_ifs') ?? '').split(' ').filter(Boolean);
    figures('daemon start', [
      ['daemon.ready', fig('daemon.ready'), 1],
      ['net.ipv4.vs.bpf_mode', fig('bpf.bpf_mode'), 1],
      ['services from the rule file', fig('bpf.services'), 7],
      ['map_id registered with IPVS', fig('before.kernel.map_id'), (v) => v > 0, '> 0'],
      ['LB interfaces', ifs.length, 3],
      ...ifs.flatMap((i): [string, number, number][] => [[`${i}: XDP programs`, fig(`attach.${i}.xdp`), 1], [`${i}: tc filters (ingress+egress)`, fig(`attach.${i}.tc`), 2]]),
    ]);
  });

  test(`control, plain IPVS NAT + MASQUERADE: all ${N} TCP and ${N} UDP flows work and nf_conntrack holds one entry each`, () => {
    allOk('control', N);
    figures('control run (bpf_mode 0, no BPF)', [
      ['bpf_mode', fig('control.bpf_mode'), 0],
      ['conntrack entries, TCP', fig('control.ct.tcp'), N],
      ['conntrack entries, UDP', fig('control.ct.udp'), N],
      ['IPVS connections, TCP', fig('control.ipvs_conns.tcp'), N],
      ['IPVS connections, UDP', fig('control.ipvs_conns.udp'), N],
    ]);
  });

  test(`bpf: all ${N} TCP and ${N} UDP flows round-trip twice, spread evenly by rr over be1, be2 and the local real server`, () => {
    const fs = allOk('bpf', N);
    const spread: [string, number, number][] = [];
    for (const proto of ['tcp', 'udp']) for (const b of BACKENDS) spread.push([`${proto} flows answered by ${b}`, count(fs, proto, (f) => f.backend === b), N / BACKENDS.length]);
    figures('rr spread', spread);
  });

  test('bpf: nf_conntrack holds no entry for the flows (the control held N)', () => {
    figures('conntrack in BPF mode', [
      ['conntrack entries while held, TCP', fig('bpf.ct.tcp'), 0],
      ['conntrack entries while held, UDP', fig('bpf.ct.udp'), 0],
      ['conntrack entries after the second round trip, TCP', fig('closed.ct.tcp'), 0],
      ['conntrack entries after the second round trip, UDP', fig('closed.ct.udp'), 0],
      ['nf_conntrack_count while held (whole LB netns)', fig('bpf.ct.total'), 0],
      ['control: conntrack entries, TCP', fig('control.ct.tcp'), N],
    ]);
  });

  test('bpf: each connection to a remote real server owns its REPLY, SNAT and FWD entries; the local one none; counters agree', () => {
    const fs = flowsOf('bpf');
    const rt = count(fs, 'tcp', remote);
    const ru = count(fs, 'udp', remote);
    const local = fs.filter((f) => f.first && f.backend === 'local').length;
    figures('map while the flows are held', [
      ['IPVS connections, TCP', fig('bpf.ipvs_conns.tcp'), N],
      ['IPVS connections, UDP', fig('bpf.ipvs_conns.udp'), N],
      ['TCP flows with all three entries as the ABI says', fig('bpf.entries.tcp.complete'), rt],
      ['UDP flows with all three entries as the ABI says', fig('bpf.entries.udp.complete'), ru],
      ...(['FWD', 'SNAT', 'REPLY'] as const).flatMap((k): [string, number, number][] => [[`tcp ${k} entries`, fig(`bpf.map.tcp.${k}`), rt], [`udp ${k} entries`, fig(`bpf.map.udp.${k}`), ru]]),
      ['entries of flows to the local real server', fig('bpf.entries.local'), 0],
      ['entries of no flow', fig('bpf.entries.stray'), 0],
      ['SNAT sources outside the address / port range', fig('bpf.entries.bad_snat'), 0],
      ['kernel inserts (delta)', delta('kernel.inserts', 'before', 'bpf'), 3 * (rt + ru)],
      ['kernel conns owning entries', fig('bpf.kernel.conns'), rt + ru],
      ['kernel entries (its /proc line) = entries in the map', fig('bpf.kernel.entries'), fig('bpf.map.entries')],
      ['kernel local_rs (delta)', delta('kernel.local_rs', 'before', 'bpf'), local],
      ...(['collisions', 'map_full', 'fallbacks', 'refused', 'insert_errors', 'takeovers'] as const)
        .map((k): [string, number, number] => [`kernel ${k} (delta)`, delta(`kernel.${k}`, 'before', 'bpf'), 0]),
    ]);
  });

  test('bpf: established flows ride the fast path (XDP both ways), first packets go through IPVS and tc', () => {
    figures('BPF counters from before the flows to after the second round trips', [
      ['XDP_PASS_FLAG (each TCP handshake\'s last ACK goes to IPVS)', delta('bpf.XDP_PASS_FLAG', 'before', 'closed'), (v) => v >= fig('bpf.entries.tcp.complete'), `>= ${fig('bpf.entries.tcp.complete')}`],
      ['XDP_FWD_HIT', delta('bpf.XDP_FWD_HIT', 'before', 'closed'), (v) => v >= N, `>= ${N}`],
      ['XDP_REPLY_HIT', delta('bpf.XDP_REPLY_HIT', 'before', 'closed'), (v) => v >= N, `>= ${N}`],
      ['TC_SNAT_HIT', delta('bpf.TC_SNAT_HIT', 'before', 'closed'), (v) => v > 0, '> 0'],
      ['ERROR', delta('bpf.ERROR', 'before', 'closed'), 0],
    ]);
  });

  test('bpf: the entries go when IPVS expires the connections; deletes match inserts', () => {
    const fs = flowsOf('bpf');
    const conns = fs.filter(remote).length;
    figures('after expiry', [
      ['IPVS connections left, TCP', fig('expired.ipvs_conns.tcp'), 0],
      ['IPVS connections left, UDP', fig('expired.ipvs_conns.udp'), 0],
      ['map entries left', fig('expired.map.entries'), 0],
      ['kernel conns owning entries', fig('expired.kernel.conns'), 0],
      ['kernel entries (its /proc line)', fig('expired.kernel.entries'), 0],
      ['kernel deletes (delta)', delta('kernel.deletes', 'before', 'expired'), 3 * conns],
      ['kernel inserts (delta)', delta('kernel.inserts', 'before', 'expired'), 3 * conns],
      ['kernel delete_errors (delta)', delta('kernel.delete_errors', 'before', 'expired'), 0],
      ['kernel not_owner (delta)', delta('kernel.not_owner', 'before', 'expired'), 0],
      ['entries were there after the flows closed', fig('closed.map.entries'), 3 * conns],
      ['the kernel counted them', fig('closed.kernel.entries'), 3 * conns],
    ]);
  });

  test('a long-lived TCP flow carried by XDP outlives IPVS\'s idle timeout (keep-alive from last_seen)', () => {
    const f = path.join(outDir, 'long.json');
    if (!existsSync(f)) throw new Error(`no long.json; console tail:\n${consoleTail}`);
    const l = JSON.parse(readFileSync(f, 'utf8')) as LongResult;
    const timeoutMs = fig('long.timeout') * 1000;
    const windowMs = fig('long.window_ms');
    const trips = fig('long.ok_b') - fig('long.ok_a');
    figures(`long flow (cport ${l.cport}, backend ${l.backend}, error '${l.error}')`, [
      ['round trips failed', l.failed, 0],
      ['round trips ok (one per 500 ms, the last after the window)', l.ok, (v) => v >= windowMs / 500 * 0.8, `>= ${Math.floor(windowMs / 500 * 0.8)}`],
      ['client done', String(l.done), 'true'],
      ['last good round trip (ms after start)', l.lastOkMs, (v) => v > 2 * timeoutMs, `> 2 x idle timeout (${2 * timeoutMs})`],
      ['observation window (ms)', windowMs, (v) => v > 2 * timeoutMs, `> ${2 * timeoutMs}`],
      ['IPVS connection still listed after the window', fig('long.ipvs_conn_mid'), 1],
      ['... in state ESTABLISHED', fig('long.ipvs_established'), 1],
      ['IPVS InPkts of the service during the window', fig('long.inpkts_b') - fig('long.inpkts_a'), 0],
      ['round trips during the window', trips, (v) => v >= 2 * timeoutMs / 1000, `>= ${2 * timeoutMs / 1000}`],
      // a round trip is a request (FWD) and its answer (REPLY); the snapshots may cut one at each end
      ['XDP_FWD_HIT during the window', delta('bpf.XDP_FWD_HIT', 'long_a', 'long_b'), (v) => v >= trips - 2, `>= round trips - 2 (${trips - 2})`],
      ['XDP_REPLY_HIT during the window', delta('bpf.XDP_REPLY_HIT', 'long_a', 'long_b'), (v) => v >= trips - 2, `>= round trips - 2 (${trips - 2})`],
      ['XDP_PASS_FLAG during the window (TCP established: no flag)', delta('bpf.XDP_PASS_FLAG', 'long_a', 'long_b'), 0],
      ['kernel keepalives during the window', delta('kernel.keepalives', 'long_a', 'long_b'), (v) => v >= 1, '>= 1'],
    ]);
  });

  /** A recorded text figure (edge-peer's results), '' when missing. */
  const txt = (key: string): string => kv.get(key) ?? '';

  /** The edge real servers' per-datagram lines (edge-peer udp-serve). */
  function udpServerLog(name: string): { ip: string; port: number; len: number; ok: boolean; opts: number }[] {
    const f = path.join(outDir, `edge-${name}.log`);
    if (!existsSync(f)) throw new Error(`no ${f}; console tail:\n${consoleTail}`);
    return readFileSync(f, 'utf8').split('\n').map((l) => /^udp peer=([\d.]+):(\d+) len=(\d+) ok=(\d) opts=(\d+)$/.exec(l))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => ({ ip: m[1], port: Number(m[2]), len: Number(m[3]), ok: m[4] === '1', opts: Number(m[5]) }));
  }

  describe('protocol edges in bpf mode (be1 routes only the SNAT addresses back, so untranslated packets get no answer)', () => {
    const UDP_PAIRS = ['1200_1200', '3000_3000', '8000_8000', '100_8000', '8000_100'];
    // fragmented or with options: 3000, 8000 and 8000-byte requests, 100 and 3000 with options (and the same replies)
    const SLOW_EACH_WAY = 5;

    test('SCTP: the SNAT address changes and the client\'s port stays; a second client with that port gets the second address; IPVS sees every chunk; no conntrack', () => {
      figures('SCTP associations a (10.1.0.2:5001) and b (10.1.0.3:5001) through VIP:7000 -> be1:7001', [
        ['a: connect', txt('edge.sctp_a.connect'), 'ok'],
        ['a: the real server sees', txt('edge.sctp_a.peer'), `${SNAT[0]} 5001`],
        ['a: 100000 bytes echoed exactly', txt('edge.sctp_a.echo'), 'ok'],
        ['b: connect', txt('edge.sctp_b.connect'), 'ok'],
        ['b: the real server sees', txt('edge.sctp_b.peer'), `${SNAT[1]} 5001`],
        ['b: 100000 bytes echoed exactly', txt('edge.sctp_b.echo'), 'ok'],
        ['kernel collisions while b was placed', delta('kernel.collisions', 'edge_s0', 'edge_s1'), 1],
        ['SCTP REPLY entries (a and b)', fig('edge_s1.map.sctp.REPLY'), 2],
        ['SCTP SNAT entries', fig('edge_s1.map.sctp.SNAT'), 2],
        ['SCTP FWD entries', fig('edge_s1.map.sctp.FWD'), 2],
        ['SCTP entries flagged NO_FASTPATH (all)', fig('edge_s1.map.sctp.no_fastpath'), 6],
        ['tc SNAT hits (addresses only)', delta('bpf.TC_SNAT_HIT', 'edge_t', 'edge_s1'), (v) => v > 0, '> 0'],
        ['tc reply hits', delta('bpf.TC_REPLY_HIT', 'edge_t', 'edge_s1'), (v) => v > 0, '> 0'],
        ['XDP passes (flagged) to IPVS', delta('bpf.XDP_PASS_FLAG', 'edge_t', 'edge_s1'), (v) => v > 0, '> 0'],
        ['conntrack entries, SCTP, while held', fig('edge_s1.ct.sctp'), 0],
        ['nf_conntrack_count while held', fig('edge_s1.ct.total'), 0],
        ['ERROR', delta('bpf.ERROR', 'edge_t', 'edge_s2'), 0],
      ]);
      // c (10.1.0.4:5001): both addresses taken for that port towards be1:7001
      const exhausted = delta('kernel.ports_exhausted', 'edge_s1', 'edge_s2');
      figures('SCTP association c, a third client with port 5001', [
        ['c: no free SNAT address (ports_exhausted)', exhausted, (v) => v >= 1, '>= 1'],
        ['c: each fell back (fallbacks)', delta('kernel.fallbacks', 'edge_s1', 'edge_s2'), exhausted],
        ['c: entries written', delta('kernel.inserts', 'edge_s1', 'edge_s2'), 0],
        ['c: plain NAT cannot answer (be1 does not route the client back)', txt('edge.sctp_c.connect').replace(/:.*/, ''), 'fail'],
      ]);
    });

    test('UDP datagrams of 3000 and 8000 bytes, either way, reach the real server from the SNAT address and come back byte-exact, translated by IPVS', () => {
      const log = udpServerLog('udp');
      const bad = log.filter((l) => !l.ok || !SNAT.includes(l.ip) || l.port !== log[0].port);
      figures('UDP through VIP:5300 -> be1:9053 (request:reply bytes)', [
        ...UDP_PAIRS.map((p): [string, string, string] => [`${p.replace('_', ':')} echoed`, txt(`edge.udp.${p}`), 'ok']),
        ['datagrams the real server got', log.length, UDP_PAIRS.length],
        ['... not byte-exact, not from a SNAT address, or from another port', bad.length, 0],
        ['... sizes', log.map((l) => l.len).join(' '), '1200 3000 8000 100 8000'],
      ]);
      figures('UDP: how they got there', [
        ['kernel slow_snat (requests IPVS translated: fragmented or with options)', delta('kernel.slow_snat', 'edge_a', 'edge_u'), SLOW_EACH_WAY],
        ['kernel slow_reply (replies IPVS translated)', delta('kernel.slow_reply', 'edge_a', 'edge_u'), SLOW_EACH_WAY],
        ['XDP passed fragments', delta('bpf.XDP_PASS_FRAG', 'edge_a', 'edge_u'), (v) => v > 0, '> 0'],
        ['tc passed fragments', delta('bpf.TC_PASS_FRAG', 'edge_a', 'edge_u'), (v) => v > 0, '> 0'],
        ['conntrack entries, UDP', fig('edge_u.ct.udp'), 0],
        ['nf_conntrack_count', fig('edge_u.ct.total'), 0],
        ['ERROR', delta('bpf.ERROR', 'edge_a', 'edge_u'), 0],
      ]);
    });

    test('IPv4 options (Record Route) on UDP and TCP, both directions: delivered, answered with options, byte-exact', () => {
      const log = udpServerLog('udpopt');
      figures('UDP with Record Route both ways through VIP:5301 -> be1:9054, TCP with it through VIP:82 -> be1:9080', [
        ['UDP 100:100 echoed', txt('edge.udpopt.100_100'), 'ok'],
        ['UDP 3000:3000 echoed', txt('edge.udpopt.3000_3000'), 'ok'],
        ['UDP replies carried options (bytes)', fig('edge.udpopt.100_100.opts'), (v) => v > 0, '> 0'],
        ['UDP datagrams the real server got with options, byte-exact, from a SNAT address',
          log.filter((l) => l.ok && l.opts > 0 && SNAT.includes(l.ip)).length, 2],
        ['TCP connect', txt('edge.tcpopt.connect'), 'ok'],
        ['TCP: the real server got the SYN with options (bytes it echoes)', fig('edge.tcpopt.srvopts'), (v) => v > 0, '> 0'],
        ['TCP: the real server sees a SNAT address', String(SNAT.includes(txt('edge.tcpopt.peer').split(' ')[0])), 'true'],
        ['TCP: 200000 bytes echoed exactly', txt('edge.tcpopt.echo'), 'ok'],
      ]);
      figures('IPv4 options: how they got there', [
        ['TCP: segments IPVS SNATed (options)', delta('kernel.slow_snat', 'edge_u', 'edge_t'), (v) => v > 0, '> 0'],
        ['TCP: replies IPVS translated (options)', delta('kernel.slow_reply', 'edge_u', 'edge_t'), (v) => v > 0, '> 0'],
        ['ERROR', delta('bpf.ERROR', 'edge_u', 'edge_t'), 0],
      ]);
    });

    test('the edge connections and their entries go when their real servers are removed', () => {
      figures('after the edge phase', [
        ['kernel conns owning entries', fig('edge.conns_left'), 0],
        ['map entries left', fig('edge_end.map.entries'), 0],
        ['kernel delete_errors (delta)', delta('kernel.delete_errors', 'edge_a', 'edge_end'), 0],
      ]);
    });
  });

  test('map full: connections still work through the fallback (plain NAT) and are counted', () => {
    const fs = allOk('full', 6);
    const conns = fs.filter(remote).length;
    figures('map full', [
      ['connections owning entries before the fill', fig('full.conns_before'), 0],
      ['map filled to capacity', fig('full.filled') + fig('full_a.map.entries'), fig('full.capacity')],
      ['kernel map_full (delta)', delta('kernel.map_full', 'full_a', 'full_b'), conns],
      ['kernel fallbacks (delta)', delta('kernel.fallbacks', 'full_a', 'full_b'), conns],
      ['kernel inserts (delta)', delta('kernel.inserts', 'full_a', 'full_b'), 0],
      ['entries of these flows', fig('full_b.entries.tcp.complete') + fig('full_b.entries.udp.complete'), 0],
      ['filler entries removed', fig('full.unfilled'), fig('full.filled')],
    ]);
  });

  test('map absent: fallback nat works and is counted; fallback drop refuses remote connections cleanly', () => {
    const fs = allOk('absent', 6);
    const conns = fs.filter(remote).length;
    // A refused TCP SYN is retried by the client and scheduled anew, so a retry may land on the local real
    // server (which needs no entries) and succeed: only remote answers are impossible.
    const refused = flowsOf('refused');
    const remoteOk = refused.filter((f) => f.first && f.backend !== 'local').length;
    figures('map absent', [
      ['detach', fig('absent.detach_rc'), 0],
      ['map_id after detach', fig('absent_a.kernel.map_id'), 0],
      ['kernel no_map (delta)', delta('kernel.no_map', 'absent_a', 'absent_b'), conns],
      ['kernel fallbacks (delta)', delta('kernel.fallbacks', 'absent_a', 'absent_b'), conns],
      ['fallback drop: flows answered by a remote real server', remoteOk, 0],
      ['kernel refused (delta)', delta('kernel.refused', 'absent_b', 'refused_b'), (v) => v >= 4, '>= 4 (each remote attempt)'],
      ['conntrack entries of the refused flows', fig('refused.ct.tcp'), 0],
      ['entries written while detached', delta('kernel.inserts', 'absent_a', 'refused_b'), 0],
    ]);
  });

  test('the daemon stops cleanly; no oops, warning or leak in the kernel log', () => {
    figures('end', [['daemon exit status', fig('daemon.exit'), 0], ['dmesg oops/BUG/WARNING/leak lines', fig('dmesg.oops'), 0]]);
  });
}
