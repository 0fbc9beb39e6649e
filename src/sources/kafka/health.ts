/**
 * Whether the consumer reaches Kafka: up once it is in its group and answered, down when a
 * broker error stops it or nothing answered for the stall timeout; each change reported once.
 */
import { redact } from '../../core/logger.ts';
import type { Logger } from '../../core/logger.ts';
import type { Clock } from './clock.ts';

/** Whether the consumer reaches Kafka. */
export interface KafkaHealth {
  /** In its group and answered by the broker(s); false before the first join and during an outage. */
  readonly connected: boolean;
  /** The last broker error (kept after recovery, for the record). */
  readonly lastError?: string;
  /** Epoch milliseconds of the last change of state (absent before the first join or outage). */
  readonly since?: number;
}

export interface HealthOptions {
  readonly groupId: string;
  readonly clock: Clock;
  readonly log: Logger;
  readonly onChange?: ((health: KafkaHealth) => void) | undefined;
  /** How long an outage lasts before it is logged at ERROR (once per outage; `tick` checks); default 60 s. */
  readonly alertAfterMs?: number;
}

/** Default of `HealthOptions.alertAfterMs`: a broker restart or a coordinator move is over well before. */
export const OUTAGE_ALERT_MS = 60_000;

export class ConnectionHealth {
  readonly #o: HealthOptions;
  #connected = false;
  /** An outage was detected and the group is not joined again yet. */
  #down = false;
  #since: number | undefined;
  #lastError: string | undefined;
  /** Last successful broker round trip (any request), epoch ms. */
  #lastContact = 0;
  /** The client's last error-level log line (e.g. `Connection error: connect ECONNREFUSED …`). */
  #lastClientError: string | undefined;
  /** The current outage was logged at ERROR. */
  #alerted = false;

  constructor(options: HealthOptions) {
    this.#o = options;
  }

  get connected(): boolean {
    return this.#connected;
  }

  get down(): boolean {
    return this.#down;
  }

  snapshot(): KafkaHealth {
    return {
      connected: this.#connected,
      ...(this.#lastError !== undefined ? { lastError: this.#lastError } : {}),
      ...(this.#since !== undefined ? { since: this.#since } : {}),
    };
  }

  /** A broker answered. */
  contact(): void {
    this.#lastContact = this.#o.clock.now();
  }

  /** The client logged an error line (kept to name the cause of a stall). */
  clientError(message: string): void {
    this.#lastClientError = redact(message);
  }

  /** In the group and answered: connected (again). */
  up(): void {
    if (this.#connected) return;
    const now = this.#o.clock.now();
    if (this.#down) this.#o.log.warn('Kafka reachable again: consumer back in its group', { groupId: this.#o.groupId, downMs: now - (this.#since ?? now) });
    this.#connected = true;
    this.#down = false;
    this.#alerted = false;
    this.#since = now;
    this.#notify();
  }

  /** The broker cannot be reached (or the consumer crashed on a broker error): disconnected. */
  markDown(reason: string): void {
    const text = redact(reason);
    if (this.#down && this.#lastError === text) return;
    if (!this.#down) {
      this.#o.log.warn('Kafka unreachable: retrying with backoff', { groupId: this.#o.groupId, reason: text });
      this.#since = this.#o.clock.now();
    }
    this.#connected = false;
    this.#down = true;
    this.#lastError = text;
    this.#notify();
  }

  /** Disconnecting on purpose is no outage: nothing is reported. */
  reset(): void {
    this.#connected = false;
    this.#down = false;
    this.#alerted = false;
  }

  /**
   * Called now and then (the source's watchdog, every second): an outage that has lasted
   * `alertAfterMs` is logged at ERROR, once — the client's own lines about it are warnings, as
   * most outages (a broker restart, a coordinator moving) end by themselves well before.
   */
  tick(): void {
    if (!this.#down || this.#alerted) return;
    const downMs = this.#o.clock.now() - (this.#since ?? this.#o.clock.now());
    if (downMs < (this.#o.alertAfterMs ?? OUTAGE_ALERT_MS)) return;
    this.#alerted = true;
    this.#o.log.error(`Kafka unreachable for ${Math.round(downMs / 1000)} s: the consumer keeps retrying; check that the brokers run and are reachable from here`, {
      groupId: this.#o.groupId,
      reason: this.#lastError,
      downMs,
    });
  }

  /** While connected: the reason to report the consumer down when nothing answered for `stallMs`. */
  stalled(stallMs: number): string | undefined {
    if (!this.#connected || this.#o.clock.now() - this.#lastContact < stallMs) return undefined;
    const detail = this.#lastClientError === undefined ? '' : ` (last client error: ${this.#lastClientError})`;
    return `no answer from Kafka for ${Math.round(stallMs / 1000)} s${detail}`;
  }

  #notify(): void {
    const { onChange } = this.#o;
    if (!onChange) return;
    try {
      onChange(this.snapshot());
    } catch (err) {
      this.#o.log.warn('onHealthChange threw', { error: err });
    }
  }
}
