/** Both bonding roles share one set of actions; `role` picks the registry facet. */
export type BondRole = 'worker' | 'validator';

export const bondRoles = ['worker', 'validator'] as const satisfies readonly BondRole[];

/** IBonding.Role as the contracts number it (events carry it). */
export const roleToUint = { worker: 0, validator: 1 } as const satisfies Record<BondRole, number>;

export function isBondRole(value: unknown): value is BondRole {
  return value === 'worker' || value === 'validator';
}
