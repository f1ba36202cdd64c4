/** Prometheus gauges and counters whose values are read from the status snapshot at each scrape. */
import { Counter, Gauge, type Registry } from 'prom-client';

type Fill<T> = (m: T) => void;

export function snapshotMetrics(registry: Registry) {
  const gauge = (name: string, help: string, labelNames: string[], fill: Fill<Gauge>) =>
    new Gauge({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.reset();
        fill(this);
      },
    });
  // a counter set from a cumulative figure: reset, then inc by the figure (the same labels twice add up)
  const counter = (name: string, help: string, labelNames: string[], fill: Fill<Counter>) =>
    new Counter({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.reset();
        fill(this);
      },
    });
  return { gauge, counter };
}
