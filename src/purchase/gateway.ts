// The payment gateway as the purchase flow sees it. Every call carries our id of the payment
// (or refund) as `reference`, and a gateway must treat a repeated reference as the same
// operation: that is what makes a retry after a lost answer safe (never charge twice).
//
// Card tokens are secrets: they are passed to authorize() and never stored or logged. What a
// refund needs later is the gateway's reference of the authorization, which is not a secret.

export interface AuthorizeCall { reference: string; amount_micros: number; currency: string; token: string }
export type AuthorizeResult = { approved: true; gateway_ref: string } | { approved: false; reason: string };
export interface SettleCall { reference: string; gateway_ref: string; amount_micros: number }

export interface PaymentGateway {
  /** Throws GatewayUnavailableError when the gateway cannot answer (retriable). */
  authorize(call: AuthorizeCall): Promise<AuthorizeResult>;
  capture(call: SettleCall): Promise<void>;
  /** Voids an authorization; by `reference` alone when gateway_ref is '' (the answer was lost). */
  void(call: SettleCall): Promise<void>;
  /** `reference` is the refund id. */
  refund(call: SettleCall): Promise<void>;
}
