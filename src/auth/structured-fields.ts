// RFC 8941 Structured Field Values: the subset that RFC 9421's Signature-Input and Signature fields use
// (dictionaries whose members are inner lists or items, with parameters), parsed strictly by the algorithms of
// RFC 8941 §4.2, and the serialization of an inner list (§4.1.1) that the signature base needs for
// `@signature-params`. Stricter than the RFC in one way: a key repeated in a dictionary or in parameters is
// refused instead of "last one wins", because two readers taking different copies is how signatures get
// confused.

export type BareItem =
  | { type: 'integer'; value: number }
  | { type: 'decimal'; value: number }
  | { type: 'string'; value: string }
  | { type: 'token'; value: string }
  | { type: 'bytes'; value: Buffer }
  | { type: 'boolean'; value: boolean };

export type Parameters = ReadonlyArray<readonly [string, BareItem]>;

export interface Item {
  kind: 'item';
  value: BareItem;
  params: Parameters;
}

export interface InnerList {
  kind: 'innerList';
  items: Item[];
  params: Parameters;
}

export type Dictionary = Map<string, Item | InnerList>;

/** Thrown for malformed input; the message says where and what. */
export class StructuredFieldError extends Error {
  override name = 'StructuredFieldError';
}

// Character classes as code tables: this parser runs twice per signed request, and a regular expression per
// character made it most of the verification's cost.
const table = (chars: string): Uint8Array => {
  const t = new Uint8Array(128);
  for (const c of chars) t[c.charCodeAt(0)] = 1;
  return t;
};
const LOWER = 'abcdefghijklmnopqrstuvwxyz';
const UPPER = LOWER.toUpperCase();
const DIGITS = '0123456789';
const KEY_START = table(`${LOWER}*`);
const KEY_CHAR = table(`${LOWER}${DIGITS}_-.*`);
const TOKEN_START = table(`${LOWER}${UPPER}*`);
const TOKEN_CHAR = table(`!#$%&'*+-.^_\`|~${DIGITS}${LOWER}${UPPER}:/`);
const BASE64 = `${UPPER}${LOWER}${DIGITS}+/`;
const BASE64_CHAR = table(BASE64);
const isIn = (t: Uint8Array, code: number): boolean => code < 128 && t[code] === 1;

/** Why `body` (the text between the colons of a byte sequence) is refused, or undefined. */
function base64Problem(body: string): string | undefined {
  const padding = body.endsWith('==') ? 2 : body.endsWith('=') ? 1 : 0;
  const chars = body.length - padding;
  for (let i = 0; i < chars; i++) if (!isIn(BASE64_CHAR, body.charCodeAt(i))) return 'a byte sequence must be padded base64';
  if (body.length % 4 !== 0) return 'a byte sequence must be padded base64';
  // Canonical base64 only: the bits the padding leaves unused in the last character must be zero, or two
  // different texts would stand for the same bytes.
  if (padding > 0 && (BASE64.indexOf(body[chars - 1]!) & (padding === 2 ? 0x0f : 0x03)) !== 0) return 'a byte sequence must be canonical base64';
  return undefined;
}

/** True when the byte-sequence parser accepts `body`: padded, canonical base64 (so it round-trips exactly). */
export function isCanonicalBase64(body: string): boolean {
  return base64Problem(body) === undefined;
}

class Parser {
  pos = 0;
  constructor(readonly input: string) {}

  fail(what: string): never {
    throw new StructuredFieldError(`${what} at character ${this.pos + 1}`);
  }

  peek(): string | undefined {
    return this.input[this.pos];
  }

  skipSpaces(): void {
    while (this.input[this.pos] === ' ') this.pos++;
  }

  skipOws(): void {
    while (this.input[this.pos] === ' ' || this.input[this.pos] === '\t') this.pos++;
  }

  key(): string {
    const start = this.pos;
    if (!isIn(KEY_START, this.input.charCodeAt(this.pos))) this.fail('expected a key (lowercase letter or *)');
    this.pos++;
    while (isIn(KEY_CHAR, this.input.charCodeAt(this.pos))) this.pos++;
    return this.input.slice(start, this.pos);
  }

  parameters(): Parameters {
    const params: [string, BareItem][] = [];
    while (this.peek() === ';') {
      this.pos++;
      this.skipSpaces();
      const key = this.key();
      let value: BareItem = { type: 'boolean', value: true };
      if (this.peek() === '=') {
        this.pos++;
        value = this.bareItem();
      }
      if (params.some(([k]) => k === key)) this.fail(`parameter "${key}" repeated`);
      params.push([key, value]);
    }
    return params;
  }

  bareItem(): BareItem {
    const c = this.peek();
    if (c === undefined) this.fail('expected a value, found the end');
    if (c === '-' || (c >= '0' && c <= '9')) return this.number();
    if (c === '"') return this.string();
    if (isIn(TOKEN_START, c.charCodeAt(0))) return this.token();
    if (c === ':') return this.bytes();
    if (c === '?') return this.boolean();
    return this.fail(`unexpected "${c}"`);
  }

  digits(): number {
    const start = this.pos;
    while (this.pos < this.input.length && this.input.charCodeAt(this.pos) >= 48 && this.input.charCodeAt(this.pos) <= 57) this.pos++;
    return this.pos - start;
  }

  number(): BareItem {
    const start = this.pos;
    if (this.input[this.pos] === '-') this.pos++;
    const whole = this.digits();
    if (whole === 0) this.fail('expected a digit');
    if (this.input[this.pos] !== '.') {
      if (whole > 15) this.fail('integer longer than 15 digits');
      return { type: 'integer', value: Number(this.input.slice(start, this.pos)) };
    }
    this.pos++;
    const fraction = this.digits();
    if (fraction === 0) this.fail('a decimal needs digits after "."');
    if (whole > 12 || fraction > 3) this.fail('decimal with more than 12 integer or 3 fractional digits');
    return { type: 'decimal', value: Number(this.input.slice(start, this.pos)) };
  }

  string(): BareItem {
    this.pos++;
    let out = '';
    let from = this.pos;
    for (;;) {
      const code = this.input.charCodeAt(this.pos);
      if (Number.isNaN(code)) this.fail('unterminated string');
      if (code === 0x22) {
        out += this.input.slice(from, this.pos++);
        return { type: 'string', value: out };
      }
      if (code === 0x5c) {
        const next = this.input[this.pos + 1];
        if (next !== '"' && next !== '\\') this.fail('a string may escape only " and \\');
        out += this.input.slice(from, this.pos) + next;
        this.pos += 2;
        from = this.pos;
        continue;
      }
      if (code < 0x20 || code > 0x7e) this.fail('a string holds printable ASCII only');
      this.pos++;
    }
  }

  token(): BareItem {
    const start = this.pos++;
    while (isIn(TOKEN_CHAR, this.input.charCodeAt(this.pos))) this.pos++;
    return { type: 'token', value: this.input.slice(start, this.pos) };
  }

  bytes(): BareItem {
    const end = this.input.indexOf(':', this.pos + 1);
    if (end < 0) this.fail('unterminated byte sequence');
    const body = this.input.slice(this.pos + 1, end);
    const problem = base64Problem(body);
    if (problem !== undefined) this.fail(problem);
    const value = Buffer.from(body, 'base64');
    this.pos = end + 1;
    return { type: 'bytes', value };
  }

  boolean(): BareItem {
    const v = this.input[this.pos + 1];
    if (v !== '0' && v !== '1') this.fail('a boolean is ?0 or ?1');
    this.pos += 2;
    return { type: 'boolean', value: v === '1' };
  }

  innerList(): InnerList {
    this.pos++;
    const items: Item[] = [];
    for (;;) {
      this.skipSpaces();
      if (this.peek() === ')') {
        this.pos++;
        return { kind: 'innerList', items, params: this.parameters() };
      }
      items.push({ kind: 'item', value: this.bareItem(), params: this.parameters() });
      const c = this.peek();
      if (c !== ' ' && c !== ')') this.fail(c === undefined ? 'unterminated inner list' : `expected a space or ")" in an inner list, found "${c}"`);
    }
  }

  member(): Item | InnerList {
    if (this.peek() === '(') return this.innerList();
    return { kind: 'item', value: this.bareItem(), params: this.parameters() };
  }
}

/**
 * Parses a dictionary field value (several field lines already joined with ", "). Throws
 * StructuredFieldError on anything RFC 8941 refuses and on repeated keys.
 */
export function parseDictionary(text: string): Dictionary {
  let start = 0;
  let end = text.length;
  while (text[start] === ' ') start++;
  while (end > start && text[end - 1] === ' ') end--;
  const p = new Parser(start === 0 && end === text.length ? text : text.slice(start, end));
  const dict: Dictionary = new Map();
  if (p.input.length === 0) return dict;
  for (;;) {
    const key = p.key();
    let member: Item | InnerList;
    if (p.peek() === '=') {
      p.pos++;
      member = p.member();
    } else {
      member = { kind: 'item', value: { type: 'boolean', value: true }, params: p.parameters() };
    }
    if (dict.has(key)) p.fail(`dictionary key "${key}" repeated`);
    dict.set(key, member);
    p.skipOws();
    if (p.pos >= p.input.length) return dict;
    if (p.peek() !== ',') p.fail(`expected "," between members, found "${p.peek()}"`);
    p.pos++;
    p.skipOws();
    if (p.pos >= p.input.length) p.fail('trailing comma');
  }
}

function serializeBareItem(v: BareItem): string {
  switch (v.type) {
    case 'integer':
      return String(v.value);
    case 'decimal': {
      const s = (Math.round(v.value * 1000) / 1000).toString();
      return s.includes('.') ? s : `${s}.0`;
    }
    case 'string':
      return `"${v.value.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
    case 'token':
      return v.value;
    case 'bytes':
      return `:${v.value.toString('base64')}:`;
    case 'boolean':
      return v.value ? '?1' : '?0';
  }
}

function serializeParameters(params: Parameters): string {
  let out = '';
  for (const [key, value] of params) {
    out += `;${key}`;
    if (!(value.type === 'boolean' && value.value)) out += `=${serializeBareItem(value)}`;
  }
  return out;
}

/** RFC 8941 §4.1.1.1: `("a" "b");p=1`. */
export function serializeInnerList(list: InnerList): string {
  return `(${list.items.map((i) => serializeBareItem(i.value) + serializeParameters(i.params)).join(' ')})${serializeParameters(list.params)}`;
}
