/**
 * Produces generated card transactions to Kafka, keyed by `card_id`, as that job's producer does:
 * at a rate (or as fast as possible), a share of them corrupt, some out of order.
 *
 * CLI: `npx tsx src/pipelines/cards/generate.ts --rate 50 [--count 10000] [--corrupt-fraction 0.02]`
 * or `rxlake generate-cards …` (`--help` for every flag).
 */
import { runIfEntry } from '../../runtime/cli.ts';
import { generateMain } from '../transactions/produce.ts';
import { corruptCardEvent, createCardGenerator } from './events.ts';

const USAGE = `Usage: generate-cards (--rate N | --count N | both) [options]

Produces card transactions ({ txn_id, event_ts, user_id, card_id, merchant, category, amount,
currency, status, city, country, lat, lon }, keyed by card_id) to the topic KAFKA_TOPIC
(default transactions).
  --rate N                   events per second (unset: as fast as possible)
  --count N                  events in all (unset: until stopped, with --rate)
  --corrupt-fraction F       share of corrupt events, 0..1 (default 0)
  --cards N                  distinct cards (default 100)
  --out-of-order-fraction F  share of events behind the clock (default 0.05)
  --max-delay-ms N           how far behind, at most (default 600000)
  --seed N                   generator seed (default 1)
  --partitions N             partitions of a topic this run creates (default 3)
  --topic-prefix P           Kafka topic = P + topic
Brokers: KAFKA_BOOTSTRAP_SERVERS (default 127.0.0.1:9092); TLS and SASL: KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_*, KAFKA_SSL_* as for the jobs.
`;

/** CLI entry point; returns the exit code. */
export function main(argv: readonly string[] = process.argv.slice(2)): Promise<number> {
  const topic = process.env.KAFKA_TOPIC ?? 'transactions';
  return generateMain(argv, { name: 'generate-cards', usage: USAGE, own: ['cards'] }, (args) => {
    const gen = createCardGenerator({
      seed: args.seed,
      topic,
      // Paced: the event clock follows the wall clock; else events 100 ms apart, ending now.
      startTime: Date.now() - (args.rate === undefined ? (args.count ?? 0) * 100 : 0),
      ...(args.rate === undefined ? {} : { stepMs: 1000 / args.rate }),
      ...(args.own.cards === undefined ? {} : { cards: args.own.cards }),
      ...(args.outOfOrderFraction === undefined ? {} : { outOfOrderFraction: args.outOfOrderFraction }),
      ...(args.maxDelayMs === undefined ? {} : { maxDelayMs: args.maxDelayMs }),
    });
    return { clientId: 'rxlake-generate-cards', topics: [topic], next: () => gen.next(), corrupt: corruptCardEvent };
  });
}

runIfEntry(import.meta.url, 'generate-cards', main);
