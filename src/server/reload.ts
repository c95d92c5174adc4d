/**
 * SIGHUP reloads osp.toml. One process reloads itself. With workers, the primary reads the file
 * and hands its text to the workers, so all of them serve the same reading: a worker that starts
 * asks the primary for the current generation, and a reload goes in two phases (every worker loads
 * the new generation, then every worker swaps to it), so that either all move or none does.
 */
import cluster, { type Worker } from "node:cluster";
import { Live, loadGeneration, needsRestart, problem, readGeneration, summary, type Generation } from "./generation.ts";

/** How long the workers have to load a new generation (a hooks module may be slow to import). */
const LOAD_TIMEOUT_MS = 30_000;

type Message =
  | { osp: "generation?" }
  | { osp: "generation"; n: number; path: string; text: string; swap: boolean }
  | { osp: "loaded"; n: number; error?: string }
  | { osp: "swap"; n: number }
  | { osp: "swapped"; n: number }
  | { osp: "drop"; n: number }
  | { osp: "listening" };

/**
 * On SIGHUP: reads the file again and, if it is valid and changes nothing that needs a restart,
 * `apply` makes it current; otherwise (or if `apply` throws) one line says why and nothing changes.
 */
function reloadOnSighup(path: string, current: () => Generation, apply: (next: Generation) => Promise<void>): void {
  let running = false;
  let again = false;
  const reload = async () => {
    if (running) return void (again = true);
    running = true;
    const old = current();
    try {
      const next = await readGeneration(old.n + 1, path);
      const restart = needsRestart(old.config.server, next.config.server);
      if (restart) throw restart;
      await apply(next);
      console.log(`osp: ${path}: generation ${next.n} active (${summary(next.config)})`);
    } catch (e) {
      console.error(`osp: ${path}: ${problem(e)}; not reloaded, generation ${old.n} stays active`);
    } finally {
      running = false;
      if (again) {
        again = false;
        void reload();
      }
    }
  };
  process.on("SIGHUP", () => void reload());
}

/** One process (no workers): reloads itself. */
export function reloadSelf(live: Live): void {
  const path = live.generation.source?.path;
  if (path) reloadOnSighup(path, () => live.generation, async (next) => live.swap(next));
}

/** In a worker started by osp.ts: the generation to start with, from the primary. */
export function generationFromPrimary(): Promise<Generation> {
  return new Promise((resolve, reject) => {
    const take = (m: Message) => {
      if (m?.osp !== "generation") return;
      process.off("message", take);
      loadGeneration(m.n, m.path, m.text).then(resolve, reject);
    };
    process.on("message", take);
    process.send!({ osp: "generation?" } satisfies Message);
  });
}

/** In a worker: loads what the primary sends, and swaps when it says so. Attached before the worker listens. */
export function followPrimary(live: Live): void {
  // the primary reloads its workers; a SIGHUP to the whole process group must not stop them
  process.on("SIGHUP", () => {});
  let loaded: Generation | undefined;
  process.on("message", async (m: Message) => {
    if (m?.osp === "generation") {
      let error: string | undefined;
      try {
        const next = await loadGeneration(m.n, m.path, m.text);
        if (m.swap) live.swap(next);
        else loaded = next;
      } catch (e) {
        error = problem(e);
      }
      process.send!({ osp: "loaded", n: m.n, error } satisfies Message);
    } else if (m?.osp === "swap" && loaded?.n === m.n) {
      live.swap(loaded);
      loaded = undefined;
      process.send!({ osp: "swapped", n: m.n } satisfies Message);
    } else if (m?.osp === "drop") {
      loaded = undefined;
    }
  });
}

/**
 * In the primary: gives each starting worker the current generation, and on SIGHUP moves every
 * listening worker to the next one: all load it, then all swap, and only then is it logged as
 * active. A worker that was still starting is given the new generation once it listens.
 * Returns the current generation.
 */
export function leadWorkers(first: Generation, listening: () => Worker[]): () => Generation {
  let active = first;
  const path = first.source?.path;
  if (!path) return () => active;
  const served = new Map<number, number>(); // worker id → the generation it serves or is starting with
  const send = (w: Worker, m: Message) => w.isConnected() && w.send(m);
  const give = (w: Worker, g: Generation, swap: boolean) => {
    if (swap) served.set(w.id, g.n);
    send(w, { osp: "generation", n: g.n, path, text: g.source!.text, swap });
  };

  let round: { n: number; reply: "loaded" | "swapped"; waiting: Set<number>; settle: (error?: string) => void } | undefined;
  /** Sends each worker its message and waits for every answer: the first error, or undefined. */
  const collect = (workers: Worker[], n: number, reply: "loaded" | "swapped", ask: (w: Worker) => void) =>
    new Promise<string | undefined>((resolve) => {
      const settle = (error?: string) => {
        clearTimeout(timer);
        round = undefined;
        resolve(error);
      };
      const timer = setTimeout(() => settle(`${round?.waiting.size} of ${workers.length} workers did not answer within ${LOAD_TIMEOUT_MS / 1000} s`), LOAD_TIMEOUT_MS);
      round = { n, reply, waiting: new Set(workers.map((w) => w.id)), settle };
      for (const w of workers) ask(w);
      if (workers.length === 0) settle();
    });
  const answered = (id: number) => {
    if (round?.waiting.delete(id) && round.waiting.size === 0) round.settle();
  };

  cluster.on("message", (w, m: Message) => {
    if (m?.osp === "generation?") give(w, active, true);
    else if (m?.osp === "listening" && served.has(w.id) && served.get(w.id) !== active.n) give(w, active, true);
    else if ((m?.osp === "loaded" || m?.osp === "swapped") && round?.reply === m.osp && round.n === m.n && round.waiting.has(w.id)) {
      if (m.osp === "loaded" && m.error) round.settle(m.error);
      else answered(w.id);
    } else if (m?.osp === "loaded" && m.error && served.get(w.id) === m.n) {
      // it could not take the generation every other worker serves: a new worker will
      console.error(`osp: worker ${w.process.pid} could not load generation ${m.n} (${m.error}); replacing it`);
      w.process.kill("SIGTERM");
    }
  });
  cluster.on("exit", (w) => {
    served.delete(w.id);
    answered(w.id);
  });

  const apply = async (next: Generation) => {
    const workers = listening();
    const failed = await collect(workers, next.n, "loaded", (w) => give(w, next, false));
    if (failed) {
      for (const w of workers) send(w, { osp: "drop", n: next.n });
      throw new Error(failed);
    }
    active = next;
    for (const w of workers) served.set(w.id, next.n);
    await collect(workers, next.n, "swapped", (w) => send(w, { osp: "swap", n: next.n }));
    for (const w of listening()) if (served.get(w.id) !== next.n) give(w, next, true);
  };
  reloadOnSighup(path, () => active, apply);
  return () => active;
}
