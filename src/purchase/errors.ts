// Failures of the payment gateway, as typed errors (mapped to gRPC codes in src/grpc/status.ts).

/** The gateway did not answer or said it is unavailable: retriable. */
export class GatewayUnavailableError extends Error {
  override readonly name = 'GatewayUnavailableError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
