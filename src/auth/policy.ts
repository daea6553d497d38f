// Who may do what. A customer acts only for itself; a service acts for any user; an admin
// also manages events. Ownership of a hold is checked by the actor that holds it.
import { ForbiddenError } from './errors.js';
import type { Principal, Role } from './token.js';

export function require_role(principal: Principal, allowed: readonly Role[], what: string): void {
  if (!allowed.includes(principal.role)) {
    throw new ForbiddenError(`${what} needs role ${allowed.join(' or ')}; this token has role ${principal.role}`);
  }
}

/** A customer may name only its own user_id. */
export function require_self(principal: Principal, user_id: string): void {
  if (principal.role === 'customer' && principal.user_id !== user_id) {
    throw new ForbiddenError('a customer token may act only for its own user_id');
  }
}

/** The user a request acts as, for ownership checks: null when the caller may act for anyone. */
export function acting_user(principal: Principal): string | null {
  return principal.role === 'customer' ? principal.user_id : null;
}
