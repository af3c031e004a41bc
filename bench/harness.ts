/**
 * Small, dependency-free measurement helpers for the benchmark: the interleaved runner every
 * group uses, its statistics (min/median/max, paired ratios), the result types and formatting.
 */

import { seededRandom } from '../test/support/seeded-random.js';

/** The spread of a figure over the rounds. */
export interface Stat {
  min: number;
  median: number;
  max: number;
  /**
   * A 95% confidence interval of the median (see {@link medianInterval}); absent with fewer than
   * 6 values, where no two of them bound one.
   */
  interval?: { low: number; high: number };
}

/** What one round of one contender measured: metric name → value. */
export type Sample = Record<string, number>;

export interface Contender<S extends Sample> {
  label: string;
  /** One round: runs the contender and returns what it measured. */
  run: () => Promise<S>;
}

export interface InterleavedResult<S extends Sample> {
  readonly labels: readonly string[];
  /** `samples[c][r]`: contender `c`, round `r`. */
  readonly samples: readonly (readonly S[])[];
  /** min/median/max of a metric of one contender over the rounds. */
  stat(label: string, metric: keyof S & string): Stat;
  /**
   * Paired ratios: in every round, `a`'s metric divided by `b`'s of the same round, then the
   * min/median/max of those per-round ratios. Drift between rounds cancels out of each ratio.
   */
  paired(a: string, b: string, metric: keyof S & string): Stat;
}

export function statOf(values: readonly number[]): Stat {
  if (values.length === 0) return { min: NaN, median: NaN, max: NaN };
  const s = [...values].sort((x, y) => x - y);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  const stat: Stat = { min: s[0]!, median, max: s[s.length - 1]! };
  const ranks = medianInterval(s.length);
  if (ranks !== undefined) stat.interval = { low: s[ranks.low]!, high: s[ranks.high]! };
  return stat;
}

/**
 * The ranks (0-based, in sorted order) of the two values that bound a confidence interval of at
 * least 95% for the median of `n` values, whatever their distribution: the median lies below
 * the j-th smallest of n independent values with the probability that fewer than j of them fall
 * below it, a binomial(n, ½) tail. So the interval needs no assumption about the shape of the
 * rounds' spread, only that rounds are independent. `undefined` for n < 6.
 *
 * @example
 * medianInterval(18) // { low: 4, high: 13 }: the 5th and 14th of 18 sorted values
 */
export function medianInterval(n: number): { low: number; high: number } | undefined {
  // P(X <= k) for X ~ Binomial(n, 1/2), accumulated term by term.
  let term = 2 ** -n;
  let tail = 0;
  let j = 0;
  for (let k = 0; k < n; k++) {
    tail += term;
    if (tail > 0.025) break;
    j = k + 1;
    term = (term * (n - k)) / (k + 1);
  }
  return j === 0 ? undefined : { low: j - 1, high: n - j };
}

/** `1 / x` of a stat (min and max swap, so do the interval's ends). */
export function invert(s: Stat): Stat {
  const out: Stat = { min: 1 / s.max, median: 1 / s.median, max: 1 / s.min };
  if (s.interval !== undefined) {
    out.interval = { low: 1 / s.interval.high, high: 1 / s.interval.low };
  }
  return out;
}

const gc = (): void => (globalThis as { gc?: () => void }).gc?.();

/** Runs between two turns of every interleaved run (outside the measured time). */
let betweenTurns: () => void = () => undefined;
export function onBetweenTurns(fn: () => void): void {
  betweenTurns = fn;
}

/**
 * Runs the contenders in interleaved rounds, A B C A B C …: `warmup` unmeasured rounds, then
 * `rounds` measured ones. A full GC runs before every turn, so one contender's garbage is not
 * collected on the next one's clock; slow drift (a server's caches, the JIT, the machine) then
 * hits every contender alike, and {@link InterleavedResult.paired} compares within a round.
 */
export async function interleaved<S extends Sample>(
  contenders: readonly Contender<S>[],
  opts: {
    rounds: number;
    warmup?: number;
    progress?: string;
    /** Runs between the warm-up rounds and the measured ones. */
    measuring?: () => Promise<void>;
  },
): Promise<InterleavedResult<S>> {
  const samples = contenders.map((): S[] => []);
  const total = (opts.warmup ?? 0) + opts.rounds;
  for (let r = 0; r < total; r++) {
    if (r === (opts.warmup ?? 0)) await opts.measuring?.();
    if (opts.progress) process.stderr.write(`\r  ${opts.progress}: round ${r + 1}/${total}   `);
    for (let c = 0; c < contenders.length; c++) {
      betweenTurns();
      gc();
      const sample = await contenders[c]!.run();
      if (r >= (opts.warmup ?? 0)) samples[c]!.push(sample);
    }
  }
  if (opts.progress) process.stderr.write('\n');
  return resultOf(
    contenders.map((c) => c.label),
    samples,
  );
}

function resultOf<S extends Sample>(
  labels: readonly string[],
  samples: readonly (readonly S[])[],
): InterleavedResult<S> {
  const index = (label: string): number => {
    const i = labels.indexOf(label);
    if (i < 0) throw new Error(`no contender "${label}"`);
    return i;
  };
  return {
    labels,
    samples,
    stat: (label, metric) => statOf(samples[index(label)]!.map((s) => s[metric]!)),
    paired: (a, b, metric) => {
      const sa = samples[index(a)]!;
      const sb = samples[index(b)]!;
      return statOf(sa.map((s, r) => s[metric]! / sb[r]![metric]!));
    },
  };
}

/** A contender of {@link alternated}: one operation, and its sample from a round's totals. */
export interface Alternating<S extends Sample> {
  label: string;
  /** Before each round (reset counters). */
  begin?: () => void;
  /** One operation (the `i`-th of this contender). */
  op: (i: number) => Promise<unknown>;
  /** The round's sample from this contender's totals over its turns. */
  end: (totals: AlternatedTotals) => S;
}

/** What {@link alternated} measured of one contender in one round, over all its turns. */
export interface AlternatedTotals {
  ops: number;
  /** Wall-clock time of its turns, ms. */
  ms: number;
  /** This process's CPU time during its turns, µs. */
  cpuUs: number;
  /** How much `probe` grew during its turns (e.g. a server's CPU µs); NaN without one. */
  probed: number;
}

/**
 * {@link interleaved} at a finer grain, for latency at concurrency 1: within each round the
 * contenders take short turns (A B C A B C …, the first of each cycle rotating), until each has
 * run `ms` in all. A server's drift over a few milliseconds (its GC, its caches, the other core's
 * load), which over one-second turns swings a round's ratio by ±10%, then falls on every
 * contender alike; a full GC runs between rounds only.
 *
 * Each turn's length is drawn anew, uniformly from `chunk` (min and max operations), from a seeded
 * generator (the same lengths on every run). With one fixed length, whatever recurs every so many
 * operations (the garbage collection of either process, for one) can fall on the same
 * contender's turns again and again: the same code measured 1.01x to 1.08x a bare call
 * depending on the length alone (10, 25, 50, 100 or 200 calls), in no order.
 * `probe` (a cumulative counter read outside the timed turns) is credited to the turn's owner.
 */
export async function alternated<S extends Sample>(
  contenders: readonly Alternating<S>[],
  opts: {
    rounds: number;
    warmup?: number;
    ms: number;
    chunk: { readonly min: number; readonly max: number };
    progress?: string;
    probe?: () => number;
  },
): Promise<InterleavedResult<S>> {
  const samples = contenders.map((): S[] => []);
  const random = seededRandom(0x5eed);
  const span = opts.chunk.max - opts.chunk.min + 1;
  const total = (opts.warmup ?? 0) + opts.rounds;
  const next = contenders.map(() => 0);
  for (let r = 0; r < total; r++) {
    if (opts.progress) process.stderr.write(`\r  ${opts.progress}: round ${r + 1}/${total}   `);
    betweenTurns();
    gc();
    const totals: AlternatedTotals[] = contenders.map(() => ({
      ops: 0,
      ms: 0,
      cpuUs: 0,
      probed: opts.probe === undefined ? NaN : 0,
    }));
    for (const c of contenders) c.begin?.();
    for (let cycle = 0; totals.some((t) => t.ms < opts.ms); cycle++) {
      for (let k = 0; k < contenders.length; k++) {
        const c = (cycle + k) % contenders.length;
        const t = totals[c]!;
        if (t.ms >= opts.ms) continue;
        const op = contenders[c]!.op;
        const probed0 = opts.probe?.() ?? 0;
        const cpu0 = process.cpuUsage();
        const turn = opts.chunk.min + Math.floor(random() * span);
        const start = performance.now();
        for (let j = 0; j < turn; j++) await op(next[c]!++);
        t.ms += performance.now() - start;
        const cpu = process.cpuUsage(cpu0);
        t.cpuUs += cpu.user + cpu.system;
        if (opts.probe !== undefined) t.probed += opts.probe() - probed0;
        t.ops += turn;
      }
    }
    if (r >= (opts.warmup ?? 0)) {
      contenders.forEach((c, i) => samples[i]!.push(c.end(totals[i]!)));
    }
  }
  if (opts.progress) process.stderr.write('\n');
  return resultOf(
    contenders.map((c) => c.label),
    samples,
  );
}

/**
 * Runs `op` sequentially (one await at a time) for about `ms` milliseconds, in batches of 200 so
 * the clock is read rarely. Returns ops/s.
 */
export async function sequentialRate(
  op: () => Promise<unknown>,
  ms: number,
): Promise<{ opsPerSec: number }> {
  let n = 0;
  const start = performance.now();
  let elapsed = 0;
  while (elapsed < ms) {
    for (let i = 0; i < 200; i++) await op();
    n += 200;
    elapsed = performance.now() - start;
  }
  return { opsPerSec: (n / elapsed) * 1000 };
}

/**
 * `concurrency` workers, each awaiting `op(i)` in a loop (`i` = 0, 1, 2, … shared by all workers,
 * so concurrent calls have distinct `i`) until `ms` milliseconds have passed; calls on their way
 * then finish and count. Returns ops/s and this process's CPU time (user + system, every thread)
 * per op in microseconds.
 */
export async function concurrentRate(
  op: (i: number) => Promise<unknown>,
  concurrency: number,
  ms: number,
): Promise<{ opsPerSec: number; cpuUsPerOp: number; ops: number }> {
  let next = 0;
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  const deadline = start + ms;
  const worker = async (): Promise<void> => {
    while (performance.now() < deadline) await op(next++);
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsed = performance.now() - start;
  const cpu = process.cpuUsage(cpu0);
  return {
    opsPerSec: (next / elapsed) * 1000,
    cpuUsPerOp: (cpu.user + cpu.system) / next,
    ops: next,
  };
}

// Results ------------------------------------------------------------------------------------

export interface Row {
  label: string;
  unit: string;
  /** The figure over the rounds. */
  value: Stat;
  /** `value` formatted: median [min–max]. */
  display: string;
  /**
   * Paired ratio to the group's baseline, oriented so that > 1 is better than the baseline
   * (higher-is-better figures: figure / baseline; lower-is-better: baseline / figure).
   */
  ratio: Stat;
  /** Further columns of the group (`Group.columns`), already formatted. */
  extra?: string[];
  /** Free text (counts, checks). */
  detail?: string;
  /** Left out of the ratio chart (a single run against a budget, not a paired ratio). */
  noChart?: boolean;
}

/** A target of the performance issue, checked on the median of its paired ratios. */
export interface Target {
  /** What is compared, e.g. "L2 c=16, dynalite: throughput vs bentocache". */
  what: string;
  /** The paired ratio, in the orientation of the target's wording. */
  ratio: Stat;
  op: '>=' | '<=';
  threshold: number;
  pass: boolean;
  /**
   * Whether the verdict stands beyond the rounds' noise: the 95% interval of the median lies
   * wholly on the verdict's side of the threshold. `false` when the interval spans it (another
   * run of the same code may well judge otherwise), or when there were too few rounds for one.
   */
  clear: boolean;
}

export interface Group {
  name: string;
  /** A paragraph under the heading (how the group measures). */
  intro?: string;
  baseline: string;
  higherIsBetter: boolean;
  rows: Row[];
  /** Names of the extra columns of the rows. */
  columns?: string[];
  notes?: string[];
  targets?: Target[];
  /** Left out of the ratio chart (counts, not speeds). */
  noChart?: boolean;
}

export function target(what: string, ratio: Stat, op: '>=' | '<=', threshold: number): Target {
  const meets = (v: number): boolean => (op === '>=' ? v >= threshold : v <= threshold);
  const pass = meets(ratio.median);
  const i = ratio.interval;
  const clear = i !== undefined && meets(i.low) === pass && meets(i.high) === pass;
  return { what, ratio, op, threshold, pass, clear };
}

export function fmtTarget(t: Target): string {
  // A median that rounds onto the threshold is also shown to three places: a FAIL never reads
  // "1.00x (target ≥ 1x)" without the figure that decided it.
  const exact =
    fmtRatio(t.ratio.median) === fmtRatio(t.threshold)
      ? ` (median ${t.ratio.median.toFixed(3)}x)`
      : '';
  const i = t.ratio.interval;
  const margin =
    i === undefined
      ? 'too few rounds for an interval of the median'
      : `95% interval of the median ${fmtRatio(i.low)}–${fmtRatio(i.high)}: ${t.clear ? 'clear' : 'within the noise'}`;
  return `**${t.pass ? 'PASS' : 'FAIL'}** ${t.what}: ${fmtRatioStat(t.ratio)}${exact} (target ${t.op === '>=' ? '≥' : '≤'} ${t.threshold}x, judged on the median; ${margin})`;
}

/** Rows of a group from an interleaved run: one per contender, ratios paired per round. */
export function rowsOf<S extends Sample>(
  result: InterleavedResult<S>,
  baseline: string,
  metric: keyof S & string,
  opts: { unit: string; higherIsBetter: boolean; fmt: (v: number) => string },
): Row[] {
  return result.labels.map((label) => {
    const value = result.stat(label, metric);
    const ratio = opts.higherIsBetter
      ? result.paired(label, baseline, metric)
      : result.paired(baseline, label, metric);
    return { label, unit: opts.unit, value, display: fmtStat(value, opts.fmt), ratio };
  });
}

export function fmtRate(opsPerSec: number): string {
  if (opsPerSec >= 1e6) return `${(opsPerSec / 1e6).toFixed(2)} M/s`;
  if (opsPerSec >= 1e3) return `${(opsPerSec / 1e3).toFixed(1)} k/s`;
  return `${opsPerSec.toFixed(0)} /s`;
}

export function fmtRatio(r: number): string {
  return `${r >= 10 ? r.toFixed(1) : r.toFixed(2)}x`;
}

/** `median [min–max]`. */
export function fmtStat(s: Stat, fmt: (v: number) => string): string {
  return s.min === s.max ? fmt(s.median) : `${fmt(s.median)} [${fmt(s.min)}–${fmt(s.max)}]`;
}

export function fmtRatioStat(s: Stat): string {
  return fmtStat(s, fmtRatio);
}

// Chart --------------------------------------------------------------------------------------

export interface Bar {
  section: string;
  label: string;
  ratio: Stat;
  /** Draws the target's threshold on the bar and colours it by pass/fail. */
  target?: { threshold: number; pass: boolean };
  ours: boolean;
}

/**
 * Horizontal bars of ratios on a log scale (1x dashed), with a min–max whisker per bar, in
 * sections; a target's threshold is a black tick, its bar green (pass) or red (fail).
 */
export function ratioChart(title: string, subtitle: string, bars: Bar[]): string {
  const rowH = 20;
  const sectionH = 26;
  const left = 640;
  const width = 1240;
  const right = 80;
  const lo = Math.min(0.05, ...bars.map((b) => b.ratio.min));
  const hi = Math.max(
    2,
    ...bars.map((b) => b.ratio.max),
    ...bars.map((b) => b.target?.threshold ?? 0),
  );
  const span = Math.log10(hi / lo);
  const x = (r: number): number =>
    left + (Math.log10(Math.min(Math.max(r, lo), hi) / lo) / span) * (width - left - right);
  const esc = (s: string): string =>
    s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  const clip = (s: string): string => (s.length > 104 ? s.slice(0, 103) + '…' : s);
  const sections = [...new Set(bars.map((b) => b.section))];
  const height = 62 + sections.length * sectionH + bars.length * rowH + 40;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="22" font-size="15" font-weight="bold">${esc(title)}</text>`,
    `<text x="10" y="40" fill="#555">${esc(subtitle)}</text>`,
  ];
  let y = 52;
  for (const section of sections) {
    parts.push(
      `<text x="10" y="${y + 17}" font-size="12" font-weight="bold">${esc(section)}</text>`,
    );
    y += sectionH;
    for (const b of bars.filter((bar) => bar.section === section)) {
      const fill = b.target
        ? b.target.pass
          ? '#3a9a4a'
          : '#d2453b'
        : b.ours
          ? '#2b7bb9'
          : '#aaaaaa';
      const x0 = x(Math.min(1, b.ratio.median));
      const x1 = x(Math.max(1, b.ratio.median));
      parts.push(
        `<text x="18" y="${y + 13}">${esc(clip(b.label))}</text>`,
        `<rect x="${x0}" y="${y + 3}" width="${Math.max(1, x1 - x0)}" height="${rowH - 7}" fill="${fill}"/>`,
        `<line x1="${x(b.ratio.min)}" y1="${y + 9.5}" x2="${x(b.ratio.max)}" y2="${y + 9.5}" stroke="#222"/>`,
        `<line x1="${x(b.ratio.min)}" y1="${y + 5}" x2="${x(b.ratio.min)}" y2="${y + 14}" stroke="#222"/>`,
        `<line x1="${x(b.ratio.max)}" y1="${y + 5}" x2="${x(b.ratio.max)}" y2="${y + 14}" stroke="#222"/>`,
        `<text x="${Math.max(x(b.ratio.max), x1) + 5}" y="${y + 13}">${fmtRatio(b.ratio.median)}</text>`,
      );
      if (b.target) {
        const tx = x(b.target.threshold);
        parts.push(
          `<line x1="${tx}" y1="${y + 1}" x2="${tx}" y2="${y + rowH - 2}" stroke="black" stroke-width="2.5"/>`,
        );
      }
      y += rowH;
    }
  }
  const base = x(1);
  parts.push(
    `<line x1="${base}" y1="52" x2="${base}" y2="${y + 4}" stroke="#d33" stroke-dasharray="4 3"/>`,
    `<text x="10" y="${height - 22}" fill="#333">Paired ratios (per round, then median; whisker = min–max over rounds), log scale, &gt; 1x = better; dashed red line = 1x.</text>`,
    `<text x="10" y="${height - 8}" fill="#333">Targets: black tick = threshold, green = PASS, red = FAIL (on the median). Other bars: blue = nestjs-dynamo-cache, grey = others.</text>`,
    '</svg>',
  );
  return parts.join('\n');
}
