import { describe, expect, test } from 'vitest';
import { createMetricsRegistry } from '../src/index.ts';

describe('createMetricsRegistry', () => {
  test('counters: escaped labels in the order first given, one series whatever the order, never down', async () => {
    const r = createMetricsRegistry();
    const c = r.counter<'model' | 'code'>('x_total', 'Things.');
    c.inc({ model: 'a"b\\c', code: 'E' }, 2);
    c.inc({ code: 'E', model: 'a"b\\c' });
    c.inc();
    expect(c.get({ model: 'a"b\\c', code: 'E' })).toBe(3);
    expect(await r.render()).toBe(
      '# HELP x_total Things.\n# TYPE x_total counter\nx_total{model="a\\"b\\\\c",code="E"} 3\nx_total 1\n',
    );
    expect(() => c.inc({ model: 'a', code: 'E' }, -1)).toThrow(RangeError);
  });

  test('gauges set, go up and down; collectors run before each render', async () => {
    const r = createMetricsRegistry();
    const g = r.gauge('workers', 'Workers.');
    let n = 0;
    r.addCollector(() => g.set(undefined, ++n));
    expect(await r.render()).toContain('\nworkers 1\n');
    g.inc(undefined, 5);
    g.dec(undefined, 2);
    expect(g.get()).toBe(4);
    expect(await r.render()).toContain('\nworkers 2\n');
  });

  test('histograms: cumulative buckets, sum and count', async () => {
    const r = createMetricsRegistry();
    const h = r.histogram('d_seconds', 'Durations.', [0.1, 1]);
    h.observe({}, 0.05);
    h.observe(undefined, 0.5);
    h.observe({}, 5);
    expect((await r.render()).split('\n').slice(2, -1)).toEqual([
      'd_seconds_bucket{le="0.1"} 1',
      'd_seconds_bucket{le="1"} 2',
      'd_seconds_bucket{le="+Inf"} 3',
      'd_seconds_sum 5.55',
      'd_seconds_count 3',
    ]);
  });

  test('a name registered twice is one family; another type for it is refused', async () => {
    const r = createMetricsRegistry();
    r.counter('y_total', 'Y.').inc();
    r.counter('y_total', 'Y.').inc();
    expect((await r.render()).match(/# TYPE y_total/g)).toHaveLength(1);
    expect(await r.render()).toContain('y_total 2');
    expect(() => r.gauge('y_total', 'Y.')).toThrow('metric y_total is already registered as a counter');
  });
});
