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

const KEY_START = /[a-z*]/;
const KEY_CHAR = /[a-z0-9_\-.*]/;
const TOKEN_START = /[A-Za-z*]/;
const TOKEN_CHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z:/]/;
const BASE64_BODY = /^[A-Za-z0-9+/]*={0,2}$/;

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
    const first = this.peek();
    if (first === undefined || !KEY_START.test(first)) this.fail('expected a key (lowercase letter or *)');
    this.pos++;
    while (this.pos < this.input.length && KEY_CHAR.test(this.input[this.pos]!)) this.pos++;
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
    if (TOKEN_START.test(c)) return this.token();
    if (c === ':') return this.bytes();
    if (c === '?') return this.boolean();
    return this.fail(`unexpected "${c}"`);
  }

  number(): BareItem {
    const m = /^(-?)(\d+)(?:\.(\d+))?/.exec(this.input.slice(this.pos, this.pos + 20));
    if (m === null) this.fail('expected a digit');
    const [text, , whole, fraction] = m;
    if (fraction === undefined) {
      if (whole!.length > 15) this.fail('integer longer than 15 digits');
      this.pos += text.length;
      return { type: 'integer', value: Number(text) };
    }
    if (whole!.length > 12 || fraction.length > 3) this.fail('decimal with more than 12 integer or 3 fractional digits');
    this.pos += text.length;
    return { type: 'decimal', value: Number(text) };
  }

  string(): BareItem {
    this.pos++;
    let out = '';
    for (;;) {
      const c = this.input[this.pos++];
      if (c === undefined) this.fail('unterminated string');
      if (c === '"') return { type: 'string', value: out };
      if (c === '\\') {
        const next = this.input[this.pos++];
        if (next !== '"' && next !== '\\') this.fail('a string may escape only " and \\');
        out += next;
        continue;
      }
      const code = c.charCodeAt(0);
      if (code < 0x20 || code > 0x7e) this.fail('a string holds printable ASCII only');
      out += c;
    }
  }

  token(): BareItem {
    const start = this.pos++;
    while (this.pos < this.input.length && TOKEN_CHAR.test(this.input[this.pos]!)) this.pos++;
    return { type: 'token', value: this.input.slice(start, this.pos) };
  }

  bytes(): BareItem {
    const end = this.input.indexOf(':', this.pos + 1);
    if (end < 0) this.fail('unterminated byte sequence');
    const body = this.input.slice(this.pos + 1, end);
    if (!BASE64_BODY.test(body) || body.length % 4 !== 0) this.fail('a byte sequence must be padded base64');
    const value = Buffer.from(body, 'base64');
    // Non-canonical base64 (stray bits in the last character) decodes too; refuse what does not round-trip.
    if (value.toString('base64') !== body) this.fail('a byte sequence must be canonical base64');
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
  const p = new Parser(text.replace(/^ +| +$/g, ''));
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
