import { canonicalize, CanonicalJsonError } from './jcs';

/** A double from its IEEE 754 bit pattern, the way RFC 8785 Appendix B lists them. */
function f64(hex: string): number {
  return Buffer.from(hex, 'hex').readDoubleBE(0);
}

describe('canonicalize (RFC 8785)', () => {
  it('orders the keys of the RFC 8785 section 3.2.3 example by UTF-16 code units, not code points', () => {
    const input = {
      '\u20ac': 'Euro Sign',
      '\r': 'Carriage Return',
      '\ufb33': 'Hebrew Letter Dalet With Dagesh',
      '1': 'One',
      '\ud83d\ude00': 'Emoji: Grinning Face',
      '\u0080': 'Control',
      '\u00f6': 'Latin Small Letter O With Diaeresis',
    };
    // Expected order: \r, 1, U+0080, ö, €, 😀, U+FB33. The emoji (surrogates D83D DE00) sorts
    // before U+FB33 although its code point is larger. (Compared as text: Object.keys would
    // put "1" first whatever the serialization said.)
    expect(canonicalize(input)).toBe(
      '{"\\r":"Carriage Return","1":"One","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis",' +
        '"\u20ac":"Euro Sign","\ud83d\ude00":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}',
    );
  });

  it('does not use locale collation for key order (uppercase sorts before lowercase)', () => {
    expect(canonicalize({ b: 1, a: 2, B: 3, A: 4, é: 5, e: 6 })).toBe('{"A":4,"B":3,"a":2,"b":1,"e":6,"é":5}');
  });

  it('sorts numeric-looking keys as strings, not numbers', () => {
    expect(canonicalize({ '10': 'x', '9': 'y', '1': 'z' })).toBe('{"1":"z","10":"x","9":"y"}');
  });

  it('produces the RFC 8785 section 3.2.2 example output byte for byte', () => {
    const input = String.raw`{
      "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
      "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
      "literals": [null, true, false]
    }`;
    const expected = String.raw`{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}`;
    expect(canonicalize(JSON.parse(input))).toBe(expected);
  });

  describe('numbers', () => {
    // RFC 8785 Appendix B: IEEE 754 bit pattern -> expected serialization.
    const appendixB: [string, string][] = [
      ['0000000000000000', '0'],
      ['8000000000000000', '0'],
      ['0000000000000001', '5e-324'],
      ['8000000000000001', '-5e-324'],
      ['7fefffffffffffff', '1.7976931348623157e+308'],
      ['ffefffffffffffff', '-1.7976931348623157e+308'],
      ['4340000000000000', '9007199254740992'],
      ['c340000000000000', '-9007199254740992'],
      ['4430000000000000', '295147905179352830000'],
      ['44b52d02c7e14af5', '9.999999999999997e+22'],
      ['44b52d02c7e14af6', '1e+23'],
      ['44b52d02c7e14af7', '1.0000000000000001e+23'],
      ['444b1ae4d6e2ef4e', '999999999999999700000'],
      ['444b1ae4d6e2ef4f', '999999999999999900000'],
      ['444b1ae4d6e2ef50', '1e+21'],
      ['3eb0c6f7a0b5ed8c', '9.999999999999997e-7'],
      ['3eb0c6f7a0b5ed8d', '0.000001'],
      ['41b3de4355555553', '333333333.3333332'],
      ['41b3de4355555554', '333333333.33333325'],
      ['41b3de4355555555', '333333333.3333333'],
      ['41b3de4355555556', '333333333.3333334'],
      ['41b3de4355555557', '333333333.33333343'],
      ['becbf647612f3696', '-0.0000033333333333333333'],
      ['43143ff3c1cb0959', '1424953923781206.2'],
    ];
    it.each(appendixB)('serializes the double with bits %s as %s (Appendix B)', (bits, expected) => {
      expect(canonicalize(f64(bits))).toBe(expected);
    });

    it.each([
      [1e21, '1e+21'],
      [1e20, '100000000000000000000'],
      [0.000001, '0.000001'],
      [1e-7, '1e-7'],
      [-0, '0'],
      [2 ** 53 - 1, '9007199254740991'],
      [4.5, '4.5'],
      [0.002, '0.002'],
      [5e-324, '5e-324'],
      [1.7976931348623157e308, '1.7976931348623157e+308'],
      [333333333.3333333, '333333333.3333333'],
      [1e30, '1e+30'],
      [-1.5, '-1.5'],
    ])('serializes %p as %s', (n, expected) => {
      expect(canonicalize(n)).toBe(expected);
      expect(canonicalize([n])).toBe(`[${expected}]`);
    });

    it.each([NaN, Infinity, -Infinity])('refuses %p with an error naming the problem', (n) => {
      expect(() => canonicalize(n)).toThrow(CanonicalJsonError);
      expect(() => canonicalize({ a: { b: [1, n] } })).toThrow(/value at a\.b\[1\].*not a finite number/);
    });
  });

  describe('strings', () => {
    it('escapes control characters as lowercase \\u00xx except the five with short forms', () => {
      expect(canonicalize('\u0000\u0001\u000f\u001f')).toBe('"\\u0000\\u0001\\u000f\\u001f"');
      expect(canonicalize('\b\f\n\r\t')).toBe('"\\b\\f\\n\\r\\t"');
    });

    it('escapes only the quote and the backslash among printable ASCII', () => {
      expect(canonicalize('a"b\\c/d\u007f')).toBe('"a\\"b\\\\c/d\u007f"');
    });

    it('leaves U+2028, U+2029 and non-ASCII text unescaped', () => {
      expect(canonicalize('\u2028\u2029é€😀')).toBe('"\u2028\u2029é€😀"');
    });

    it('writes a lone surrogate as a \\udxxx escape rather than invalid UTF-16', () => {
      expect(canonicalize('\ud800')).toBe('"\\ud800"');
      expect(canonicalize('x\udfffy')).toBe('"x\\udfffy"');
    });

    it('escapes object keys the same way as string values', () => {
      expect(canonicalize({ 'a"\n': 1 })).toBe('{"a\\"\\n":1}');
    });
  });

  describe('structure', () => {
    it('writes literals, empty containers and nesting without whitespace', () => {
      expect(canonicalize(null)).toBe('null');
      expect(canonicalize(true)).toBe('true');
      expect(canonicalize(false)).toBe('false');
      expect(canonicalize({})).toBe('{}');
      expect(canonicalize([])).toBe('[]');
      expect(canonicalize({ b: [{ d: 1, c: 2 }, []], a: {} })).toBe('{"a":{},"b":[{"c":2,"d":1},[]]}');
    });

    it('treats a parsed "__proto__" key as an ordinary key', () => {
      expect(canonicalize(JSON.parse('{"b":2,"__proto__":{"a":1}}'))).toBe('{"__proto__":{"a":1},"b":2}');
    });

    it('keeps array order', () => {
      expect(canonicalize([3, 2, 1, 'b', 'a'])).toBe('[3,2,1,"b","a"]');
    });

    it('skips undefined object properties like JSON.stringify', () => {
      expect(canonicalize({ a: 1, b: undefined, c: null })).toBe('{"a":1,"c":null}');
      expect(canonicalize({ only: undefined })).toBe('{}');
    });

    it('sorts large objects correctly too (generic sort path)', () => {
      const keys = Array.from({ length: 40 }, (_, i) => `k${(i * 7919) % 40}`);
      const obj: Record<string, number> = {};
      for (const k of keys) obj[k] = 1;
      const out = Object.keys(JSON.parse(canonicalize(obj)) as object);
      expect(out).toEqual([...out].sort());
      expect(out).toHaveLength(40);
    });

    it('uses toJSON like JSON.stringify (a Date becomes its ISO string)', () => {
      expect(canonicalize({ at: new Date('2026-01-02T03:04:05.678Z') })).toBe('{"at":"2026-01-02T03:04:05.678Z"}');
    });

    it('is idempotent over its own output', () => {
      const v = { z: [1.5, { y: 'é', x: null }], a: -0, m: 'q"' };
      const once = canonicalize(v);
      expect(canonicalize(JSON.parse(once))).toBe(once);
    });
  });

  describe('values JSON cannot represent', () => {
    it('refuses undefined at the top level and inside arrays', () => {
      expect(() => canonicalize(undefined)).toThrow(/top-level value: undefined is not a JSON value/);
      expect(() => canonicalize([1, undefined])).toThrow(/value at \[1\]: undefined/);
    });

    it('refuses functions, even as object properties where JSON.stringify would drop them', () => {
      expect(() => canonicalize(() => 1)).toThrow(/functions are not JSON values/);
      expect(() => canonicalize({ a: { f: () => 1 } })).toThrow(/value at a\.f: functions/);
    });

    it('refuses bigint and symbols', () => {
      expect(() => canonicalize(10n)).toThrow(/bigint is not a JSON value/);
      expect(() => canonicalize({ s: Symbol('x') })).toThrow(/symbol is not a JSON value/);
    });

    it('refuses cyclic structures with a clear error instead of overflowing the stack', () => {
      const a: Record<string, unknown> = {};
      a.self = a;
      expect(() => canonicalize(a)).toThrow(/nesting deeper than 1000 levels/);
    });
  });
});
