// Types of mock.mjs (`@messaging-mock/driver/mock`).
import type { ChildProcess } from "node:child_process";

export declare const BINARY_ENV: "MESSAGING_MOCK_BIN";
export declare const BINARY_NAME: "messaging-mock";

export declare class MockStartError extends Error {
  binary?: string;
  /** The tail of what the binary wrote to stderr. */
  stderr: string;
  code?: number | null;
  signal?: NodeJS.Signals | null;
  /** The process id when it was started (it is gone by the time this is thrown). */
  pid?: number;
}

export declare class ControlError extends Error {
  /** The HTTP status; 0 when the request did not get an answer. */
  status: number;
  /** The server's own `message`. */
  message: string;
  method?: string;
  url?: string;
  body?: unknown;
  /** For a malformed body, the JSON pointer the server names. */
  pointer?: string;
}

export interface StartOptions {
  /** Path of the binary; else MESSAGING_MOCK_BIN, else `messaging-mock` on PATH. */
  binary?: string;
  /** `--scenario`: a built-in name or a scenario file. */
  scenario?: string;
  /** `--seed`. */
  seed?: number | bigint | string;
  /** `--config`: a JSON configuration file. */
  config?: string;
  /** `--bind`, default `127.0.0.1:0`. */
  bind?: string;
  /** `--control-token`; the control client then sends it. */
  controlToken?: string;
  /** `--log` filter. */
  log?: string;
  /** `--tls`: serve https:// and wss:// with a throwaway CA (MockHandle.caFile); the control client trusts only that CA. */
  tls?: boolean;
  /** Any other flags, appended as given. */
  args?: string[];
  /** Added to this process's environment; `undefined` removes a variable. */
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** Wait for the readiness line at most this long (default 10 000). */
  timeoutMs?: number;
  /** stop(): SIGKILL this long after SIGTERM (default 5 000). */
  stopGraceMs?: number;
  /** Per control-API request (default 10 000). */
  requestTimeoutMs?: number;
  /** Called with the mock's log output as it comes. */
  onStderr?: (chunk: string) => void;
}

export interface Readiness {
  ready: true;
  base_url: string;
  ws_url: string;
  connector_token: string;
  host: string;
  /** May have lost precision: use MockHandle.seed. */
  seed: number;
  scenario: string;
  profile: string;
  console_url: string;
  control_url: string;
  /** True under `--tls`. */
  tls?: boolean;
  /** Under `--tls`: the PEM file of the CA that signed the server certificate. */
  ca_file?: string;
}

export interface Health {
  ok: boolean;
  sessions: number;
  clock_ms: number;
  clock_scale: number;
}

export interface SessionSummary {
  session_id: string;
  connector: string;
  scenario: string;
  streaming: boolean;
  /** `awaiting_join`, `joining`, `agent`, `handoff_queued`, `live_agent:<id>`, `no_agent`, `ended:<reason>`. */
  state: string;
  /** `active`, `ended` or `expired`. */
  status: string;
  open_sockets: number;
  last_sequence: number;
  journal_entries: number;
  recording_error?: string | null;
  created_at_ms: number;
}

/** The endpoint names the `endpoint` filter takes. */
export type Endpoint = "access-token" | "sessions" | "ws";

export interface HttpCall {
  at_ms: number;
  /** The path the request addressed. */
  endpoint: "/api/v1/access-token" | "/api/v1/sessions" | "/ws";
  status: number;
  error?: string | null;
  retry_after?: number | null;
  request: Record<string, unknown>;
  token?: string | null;
  session_id?: string | null;
}

export interface RequestFilter {
  endpoint?: Endpoint;
  status?: number;
  sessionId?: string;
  /** Mock-clock ms: calls at or after. */
  sinceMs?: number;
  /** Mock-clock ms: calls before. */
  untilMs?: number;
  count?: boolean;
}

export interface RateLimited {
  count: number;
  retry_after_seconds?: number;
}

export interface HttpFailures {
  access_token?: number;
  sessions?: number;
  access_token_429?: RateLimited | null;
  sessions_429?: RateLimited | null;
}

/** A journal entry: see `JournalEntry` in schemas/control-openapi.json. */
export type JournalEntry = Record<string, unknown>;
/** A scenario step: see `RawStep` in schemas/control-openapi.json. */
export type Step = string | Record<string, unknown>;
/** A fault: see `RawFault` in schemas/control-openapi.json. */
export type Fault = string | Record<string, unknown>;

export declare class ControlClient {
  /** `ca` (PEM) or `caFile`: for an https control URL, the only CA trusted (without either, Node's default CAs). */
  constructor(controlUrl: string, opts?: { token?: string; timeoutMs?: number; ca?: string | Buffer; caFile?: string });
  url: string;
  /** The CA trusted for https, as given or read from `caFile`. */
  ca?: string | Buffer;
  request(method: string, path: string, body?: unknown): Promise<any>;
  health(): Promise<Health>;
  sessions(limit?: number): Promise<SessionSummary[]>;
  session(id: string): Promise<SessionSummary>;
  journal(id: string, opts?: { format?: "json" }): Promise<JournalEntry[]>;
  journal(id: string, opts: { format: "jsonl" }): Promise<string>;
  steps(id: string, steps: Step | Step[]): Promise<{ accepted: number }>;
  faults(id: string, faults: Fault | Fault[]): Promise<{ accepted: number }>;
  end(id: string, reason?: string): Promise<{ accepted: number }>;
  clock(change: { advanceMs?: number; scale?: number }): Promise<Health>;
  nextScenario(name: string): Promise<{ scenario: string }>;
  connectorScenario(token: string, name: string): Promise<{ scenario: string }>;
  httpFailures(spec: HttpFailures): Promise<HttpFailures>;
  requests(filter: RequestFilter & { count: true }): Promise<{ count: number }>;
  requests(filter?: RequestFilter): Promise<HttpCall[]>;
  reset(): Promise<Health>;
  scenarios(): Promise<string[]>;
}

export declare class MockHandle {
  process: ChildProcess;
  pid: number;
  binary: string;
  args: string[];
  readiness: Readiness;
  baseUrl: string;
  wsUrl: string;
  controlUrl: string;
  consoleUrl: string;
  /** Whether the mock serves https:// and wss:// (`tls: true`). */
  tls: boolean;
  /** Under TLS: the CA's PEM file, for your SDK to trust (removed when the mock exits). */
  caFile?: string;
  connectorToken: string;
  host: string;
  /** The seed as a decimal string (a u64 does not fit a JS number). */
  seed: string;
  scenario: string;
  profile: string;
  control: ControlClient;
  readonly running: boolean;
  stderr(): string;
  stop(opts?: { graceMs?: number }): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export declare function findBinary(options?: { binary?: string; env?: Record<string, string | undefined> }): string;
export declare function startMock(options?: StartOptions): Promise<MockHandle>;
export declare function runningMocks(): number;
