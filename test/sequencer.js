/**
 * Test order for `npm test`: jest's own (failed first, then slowest first from its cache), except that tests
 * needing the kube tools run last. scripts/test.sh builds those (kube-apiserver, kube-proxy, etcd; ~20 min
 * cold) in the background; run early, such a test would wait for the build while nothing else runs.
 */
const Sequencer = require('@jest/test-sequencer').default;

const LAST = [/\/kube-oracle\.test\.ts$/];

class LabLastSequencer extends Sequencer {
  sort(tests) {
    const sorted = super.sort(tests);
    const late = (t) => LAST.some((re) => re.test(t.path));
    return [...sorted.filter((t) => !late(t)), ...sorted.filter(late)];
  }
}

module.exports = LabLastSequencer;
