import { formatAmount, parseAmount, toDecimal, toMinor } from './amount';
import { CURRENCY_EXPONENTS, currencyExponent } from './currencies';

const minor = (text: unknown, currency = 'EUR') => {
  const r = parseAmount(text, currency);
  return r.ok ? r.minor : r.message;
};

describe('amounts', () => {
  it('are held as integer minor units of the currency', () => {
    expect(minor('12000')).toBe(1_200_000n);
    expect(minor('12000.5')).toBe(1_200_050n);
    expect(minor('0.01')).toBe(1n);
    expect(minor('0')).toBe(0n);
    expect(minor('1500', 'JPY')).toBe(1500n);
    expect(minor('1.234', 'BHD')).toBe(1234n);
    expect(minor('1.2345', 'CLF')).toBe(12345n);
  });

  it('add up exactly where floats would not', () => {
    expect(toMinor('0.1', 'EUR') + toMinor('0.2', 'EUR')).toBe(toMinor('0.3', 'EUR'));
    const big = '123456789012345678901.23';
    expect(toDecimal(toMinor(big, 'EUR'), 'EUR')).toBe(big);
    expect(toDecimal(toMinor('9007199254740993', 'JPY'), 'JPY')).toBe('9007199254740993');
  });

  it('refuse more decimals than the currency has', () => {
    expect(minor('1.234')).toBe('amount "1.234" has 3 decimals; EUR allows 2 decimals');
    expect(minor('100.5', 'JPY')).toBe('amount "100.5" has 1 decimals; JPY allows no decimals');
    expect(minor('1.2345', 'BHD')).toMatch(/BHD allows 3 decimals/);
  });

  it('refuse separators, signs, exponents and non-strings with a specific message', () => {
    expect(minor('12,000')).toMatch(/has digit separators/);
    expect(minor('12 000')).toMatch(/has digit separators/);
    expect(minor('-5')).toMatch(/is negative/);
    expect(minor('1e3')).toMatch(/is not a decimal string/);
    expect(minor('01')).toMatch(/is not a decimal string/);
    expect(minor('.5')).toMatch(/is not a decimal string/);
    expect(minor('5.')).toMatch(/is not a decimal string/);
    expect(minor(12000)).toMatch(/must be a quoted decimal string/);
    expect(minor(undefined)).toMatch(/must be a quoted decimal string/);
    expect(minor('1'.repeat(30))).toMatch(/too large/);
    expect(minor('5', 'XXX')).toMatch(/unknown currency/);
  });

  it('format for people with grouping and the currency digits', () => {
    expect(formatAmount(1_200_000n, 'EUR')).toBe('12,000.00 EUR');
    expect(formatAmount(5n, 'EUR')).toBe('0.05 EUR');
    expect(formatAmount(1_000_000n, 'JPY')).toBe('1,000,000 JPY');
    expect(formatAmount(1234n, 'BHD')).toBe('1.234 BHD');
    expect(formatAmount(-123_456n, 'USD')).toBe('-1,234.56 USD');
    expect(formatAmount(99_900n, 'USD')).toBe('999.00 USD');
  });

  it('know the ISO 4217 minor units of active currencies', () => {
    expect(currencyExponent('USD')).toBe(2);
    expect(currencyExponent('EUR')).toBe(2);
    expect(currencyExponent('JPY')).toBe(0);
    expect(currencyExponent('KRW')).toBe(0);
    expect(currencyExponent('BHD')).toBe(3);
    expect(currencyExponent('KWD')).toBe(3);
    expect(currencyExponent('CLF')).toBe(4);
    expect(currencyExponent('XAU')).toBeUndefined(); // no minor unit: not money an authority can hold
    expect(CURRENCY_EXPONENTS.size).toBeGreaterThan(150);
    for (const code of CURRENCY_EXPONENTS.keys()) expect(code).toMatch(/^[A-Z]{3}$/);
  });
});
