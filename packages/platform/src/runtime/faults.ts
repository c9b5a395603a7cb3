/**
 * Faults a scenario arms (docs/scenarios.md "Time and faults"). One-shot faults act once, on the
 * next matching operation; outages last until restored.
 */
export class Faults {
  private readonly oneShot = new Map<string, number>();
  private readonly outages = new Set<string>();

  arm(kind: string, target: string): void {
    const key = `${kind}:${target}`;
    this.oneShot.set(key, (this.oneShot.get(key) ?? 0) + 1);
  }

  /** True (and disarmed) when a fault of this kind is armed for this target. */
  take(kind: string, target: string): boolean {
    const key = `${kind}:${target}`;
    const n = this.oneShot.get(key) ?? 0;
    if (n === 0) return false;
    if (n === 1) this.oneShot.delete(key);
    else this.oneShot.set(key, n - 1);
    return true;
  }

  startOutage(region: string): void {
    this.outages.add(region);
  }

  endOutage(region: string): void {
    this.outages.delete(region);
  }

  isOut(region: string): boolean {
    return this.outages.has(region);
  }
}
