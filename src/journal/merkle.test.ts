import { createHash, randomBytes } from 'node:crypto';
import {
  appendToFrontier,
  CompactRange,
  consistencyProof,
  frontierRoot,
  inclusionProof,
  rootOf,
  verifyConsistency,
  verifyInclusion,
} from './merkle';

const h = (hex: string): Buffer => Buffer.from(hex, 'hex');
const leafOf = (dataHex: string): Buffer => createHash('sha256').update(Buffer.from([0])).update(h(dataHex)).digest();

// RFC 6962 known answers (as used by transparency-dev/merkle and Certificate Transparency):
// leaf data, the roots of the trees of size 1..8 over it, and some proofs.
const KAT_DATA = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'];
const KAT_LEAVES = KAT_DATA.map(leafOf);
const KAT_ROOTS = [
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
];
const KAT_INCLUSION: { index: number; size: number; proof: string[] }[] = [
  {
    index: 0,
    size: 8,
    proof: [
      '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
    ],
  },
  {
    index: 5,
    size: 8,
    proof: [
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
      'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  },
  { index: 2, size: 3, proof: ['fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125'] },
  {
    index: 1,
    size: 5,
    proof: [
      '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
    ],
  },
];
const KAT_CONSISTENCY: { m: number; n: number; proof: string[] }[] = [
  {
    m: 1,
    n: 8,
    proof: [
      '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
    ],
  },
  {
    m: 6,
    n: 8,
    proof: [
      '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
      'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  },
  {
    m: 2,
    n: 5,
    proof: [
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
    ],
  },
  {
    m: 6,
    n: 7,
    proof: [
      '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
      'b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  },
];

const EMPTY = h('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
const SOME_HASH = h('abacaba000000000000000000000000000000000000000000060061e00123456');

function flipBit(b: Buffer, bit: number): Buffer {
  const c = Buffer.from(b);
  c[bit >> 3] = (c[bit >> 3] as number) ^ (1 << (bit & 7));
  return c;
}

/** Every way of damaging an inclusion proof; each must be refused. */
function inclusionProbes(index: number, size: number, proof: Buffer[], root: Buffer, leaf: Buffer) {
  const probes: { desc: string; index: number; size: number; proof: Buffer[]; root: Buffer; leaf: Buffer }[] = [];
  const add = (desc: string, p: Partial<{ index: number; size: number; proof: Buffer[]; root: Buffer; leaf: Buffer }>) =>
    probes.push({ desc, index, size, proof, root, leaf, ...p });
  add('index - 1', { index: index - 1 });
  add('index + 1', { index: index + 1 });
  add('index ^ 2', { index: index ^ 2 });
  add('size * 2', { size: size * 2 });
  add('size / 2', { size: Math.floor(size / 2) });
  add('wrong leaf', { leaf: randomBytes(32) });
  add('short leaf', { leaf: Buffer.from('WrongLeaf') });
  add('empty-tree root', { root: EMPTY });
  add('random root', { root: SOME_HASH });
  add('trailing empty element', { proof: [...proof, Buffer.alloc(0)] });
  add('trailing random element', { proof: [...proof, randomBytes(32)] });
  add('trailing root', { proof: [...proof, root] });
  add('preceding empty element', { proof: [Buffer.alloc(0), ...proof] });
  add('preceding root', { proof: [root, ...proof] });
  add('preceding random element', { proof: [randomBytes(32), ...proof] });
  for (let i = 0; i < proof.length; i++) {
    for (const bit of [0, 3, 255]) {
      add(`bit ${bit} of proof[${i}] flipped`, { proof: proof.map((p, j) => (j === i ? flipBit(p, bit) : p)) });
    }
    add(`proof[${i}] dropped`, { proof: proof.filter((_, j) => j !== i) });
    add(`random element inserted before proof[${i}]`, { proof: [...proof.slice(0, i), SOME_HASH, ...proof.slice(i)] });
  }
  for (let i = 0; i + 1 < proof.length; i++) {
    const swapped = proof.slice();
    [swapped[i], swapped[i + 1]] = [swapped[i + 1] as Buffer, swapped[i] as Buffer];
    add(`proof[${i}] and proof[${i + 1}] swapped`, { proof: swapped });
  }
  return probes;
}

/** Every way of damaging a consistency proof (0 < m < n); each must be refused. */
function consistencyProbes(m: number, n: number, rootM: Buffer, rootN: Buffer, proof: Buffer[]) {
  const probes: { desc: string; m: number; n: number; rootM: Buffer; rootN: Buffer; proof: Buffer[] }[] = [];
  const add = (desc: string, p: Partial<{ m: number; n: number; rootM: Buffer; rootN: Buffer; proof: Buffer[] }>) =>
    probes.push({ desc, m, n, rootM, rootN, proof, ...p });
  add('m - 1', { m: m - 1 });
  add('m + 1', { m: m + 1 });
  add('m ^ 2', { m: m ^ 2 });
  add('n * 2', { n: n * 2 });
  add('n / 2', { n: Math.floor(n / 2) });
  add('m and n swapped (m > n)', { m: n, n: m });
  add('m = 0', { m: 0 });
  add('wrong old root', { rootM: SOME_HASH });
  add('wrong new root', { rootN: SOME_HASH });
  add('roots swapped', { rootM: rootN, rootN: rootM });
  add('empty proof', { proof: [] });
  add('trailing empty element', { proof: [...proof, Buffer.alloc(0)] });
  add('trailing old root', { proof: [...proof, rootM] });
  add('trailing new root', { proof: [...proof, rootN] });
  add('trailing random element', { proof: [...proof, randomBytes(32)] });
  add('preceding empty element', { proof: [Buffer.alloc(0), ...proof] });
  add('preceding old root', { proof: [rootM, ...proof] });
  add('preceding new root', { proof: [rootN, ...proof] });
  add('preceding proof[0]', { proof: [proof[0] as Buffer, ...proof] });
  for (let i = 0; i < proof.length; i++) {
    for (const bit of [0, 4, 255]) {
      add(`bit ${bit} of proof[${i}] flipped`, { proof: proof.map((p, j) => (j === i ? flipBit(p, bit) : p)) });
    }
    add(`proof[${i}] dropped`, { proof: proof.filter((_, j) => j !== i) });
    add(`random element inserted before proof[${i}]`, { proof: [...proof.slice(0, i), SOME_HASH, ...proof.slice(i)] });
  }
  for (let i = 0; i + 1 < proof.length; i++) {
    const swapped = proof.slice();
    [swapped[i], swapped[i + 1]] = [swapped[i + 1] as Buffer, swapped[i] as Buffer];
    add(`proof[${i}] and proof[${i + 1}] swapped`, { proof: swapped });
  }
  return probes;
}

const RANDOM_LEAVES = Array.from({ length: 300 }, () => randomBytes(32));

describe('Merkle tree roots', () => {
  it('matches the RFC 6962 known-answer roots for trees of size 1 to 8', () => {
    for (let n = 1; n <= 8; n++) expect(rootOf(KAT_LEAVES, n).toString('hex')).toBe(KAT_ROOTS[n - 1]);
  });

  it('gives SHA-256 of the empty string for the empty tree', () => {
    expect(rootOf([]).equals(EMPTY)).toBe(true);
    expect(frontierRoot([]).equals(EMPTY)).toBe(true);
    expect(new CompactRange().root().equals(EMPTY)).toBe(true);
  });

  it('does not hash leaves again: a one-leaf tree has the leaf as its root', () => {
    expect(rootOf([KAT_LEAVES[3] as Buffer]).equals(KAT_LEAVES[3] as Buffer)).toBe(true);
  });

  it('computes from the frontier the same root as the full tree, for every size 0..300', () => {
    let frontier: Buffer[] = [];
    const range = new CompactRange();
    for (let n = 0; n <= 300; n++) {
      const expected = rootOf(RANDOM_LEAVES, n);
      expect(frontierRoot(frontier).equals(expected)).toBe(true);
      expect(range.root().equals(expected)).toBe(true);
      // One subtree root per set bit of n: the frontier stays logarithmic.
      expect(frontier).toHaveLength(n.toString(2).split('').filter((b) => b === '1').length);
      if (n < 300) {
        frontier = appendToFrontier(frontier, n, RANDOM_LEAVES[n] as Buffer);
        range.append(RANDOM_LEAVES[n] as Buffer);
      }
    }
  });

  it('leaves the input frontier untouched when appending', () => {
    const f1 = appendToFrontier([], 0, KAT_LEAVES[0] as Buffer);
    const copy = f1.slice();
    appendToFrontier(f1, 1, KAT_LEAVES[1] as Buffer);
    expect(f1).toEqual(copy);
  });

  it('resumes a compact range from a saved frontier', () => {
    const a = new CompactRange();
    for (let i = 0; i < 77; i++) a.append(RANDOM_LEAVES[i] as Buffer);
    const b = new CompactRange(a.size, a.frontier);
    for (let i = 77; i < 100; i++) b.append(RANDOM_LEAVES[i] as Buffer);
    expect(b.root().equals(rootOf(RANDOM_LEAVES, 100))).toBe(true);
    expect(() => new CompactRange(5, [RANDOM_LEAVES[0] as Buffer])).toThrow(/size 5 has 2 subtree roots/);
  });
});

describe('inclusion proofs', () => {
  it.each(KAT_INCLUSION)('generates and verifies the known proof for leaf $index in a tree of size $size', ({ index, size, proof }) => {
    const got = inclusionProof(KAT_LEAVES, index, size);
    expect(got.map((b) => b.toString('hex'))).toEqual(proof);
    expect(verifyInclusion(KAT_LEAVES[index] as Buffer, index, size, got, h(KAT_ROOTS[size - 1] as string))).toBe(true);
  });

  it('verifies an empty proof for the only leaf of a one-leaf tree, and nothing else', () => {
    const leaf = KAT_LEAVES[0] as Buffer;
    expect(verifyInclusion(leaf, 0, 1, [], leaf)).toBe(true);
    expect(verifyInclusion(leaf, 0, 1, [], Buffer.alloc(0))).toBe(false);
    expect(verifyInclusion(Buffer.alloc(0), 0, 1, [], leaf)).toBe(false);
    expect(verifyInclusion(leaf, 0, 0, [], leaf)).toBe(false);
    expect(verifyInclusion(leaf, 1, 1, [], leaf)).toBe(false);
  });

  it('verifies every valid proof and refuses every corruption of it, for all trees up to 40 leaves', () => {
    const wrong: string[] = [];
    let checked = 0;
    for (let size = 1; size <= 40; size++) {
      const root = rootOf(RANDOM_LEAVES, size);
      for (let index = 0; index < size; index++) {
        const leaf = RANDOM_LEAVES[index] as Buffer;
        const proof = inclusionProof(RANDOM_LEAVES, index, size);
        if (!verifyInclusion(leaf, index, size, proof, root)) wrong.push(`valid proof (${index}, ${size}) refused`);
        for (const p of inclusionProbes(index, size, proof, root, leaf)) {
          checked++;
          if (verifyInclusion(p.leaf, p.index, p.size, p.proof, p.root)) wrong.push(`(${index}, ${size}) accepted with ${p.desc}`);
        }
      }
    }
    expect(wrong).toEqual([]);
    expect(checked).toBeGreaterThan(10_000);
  });

  it('verifies proofs in a larger tree at its edges', () => {
    const size = 300;
    const root = rootOf(RANDOM_LEAVES, size);
    for (const index of [0, 1, 127, 128, 255, 256, 298, 299]) {
      const proof = inclusionProof(RANDOM_LEAVES, index, size);
      expect(verifyInclusion(RANDOM_LEAVES[index] as Buffer, index, size, proof, root)).toBe(true);
      for (const p of inclusionProbes(index, size, proof, root, RANDOM_LEAVES[index] as Buffer)) {
        expect([p.desc, verifyInclusion(p.leaf, p.index, p.size, p.proof, p.root)]).toEqual([p.desc, false]);
      }
    }
  });

  it('refuses to build a proof for a leaf outside the tree', () => {
    expect(() => inclusionProof(KAT_LEAVES, 3, 3)).toThrow(/outside a tree of size 3/);
    expect(() => inclusionProof(KAT_LEAVES, 0, 9)).toThrow(/exceeds the 8 leaves/);
  });
});

describe('consistency proofs', () => {
  it.each(KAT_CONSISTENCY)('generates and verifies the known proof from size $m to size $n', ({ m, n, proof }) => {
    const got = consistencyProof(KAT_LEAVES, m, n);
    expect(got.map((b) => b.toString('hex'))).toEqual(proof);
    expect(verifyConsistency(m, n, h(KAT_ROOTS[m - 1] as string), h(KAT_ROOTS[n - 1] as string), got)).toBe(true);
  });

  it('verifies every valid proof and refuses every corruption of it, for all 0 < m < n <= 40', () => {
    const wrong: string[] = [];
    let checked = 0;
    for (let n = 2; n <= 40; n++) {
      const rootN = rootOf(RANDOM_LEAVES, n);
      for (let m = 1; m < n; m++) {
        const rootM = rootOf(RANDOM_LEAVES, m);
        const proof = consistencyProof(RANDOM_LEAVES, m, n);
        if (!verifyConsistency(m, n, rootM, rootN, proof)) wrong.push(`valid proof (${m}, ${n}) refused`);
        for (const p of consistencyProbes(m, n, rootM, rootN, proof)) {
          checked++;
          if (verifyConsistency(p.m, p.n, p.rootM, p.rootN, p.proof)) wrong.push(`(${m}, ${n}) accepted with ${p.desc}`);
        }
      }
    }
    expect(wrong).toEqual([]);
    expect(checked).toBeGreaterThan(10_000);
  });

  it('treats m == n as consistent only with an empty proof and equal roots', () => {
    const r = rootOf(RANDOM_LEAVES, 5);
    expect(consistencyProof(RANDOM_LEAVES, 5, 5)).toEqual([]);
    expect(verifyConsistency(5, 5, r, r, [])).toBe(true);
    expect(verifyConsistency(5, 5, r, SOME_HASH, [])).toBe(false);
    expect(verifyConsistency(5, 5, r, r, [r])).toBe(false);
  });

  it('refuses m > n whatever the proof', () => {
    const r5 = rootOf(RANDOM_LEAVES, 5);
    const r3 = rootOf(RANDOM_LEAVES, 3);
    expect(verifyConsistency(5, 3, r5, r3, consistencyProof(RANDOM_LEAVES, 3, 5))).toBe(false);
    expect(verifyConsistency(5, 3, r5, r3, [])).toBe(false);
    expect(() => consistencyProof(RANDOM_LEAVES, 5, 3)).toThrow(/larger than new size/);
  });

  it('follows RFC 9162 for m == 0: no proof exists from the empty tree, so none verifies', () => {
    // RFC 9162 section 2.1.4.2 is defined for 0 < first < second; callers decide the trivial
    // "empty tree precedes everything" case themselves (the export verifier does).
    expect(() => consistencyProof(RANDOM_LEAVES, 0, 5)).toThrow(/from the empty tree/);
    expect(verifyConsistency(0, 5, EMPTY, rootOf(RANDOM_LEAVES, 5), [])).toBe(false);
    expect(verifyConsistency(0, 0, EMPTY, EMPTY, [])).toBe(false);
  });

  it('verifies proofs between larger trees', () => {
    for (const [m, n] of [
      [1, 300],
      [128, 256],
      [129, 300],
      [255, 257],
      [299, 300],
    ] as const) {
      const rootM = rootOf(RANDOM_LEAVES, m);
      const rootN = rootOf(RANDOM_LEAVES, n);
      const proof = consistencyProof(RANDOM_LEAVES, m, n);
      expect(verifyConsistency(m, n, rootM, rootN, proof)).toBe(true);
      for (const p of consistencyProbes(m, n, rootM, rootN, proof)) {
        expect([p.desc, verifyConsistency(p.m, p.n, p.rootM, p.rootN, p.proof)]).toEqual([p.desc, false]);
      }
    }
  });
});
