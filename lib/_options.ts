// Copyright 2026 the wirestream authors. MIT license.
// Checks of the options every module shares: sizes and durations.

/** A TypeError for an option that is no number (a string "10" from a config file, say). */
function notANumber(name: string, value: unknown): TypeError {
  const shown = typeof value === "string" ? JSON.stringify(value.slice(0, 64)) : String(value);
  return new TypeError(`Invalid ${name}: ${shown} is not a number`);
}

/** Checks a size limit option: an integer from `min`, or `Infinity`. */
export function checkLimit(name: string, value: number, min = 0): number {
  if (typeof value !== "number") throw notANumber(name, value);
  if (!(value >= min) || (value !== Infinity && !Number.isInteger(value))) {
    throw new RangeError(`Invalid ${name}: ${value} is not an integer from ${min}, or Infinity`);
  }
  return value;
}

/** The longest delay setTimeout honours (longer ones fire at once). */
const MAX_DELAY = 2 ** 31 - 1;

/**
 * Checks a duration option: `Infinity` (no timer), or milliseconds from `min` up to the
 * 2^31 − 1 that timers can wait.
 */
export function checkDuration(name: string, value: number, min = 0): number {
  if (value === Infinity) return value;
  if (typeof value !== "number") throw notANumber(name, value);
  if (!(value >= min) || value > MAX_DELAY) {
    throw new RangeError(
      `Invalid ${name}: ${value} ms is not Infinity or a number from ${min} to ${MAX_DELAY}`,
    );
  }
  return value;
}
