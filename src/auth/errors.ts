/** Why a token was refused: the `reason` label of ticketing_auth_refusals_total. */
export const auth_refusal_reasons = [
  'missing', 'malformed', 'algorithm', 'key', 'signature', 'claims', 'expired', 'not_yet_valid', 'lifetime',
] as const;
export type AuthRefusalReason = (typeof auth_refusal_reasons)[number];

export class UnauthenticatedError extends Error {
  override readonly name = 'UnauthenticatedError';
  constructor(message: string, readonly reason: AuthRefusalReason = 'malformed') {
    super(message);
  }
}
export class ForbiddenError extends Error {
  override readonly name = 'ForbiddenError';
}
