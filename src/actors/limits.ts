// Every domain limit in one place, named with its unit last. The gRPC edge enforces the same
// numbers before a request crosses a thread, and the actor enforces them again.

export const seats_per_hold_max = 10;
/** Active (unexpired, unreleased) holds one user may have on one event. */
export const holds_per_user_max = 10;
export const hold_ttl_seconds_default = 600;
export const hold_ttl_seconds_min = 30;
export const hold_ttl_seconds_max = 3600;
/** How long a released or expired hold is remembered (answers released=false, not NOT_FOUND). */
export const hold_tombstone_retention_ms = 24 * 60 * 60 * 1000;

export const event_id_length_max = 64;
export const user_id_length_max = 128;
export const order_id_length_max = 128;
export const seat_id_length_max = 40;
export const event_name_length_max = 200;
export const section_name_length_max = 16;
export const row_name_length_max = 8;
export const tier_name_length_max = 16;
export const promo_code_length_max = 32;

export const sections_per_event_max = 500;
export const rows_per_section_max = 500;
export const seats_per_row_max = 1000;
export const seats_per_event_max = 200_000;
export const price_tiers_per_event_max = 32;
export const promo_codes_per_event_max = 100;
export const max_seats_per_user_default = 10;
export const max_seats_per_user_max = 100;
/** Free seat ids returned by one GetAvailability; the response says truncated beyond it. */
export const availability_seat_ids_max = 5000;
/** Largest integer amount accepted (2^53 - 1): beyond it JS numbers would round. */
export const amount_micros_max = Number.MAX_SAFE_INTEGER;

export const id_pattern = /^[A-Za-z0-9._:-]+$/;
/** An ISO 4217 alphabetic code (EUR): of an event's prices, and of every amount a call names. */
export const currency_pattern = /^[A-Z]{3}$/;
/** A promo code, in an event's definition and in CreateDraft. */
export const promo_code_pattern = /^[A-Z0-9_-]+$/;

// Purchases (orders, payments, refunds, fraud).
export const idempotency_key_length_max = 64;
/** How long an Authorize/Refund result is kept for retries carrying the same idempotency-key. */
export const idempotency_retention_ms = 24 * 60 * 60 * 1000;
/** Refunds of one payment (each partial refund is one). */
export const refunds_per_payment_max = 20;
/** Payments one order may have (each Authorize attempt, declined ones included). */
export const payments_per_order_max = 10;
/** An AUTHORIZED payment of an order whose hold expired stays confirmable (ConfirmOrder retakes
 *  free seats) this long after the expiry; then it is voided, so no authorization is kept. */
export const authorization_grace_ms = 10 * 60 * 1000;
/** A payment still PENDING this long after Authorize began (the gateway's answer was lost to a
 *  crash or an outage) is voided at the gateway by reference and recorded VOIDED. */
export const authorization_pending_ms_max = 60 * 1000;
/** A draft that expired or was cancelled is remembered this long (GetOrder, ListOrders), then
 *  forgotten with its payments: abandoned drafts (bots, tabs closed) must not grow memory and
 *  snapshots without bound. Sold orders are kept. */
export const ended_order_retention_ms = 24 * 60 * 60 * 1000;
/** Orders forgotten by one timer run at most; the rest wait for the next run. */
export const orders_forgotten_per_run_max = 4096;
/** Orders returned by one ListOrders page. */
export const list_orders_page_max = 100;
export const payment_token_length_max = 64;
export const ip_length_max = 45;
export const device_id_length_max = 128;
/** Settlement items (captures, voids, refunds to drive at the gateway) handed out per request. */
export const settlements_per_request_max = 256;

// Best available and general admission (issue 14).
/** Ranking weight of a section or row in the event file (lower first). */
export const priority_max = 1000;
/** Standing areas of one event; their names share the namespace of section names. */
export const areas_per_event_max = 32;
/** Places of one standing area. Seats and places together stay within seats_per_event_max. */
export const area_capacity_max = 100_000;
// Hold lifecycle (ExtendHold, ReturnSeats).
/** A hold's whole life, creation to expiry, however often it is extended: a buyer cannot keep
 *  seats off sale indefinitely (pretix and seats.io cap it the same way). */
export const hold_life_seconds_max = 3600;
/** ExtendHold calls one hold may have. */
export const hold_extensions_max = 3;
/** Free runs best available's rule (c) examines for a combination that strands no seat before
 *  it settles for seats in rank order. It bounds the worst case: 200,000 seats all in free runs
 *  of 2 and an odd quantity (no clean combination exists) took a median 80 ms per call walking
 *  every run, 2-3 ms with this cap (measured 1 Dec 2026, 2 shared cores). Events with fewer free
 *  runs than this are searched exhaustively (the oracle test's maps are). */
export const best_available_scattered_runs_max = 4096;
/** Seat changes one event's WatchAvailability change log keeps (a ring; never more than the
 *  event's places: past that many changes a whole picture is smaller than the change list). */
export const watch_change_log_max = 8192;
// The waiting room (issue 16).
/** Entries of one event's queue: 1,000,000 queued buyers fit one partition's memory budget
 *  (≤ 200 B per entry, measured: notes/wr-actor.md). */
export const queue_entries_per_event_max = 1_000_000;
export const queue_admit_per_minute_max = 1_000_000;
export const queue_admission_ttl_seconds_max = 3_600;
export const queue_device_id_length_max = 128;
/** The `admission-token` metadata value: "at1." + ticket id (31) + expiry (13) + MAC (43) fits. */
export const admission_token_length_max = 256;
/** How often a drawn queue admits the next buyers (its timer), ms. */
export const queue_admission_tick_ms = 1_000;
export const queues_per_partition_max = 1_024;
