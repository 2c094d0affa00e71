/**
 * The lifetime of a loaded model that requests hold: {@link acquire} and {@link release} count the requests in
 * flight, {@link close} waits for them to drain, then frees the model's sessions once.
 */
export abstract class RefCountedModel {
  private inflight = 0;
  private drained: (() => void) | undefined;
  private closed = false;
  private closing: Promise<void> | undefined;

  /** The model version, named in the error of an {@link acquire} after {@link close}. */
  abstract get version(): string;

  /** Free what the model holds (its onnxruntime sessions); called once, after the requests in flight drained. */
  protected abstract releaseSessions(): Promise<void>;

  /** Take a reference for one request; pair with {@link release}. */
  acquire(): this {
    if (this.closed) throw new Error(`model ${this.version} is closed`);
    this.inflight++;
    return this;
  }

  /** Give back a reference taken by {@link acquire}. */
  release(): void {
    this.inflight--;
    if (this.inflight === 0) this.drained?.();
  }

  /** Requests holding this model. */
  get inFlight(): number {
    return this.inflight;
  }

  /** Wait for the requests in flight to finish, then release the sessions. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.inflight > 0) await new Promise<void>((r) => (this.drained = r));
      this.closed = true;
      await this.releaseSessions();
    })();
    return this.closing;
  }
}
