/** Small, dependency-free measurement helpers for the benchmark. */

export interface Measured {
  opsPerSec: number;
  /** Mean time per operation, in microseconds. */
  usPerOp: number;
}

/**
 * Runs `op` sequentially (one await at a time) for about `ms` milliseconds per round, over
 * `rounds` rounds, and returns the median round. Ops are run in batches so the clock is read
 * rarely.
 */
export async function measure(
  op: () => Promise<unknown>,
  ms: number,
  rounds = 3,
): Promise<Measured> {
  // Warm-up: let the JIT see the path before timing it.
  for (let i = 0; i < 2_000; i++) await op();
  const results: number[] = [];
  for (let r = 0; r < rounds; r++) {
    let n = 0;
    const start = performance.now();
    let elapsed = 0;
    while (elapsed < ms) {
      for (let i = 0; i < 200; i++) await op();
      n += 200;
      elapsed = performance.now() - start;
    }
    results.push((n / elapsed) * 1000);
  }
  results.sort((a, b) => a - b);
  const opsPerSec = results[Math.floor(results.length / 2)] as number;
  return { opsPerSec, usPerOp: 1e6 / opsPerSec };
}

/**
 * Runs each contender `count` times in turn, `rounds` times over (A, B, C, A, B, C, …), and
 * returns each one's median rate: slow drift (a server's caches, the GC) then hits all alike.
 */
export async function interleaved(
  contenders: [string, () => Promise<unknown>][],
  count: number,
  rounds: number,
): Promise<[string, number][]> {
  for (const [, op] of contenders) for (let i = 0; i < Math.min(50, count); i++) await op();
  const rates = contenders.map((): number[] => []);
  for (let r = 0; r < rounds; r++) {
    for (let c = 0; c < contenders.length; c++) {
      const op = contenders[c]![1];
      const start = performance.now();
      for (let i = 0; i < count; i++) await op();
      rates[c]!.push((count / (performance.now() - start)) * 1000);
    }
  }
  return contenders.map(([label], c) => {
    const sorted = [...rates[c]!].sort((a, b) => a - b);
    return [label, sorted[Math.floor(sorted.length / 2)]!];
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

/** A horizontal bar chart of ratios (log scale, 0.01x to the largest), one bar per row, as SVG. */
export function ratioChart(
  title: string,
  bars: { group: string; label: string; ratio: number }[],
): string {
  const rowH = 22;
  const left = 560;
  const width = 1100;
  const floor = 0.01;
  const maxRatio = Math.max(1, ...bars.map((b) => b.ratio));
  const span = Math.log10(maxRatio / floor);
  const x = (r: number): number =>
    left + (Math.log10(Math.max(r, floor) / floor) / span) * (width - left - 70);
  const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const clip = (s: string): string => (s.length > 86 ? s.slice(0, 85) + '…' : s);
  const height = 50 + bars.length * rowH + 30;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="22" font-size="15" font-weight="bold">${esc(title)}</text>`,
  ];
  bars.forEach((b, i) => {
    const y = 40 + i * rowH;
    const ours =
      b.label.startsWith('nestjs-dynamo-cache') || b.label.includes(': nestjs-dynamo-cache');
    parts.push(
      `<text x="10" y="${y + 14}">${esc(clip(`${b.group}: ${b.label}`))}</text>`,
      `<rect x="${left}" y="${y + 3}" width="${Math.max(1, x(b.ratio) - left)}" height="${rowH - 8}" fill="${ours ? '#2b7bb9' : '#aaaaaa'}"/>`,
      `<text x="${x(b.ratio) + 5}" y="${y + 14}">${fmtRatio(b.ratio)}</text>`,
    );
  });
  const base = x(1);
  parts.push(
    `<line x1="${base}" y1="35" x2="${base}" y2="${height - 25}" stroke="#d33" stroke-dasharray="4 3"/>`,
    `<text x="10" y="${height - 10}" fill="#d33">dashed line: 1x = baseline of the group (log scale; blue = nestjs-dynamo-cache)</text>`,
    '</svg>',
  );
  return parts.join('\n');
}
