// The built-in sandbox gateway (docs/contracts.md "Payments"), deciding by token the way
// processors' test modes do. It keeps a ledger by reference, so repeated calls are the same
// operation, and so tests can check that money moved exactly once. `outage` makes every call fail
// as a gateway outage would.
import { createHash } from 'node:crypto';
import { assert } from '../util/assert.js';
import { GatewayUnavailableError } from './errors.js';
import type { AuthorizeCall, AuthorizeResult, PaymentGateway, SettleCall } from './gateway.js';

export const sandbox_tokens = {
  tok_visa: 'approve',
  tok_mastercard: 'approve',
  tok_chargeDeclined: 'card declined',
  tok_insufficientFunds: 'insufficient funds',
  tok_gatewayTimeout: 'unavailable',
} as const;

/** Ledger entries kept (oldest forgotten first): the sandbox must not grow without bound. */
export const sandbox_ledger_entries_max = 1_000_000;

interface Entry { kind: 'authorization' | 'refund'; result: AuthorizeResult | null; amount_micros: number; captured: boolean; voided: boolean }

export class SandboxGateway implements PaymentGateway {
  /** When true every call throws GatewayUnavailableError (tests: an outage). */
  outage = false;
  private readonly ledger = new Map<string, Entry>();
  readonly calls = { authorize: 0, capture: 0, void: 0, refund: 0 };

  private check_up(what: string): void {
    if (this.outage) throw new GatewayUnavailableError(`payment gateway unavailable (${what}); retry later`);
  }

  private remember(reference: string, entry: Entry): void {
    if (this.ledger.size >= sandbox_ledger_entries_max) this.ledger.delete(this.ledger.keys().next().value!);
    this.ledger.set(reference, entry);
  }

  async authorize(call: AuthorizeCall): Promise<AuthorizeResult> {
    this.calls.authorize++;
    this.check_up('authorize');
    const earlier = this.ledger.get(call.reference);
    if (earlier?.result != null) return earlier.result;
    const rule = (sandbox_tokens as Record<string, string>)[call.token];
    if (rule === 'unavailable') throw new GatewayUnavailableError('payment gateway timed out; retry later');
    let result: AuthorizeResult;
    if (rule === 'approve') {
      // A stable reference derived from ours: the same payment always gets the same one.
      result = { approved: true, gateway_ref: `sbx_${createHash('sha256').update(call.reference).digest('hex').slice(0, 24)}` };
    } else {
      result = { approved: false, reason: rule ?? 'unknown card token (sandbox accepts tok_visa, tok_mastercard, tok_chargeDeclined, tok_insufficientFunds, tok_gatewayTimeout)' };
    }
    this.remember(call.reference, { kind: 'authorization', result, amount_micros: call.amount_micros, captured: false, voided: false });
    return result;
  }

  async capture(call: SettleCall): Promise<void> {
    this.calls.capture++;
    this.check_up('capture');
    const entry = this.ledger.get(call.reference);
    assert(entry === undefined || !entry.voided, 'a voided authorization is never captured');
    if (entry !== undefined) entry.captured = true;
  }

  async void(call: SettleCall): Promise<void> {
    this.calls.void++;
    this.check_up('void');
    const entry = this.ledger.get(call.reference);
    assert(entry === undefined || !entry.captured, 'a captured authorization is never voided');
    if (entry !== undefined) entry.voided = true;
    // Voiding an unknown reference voids whatever may come: a late authorize answers declined.
    else this.remember(call.reference, { kind: 'authorization', result: { approved: false, reason: 'voided' }, amount_micros: 0, captured: false, voided: true });
  }

  async refund(call: SettleCall): Promise<void> {
    this.calls.refund++;
    this.check_up('refund');
    if (this.ledger.has(call.reference)) return; // the same refund, retried
    this.remember(call.reference, { kind: 'refund', result: null, amount_micros: call.amount_micros, captured: false, voided: false });
  }

  /** Tests: money moved for a reference (captured authorizations, refunds). */
  entry(reference: string): Readonly<Entry> | undefined {
    return this.ledger.get(reference);
  }
}
