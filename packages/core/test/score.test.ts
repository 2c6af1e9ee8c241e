import { type Hex, keccak256, recoverTypedDataAddress, toHex } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { describe, expect, test } from 'vitest';
import { hashTokenIds } from '../src/receipt.ts';
import { hashScorePositions, scoreAttestation, scoreTypedData } from '../src/score.ts';

// anvil's public test key (never for real funds)
const operator = privateKeyToAccount('0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d');
const grid = '0x5FbDB2315678afecb367f032d93F642f64180aa3';
const owner = '0x976EA74026E726554dB657fA54763abd0C3a0aa9';

const positions = [
  {
    tokenId: 4,
    probability: 0.8999999761581421,
    rank: 0,
    top: [
      { tokenId: 4, probability: 0.8999999761581421 },
      { tokenId: 9, probability: 0.05 },
    ],
  },
  { tokenId: 5, probability: 1e-9, rank: 300, top: [{ tokenId: 2, probability: 0.7 }] },
];
const attestation = (extra: Partial<Parameters<typeof scoreAttestation>[0]> = {}) =>
  scoreAttestation({ ...argsOf(), ...extra });

describe('signed scores', () => {
  test('the positions hash covers every number and survives JSON exactly', () => {
    const h = hashScorePositions(positions);
    expect(hashScorePositions(JSON.parse(JSON.stringify(positions)))).toBe(h);
    const changed = [
      [{ ...positions[0]!, probability: 0.9 }, positions[1]!],
      [{ ...positions[0]!, rank: 1 }, positions[1]!],
      [{ ...positions[0]!, tokenId: 5 }, positions[1]!],
      [{ ...positions[0]!, top: positions[0]!.top.slice(0, 1) }, positions[1]!],
      [positions[0]!, { ...positions[1]!, top: [{ tokenId: 2, probability: 0.70000001 }] }],
      [positions[0]!],
      [positions[1]!, positions[0]!],
    ];
    for (const c of changed) expect(hashScorePositions(c)).not.toBe(h);
    // -0 travels as 0 in JSON: both hash alike.
    const zero = [{ tokenId: 1, probability: -0, rank: 0, top: [] }];
    expect(hashScorePositions(zero)).toBe(hashScorePositions(JSON.parse(JSON.stringify(zero))));
    expect(() => hashScorePositions([{ tokenId: -1, probability: 0, rank: 0, top: [] }])).toThrow(RangeError);
    expect(() => hashScorePositions([{ tokenId: 1, probability: Number.NaN, rank: 0, top: [] }])).toThrow(
      RangeError,
    );
  });

  test('the attestation binds the ids scored and recovers to the operator under the receipts domain', async () => {
    const a = attestation();
    expect(a.promptHash).toBe(hashTokenIds([1, 2, 3]));
    expect(a.outputHash).toBe(hashTokenIds([4, 5]));
    const signature = await operator.signTypedData(scoreTypedData(a, 31337, grid));
    expect(await recoverTypedDataAddress({ ...scoreTypedData(a, 31337, grid), signature })).toBe(
      operator.address,
    );
    // Any other job, scorer, ids, top-k, chain or grid recovers to someone else.
    const others: [Parameters<typeof scoreAttestation>[0] | undefined, number, Hex][] = [
      [{ ...argsOf(), auditedJobId: keccak256(toHex('another job')) }, 31337, grid],
      [{ ...argsOf(), scoreJobId: keccak256(toHex('another score')) }, 31337, grid],
      [{ ...argsOf(), worker: operator.address }, 31337, grid],
      [{ ...argsOf(), outputTokenIds: [4, 6] }, 31337, grid],
      [{ ...argsOf(), promptTokenIds: [1, 2] }, 31337, grid],
      [{ ...argsOf(), topK: 3 }, 31337, grid],
      [undefined, 1, grid],
      [undefined, 31337, '0x0000000000000000000000000000000000000001'],
    ];
    for (const [args, chainId, g] of others) {
      const other = args ? scoreAttestation(args) : a;
      const signer = await recoverTypedDataAddress({ ...scoreTypedData(other, chainId, g), signature });
      expect(signer).not.toBe(operator.address);
    }
  });
});

function argsOf(): Parameters<typeof scoreAttestation>[0] {
  return {
    scoreJobId: keccak256(toHex('score job')),
    auditedJobId: keccak256(toHex('audited job')),
    worker: owner,
    modelId: keccak256(toHex('model')),
    promptTokenIds: [1, 2, 3],
    outputTokenIds: [4, 5],
    topK: 2,
    positions,
  };
}
