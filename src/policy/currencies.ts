/**
 * ISO 4217 active currency codes and their minor-unit digits (the "exponent").
 * Embedded rather than taken from Intl because Intl's digits are display conventions
 * (e.g. it shows ISK and HUF differently across versions), while amounts here must be exact.
 * Codes without a minor unit (precious metals, XDR, test codes) are deliberately absent:
 * an authority cannot be written in them.
 */
const ZERO = 'BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF';
const THREE = 'BHD IQD JOD KWD LYD OMR TND';
const FOUR = 'CLF UYW';
const TWO =
  'AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN BWP BYN BZD ' +
  'CAD CDF CHE CHF CHW CNY COP COU CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS ' +
  'GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP LKR LRD LSL ' +
  'MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK ' +
  'PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB ' +
  'TJS TMT TOP TRY TTD TWD TZS UAH USD USN UYU UZS VED VES WST XCD XCG YER ZAR ZMW ZWG';

function table(): ReadonlyMap<string, number> {
  const map = new Map<string, number>();
  const add = (codes: string, digits: number) => {
    for (const code of codes.split(' ')) map.set(code, digits);
  };
  add(TWO, 2);
  add(ZERO, 0);
  add(THREE, 3);
  add(FOUR, 4);
  return map;
}

/** Code → number of minor-unit digits (USD 2, JPY 0, BHD 3, CLF 4). */
export const CURRENCY_EXPONENTS: ReadonlyMap<string, number> = table();

export const CURRENCY_CODES: readonly string[] = [...CURRENCY_EXPONENTS.keys()].sort();

export function currencyExponent(code: string): number | undefined {
  return CURRENCY_EXPONENTS.get(code);
}

export function isCurrency(code: unknown): code is string {
  return typeof code === 'string' && CURRENCY_EXPONENTS.has(code);
}
