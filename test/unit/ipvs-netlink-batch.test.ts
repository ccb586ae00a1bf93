import { AckLedger, BatchPlanner, ackChargeBound, batchLimits } from '../../src/ipvs/netlink/batch';

describe('ACK charge bound', () => {
  // Receive-buffer charges measured on Linux 6.18 via /proc/net/netlink Rmem (see batch.ts).
  test.each([
    [16, 832],
    [196, 832],
    [316, 1280],
    [1016, 2304],
    [3016, 4352],
  ])('a request of %i bytes is charged at most the bound (measured %i)', (len, measured) => {
    expect(ackChargeBound(len)).toBeGreaterThanOrEqual(measured);
  });

  test('grows with the request it may echo', () => {
    expect(ackChargeBound(4000)).toBeGreaterThan(ackChargeBound(200));
  });
});

describe('BatchPlanner', () => {
  test('fills a batch up to the ACK budget', () => {
    const limits = batchLimits(425984, 425984);
    const p = new BatchPlanner(limits);
    let n = 0;
    while (p.tryAdd(180)) n++;
    expect(n).toBe(Math.floor(limits.ackBudget / ackChargeBound(180)));
    expect(p.count).toBe(n);
    expect(p.size).toBe(n * 180);
    expect(n * ackChargeBound(180)).toBeLessThanOrEqual(425984);
  });

  test('respects byte and op limits, and always takes a lone request', () => {
    const p = new BatchPlanner({ maxBytes: 1000, ackBudget: 1e9, maxOps: 3 });
    expect(p.tryAdd(600)).toBe(true);
    expect(p.tryAdd(600)).toBe(false);
    p.reset();
    expect(p.tryAdd(5000)).toBe(true);
    p.reset();
    expect([p.tryAdd(10), p.tryAdd(10), p.tryAdd(10), p.tryAdd(10)]).toEqual([true, true, true, false]);
  });

  test('limits follow the socket buffers', () => {
    const l = batchLimits(8192, 4096);
    expect(l.maxBytes).toBe(8160);
    expect(l.ackBudget).toBeLessThan(4096);
  });
});

describe('AckLedger', () => {
  test('maps consecutive seqs (across 2^32 wrap) to op indexes and settles each once', () => {
    const first = 0xfffffffe;
    const l = new AckLedger<string>(first, [10, 11, 12, 13]);
    expect(l.position(0xfffffffe)).toBe(0);
    expect(l.position(1)).toBe(3);
    expect(l.position(2)).toBe(-1);
    expect(l.position(0xfffffffd)).toBe(-1);
    expect(l.settle(0xffffffff, { status: 'ok' })).toBe(true);
    expect(l.settle(0xffffffff, { status: 'ok' })).toBe(false);
    expect(l.settle(0, { status: 'failed', error: 'EEXIST' })).toBe(true);
    expect(l.outstanding).toBe(2);
    expect(l.hasFailure()).toBe(true);
    expect(l.settleRest(() => ({ status: 'unknown', error: 'lost' }))).toBe(2);
    expect(l.entries()).toEqual([
      [10, { status: 'unknown', error: 'lost' }],
      [11, { status: 'ok' }],
      [12, { status: 'failed', error: 'EEXIST' }],
      [13, { status: 'unknown', error: 'lost' }],
    ]);
  });

  test('a batch of successes has no failure', () => {
    const l = new AckLedger<string>(5, [0, 1]);
    l.settle(5, { status: 'ok' });
    l.settle(6, { status: 'ok' });
    expect(l.hasFailure()).toBe(false);
    expect(l.outstanding).toBe(0);
  });
});
