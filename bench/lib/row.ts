// The shape of one result row, shared by every benchmark.

export interface Baseline {
  name: string;
  /** The figure, in the row's unit (null when not measured). */
  value: number | null;
  /** Table text when more than the bare figure is worth showing. */
  text?: string;
}

export interface Row {
  id: string;
  name: string;
  unit: string;
  /** sdwrap's figure, in `unit` (null when not measured). */
  sdwrap: number | null;
  sdwrapText?: string;
  baselines: Baseline[];
  /** sdwrap's figure over the baseline the target is stated against. */
  ratio: number | null;
  /** What the ratio (or figure) is compared with, in words. */
  target: string;
  /** null: not measured or skipped. */
  pass: boolean | null;
  notes: string[];
  /** Raw samples and anything else worth keeping. */
  detail: Record<string, unknown>;
}

export interface BenchOptions {
  quick: boolean;
  /** Progress output (stderr). */
  say: (text: string) => void;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function notMeasured(id: string, name: string, unit: string, target: string, why: string): Row {
  return { id, name, unit, sdwrap: null, sdwrapText: why, baselines: [], ratio: null, target, pass: null, notes: [why], detail: {} };
}
