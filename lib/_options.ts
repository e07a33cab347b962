// Copyright 2026 the wirestream authors. MIT license.
// Checks of the options every module shares: sizes and durations.

/**
 * An option's value as an error message shows it: a string quoted (a "10" from a config file
 * is then not mistaken for the number), a bigint with its `n`, anything else by its type
 * when it cannot be turned into a string.
 */
export function shown(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value.slice(0, 64));
  if (typeof value === "bigint") return `${value}n`;
  if (typeof value === "number" || typeof value === "boolean" || value == null) {
    return String(value);
  }
  if (Array.isArray(value)) return "an array";
  return typeof value === "object" ? "an object" : `a ${typeof value}`;
}

/** Checks a size limit option: an integer from `min`, or `Infinity`. */
export function checkLimit(name: string, value: number, min = 0): number {
  if (
    typeof value !== "number" || !(value >= min) ||
    (value !== Infinity && !Number.isInteger(value))
  ) {
    throw new RangeError(
      `Invalid ${name}: ${shown(value)} is not an integer from ${min}, or Infinity`,
    );
  }
  return value;
}

/** The longest delay setTimeout honours (longer ones fire at once). */
export const MAX_DELAY = 2 ** 31 - 1;

/**
 * Checks a duration option: `Infinity` (no timer), or milliseconds from `min` up to the
 * 2^31 − 1 that timers can wait.
 */
export function checkDuration(name: string, value: number, min = 0): number {
  if (value === Infinity) return value;
  if (typeof value !== "number" || !(value >= min) || value > MAX_DELAY) {
    throw new RangeError(
      `Invalid ${name}: ${shown(value)} ms is not Infinity or a number from ${min} to ${MAX_DELAY}`,
    );
  }
  return value;
}

/** The first own key of `options` that is not among `names` (a misspelt option), or null. */
export function unknownKey(options: object, names: ReadonlySet<string>): string | null {
  for (const key of Object.keys(options)) if (!names.has(key)) return key;
  return null;
}
