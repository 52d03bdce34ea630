/**
 * A strict RFC 8259 JSON parser that keeps the source text of numbers.
 *
 * Why not JSON.parse: MTP ids are 64-bit snowflakes that clients may send as JSON numbers
 * (spec §7.2 R26), and a `str` field given an integer must become its exact decimal digits
 * (§2.2), which a float cannot carry. Rules this file enforces:
 *
 * 1. Only RFC 8259 JSON: no NaN/Infinity, no comments, no trailing commas, no BOM, whitespace is
 *    space/tab/CR/LF only, control characters inside strings are errors.
 * 2. Iterative (an explicit stack), so hostile nesting cannot overflow the call stack; depth is
 *    bounded by MAX_JSON_DEPTH anyway.
 * 3. Objects are null-prototype records; a repeated key keeps the last value (as Python's json).
 * 4. It never throws for bad input: it returns PARSE_FAILED.
 */

/** A JSON number with its source text. `isInt` = no fraction and no exponent (a Python int). */
export class JsonNumber {
  constructor(
    readonly src: string,
    readonly isInt: boolean,
  ) {}
  get value(): number {
    return Number(this.src);
  }
}

export type JsonValue = null | boolean | string | JsonNumber | JsonValue[] | JsonObject;
export interface JsonObject {
  [key: string]: JsonValue;
}

export const PARSE_FAILED: unique symbol = Symbol('PARSE_FAILED');
export type ParseFailed = typeof PARSE_FAILED;

/** Nesting deeper than this is treated as unparseable (Python's json would hit its recursion limit). */
export const MAX_JSON_DEPTH = 512;

export function isJsonObject(v: JsonValue | undefined): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof JsonNumber);
}

const NUMBER_RE = /-?(?:0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/y;

interface Frame {
  container: JsonValue[] | JsonObject;
  key: string | undefined;
}

export function parseJson(text: string): JsonValue | ParseFailed {
  const n = text.length;
  let i = 0;
  const stack: Frame[] = [];
  let result: JsonValue | undefined;
  let haveResult = false;

  const skipWs = (): void => {
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
      else break;
    }
  };

  const parseString = (): string | ParseFailed => {
    // text[i] === '"'
    i++;
    let out = '';
    let start = i;
    for (;;) {
      if (i >= n) return PARSE_FAILED;
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        out += text.slice(start, i);
        i++;
        return out;
      }
      if (c < 0x20) return PARSE_FAILED;
      if (c !== 0x5c) {
        i++;
        continue;
      }
      out += text.slice(start, i);
      i++;
      if (i >= n) return PARSE_FAILED;
      const e = text[i];
      switch (e) {
        case '"':
          out += '"';
          break;
        case '\\':
          out += '\\';
          break;
        case '/':
          out += '/';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          const hex = text.slice(i + 1, i + 5);
          if (!/^[0-9a-fA-F]{4}$/.test(hex)) return PARSE_FAILED;
          out += String.fromCharCode(parseInt(hex, 16));
          i += 4;
          break;
        }
        default:
          return PARSE_FAILED;
      }
      i++;
      start = i;
    }
  };

  /** Attaches a finished value to the current container (or makes it the result). */
  const emit = (v: JsonValue): void => {
    const top = stack[stack.length - 1];
    if (!top) {
      result = v;
      haveResult = true;
      return;
    }
    if (Array.isArray(top.container)) top.container.push(v);
    else top.container[top.key as string] = v;
  };

  // State machine over "expect a value" / "after a value" positions.
  let expectValue = true;
  for (;;) {
    skipWs();
    if (expectValue) {
      if (i >= n) return PARSE_FAILED;
      const c = text[i];
      if (c === '{' || c === '[') {
        if (stack.length >= MAX_JSON_DEPTH) return PARSE_FAILED;
        i++;
        const container: JsonValue[] | JsonObject = c === '[' ? [] : (Object.create(null) as JsonObject);
        stack.push({ container, key: undefined });
        skipWs();
        const close = c === '[' ? ']' : '}';
        if (text[i] === close) {
          i++;
          stack.pop();
          emit(container);
          expectValue = false;
          continue;
        }
        if (c === '{') {
          if (text[i] !== '"') return PARSE_FAILED;
          const k = parseString();
          if (k === PARSE_FAILED) return PARSE_FAILED;
          skipWs();
          if (text[i] !== ':') return PARSE_FAILED;
          i++;
          stack[stack.length - 1]!.key = k;
        }
        expectValue = true;
        continue;
      }
      let v: JsonValue;
      if (c === '"') {
        const s = parseString();
        if (s === PARSE_FAILED) return PARSE_FAILED;
        v = s;
      } else if (c === 't' && text.startsWith('true', i)) {
        v = true;
        i += 4;
      } else if (c === 'f' && text.startsWith('false', i)) {
        v = false;
        i += 5;
      } else if (c === 'n' && text.startsWith('null', i)) {
        v = null;
        i += 4;
      } else {
        NUMBER_RE.lastIndex = i;
        const m = NUMBER_RE.exec(text);
        if (!m) return PARSE_FAILED;
        v = new JsonNumber(m[0], m[1] === undefined && m[2] === undefined);
        i += m[0].length;
      }
      emit(v);
      expectValue = false;
      continue;
    }
    // After a value.
    const top = stack[stack.length - 1];
    if (!top) {
      if (i !== n || !haveResult) return PARSE_FAILED;
      return result as JsonValue;
    }
    const c = text[i];
    if (Array.isArray(top.container)) {
      if (c === ',') {
        i++;
        expectValue = true;
      } else if (c === ']') {
        i++;
        stack.pop();
        emit(top.container);
      } else return PARSE_FAILED;
    } else {
      if (c === ',') {
        i++;
        skipWs();
        if (text[i] !== '"') return PARSE_FAILED;
        const k = parseString();
        if (k === PARSE_FAILED) return PARSE_FAILED;
        skipWs();
        if (text[i] !== ':') return PARSE_FAILED;
        i++;
        top.key = k;
        expectValue = true;
      } else if (c === '}') {
        i++;
        stack.pop();
        emit(top.container);
      } else return PARSE_FAILED;
    }
  }
}
