// JSON-lines logs. Redaction is a backstop: code never passes secrets to the logger at all.
import { pino, type Logger } from 'pino';

export function create_logger(level = process.env['TICKETING_LOG_LEVEL'] ?? 'info'): Logger {
  return pino({
    level,
    base: { service: 'ticketing' },
    redact: { paths: ['authorization', '*.authorization', 'token', '*.token', 'payment_token', '*.payment_token', 'secret'], censor: '[redacted]' },
  });
}
