// ticketing.fraud.v1.FraudService: translate, check, hand to the purchase flow. The decision's
// reasons go to the log; the response keeps the seed's two fields.
import { isIP } from 'node:net';
import * as L from '../actors/limits.js';
import { InvalidArgumentError } from '../actors/errors.js';
import { require_role } from '../auth/policy.js';
import type { Purchases } from '../purchase/purchases.js';
import { id, optional_id, str } from './convert.js';
import { unary, type EdgeDeps } from './unary.js';

export function fraud_service(deps: EdgeDeps, purchases: Purchases) {
  return {
    ScoreTransaction: unary(deps, 'FraudService', 'ScoreTransaction', async (req: { order_id: unknown; user_id: unknown; ip: unknown; device_id: unknown }, ctx) => {
      // The ip and device are the caller's word: a customer could launder its own signals, so
      // only the services that see the buyer's connection may score.
      require_role(ctx.principal, ['service', 'admin'], 'ScoreTransaction');
      const order_id = id(req.order_id, 'order_id', L.order_id_length_max);
      const user_id = id(req.user_id, 'user_id', L.user_id_length_max);
      const ip = str(req.ip ?? '', 'ip', L.ip_length_max);
      if (ip !== '' && isIP(ip) === 0) throw new InvalidArgumentError('ip must be an IPv4 or IPv6 address (or empty)');
      const device_id = optional_id(req.device_id, 'device_id', L.device_id_length_max);
      return purchases.score({ order_id, user_id, ip, device_id }, ctx.trace_id);
    }, { changes_state: true }),
  };
}
