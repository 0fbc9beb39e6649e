/**
 * Produces generated retail events to Kafka: transactions keyed by product and refunds of earlier
 * transactions, some out of order, optionally some corrupt, as many as asked or at a rate.
 *
 * CLI: `npx tsx src/pipelines/retail/generate.ts --count 5000 [--rate 200] [--corrupt-fraction 0.02]`
 * or `rxlake generate-retail …` (`--help` for every flag).
 */
import { runIfEntry } from '../../runtime/cli.ts';
import { generateMain } from '../transactions/produce.ts';
import { corruptRetailEvent, createRetailGenerator } from './events.ts';

const USAGE = `Usage: generate-retail (--count N | --rate N | both) [options]

Produces retail transactions (keyed by product) and refunds (keyed by the transaction refunded)
to the topics KAFKA_TOPIC (transactions) and KAFKA_TOPIC_REFUNDS (refunds).
  --count N                  events in all (unset: until stopped, with --rate)
  --rate N                   events per second (unset: as fast as possible)
  --corrupt-fraction F       share of corrupt events, 0..1 (default 0)
  --refund-fraction F        share of refunds, 0..1 (default 0.2)
  --products N               distinct products (default 40)
  --out-of-order-fraction F  share of events behind the clock (default 0.05)
  --max-delay-ms N           how far behind, at most (default 180000)
  --seed N                   generator seed (default 1)
  --partitions N             partitions of topics this run creates (default 3)
  --topic-prefix P           Kafka topic = P + topic
Brokers: KAFKA_BOOTSTRAP (or KAFKA_BOOTSTRAP_SERVERS), default localhost:9092; TLS and SASL: KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_*, KAFKA_SSL_* as for the jobs.
`;

/** CLI entry point; returns the exit code. */
export function main(argv: readonly string[] = process.argv.slice(2)): Promise<number> {
  const topics = { transactions: process.env.KAFKA_TOPIC ?? 'transactions', refunds: process.env.KAFKA_TOPIC_REFUNDS ?? 'refunds' };
  const brokers = (process.env.KAFKA_BOOTSTRAP ?? process.env.KAFKA_BOOTSTRAP_SERVERS ?? 'localhost:9092').split(',');
  return generateMain(argv, { name: 'generate-retail', usage: USAGE, own: ['products', 'refund-fraction'] }, (args) => {
    const gen = createRetailGenerator({
      seed: args.seed,
      topics,
      startTime: Date.now() - (args.rate === undefined ? (args.count ?? 0) * 250 : 0),
      ...(args.own.products === undefined ? {} : { products: args.own.products }),
      ...(args.own['refund-fraction'] === undefined ? {} : { refundFraction: args.own['refund-fraction'] }),
      ...(args.outOfOrderFraction === undefined ? {} : { outOfOrderFraction: args.outOfOrderFraction }),
      ...(args.maxDelayMs === undefined ? {} : { maxDelayMs: args.maxDelayMs }),
      // Paced: the event clock follows the wall clock; else events 250 ms apart, ending now.
      ...(args.rate === undefined ? {} : { stepMs: 1000 / args.rate }),
    });
    return { brokers, clientId: 'rxlake-generate-retail', topics: [topics.transactions, topics.refunds], next: () => gen.next(), corrupt: corruptRetailEvent };
  });
}

runIfEntry(import.meta.url, 'generate-retail', main);
