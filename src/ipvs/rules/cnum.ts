/**
 * The C library number parsers ipvsadm relies on, reproduced for their exact acceptance rules
 * (leading blanks, signs, trailing garbage, overflow), since they decide which arguments are errors.
 */

const C_SPACE = new Set([' ', '\t', '\n', '\v', '\f', '\r']);

export function isCSpace(ch: string | undefined): boolean {
  return ch !== undefined && C_SPACE.has(ch);
}

export function isDigit(ch: string | undefined): boolean {
  return ch !== undefined && ch >= '0' && ch <= '9';
}

/** LONG_MIN..LONG_MAX of an LP64 `long`. */
const LONG_MAX = (1n << 63n) - 1n;
const LONG_MIN = -(1n << 63n);

export interface StrtolResult {
  /** The value, clamped to LONG_MIN/LONG_MAX on overflow as strtol does. */
  value: bigint;
  /** Index of the first character not consumed (0 when no digits were read). */
  end: number;
  overflow: boolean;
}

/** strtol(s, &end, 10). */
export function strtol10(s: string): StrtolResult {
  let i = 0;
  while (isCSpace(s[i])) i++;
  let neg = false;
  if (s[i] === '+' || s[i] === '-') {
    neg = s[i] === '-';
    i++;
  }
  const digitsStart = i;
  let v = 0n;
  while (isDigit(s[i])) {
    v = v * 10n + BigInt(s.charCodeAt(i) - 48);
    i++;
  }
  if (i === digitsStart) return { value: 0n, end: 0, overflow: false };
  let value = neg ? -v : v;
  let overflow = false;
  if (value > LONG_MAX) {
    value = LONG_MAX;
    overflow = true;
  } else if (value < LONG_MIN) {
    value = LONG_MIN;
    overflow = true;
  }
  return { value, end: i, overflow };
}

/**
 * ipvsadm's string_to_number(): the whole string must be a base-10 long within [min, max];
 * returns -1 otherwise (min is never negative in its callers).
 */
export function stringToNumber(s: string, min: number, max: number): number {
  const r = strtol10(s);
  if (r.end === s.length && r.end !== 0 && !r.overflow) {
    if (BigInt(min) <= r.value && r.value <= BigInt(max)) return Number(r.value);
  }
  return -1;
}

/** atoi(): leading blanks, optional sign, digits; stops at the first non-digit; 0 when none. */
export function atoi(s: string): number {
  const r = strtol10(s);
  // atoi truncates the long to int; the values we care about are small.
  return Number(BigInt.asIntN(32, r.value));
}

/**
 * strtoul(s + pos, &end, 0) for a string known to start with a digit at pos:
 * 0x/0X hex, leading 0 octal, otherwise decimal. Returns null past ULONG_MAX.
 */
export function strtoulBase0At(s: string, pos: number): { value: bigint; end: number } | null {
  let i = pos;
  let base = 10n;
  if (s[i] === '0') {
    if ((s[i + 1] === 'x' || s[i + 1] === 'X') && hexValue(s[i + 2]) >= 0) {
      base = 16n;
      i += 2;
    } else {
      base = 8n;
    }
  }
  let v = 0n;
  const start = i;
  for (;;) {
    const ch = s[i];
    let d: number;
    if (base === 16n) d = hexValue(ch);
    else if (isDigit(ch)) d = s.charCodeAt(i) - 48;
    else d = -1;
    if (d < 0 || BigInt(d) >= base) break;
    v = v * base + BigInt(d);
    i++;
  }
  if (i === start && base !== 8n) return { value: 0n, end: pos };
  if (v > (1n << 64n) - 1n) return null;
  return { value: v, end: i };
}

export function hexValue(ch: string | undefined): number {
  if (ch === undefined) return -1;
  const c = ch.charCodeAt(0);
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}
